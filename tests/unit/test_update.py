# SPDX-License-Identifier: MIT
# Firmware update manifests (tinyctrl.update) and the simulator's ECDSA P-256 verifier
# (ports/unix/ecdsa_sim.py), under CPython and MicroPython: the flash layout adds up, a
# manifest is parsed strictly, and every refusal (another board, another slot, size, older or
# equal version, a version that rolled back, a wrong key, a tampered manifest, no key) comes
# before anything would be written. Signatures are vectors made once by the PC's code
# (host/tinyctrl_host/update.py with the `cryptography` package) and RFC 6979's.
import hashlib
import sys

from check import raises

from tinyctrl import config, update

sys.path.append(__file__.rsplit("/", 3)[0] + "/ports/unix")
import ecdsa_sim  # noqa: E402

KEY_HEX = (
    "04d5c8ccdba4f7dfd52beda01a5e5b9dc41c6071a525de4255032317f1de0b2d29320f0754ac3f8e96af86"
    "f344cd6c3cf998705e10cd5a5392b2239a8d9dcacee3"
)
OTHER_KEY_HEX = (
    "04050f1973f020476859f33217266fa0af41af2eae2ba4b223d19c9b1d4d5a20c5e3a723ef8d64df2ad1fe"
    "a9a5a272feaf13d0e0a9b6b540aeb02b3a1092e16df0"
)
KEY = bytes.fromhex(KEY_HEX)
IMAGE = bytes(range(256)) * 4
BOARD = "UNIX_SIM"


def line(version):
    return (
        '{"at":40960,"board":"UNIX_SIM","len":1024,"sha256":"785b0751fc2c53dc14a4ce3d800e69ef'
        '9ce1009eb327ccf458afe09c242c26c9","v":1,"version":"%s"}' % version
    ).encode()


SIGS = {  # over line(version), by the key whose public key is KEY
    "1.2.0": "e76f1f6c2a3c664700a185a148fe83203ec761bc8547755a93ed8d8a456de282"
    "f2ab4ad004d400bb38a3ba4360cce285c6ca0615c71951f5649fa209ae41c6a8",
    "1.1.0": "53483fd92a0f6b337021095de1234bcfb52c71eeb234fe70067fb4e5128cb88d"
    "1ac20d2bcfe9baece0134bd05e9651c367e97e2e3e95a2a7197ce36a9b1a081c",
    "9.0.0": "dc900a5495d8ac8f25282b69611c9453ba08dc6c16368aa28b0be960d31ca4f0"
    "3efba021da35fea737753bf6a348b866bab7c4c8d278c6177d71355280c57718",
}


def signed(version):
    return update.parse(line(version)), bytes.fromhex(SIGS[version])


def refusal(version, running="1.1.0", key=KEY, board=BOARD, failed=None, sig=None):
    m, good = signed(version)
    e = raises(
        update.Refused,
        update.check,
        m,
        sig or good,
        key,
        ecdsa_sim.verify,
        board,
        running,
        failed,
    )
    return str(e)


def test_the_layout_fills_the_flash_in_whole_sectors():
    parts = (
        update.BOOTLOADER_BYTES,
        update.SLOT_BYTES,
        update.SLOT_BYTES,
        4096,  # swap scratch
        4096,  # swap journal
        update.FS_BYTES,
    )
    assert sum(parts) == update.FLASH_BYTES == 2 * 1024 * 1024
    assert all(p % 4096 == 0 for p in parts)
    assert update.DOWNLOAD_START == update.APP_START + update.SLOT_BYTES
    assert update.SWAP_JOURNAL == update.SWAP_SCRATCH + 4096 == update.FS_START - 4096
    assert update.FS_START + update.FS_BYTES == update.FLASH_BYTES
    # config.json and config.new at their largest, with room to spare
    assert update.FS_BYTES >= 3 * config.MAX_PAYLOAD


def test_a_signed_newer_update_for_this_board_passes():
    m, sig = signed("1.2.0")
    assert m.version == "1.2.0" and m.len == 1024 and m.at == update.APP_START
    assert m.sha256 == hashlib.sha256(IMAGE).digest()
    update.check(m, sig, KEY, ecdsa_sim.verify, BOARD, "1.1.0")


def test_the_head_is_split_from_the_image_bytes_after_it():
    head = line("1.2.0") + b"\n" + SIGS["1.2.0"].encode() + b"\n"
    got_line, sig, rest = update.split_head(head + IMAGE[:100])
    assert got_line == line("1.2.0") and sig == bytes.fromhex(SIGS["1.2.0"])
    assert bytes(rest) == IMAGE[:100]
    for bad in (
        b"",
        b"no newline at all",
        b"\n" + head,
        line("1.2.0") + b"\n" + SIGS["1.2.0"][:-2].encode() + b"\n",
        line("1.2.0") + b"\n" + SIGS["1.2.0"].encode() + b"X",
        line("1.2.0") + b"\n" + ("zz" * 64).encode() + b"\n",
        b"x" * (update.MAX_MANIFEST + 1) + b"\n",
    ):
        raises(update.Refused, update.split_head, bad)


def test_older_equal_and_replayed_versions_are_refused():
    assert "not newer than the running 1.1.0" in refusal("1.1.0")  # equal: a replay
    assert "not newer than the running 1.2.0" in refusal("1.1.0", running="1.2.0")
    assert "not newer" in refusal("1.2.0", running="1.2.0")  # the update just installed
    assert "1.2.0 rolled back" in refusal("1.2.0", failed="1.2.0")
    update.check(*signed("9.0.0"), KEY, ecdsa_sim.verify, BOARD, "1.1.0", "1.2.0")


