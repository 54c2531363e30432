# SPDX-License-Identifier: MIT
# Sealed config pushes (`tinyctrl config push`): AES-256-CTR, then HMAC-SHA256 over the header
# and the ciphertext (encrypt-then-MAC), under two keys derived from the device key in
# push.key. Opened piece by piece as the chunks arrive, so the heap holds one chunk, never the
# file. The board's cryptolib has AES in ECB mode only: CTR is built from it here, as NIST
# SP 800-38A defines it (the PC seals with the `cryptography` package's own CTR).
#
#   sealed = header line | ciphertext | tag (32 bytes)
#   header = {"len": .., "nonce": "<32 hex>", "seq": .., "to": "<name>", "topic": "..",
#             "trial_s": .., "v": 1} and "\n", in the clear: it holds no secret
import hashlib
import json

from .totp import hmac_sha256

VERSION = 1
KEY_LEN = 32
NONCE_LEN = 16
TAG_LEN = 32
BLOCK = 16
MAX_HEADER = 400
_MASK = (1 << 128) - 1  # the counter block wraps as a 128-bit number
_HEADER_KEYS = ("len", "nonce", "seq", "to", "topic", "trial_s", "v")


class SealError(Exception):
    """Why a sealed push cannot be opened; the text is safe to publish."""


def derive(device_key):
    """(encryption key, MAC key) from the 32-byte device key: one key per purpose."""
    return hmac_sha256(device_key, b"tinyctrl enc"), hmac_sha256(device_key, b"tinyctrl mac")


class Hmac:
    """HMAC-SHA256 fed in pieces (totp.hmac_sha256 takes the whole message at once)."""

    def __init__(self, key):
        key = key + bytes(64 - len(key))  # keys here are 32 bytes: at most one block
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = bytes(b ^ 0x5C for b in key)

    def update(self, data):
        self._inner.update(data)

    def digest(self):
        outer = hashlib.sha256(self._outer)
        outer.update(self._inner.digest())
        return outer.digest()


def same(a, b):
    """Constant-time comparison: how much of a tag matched must not show in the time taken."""
    if len(a) != len(b):
        return False
    diff = 0
    for x, y in zip(a, b):
        diff |= x ^ y
    return diff == 0


def xor(a, b):
    """a XOR b, equal lengths, as whole numbers: one operation instead of a byte loop."""
    n = len(a)
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(n, "big") if n else b""


class Ctr:
    """AES-CTR from an ECB encryptor `ecb(bytes of whole blocks) -> bytes`: the keystream is
    the encryption of the counter blocks, the nonce and up as a 128-bit big-endian number."""

    def __init__(self, ecb, nonce):
        self._ecb = ecb
        self._counter = int.from_bytes(nonce, "big")
        self._rest = b""  # keystream left over from the last block used

    def apply(self, data):
        n = len(data)
        stream = self._rest
        if len(stream) < n:
            blocks = (n - len(stream) + BLOCK - 1) // BLOCK
            counters = bytearray(blocks * BLOCK)
            c = self._counter
            for i in range(blocks):
                counters[i * BLOCK : (i + 1) * BLOCK] = ((c + i) & _MASK).to_bytes(BLOCK, "big")
            self._counter = (c + blocks) & _MASK
            stream = stream + self._ecb(bytes(counters))
        self._rest = stream[n:]
        return xor(data, stream[:n])


def board_ecb(key):
    """The board's (and the MicroPython unix port's) AES-256 in ECB mode."""
    import cryptolib

    return cryptolib.aes(key, 1).encrypt


def read_header(line):
    """The header dict of a header line (without its newline), checked for shape only."""
    try:
        h = json.loads(line)
    except Exception:  # MicroPython and CPython raise different types
        raise SealError("not a sealed config")
    if (
        not isinstance(h, dict)
        or len(h) != len(_HEADER_KEYS)
        or any(k not in h for k in _HEADER_KEYS)
    ):
        raise SealError("not a sealed config")
    if h["v"] != VERSION:
        raise SealError("format version %r, this device reads %d" % (h["v"], VERSION))
    for k in ("len", "seq", "trial_s"):
        if not isinstance(h[k], int) or isinstance(h[k], bool) or h[k] < 0:
            raise SealError("not a sealed config")
    n = h["nonce"]
    if (
        not isinstance(n, str)
        or len(n) != 2 * NONCE_LEN
        or not isinstance(h["to"], str)
        or not isinstance(h["topic"], str)
    ):
        raise SealError("not a sealed config")
    try:
        h["nonce"] = bytes(int(n[i : i + 2], 16) for i in range(0, len(n), 2))
    except ValueError:
        raise SealError("not a sealed config")
    return h


class Opener:
    """Opens a sealed config fed in pieces: `header_seen(data)` until it returns the header,
    then `feed(data)` returns plaintext, `finish()` checks the tag. Nothing it returns is
    trusted until finish() has passed."""

    def __init__(self, device_key, ecb=board_ecb):
        self._keys = derive(device_key)
        self._ecb = ecb
        self._head = b""
        self.header = None
        self._mac = None
        self._ctr = None
        self._left = 0  # ciphertext bytes still to come
        self._tag = b""

    def header_seen(self, data):
        """Feeds the start of the sealed text; returns (header, rest of data) once the header
        line is complete, else None."""
        self._head += data
        end = self._head.find(b"\n")
        if end < 0:
            if len(self._head) > MAX_HEADER:
                raise SealError("not a sealed config")
            return None
        line, rest = self._head[:end], self._head[end + 1 :]
        self.header = read_header(line)
        self._mac = Hmac(self._keys[1])
        self._mac.update(self._head[: end + 1])
        self._ctr = Ctr(self._ecb(self._keys[0]), self.header["nonce"])
        self._left = self.header["len"]
        self._head = b""
        return self.header, rest

    def feed(self, data):
        """Ciphertext and tag in; plaintext out."""
        body = data[: self._left]
        self._left -= len(body)
        tag = data[len(body) :]
        if len(self._tag) + len(tag) > TAG_LEN:
            raise SealError("longer than its header says")
        self._tag += tag
        if not body:
            return b""
        self._mac.update(body)
        return self._ctr.apply(body)

    def finish(self):
        if self._left or len(self._tag) != TAG_LEN:
            raise SealError("shorter than its header says")
        if not same(self._mac.digest(), self._tag):
            raise SealError("not sealed with this device's key, or damaged on the way")
        return self.header
