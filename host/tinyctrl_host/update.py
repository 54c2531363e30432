# SPDX-License-Identifier: MIT
"""Firmware updates on the PC: the owner's update key (ECDSA P-256, the private key beside
config.json, mode 0600; the public key in config.json's update.key), the image an update
carries (the application slot's bytes of a UF2), its manifest and signature, in the device's
tinyctrl.update format."""

import hashlib
import json
import os
import struct

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tinyctrl import download
from tinyctrl import update as device_update

from . import Failure, board, configfile, push

XIP_BASE = 0x10000000  # flash in the RP2040's address map
RAM = (0x20000000, 0x20042000)  # where an image's initial stack pointer may point
IMAGE_ID = (
    b"tinyctrl-image "  # ports/rp2/cmodule/image_id.c: "tinyctrl-image board=.. version=..\n"
)


def key_path(config_path):
    """The update key beside its config: config.json -> config.update.pem (mode 0600)."""
    return push.stem(config_path) + ".update.pem"


def public_hex(public_key):
    """update.key's form of a public key: the uncompressed point, 130 hex digits."""
    return public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    ).hex()


def new_key(config_path):
    """Make the owner's update key pair: the private key into key_path (PKCS#8 PEM, mode 0600;
    refused if one is there: devices that trust it would take no update signed by another);
    returns the public key as update.key holds it."""
    path = key_path(config_path)
    if os.path.exists(path):
        raise Failure(
            "%s: an update key is already there; devices with its public key take only "
            "updates it signs (move it away first to make a new one)" % path
        )
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    configfile.write_private(path, pem)
    return public_hex(private.public_key())


def read_key(config_path):
    """The private update key for this config, or a one-line Failure."""
    path = key_path(config_path)
    try:
        with open(path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
    except FileNotFoundError:
        raise Failure(
            "%s: no update key; make one with tinyctrl key new --update -c %s"
            % (path, config_path)
        )
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise Failure("%s: not an update key (%s)" % (path, getattr(e, "strerror", None) or e))
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise Failure("%s: not an ECDSA P-256 key" % path)
    return key


def _blocks(path):
    """(flash address, payload) of every block of a UF2 that board.check_uf2 accepted."""
    with open(path, "rb") as f:
        data = f.read()
    for at in range(0, len(data), board.UF2_BLOCK):
        _, _, _, addr, size, _, _, _ = board.UF2_HEADER.unpack_from(data, at)
        yield addr, data[at + board.UF2_HEADER.size : at + board.UF2_HEADER.size + size]


def slot_image(path):
    """The bytes of the application slot a UF2 holds: what an update writes. A first-install
    UF2 (bootloader and image) gives its image; a UF2 without a bootloader layout (linked to
    run from the start of flash) is refused."""
    board.check_uf2(path)
    start = XIP_BASE + device_update.APP_START
    end = start + device_update.SLOT_BYTES
    pages = {}
    for addr, payload in _blocks(path):
        if addr < start:
            continue  # the bootloader of a first-install image: never updated over the air
        if addr >= end or addr + len(payload) > end:
            raise Failure(
                "%s: the image goes past the %d KB application slot"
                % (path, device_update.SLOT_BYTES // 1024)
            )
        if addr % device_update.PAGE or len(payload) != device_update.PAGE:
            raise Failure("%s: block at 0x%08x is not one whole flash page" % (path, addr))
        pages[addr] = payload
    count = len(pages)
    if not count or any(start + i * device_update.PAGE not in pages for i in range(count)):
        raise Failure("%s: no whole image at 0x%08x (the application slot)" % (path, start))
    image = b"".join(pages[start + i * device_update.PAGE] for i in range(count))
    sp, reset = struct.unpack_from("<II", image)
    if not (RAM[0] < sp <= RAM[1] and start < reset < start + len(image) and reset & 1):
        raise Failure(
            "%s: not an image for the update slot (it is linked to run from 0x%08x, not "
            "0x%08x); install an OTA-capable UF2 by hand once" % (path, XIP_BASE, start)
        )
    return image


def image_identity(image, path="image"):
    """(board, version) the image names in its one "tinyctrl-image board=..." line (the frozen
    code holds the bare prefix too, followed by no fields)."""
    mark = device_update.IMAGE_ID + b"board="
    at = image.find(mark)
    if at < 0 or image.find(mark, at + 1) >= 0:
        raise Failure("%s: not a tinyctrl image (no single %r line)" % (path, mark.decode()))
    end = image.find(b"\n", at)
    try:
        found = device_update.identity(image[at:end])
    except UnicodeError:
        found = None
    if found is None:
        raise Failure("%s: its tinyctrl-image line names no board or version" % path)
    return found


def manifest_line(image, name, version):
    """The manifest (bytes, no newline) for `image`, as the device parses it."""
    return json.dumps(
        {
            "at": device_update.APP_START,
            "board": name,
            "len": len(image),
            "sha256": hashlib.sha256(image).hexdigest(),
            "v": device_update.VERSION,
            "version": version,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def sign(private_key, line):
    """The signature line's 64 bytes: ECDSA P-256 over SHA-256 of `line`, r | s."""
    r, s = decode_dss_signature(private_key.sign(line, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def stream(private_key, image, name, version):
    """What the device receives: manifest line, signature line (hex), image."""
    line = manifest_line(image, name, version)
    return line + b"\n" + sign(private_key, line).hex().encode() + b"\n" + image


def stream_from_uf2(private_key, path):
    """The signed update for a UF2, and its (board, version)."""
    image = slot_image(path)
    name, version = image_identity(image, path)
    return stream(private_key, image, name, version), (name, version)


def chunks(data, uid):
    """The messages for <mqtt.topic>/update, framed as a config push's."""
    return push.chunks(data, uid, download.CHUNK)
