# SPDX-License-Identifier: MIT
# The MQTT payloads: requests in, responses out (the seed's Actions A-O), no I/O.
#
# Everything the device publishes is marked so it never acts on its own messages:
# JSON responses carry "FROM": <device name> (config "name"; never the MQTT client id, which
# would let anyone with broker credentials take the device's place), text lines start with
# one of TEXT_PREFIXES.
# Anything carrying those marks is ignored as a request, so a forged "response" moves no pin.
try:
    import json

    from _tinyctrl import json_check  # the board's C check (ports/rp2/cmodule/json_check.c)
except ImportError:
    json_check = None

MAX_REQUEST = 512  # bytes; real requests are tens of bytes
COMMANDS = ("stats", "getip", "refresh", "ntp")
TEXT_PREFIXES = (b"Error:", b"Uptime=", b"Info:")
MARK = b'"FROM"'
_VALUES = {"0": 0, "1": 1, "off": 0, "on": 1, "false": 0, "true": 1}


class RequestError(Exception):
    """The message is the error line published back to the topic."""


class Request:
    def __init__(self):
        self.pins = {}  # pin -> 0/1
        self.cmd = None
        self.code = None  # TOTP code given with the request
        self.ts = None  # signed command time stamp
        self.sig = None


_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
MAX_DEPTH = 8


class TooDeep(ValueError):
    pass


class _Reader:
    """A strict JSON reader (RFC 8259) for requests. MicroPython's json.loads accepts
    malformed text such as {"GP16" 1}; a malformed request must never move a pin."""

    def __init__(self, text, code_key=None):
        self.s = text
        self.i = 0
        self.code_key = code_key

    def fail(self):
        raise ValueError("invalid JSON at %d" % self.i)

    def ws(self):
        s, i = self.s, self.i
        while i < len(s) and s[i] in " \t\r\n":
            i += 1
        self.i = i

    def take(self, ch):
        self.ws()
        if self.s[self.i : self.i + 1] != ch:
            self.fail()
        self.i += 1

    def value(self, depth, code=False):
        self.ws()
        c = self.s[self.i : self.i + 1]
        if c == "{" or c == "[":
            if depth >= MAX_DEPTH:
                raise TooDeep()
            return self.container(c, depth + 1)
        if c == '"':
            return self.string()
        for word, v in (("true", True), ("false", False), ("null", None)):
            if self.s.startswith(word, self.i):
                self.i += len(word)
                return v
        return self.number(code)

    def container(self, c, depth):
        self.i += 1
        close = "}" if c == "{" else "]"
        out = {} if c == "{" else []
        self.ws()
        if self.s[self.i : self.i + 1] == close:
            self.i += 1
            return out
        while True:
            if c == "{":
                self.ws()
                if self.s[self.i : self.i + 1] != '"':
                    self.fail()
                start = self.i + 1
                key = self.string()
                # IoT MQTT Panel's text input sends {"MFA": 012345} for a code with a leading
                # zero: allowed there, and only there (the name as written, no escapes).
                code = depth == 1 and self.s[start : self.i - 1] == self.code_key
                self.take(":")
                out[key] = self.value(depth, code)
            else:
                out.append(self.value(depth))
            self.ws()
            nxt = self.s[self.i : self.i + 1]
            self.i += 1
            if nxt == close:
                return out
            if nxt != ",":
                self.fail()

    def string(self):
        s = self.s
        i = self.i + 1
        out = []
        while i < len(s):
            c = s[i]
            if c == '"':
                self.i = i + 1
                return "".join(out)
            if c == "\\":
                e = s[i + 1 : i + 2]
                if e == "u":
                    h = s[i + 2 : i + 6]
                    if len(h) != 4 or any(x not in "0123456789abcdefABCDEF" for x in h):
                        break
                    out.append(chr(int(h, 16)))
                    i += 6
                    continue
                if e not in _ESCAPES:
                    break
                out.append(_ESCAPES[e])
                i += 2
                continue
            if c < " ":
                break
            out.append(c)
            i += 1
        self.i = i
        self.fail()

    def digits(self, i):
        """The index after the digits starting at `i`; there must be at least one."""
        s, first = self.s, i
        while i < len(s) and "0" <= s[i] <= "9":
            i += 1
        if i == first:
            self.i = i
            self.fail()
        return i

    def number(self, code=False):
        """A number; with `code`, digits with leading zeros are returned as their text."""
        s, start = self.s, self.i
        first = start + (s[start : start + 1] == "-")
        i = self.digits(first)
        if s[first] == "0" and i - first > 1:  # no leading zeros
            if code and first == start and s[i : i + 1] not in (".", "e", "E"):
                self.i = i
                return s[start:i]
            self.i = i
            self.fail()
        is_float = False
        if s[i : i + 1] == ".":
            i = self.digits(i + 1)
            is_float = True
        if s[i : i + 1] in ("e", "E"):
            i += 1
            if s[i : i + 1] in ("+", "-"):
                i += 1
            i = self.digits(i)
            is_float = True
        self.i = i
        return float(s[start:i]) if is_float else int(s[start:i])


