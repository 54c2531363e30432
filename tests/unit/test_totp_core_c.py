# SPDX-License-Identifier: MIT
"""The portable C core of the firmware's `_tinyctrl` module, built with the host's cc.

Checks RFC 2202 (HMAC-SHA1), RFC 4226 appendix D (HOTP) and RFC 6238 (TOTP,
SHA-1) vectors, and the totp_match window."""

import ctypes
import hashlib
import hmac
import os
import shutil
import subprocess
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "ports" / "rp2" / "cmodule"
CC = shutil.which(os.environ.get("CC", "cc"))

pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler")


@pytest.fixture(scope="module")
def core(tmp_path_factory):
    lib = tmp_path_factory.mktemp("totp_core") / "libtotp_core.so"
    subprocess.run(
        [
            CC,
            "-std=c99",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-shared",
            "-fPIC",
            "-o",
            str(lib),
            str(CORE / "totp_core.c"),
        ],
        check=True,
    )
    so = ctypes.CDLL(str(lib))
    so.totp_hmac_sha1.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_char_p,
    ]
    so.totp_hmac_sha1.restype = None
    so.totp_hotp.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64, ctypes.c_uint]
    so.totp_hotp.restype = ctypes.c_uint32
    so.totp_match.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint32,
        ctypes.c_uint64,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_uint,
    ]
    so.totp_match.restype = ctypes.c_int64
    return so


def hmac_sha1(core, key, msg):
    out = ctypes.create_string_buffer(20)
    core.totp_hmac_sha1(key, len(key), msg, len(msg), out)
    return out.raw


def hotp(core, key, counter, digits=6):
    return core.totp_hotp(key, len(key), counter, digits)


def totp_match(core, key, code, counter, back, forward, digits=6):
    return core.totp_match(key, len(key), code, counter, back, forward, digits)


RFC2202 = [
    (b"\x0b" * 20, b"Hi There", "b617318655057264e28bc0b6fb378c8ef146be00"),
    (b"Jefe", b"what do ya want for nothing?", "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
    (b"\xaa" * 20, b"\xdd" * 50, "125d7342b9ac11cd91a39af48aa17b4f63f175d3"),
    (bytes(range(1, 26)), b"\xcd" * 50, "4c9007f4026250c6bc8414f9bf50c86c2d7235da"),
    (b"\x0c" * 20, b"Test With Truncation", "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04"),
    (
        b"\xaa" * 80,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "aa4ae5e15272d00e95705637ce8a3b55ed402112",
    ),
    (
        b"\xaa" * 80,
        b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data",
        "e8e99d0f45237d786d6bbaa7965c7808bbff1a91",
    ),
]


@pytest.mark.parametrize("key, msg, mac", RFC2202)
def test_hmac_sha1_rfc2202(core, key, msg, mac):
    assert hmac_sha1(core, key, msg).hex() == mac


def test_hmac_sha1_message_lengths_around_the_block_boundary(core):
    for n in (0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000):
        msg = bytes(i & 0xFF for i in range(n))
        assert hmac_sha1(core, b"key", msg) == hmac.new(b"key", msg, hashlib.sha1).digest()


RFC4226_SECRET = b"12345678901234567890"
RFC4226_HOTP = [755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489]


@pytest.mark.parametrize("counter, code", enumerate(RFC4226_HOTP))
def test_hotp_rfc4226_appendix_d(core, counter, code):
    assert hotp(core, RFC4226_SECRET, counter) == code


@pytest.mark.parametrize(
    "unix_time, code",
    [
        (59, 94287082),
        (1111111109, 7081804),
        (1111111111, 14050471),
        (1234567890, 89005924),
        (2000000000, 69279037),
        (20000000000, 65353130),
    ],
)
def test_totp_rfc6238_sha1(core, unix_time, code):
    assert hotp(core, RFC4226_SECRET, unix_time // 30, 8) == code


def test_totp_match_window(core):
    key = RFC4226_SECRET
    now = 5
    for counter in range(3, 7):  # back=2, forward=1
        assert totp_match(core, key, hotp(core, key, counter), now, 2, 1) == counter
    assert totp_match(core, key, hotp(core, key, 2), now, 2, 1) == -1  # too old
    assert totp_match(core, key, hotp(core, key, 7), now, 2, 1) == -1  # too far ahead
    assert totp_match(core, key, hotp(core, key, now), now, 0, 0) == now
    assert totp_match(core, key, 1000000, now, 2, 1) == -1  # not a 6-digit code


def test_totp_match_does_not_go_below_zero(core):
    key = RFC4226_SECRET
    assert totp_match(core, key, RFC4226_HOTP[0], 1, 5, 0) == 0
    assert totp_match(core, key, RFC4226_HOTP[9], 1, 5, 0) == -1


def test_totp_match_returns_the_oldest_match(core):
    # 1-digit codes collide often: expect the earliest counter in the window.
    key = RFC4226_SECRET
    codes = [hotp(core, key, c, 1) for c in range(10)]
    digit = codes[4]
    first = codes.index(digit)
    assert totp_match(core, key, digit, 4, 4, 0, 1) == first


def test_totp_match_8_digits(core):
    assert totp_match(core, RFC4226_SECRET, 65353130, 20000000000 // 30 + 1, 1, 0, 8) == 666666666
