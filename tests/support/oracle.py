# SPDX-License-Identifier: MIT
"""What the device must accept, computed independently of its code (modules/tinyctrl): TOTP
codes (RFC 6238) and signed requests (SECURITY.md, "Signed commands"). A test that used the
device's own functions would pass with the device's mistakes."""

import base64
import hashlib
import hmac
import struct
import time


def totp(key_base32, unix_time, step=30, digits=6):
    """The TOTP code of a Base32 key at `unix_time`."""
    key = base64.b32decode(key_base32.upper() + "=" * (-len(key_base32) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(unix_time) // step), hashlib.sha1).digest()
    off = mac[19] & 0x0F
    return (struct.unpack(">I", mac[off : off + 4])[0] & 0x7FFFFFFF) % 10**digits


def totp_now(key, offset_steps=0, at=None):
    """The TOTP code of a Base32 key now (or at `at`), `offset_steps` 30 s steps on."""
    return totp(key, int((at or time.time()) // 30 + offset_steps) * 30)


def signed(key, topic, pins, ts):
    """The request setting `pins` ({16: 1, ...}) signed with `key` for `topic` at `ts`."""
    text = "%s|%d|%s" % (topic, ts, ",".join("GP%d=%d" % (p, pins[p]) for p in sorted(pins)))
    sig = hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()
    return dict({"GP%d" % p: v for p, v in pins.items()}, TS=ts, SIG=sig)
