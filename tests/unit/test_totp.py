# SPDX-License-Identifier: MIT
# RFC 2202 (HMAC-SHA1), RFC 4231 (HMAC-SHA256), RFC 4226 (HOTP), RFC 6238 (TOTP), RFC 4648
# (Base32).
from check import hexlify, raises
from tinyctrl import totp

RFC_KEY = b"12345678901234567890"


def test_hmac_sha1_rfc2202():
    assert (
        hexlify(totp.hmac_sha1(b"\x0b" * 20, b"Hi There"))
        == "b617318655057264e28bc0b6fb378c8ef146be00"
    )
    assert (
        hexlify(totp.hmac_sha1(b"Jefe", b"what do ya want for nothing?"))
        == "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
    )
    big = b"Test Using Larger Than Block-Size Key - Hash Key First"
    assert hexlify(totp.hmac_sha1(b"\xaa" * 80, big)) == "aa4ae5e15272d00e95705637ce8a3b55ed402112"


def test_hmac_sha256_rfc4231():
    mac = totp.hmac_sha256(b"Jefe", b"what do ya want for nothing?")
    assert hexlify(mac) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_hotp_rfc4226_appendix_d():
    expected = [755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489]
    assert [totp.hotp(RFC_KEY, c, 6) for c in range(10)] == expected


def test_totp_rfc6238_sha1_vectors():
    for t, code in (
        (59, 94287082),
        (1111111109, 7081804),
        (1111111111, 14050471),
        (1234567890, 89005924),
        (2000000000, 69279037),
        (20000000000, 65353130),
    ):
        assert totp.hotp(RFC_KEY, totp.counter_at(t), 8) == code


def test_match_window_accepts_expired_codes_up_to_the_limit():
    now = 1234567890
    c = totp.counter_at(now)
    assert totp.match(RFC_KEY, totp.hotp(RFC_KEY, c), now, 5) == c
    assert totp.match(RFC_KEY, totp.hotp(RFC_KEY, c - 5), now, 5) == c - 5
    assert totp.match(RFC_KEY, totp.hotp(RFC_KEY, c + 1), now, 5) == c + 1
    assert totp.match(RFC_KEY, totp.hotp(RFC_KEY, c - 6), now, 5) == -1
    assert totp.match(RFC_KEY, totp.hotp(RFC_KEY, c + 2), now, 5) == -1


def test_python_fallback_agrees_with_the_active_implementation():
    for c in (0, 1, 37037036, 2**32 + 5):
        assert totp._hotp_py(RFC_KEY, c) == totp.hotp(RFC_KEY, c, 6)


def test_base32_rfc4648():
    assert totp.base32_decode("MZXW6YTBOI======") == b"foobar"
    assert totp.base32_decode("mzxw6===") == b"foo"
    assert totp.base32_decode("MZXW 6YTB OI") == b"foobar"
    assert "'1'" in str(raises(ValueError, totp.base32_decode, "MZXW1"))
    raises(ValueError, totp.base32_decode, "====")


def test_only_a_six_digit_int_can_match_on_either_path():
    """The C module and the Python path agree on what the parser refuses today (SECURITY.md,
    finding 2.11): floats, bools, negatives, 2**32 and more match nothing."""
    now = 1234567890
    good = totp.hotp(RFC_KEY, totp.counter_at(now))
    for code in (
        float(good),
        True,
        False,
        -good,
        2**32 + good,
        2**64 + good,
        -1,
        10**6,
        str(good),
    ):
        assert totp.match(RFC_KEY, code, now, 5) == -1, code
        assert totp._match_py(RFC_KEY, code, totp.counter_at(now), 5, 1) == -1, code
    assert totp.match(RFC_KEY, good, now, 5) == totp.counter_at(now)
