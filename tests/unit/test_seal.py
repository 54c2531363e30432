# SPDX-License-Identifier: MIT
# The device's side of sealed config pushes (tinyctrl.seal), under CPython and MicroPython:
# AES-256-CTR built from ECB against NIST's vector, the incremental HMAC against the one-shot
# one, and a config the PC sealed (the fixed vector below, made by tinyctrl_host.push with its
# `cryptography` CTR and tested to match in test_push_host.py) opened, and refused when
# damaged in any byte.
from check import raises

from tinyctrl import seal, totp

KEY = bytes(range(32))
PLAIN = b'{"wifi": {"ssid": "x"}}\n'
SEALED = bytes.fromhex(
    "7b226c656e223a32342c226e6f6e6365223a22663066316632663366346635663666376638663966616662"
    "6663666466656666222c22736571223a31372c22746f223a226761726167652d7069636f222c22746f7069"
    "63223a22686f6d652f7069636f222c22747269616c5f73223a3132302c2276223a317d0a454da65936a798"
    "b5696b8825069a623c28970d73a66f157b2c4f0b4bbcb6af6d0806617b0a1c6bda3eebf7e7baaf6f83dc46"
    "70199aee3d6b"
)


def ecb(key):
    """AES-256-ECB: the board's cryptolib, or under CPython the `cryptography` package."""
    try:
        import cryptolib
    except ImportError:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
        return enc.update
    return cryptolib.aes(key, 1).encrypt


def open_sealed(data, piece=7):
    """(header, plaintext) of `data` fed in pieces of `piece` bytes, as chunks arrive."""
    o = seal.Opener(KEY, ecb)
    out = b""
    header = None
    for i in range(0, len(data), piece):
        part = data[i : i + piece]
        if header is None:
            seen = o.header_seen(part)
            if seen is None:
                continue
            header, part = seen
        out += o.feed(part)
    return o.finish(), out


def test_ctr_from_ecb_matches_nist_sp800_38a_f_5_5():
    key = bytes.fromhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
    nonce = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
    plain = bytes.fromhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
    want = bytes.fromhex("601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5")
    ctr = seal.Ctr(ecb(key), nonce)
    got = ctr.apply(plain[:5]) + ctr.apply(plain[5:21]) + ctr.apply(plain[21:])
    assert got == want


def test_counter_wraps_as_a_128_bit_number():
    ones = b"\xff" * 16
    a = seal.Ctr(ecb(KEY), ones).apply(bytes(32))
    assert a[16:] == ecb(KEY)(bytes(16))


def test_incremental_hmac_is_hmac_sha256():
    msg = b"header line\n" + bytes(range(256)) * 3
    h = seal.Hmac(KEY)
    for i in range(0, len(msg), 100):
        h.update(msg[i : i + 100])
    assert h.digest() == totp.hmac_sha256(KEY, msg)


def test_keys_per_purpose_differ_from_the_device_key():
    enc, mac = seal.derive(KEY)
    assert len(enc) == len(mac) == 32 and enc != mac and KEY not in (enc, mac)


def test_opens_what_the_pc_sealed():
    for piece in (1, 7, 512):
        header, plain = open_sealed(SEALED, piece)
        assert plain == PLAIN
        assert (header["seq"], header["to"], header["topic"], header["trial_s"]) == (
            17,
            "garage-pico",
            "home/pico",
            120,
        )


def test_refuses_a_flipped_bit_anywhere():
    for i in range(len(SEALED)):
        bad = bytearray(SEALED)
        bad[i] ^= 0x01 << (i % 8)
        raises(seal.SealError, open_sealed, bytes(bad))


def test_refuses_another_key_a_short_or_a_long_one():
    o = seal.Opener(b"\x01" * 32, ecb)
    header, rest = o.header_seen(SEALED)
    o.feed(rest)
    e = raises(seal.SealError, o.finish)
    assert "this device's key" in str(e)
    assert "shorter" in str(raises(seal.SealError, open_sealed, SEALED[:-1]))
    assert "longer" in str(raises(seal.SealError, open_sealed, SEALED + b"x"))


def test_refuses_headers_that_are_not_sealed_configs():
    for line in (b"garbage\n", b"[]\n", b'{"v": 1}\n', b"x" * (seal.MAX_HEADER + 1)):
        raises(seal.SealError, seal.Opener(KEY, ecb).header_seen, line)
    later = SEALED.replace(b'"v":1', b'"v":2')
    assert "version 2" in str(raises(seal.SealError, seal.Opener(KEY, ecb).header_seen, later))