def strict_json(text, code_key=None):
    """Parse one JSON value, nesting at most MAX_DEPTH deep; ValueError if malformed.
    A top-level `code_key` may hold a number with leading zeros (returned as text).

    On the board, _tinyctrl.json_check makes the same check in C and json.loads parses:
    the reader above takes milliseconds there, stepping through the text in bytecode."""
    if json_check:
        status, at, code = json_check(text, code_key, MAX_DEPTH)
        if status == 2:
            raise TooDeep()
        if status:
            raise ValueError("invalid JSON at %d" % at)
        v = json.loads(text)
        if code is not None:
            v[code_key] = code
        return v
    r = _Reader(text, code_key)
    v = r.value(0)
    r.ws()
    if r.i != len(text):
        r.fail()
    return v


def is_device_output(payload):
    return MARK in payload or any(payload.startswith(p) for p in TEXT_PREFIXES)


def read_output(payload, prefix):
    """What a device's message says, the inverse of the formatters below: (kind, value,
    sender) with kind "state" or "notify" ({pin: 0/1}), "status" or "ip" (text), or
    (kind "text") an Error:/Info:/Uptime= line with sender None. None if it is no device
    output or not well formed."""
    if isinstance(payload, str):
        payload = payload.encode()
    if any(payload.startswith(p) for p in TEXT_PREFIXES):
        try:
            return ("text", payload.decode(), None)
        except UnicodeError:
            return None
    if MARK not in payload:
        return None
    try:
        obj = strict_json(payload.decode())
    except (ValueError, UnicodeError):
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("FROM"), str):
        return None
    sender = obj.pop("FROM")
    for kind, key in (("notify", "NOTIFY"), ("status", "STATUS"), ("ip", "IP")):
        if key in obj:
            v = obj[key]
            if kind == "notify":
                v = _pin_values(v, prefix)
            elif not isinstance(v, str):
                v = None
            return None if v is None else (kind, v, sender)
    v = _pin_values(obj, prefix)
    return None if v is None else ("state", v, sender)


def _pin_values(obj, prefix):
    """{"GP16": 1, ...} as {16: 1, ...}; None if anything else is in it."""
    if not isinstance(obj, dict):
        return None
    out = {}
    for key, v in obj.items():
        digits = key[len(prefix) :]
        if (
            not key.startswith(prefix)
            or not digits.isdigit()
            or isinstance(v, bool)
            or not isinstance(v, int)
            or v not in (0, 1)
        ):
            return None
        out[int(digits)] = v
    return out


def printable(text, limit=16):
    """A short, safe echo of client input for an error line."""
    out = "".join(c if " " <= c <= "~" else "?" for c in str(text)[:limit])
    return out + "..." if len(str(text)) > limit else out


