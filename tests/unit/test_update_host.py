# SPDX-License-Identifier: MIT
# The PC's side of firmware updates (tinyctrl_host.update, the `cryptography` package) against
# the device's (tinyctrl.update, and ports/unix/ecdsa_sim.py for the signature): the image is
# the application slot's pages of a UF2, its identity is read from the image, and a stream
# the PC signs passes the device's checks, byte for byte; the update key file is private.
import hashlib
import os
import stat
import sys

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from tinyctrl_host import Failure
from tinyctrl_host import update as host_update

from tinyctrl import update

sys.path.append(os.path.join(os.path.dirname(__file__), "..", "..", "ports", "unix"))
import ecdsa_sim  # noqa: E402
from uf2s import APP, app_image, pages_at, uf2  # noqa: E402

XIP = 0x10000000


def write(tmp_path, pages, name="fw.uf2"):
    path = tmp_path / name
    path.write_bytes(uf2(pages))
    return str(path)


def test_simulator_verifier_agrees_with_cryptography():
    for i in range(12):
        key = ec.generate_private_key(ec.SECP256R1())
        pub = bytes.fromhex(host_update.public_hex(key.public_key()))
        msg = os.urandom(40 + i)
        sig = host_update.sign(key, msg)
        digest = update.Manifest(msg, _fields()).digest
        assert ecdsa_sim.verify(pub, digest, sig) is True
        assert ecdsa_sim.verify(pub, digest, sig[:63] + bytes([sig[63] ^ 0x80])) is False
        other = ec.generate_private_key(ec.SECP256R1()).public_key()
        assert ecdsa_sim.verify(bytes.fromhex(host_update.public_hex(other)), digest, sig) is False


def _fields():
    return {"at": 0, "board": "b", "len": 0, "sha256": "00" * 32, "version": "1"}


def test_a_stream_the_pc_signs_passes_the_device_checks(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    image = app_image("1.2.0")
    path = write(tmp_path, pages_at(APP, image))
    data, ident = host_update.stream_from_uf2(key, path)
    assert ident == ("PICO_W_TINYCTRL", "1.2.0")
    line, sig, rest = update.split_head(data[:960])  # the head is whole in the first chunk
    m = update.parse(line)
    pub = bytes.fromhex(host_update.public_hex(key.public_key()))
    update.check(m, sig, pub, ecdsa_sim.verify, "PICO_W_TINYCTRL", "1.1.0")
    assert data.endswith(image) and m.len == len(image)
    assert hashlib.sha256(image).digest() == m.sha256
    # cryptography checks the same signature over the same line
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    key.public_key().verify(encode_dss_signature(r, s), line, ec.ECDSA(hashes.SHA256()))


def test_a_first_install_uf2_gives_only_its_image(tmp_path):
    image = app_image()
    bootloader = pages_at(XIP, os.urandom(update.APP_START))
    path = write(tmp_path, {**bootloader, **pages_at(APP, image)})
    assert host_update.slot_image(path) == image


def test_uf2s_that_are_no_update_are_refused(tmp_path):
    # today's layout: linked to run from the start of flash, vector table after boot2
    old = app_image(pages=(update.APP_START // 256) + 8, start=XIP + 0x100)
    old = os.urandom(256) + old[:-256]
    cases = {
        "linked to run from 0x10000000": pages_at(XIP, old),
        "no whole image at 0x1000a000": pages_at(APP + 256, app_image()),
        "past the 888 KB application slot": pages_at(
            APP, app_image(pages=update.SLOT_BYTES // 256 + 1)
        ),
    }
    gap = pages_at(APP, app_image())
    del gap[APP + 512]
    cases["no whole image"] = gap
    for why, pages in cases.items():
        with pytest.raises(Failure) as e:
            host_update.slot_image(write(tmp_path, pages))
        assert why in str(e.value), (why, str(e.value))
    not_uf2 = tmp_path / "x.uf2"
    not_uf2.write_bytes(b"hello")
    with pytest.raises(Failure, match="not a UF2"):
        host_update.slot_image(str(not_uf2))


def test_the_image_must_name_one_board_and_version():
    image = app_image("1.2.0")
    assert host_update.image_identity(image) == ("PICO_W_TINYCTRL", "1.2.0")
    for bad, why in (
        (image.replace(b"tinyctrl-image", b"something-else"), "not a tinyctrl image"),
        (image + image, "not a tinyctrl image"),
        (image.replace(b"version=1.2.0", b"version=new"), "names no board or version"),
        (image.replace(b"board=PICO_W_TINYCTRL", b"board="), "names no board or version"),
    ):
        with pytest.raises(Failure, match=why):
            host_update.image_identity(bad)


def test_the_update_key_is_private_and_made_once(tmp_path):
    config = str(tmp_path / "garage.json")
    public = host_update.new_key(config)
    path = host_update.key_path(config)
    assert path == str(tmp_path / "garage.update.pem")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert update.public_key(public) is not None
    key = host_update.read_key(config)
    assert host_update.public_hex(key.public_key()) == public
    with pytest.raises(Failure, match="already there"):
        host_update.new_key(config)
    assert host_update.public_hex(host_update.read_key(config).public_key()) == public
    with open(path, "w") as f:
        f.write("not a key")
    with pytest.raises(Failure, match="not an update key"):
        host_update.read_key(config)
    with pytest.raises(Failure, match="no update key; make one with tinyctrl key new --update"):
        host_update.read_key(str(tmp_path / "other.json"))
