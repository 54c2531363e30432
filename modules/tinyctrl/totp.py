# SPDX-License-Identifier: MIT
# RFC 4226 HOTP / RFC 6238 TOTP (SHA-1) with Base32 keys.
# The firmware's C module `_tinyctrl` does the hashing in microseconds; the
# pure-Python path serves the unix port and is checked against the same vectors.
import hashlib

try:
    import _tinyctrl
except ImportError:
    _tinyctrl = None

STEP_S = 30
DIGITS = 6
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def base32_decode(text):
    """Decode RFC 4648 Base32 (case-insensitive, spaces and '=' padding ignored).

    Raises ValueError naming the first bad character."""
    bits = 0
    nbits = 0
    out = bytearray()
    for ch in text.upper():
        if ch in " =-":
            continue
        v = _B32.find(ch)
        if v < 0:
            raise ValueError("not Base32: %r" % ch)
        bits = (bits << 5) | v
        nbits += 5
        if nbits >= 8:
            nbits -= 8
            out.append((bits >> nbits) & 0xFF)
            bits &= (1 << nbits) - 1
    if not out:
        raise ValueError("empty key")
    return bytes(out)


def _hmac(hashfn, block, key, msg):
    if len(key) > block:
        key = hashfn(key).digest()
    key = key + b"\x00" * (block - len(key))
    inner = hashfn(bytes(b ^ 0x36 for b in key))
    inner.update(msg)
    outer = hashfn(bytes(b ^ 0x5C for b in key))
    outer.update(inner.digest())
    return outer.digest()


def _hmac_sha1_py(key, msg):
    return _hmac(hashlib.sha1, 64, key, msg)


def hmac_sha256(key, msg):
    return _hmac(hashlib.sha256, 64, key, msg)


def _hotp_py(key, counter, digits=DIGITS):
    mac = _hmac_sha1_py(key, counter.to_bytes(8, "big"))
    off = mac[19] & 0x0F
    code = ((mac[off] & 0x7F) << 24) | (mac[off + 1] << 16) | (mac[off + 2] << 8) | mac[off + 3]
    return code % (10**digits)


def _match_py(key, code, counter, back, forward):
    # As the C module: only an int code of 0..10**DIGITS-1 can match.
    if not is_code(code):
        return -1
    for c in range(counter - back, counter + forward + 1):
        if c >= 0 and _hotp_py(key, c) == code:
            return c
    return -1


if _tinyctrl:
    hmac_sha1 = _tinyctrl.hmac_sha1
    hotp = _tinyctrl.hotp
    _match = _tinyctrl.totp_match
else:
    hmac_sha1 = _hmac_sha1_py
    hotp = _hotp_py
    _match = _match_py


def is_code(code):
    """True for what a code can be: an int (not a bool) of DIGITS digits. Floats, bools,
    negatives and 2**32 and more match nothing on both paths, whatever a parser lets through."""
    return isinstance(code, int) and not isinstance(code, bool) and 0 <= code < 10**DIGITS


def counter_at(unix_time):
    return int(unix_time) // STEP_S


FUTURE_CODES = 1  # a phone's clock may be ahead of the device's by up to a step


def match(key, code, unix_time, max_expired_codes):
    """The time-step counter at which `code` is valid for `key`, or -1.

    Accepts the current code, `max_expired_codes` earlier ones (clock drift
    between phone and device, as in the seed) and one future code."""
    if not is_code(code):
        return -1
    return _match(key, code, counter_at(unix_time), max_expired_codes, FUTURE_CODES)