def test_versions_compare_as_numbers():
    vt = update.version_tuple
    assert vt("1.10.0") > vt("1.9.9") and vt("2") > vt("1.99") and vt("1.2.0") > vt("1.2")
    for bad in ("", "1..2", "v1.2", "1.2.3.4.5", "1.-2", "1.2a", "123456.0", None, 12):
        assert vt(bad) is None, bad


def test_wrong_key_tampered_manifest_and_wrong_board_are_refused():
    assert "signature does not match" in refusal("1.2.0", key=bytes.fromhex(OTHER_KEY_HEX))
    assert "signature does not match" in refusal("1.2.0", sig=bytes.fromhex(SIGS["9.0.0"]))
    tampered = update.parse(line("1.2.0").replace(b'"len":1024', b'"len":1280'))
    e = raises(
        update.Refused,
        update.check,
        tampered,
        bytes.fromhex(SIGS["1.2.0"]),
        KEY,
        ecdsa_sim.verify,
        BOARD,
        "1.1.0",
    )
    assert "signature does not match" in str(e)
    assert "image is for UNIX_SIM, this is PICO_W_TINYCTRL" in refusal(
        "1.2.0", board="PICO_W_TINYCTRL"
    )
    assert "no update.key" in refusal("1.2.0", key=None)
    off_curve = KEY[:-1] + bytes([KEY[-1] ^ 1])
    assert "not a P-256 public key" in refusal("1.2.0", key=off_curve)


def test_slot_and_size_are_checked_before_the_signature():
    for text, why in (
        (line("1.2.0").replace(b'"at":40960', b'"at":0'), "linked for flash offset 0x0"),
        (line("1.2.0").replace(b'"len":1024', b'"len":1000'), "whole 256-byte pages"),
        (line("1.2.0").replace(b'"len":1024', b'"len":%d' % (update.SLOT_BYTES + 256)), "at most"),
        (line("1.2.0").replace(b'"len":1024', b'"len":0'), "whole 256-byte pages"),
    ):
        e = raises(update.Refused, update.check, update.parse(text), b"", KEY, None, BOARD, "1.0")
        assert why in str(e), (text, str(e))


def test_malformed_manifests_are_one_line_refusals():
    for text in (
        b"{",
        b"[]",
        b"{}",
        line("1.2.0").replace(b'"v":1', b'"v":2'),
        line("1.2.0").replace(b'"v":1', b'"v":1,"extra":1'),
        line("1.2.0").replace(b"785b", b"zz5b"),
        line("1.2.0").replace(b'"len":1024', b'"len":"1024"'),
        line("1.2.0").replace(b'"len":1024', b'"len":true'),
        line("1.2.0").replace(b'"UNIX_SIM"', b"7"),
        line("1.2.0").replace(b'"1.2.0"', b'"latest"'),
        line("1.2.0").replace(b'"1.2.0"', b"[1, 2]"),
        b" " * (update.MAX_MANIFEST + 1),
    ):
        e = raises(update.Refused, update.parse, text)
        assert "\n" not in str(e) and str(e), text


def test_simulator_verifier_against_rfc6979_and_bad_inputs():
    # RFC 6979 appendix A.2.5: P-256, SHA-256, message "sample"
    key = bytes.fromhex(
        "0460fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"
        "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299"
    )
    sig = bytes.fromhex(
        "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716"
        "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8"
    )
    digest = hashlib.sha256(b"sample").digest()
    assert ecdsa_sim.verify(key, digest, sig) is True
    assert ecdsa_sim.verify(key, hashlib.sha256(b"samplf").digest(), sig) is False
    assert ecdsa_sim.verify(key, digest, sig[:31] + bytes([sig[31] ^ 1]) + sig[32:]) is False
    assert ecdsa_sim.verify(key, digest, bytes(64)) is False  # r = s = 0
    n = ecdsa_sim.N.to_bytes(32, "big")
    assert ecdsa_sim.verify(key, digest, n + sig[32:]) is False  # r = n
    for bad_key in (key[1:], b"\x02" + key[1:], key[:-1] + b"\x00"):
        raises(ValueError, ecdsa_sim.verify, bad_key, digest, sig)
    raises(ValueError, ecdsa_sim.verify, key, digest[:31], sig)


def test_update_key_in_config_json():
    raw = {"wifi": {"ssid": "s"}, "mqtt": {"server": "h", "topic": "t"}, "gpio": {"relay": [16]}}
    assert config.validate(raw)["update"]["key"] == ""  # no key: no updates
    raw["update"] = {"key": KEY_HEX}
    assert config.validate(raw)["update"]["key"] == KEY_HEX
    for bad in (KEY_HEX[:-2], "05" + KEY_HEX[2:], KEY_HEX[:-1] + "g", 7, ["04"]):
        raw["update"] = {"key": bad}
        e = raises(config.ConfigError, config.validate, raw)
        assert e.problems[0].startswith("update.key: must be"), e.problems
    raw["update"] = {"key": KEY_HEX, "url": "x"}
    assert "update: unknown key 'url'" in raises(config.ConfigError, config.validate, raw).problems


def test_the_image_identity_line():
    ident = update.identity
    assert ident(b"tinyctrl-image board=PICO_W_TINYCTRL version=1.2.0") == (
        "PICO_W_TINYCTRL",
        "1.2.0",
    )
    for bad in (
        b"tinyctrl-image board=PICO_W_TINYCTRL",
        b"tinyctrl-image version=1.2.0",
        b"tinyctrl-image board=a/b version=1.2.0",
        b"tinyctrl-image board=X version=1.2.0-rc1",
        b"other-image board=X version=1.2.0",
        b"tinyctrl-image board=X version=1.2.0 " + b"x" * 120,
    ):
        assert ident(bad) is None, bad