def _value(name, v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int) and v in (0, 1):
        return v
    if isinstance(v, str) and v.lower() in _VALUES:
        return _VALUES[v.lower()]
    raise RequestError("Error: %s value must be 0 or 1" % name)


def _code(v):
    if isinstance(v, str) and len(v) == 6 and v.isdigit():
        return int(v)
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 999999:
        return v
    raise RequestError("Error: MFA code must be 6 digits")


def parse(payload, prefix, keyname, relays, contacts):
    """Parse one message. Returns a Request, or None for device output (the device's own, or
    a forgery of it) and for an empty message.

    `relays` are settable pins (relays and momentaries), `contacts` read-only ones. Raises
    RequestError."""
    if len(payload) > MAX_REQUEST:
        raise RequestError(
            "Error: request too large (%d bytes, max %d)" % (len(payload), MAX_REQUEST)
        )
    if not payload or is_device_output(payload):  # empty: a retained message cleared
        return None
    try:
        text = payload.decode()
    except Exception:
        raise RequestError("Error: request is not UTF-8 text")
    try:
        obj = strict_json(text, keyname)
    except TooDeep:
        raise RequestError("Error: request is nested too deeply (max %d levels)" % MAX_DEPTH)
    except ValueError:
        raise RequestError('Error: request is not valid JSON, e.g. {"%s16": 1}' % prefix)
    if not isinstance(obj, dict) or not obj:
        raise RequestError('Error: request must be a JSON object, e.g. {"%s16": 1}' % prefix)
    req = Request()
    for key, v in obj.items():
        if key == "CMD":
            if not isinstance(v, str) or v.lower() not in COMMANDS:
                raise RequestError(
                    "Error: unknown command '%s' (%s)" % (printable(v), ", ".join(COMMANDS))
                )
            req.cmd = v.lower()
        elif key == keyname:
            req.code = _code(v)
        elif key == "TS":
            if isinstance(v, bool) or not isinstance(v, int) or not 0 < v < 2**32:
                raise RequestError("Error: TS must be a unix time")
            req.ts = v
        elif key == "SIG":
            if not isinstance(v, str) or len(v) != 64:
                raise RequestError("Error: SIG must be 64 hex digits")
            req.sig = v.lower()
        elif (
            key.startswith(prefix) and key[len(prefix) :].isdigit() and len(key) <= len(prefix) + 2
        ):
            pin = int(key[len(prefix) :])
            if pin in relays:
                req.pins[pin] = _value(key, v)
            elif pin in contacts:
                raise RequestError("Error: %s is a contact switch and cannot be set" % key)
            else:
                raise RequestError("Error: %s is not configured" % key)
        else:
            raise RequestError("Error: unknown key '%s'" % printable(key))
    if req.cmd and (req.pins or req.code is not None or req.ts is not None):
        raise RequestError("Error: send CMD on its own")
    if (req.ts is None) != (req.sig is None):
        raise RequestError("Error: a signed request needs both TS and SIG")
    if req.ts is not None and not req.pins:
        raise RequestError("Error: a signed request must set a pin")
    return req


def canonical(topic, ts, pins, prefix):
    """The text a signed request's SIG covers: topic, time stamp, pins in order."""
    return "%s|%d|%s" % (
        topic,
        ts,
        ",".join("%s%d=%d" % (prefix, p, pins[p]) for p in sorted(pins)),
    )


def _pairs(prefix, states):
    return ", ".join('"%s%d": %d' % (prefix, p, states[p]) for p in sorted(states))


def state_json(prefix, states, device):
    return '{%s, "FROM": "%s"}' % (_pairs(prefix, states), device)


def notify_json(prefix, states, device):
    return '{"NOTIFY": {%s}, "FROM": "%s"}' % (_pairs(prefix, states), device)


def ip_json(ip, device):
    return '{"IP": "%s", "FROM": "%s"}' % (ip, device)


def status_json(status, device):
    return '{"STATUS": "%s", "FROM": "%s"}' % (status, device)
