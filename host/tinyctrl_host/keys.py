# SPDX-License-Identifier: MIT
"""TOTP keys for authenticator apps, signing keys for programs, and the QR codes that enrol them.
Codes come from the device's own TOTP code (tinyctrl.totp)."""

import base64
import hashlib
import json
import os
import secrets
import time
from urllib.parse import quote

import segno

from tinyctrl import totp

from . import Failure

ISSUER = "tinyctrl"


def new_totp_key():
    """160 random bits in Base32: the key length RFC 4226 section 4 recommends for HMAC-SHA1."""
    return base64.b32encode(secrets.token_bytes(20)).decode()


def new_sign_key():
    """A signing key for sign.keys: 256 random bits, URL-safe text."""
    return secrets.token_urlsafe(32)


# A QR code of version 5 with a 2-module border is 41 modules: 21 rows of half blocks, which
# show whole in an 80x24 terminal with a line above and the prompt below.
QR_BORDER = 2
QR_ROWS = 21
QR_DARK, QR_LIGHT = 16, 231  # xterm-256 black and white: a terminal's own colours vary by theme


def otpauth_uri(key, account):
    """The Key Uri Format Google Authenticator and similar apps scan. SHA-1, 6 digits and 30 s
    are the format's defaults, and the device's (totp.py): left out, the QR code is smaller."""
    label = quote("%s:%s" % (ISSUER, account), safe="")
    return "otpauth://totp/%s?secret=%s&issuer=%s" % (label, key, ISSUER)


def redacted(uri):
    return uri.split("secret=")[0] + "secret=<hidden: add --show>" + uri[uri.index("&issuer") :]


def qr_rows(uri):
    """How many terminal rows qr_terminal draws for `uri`."""
    return (segno.make(uri, error="l").symbol_size(border=QR_BORDER)[1] + 1) // 2


def qr_terminal(uri, out):
    """The QR code in Unicode upper half blocks, each in its own black and white (foreground
    the upper module, background the lower), so it reads on a dark and a light theme alike."""
    matrix = [list(row) for row in segno.make(uri, error="l").matrix_iter(border=QR_BORDER)]
    if len(matrix) % 2:
        matrix.append([0] * len(matrix[0]))  # light, as the border
    for top, bottom in zip(matrix[0::2], matrix[1::2]):
        line, last = [], None
        for colours in zip(top, bottom):
            if colours != last:
                line.append(
                    "\x1b[38;5;%d;48;5;%dm" % tuple(QR_DARK if c else QR_LIGHT for c in colours)
                )
                last = colours
            line.append("\u2580")
        out.write("".join(line) + "\x1b[0m\n")
    out.flush()


def qr_png(uri, path, write):
    """The QR code as a PNG, written through `write(path, bytes)` (the private file writer)."""
    import io

    buf = io.BytesIO()
    segno.make(uri, error="m").save(buf, kind="png", scale=8)
    write(path, buf.getvalue())


def current_code(key, at=None):
    """The TOTP code for a Base32 key now (or at unix time `at`), as the device computes it."""
    try:
        raw = totp.base32_decode(key)
    except ValueError:
        raise Failure("the key is not Base32")
    return totp.hotp(raw, totp.counter_at(time.time() if at is None else at))


def _steps_file():
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "tinyctrl", "totp-steps.json")


def _key_id(raw):
    """Names a key (decoded, as the validated config holds it) in the steps file without giving
    it away."""
    return hashlib.sha256(b"tinyctrl totp step " + raw).hexdigest()[:16]


def _sent_steps():
    try:
        with open(_steps_file()) as f:
            steps = json.load(f)
        return steps if isinstance(steps, dict) else {}
    except (OSError, ValueError):
        return {}


def last_sent_step(raw):
    """The last TOTP time step this PC sent a code of `key` for, or None. The device takes each
    code once: a second request in the same step would be refused and count toward a lockout."""
    step = _sent_steps().get(_key_id(raw))
    return step if isinstance(step, int) else None


def remember_sent_step(raw, step, write):
    """Note that a code of key `raw`'s time step `step` was sent, through `write(path, text)`; a
    note that cannot be written only costs a refusal later, so that is not an error."""
    steps = _sent_steps()
    steps[_key_id(raw)] = step
    try:
        os.makedirs(os.path.dirname(_steps_file()), mode=0o700, exist_ok=True)
        write(_steps_file(), json.dumps(steps))
    except (OSError, Failure):
        pass


def seconds_left(at=None):
    now = time.time() if at is None else at
    return totp.STEP_S - int(now) % totp.STEP_S
