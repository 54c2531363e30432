# SPDX-License-Identifier: MIT
"""Hostile MQTT payloads for the device, generated from a seed so that a failure replays.

Each `Case` holds a payload and the error line the device must answer it with, or None where
it must stay silent (a forgery of its own output: it carries "FROM" or starts with "Error:",
"Uptime=" or "Info:"; or an empty message, which clears a retained one). No case is a valid
request, so none may move a pin. The expected lines
are the protocol's documented errors (modules/tinyctrl/protocol.py), derived here from how
each payload was built, never by running the device's parser.

Every payload has one fault only: MicroPython dicts do not keep key order, so with two bad
keys either error would be right.

    python3 tests/support/fuzz.py SEED [COUNT]     print the cases of a seed, e.g. to replay a
    failure
"""

import json
import random
import string
import sys

MAX_REQUEST = 512  # bytes the device parses; larger requests are refused by size
MAX_INBOUND = 1024  # larger payloads are drained unread by the MQTT client
MAX_MESSAGE = 64 * 1024
COMMANDS = ("stats", "getip", "refresh", "ntp")
VALID_VALUES = ("0", "1", "off", "on", "false", "true")  # string pin values the device accepts
FORGED_PREFIXES = ("Error:", "Uptime=", "Info:")
PICO_W_PINS = tuple(range(0, 23)) + (26, 27, 28)
# Text that is valid UTF-8 in any decoder, with characters the device must not echo verbatim.
TEXT = (
    string.ascii_letters
    + string.digits
    + " _-.:/#+!?()[]<>'~"
    + "\u00e9\u00df\u4e2d\u20ac\U0001f600\t"
)


class Case:
    def __init__(self, index, kind, payload, expect, exact=True):
        self.index = index
        self.kind = kind
        self.payload = payload
        self.expect = expect  # the error line, None if the device must not answer
        self.exact = exact  # False: `expect` is the line's start (the rest varies)

    def matches(self, line):
        if self.expect is None:
            return False
        return line == self.expect if self.exact else line.startswith(self.expect)

    def __repr__(self):
        shown = (
            self.payload
            if len(self.payload) <= 120
            else self.payload[:100] + b"...(%d bytes)" % len(self.payload)
        )
        return "Case(#%d %s %r -> %r%s)" % (
            self.index,
            self.kind,
            shown,
            self.expect,
            "" if self.exact else "...",
        )


def printable(text, limit=16):
    """How the device echoes client input in an error line: printable ASCII, 16 characters."""
    text = str(text)
    out = "".join(c if " " <= c <= "~" else "?" for c in text[:limit])
    return out + "..." if len(text) > limit else out


def looks_forged(payload):
    return b'"FROM"' in payload or payload.startswith(tuple(p.encode() for p in FORGED_PREFIXES))


def silent(payload):
    """The device answers no error: a forgery of its output, or an empty message."""
    return (looks_forged(payload) or not payload) and len(payload) <= MAX_REQUEST


class Generator:
    """The payload kinds, one method each, for a device with `outputs` (settable pins) and
    `contacts`. Each method returns (payload, expected line, exact)."""

    def __init__(self, rng, outputs, contacts, prefix="GP", keyname="MFA", device="garage-pico"):
        self.rng = rng
        self.outputs = sorted(outputs)
        self.contacts = sorted(contacts)
        self.prefix = prefix
        self.keyname = keyname
        self.device = device
        self.unconfigured = [p for p in range(100) if p not in outputs and p not in contacts]

    # ---- helpers

    def text(self, lo, hi, alphabet=TEXT):
        return "".join(self.rng.choice(alphabet) for _ in range(self.rng.randint(lo, hi)))

    def fitted(self, build, text):
        """(payload, text): build(text) with text cut until the payload fits MAX_REQUEST."""
        payload = build(text)
        while len(payload) > MAX_REQUEST:
            text = text[: len(text) - max(1, (len(payload) - MAX_REQUEST) // 4)]
            payload = build(text)
        return payload, text

    def output_key(self):
        return "%s%d" % (self.prefix, self.rng.choice(self.outputs))

    def good_pins(self):
        """Valid pin settings to put beside the fault: the fault must still refuse them all."""
        pins = {}
        for _ in range(self.rng.randint(0, 2)):
            pins[self.output_key()] = self.rng.choice([0, 1, True, "on", "OFF"])
        return pins

    def request(self, fault, extra=None):
        """JSON bytes of `fault` (the one bad key) plus valid pins, in random order."""
        items = list((extra if extra is not None else self.good_pins()).items())
        items = [(k, v) for k, v in items if k not in fault]
        items += list(fault.items())
        self.rng.shuffle(items)
        return dumps(dict(items))

    def bad_value(self):
        """A pin value the device must refuse: anything but 0, 1, a bool or an on/off word."""
        choice = self.rng.randrange(9)
        if choice == 0:
            return self.rng.choice([2, -1, 7, 255, 10, -2])
        if choice == 1:
            return self.rng.choice([0.5, 1.0, 0.0, -0.0, 1e-9, 2.5])
        if choice == 2:
            return None
        if choice == 3:
            return [self.rng.choice([0, 1])]
        if choice == 4:
            return {"value": 1}
        if choice == 5:
            return []
        while True:
            s = self.text(0, 8)
            if s.lower() not in VALID_VALUES:
                return s

    # ---- the kinds: each returns (payload, expect, exact)

    def invalid_json(self):
        templates = [
            lambda: "",
            lambda: " " * self.rng.randint(1, 20),
            lambda: '{"%s": 1' % self.output_key(),
            lambda: '{"%s": %d}}' % (self.output_key(), self.rng.randint(0, 1)),
            lambda: "{'%s': 1}" % self.output_key(),
            lambda: "{%s: 1}" % self.output_key(),
            lambda: '{"%s": 1}x' % self.output_key(),
            lambda: '{"%s": 1}{"%s": 0}' % (self.output_key(), self.output_key()),
            lambda: '{"%s": NaN}' % self.output_key(),
            lambda: '{"%s": Infinity}' % self.output_key(),
            lambda: '{"%s": +1}' % self.output_key(),
            lambda: '{"%s": .5}' % self.output_key(),
            lambda: '{"%s": 0x1}' % self.output_key(),
            lambda: '{"%s": True}' % self.output_key(),
            lambda: '{"%s": "on}' % self.output_key(),
            lambda: '/* on */ {"%s": 1}' % self.output_key(),
            lambda: '{"%s": 1} // on' % self.output_key(),
            lambda: self.text(1, 40, string.ascii_letters + " ,:;="),
            lambda: '{"%s": [1, {"on": ' % self.output_key(),
            lambda: "tru" if self.rng.random() < 0.5 else "nul",
        ]
        text = self.rng.choice(templates)()
        if (
            text.strip() in ("true", "false", "null")
            or text.lstrip()[:1] in ('"', "-")
            or text.strip().isdigit()
        ):
            text = "~" + text  # a letter-only template that happens to be a JSON value
        if not text:  # how a retained message is cleared: no request, and no answer
            return b"", None, True
        return (
            text.encode(),
            'Error: request is not valid JSON, e.g. {"%s16": 1}' % self.prefix,
            True,
        )

    def not_utf8(self):
        bad = self.rng.choice(
            [
                b"\xff",
                b"\xfe",
                b"\x80",
                b"\xbf",
                b"\xe2\x82",
                b"\xc3(",
                b"\xe2(\xa1",
                b"\xf0(\x8c\xbc",
                b"\xf8\x88\x80\x80\x80",
                b"\xff\xfe",
            ]
        )
        body = self.request({self.output_key(): "X"})
        at = self.rng.randrange(1, len(body))
        payload = self.rng.choice([bad + body, body[:at] + bad + body[at:], body + bad])
        return payload, "Error: request is not UTF-8 text", True

    def not_object(self):
        value = self.rng.choice(
            [
                [],
                [1],
                [{self.output_key(): 1}],
                "on",
                1,
                0,
                True,
                False,
                None,
                3.5,
                {},
                self.text(0, 30),
            ]
        )
        return (
            dumps(value),
            'Error: request must be a JSON object, e.g. {"%s16": 1}' % self.prefix,
            True,
        )

    def deep_nesting(self):
        too_deep = "Error: request is nested too deeply (max 8 levels)"
        choice = self.rng.randrange(4)
        if choice == 0:  # a nested list as a pin value
            depth = self.rng.randint(20, 240)
            return (
                ('{"%s": ' % self.output_key() + "[" * depth + "1" + "]" * depth + "}").encode(),
                too_deep,
                True,
            )
        if choice == 1:  # the whole request a nested list
            depth = self.rng.randint(20, 250)
            return ("[" * depth + "]" * depth).encode(), too_deep, True
        if choice == 2:  # nested objects
            opener = '{"%s": ' % self.rng.choice(["a", "x", "GPIO", "data", "set"])
            depth = self.rng.randint(10, (MAX_REQUEST - 1) // (len(opener) + 1))
            return (opener * depth + "1" + "}" * depth).encode(), too_deep, True
        opener = self.rng.choice(["[", '{"a": ['])  # never closed, 10 levels or more
        return (opener * self.rng.randint(10, MAX_REQUEST // len(opener))).encode(), too_deep, True

    def huge_number(self):
        digits = "".join(self.rng.choice(string.digits) for _ in range(self.rng.randint(20, 400)))
        number = self.rng.choice(
            [
                "1" + digits,
                "-" + "9" + digits,
                "1e308",
                "1e999",
                "-1e999",
                "4.9e-324",
                "1.0e" + str(self.rng.randint(20, 400)),
                "0." + "0" * self.rng.randint(10, 300) + "1",
            ]
        )
        choice = self.rng.randrange(3)
        if choice == 0:
            key = self.output_key()
            body = '{"%s": %s}' % (key, number)
            return body.encode(), "Error: %s value must be 0 or 1" % key, True
        if choice == 1:
            return (
                ('{"%s": %s}' % (self.keyname, number)).encode(),
                "Error: MFA code must be 6 digits",
                True,
            )
        return (
            ('{"TS": %s, "SIG": "%s"}' % (number, "0" * 64)).encode(),
            "Error: TS must be a unix time",
            True,
        )

    def huge_string(self):
        choice = self.rng.randrange(4)
        if choice == 0:
            key = self.output_key()
            payload, _ = self.fitted(lambda s: dumps({key: s}), self.text(100, 500))
            return payload, "Error: %s value must be 0 or 1" % key, True
        if choice == 1:
            payload, s = self.fitted(lambda s: dumps({"CMD": s}), self.text(100, 500))
            return (
                payload,
                "Error: unknown command '%s' (%s)" % (printable(s), ", ".join(COMMANDS)),
                True,
            )
        if choice == 2:
            payload, key = self.fitted(lambda s: dumps({s: 1}), self.unknown_key_name(100, 500))
            return payload, "Error: unknown key '%s'" % printable(key), True
        s = self.text(65, 440, "0123456789abcdef")
        return dumps({"SIG": s, "TS": 1700000000}), "Error: SIG must be 64 hex digits", True

    def wrong_type(self):
        choice = self.rng.randrange(5)
        if choice == 0:
            key = self.output_key()
            return (
                self.request({key: self.bad_value()}),
                "Error: %s value must be 0 or 1" % key,
                True,
            )
        if choice == 1:
            v = self.rng.choice([1, 0, None, True, [], {}, ["stats"], 2.5])
            shown = "None" if v is None else str(v)
            exact = isinstance(v, (int, type(None)))  # str() of floats and containers differs
            return (
                dumps({"CMD": v}),
                "Error: unknown command '%s'" % printable(shown)
                + (" (%s)" % ", ".join(COMMANDS) if exact else ""),
                exact,
            )
        if choice == 2:
            v = self.rng.choice(
                [
                    "12345",
                    "1234567",
                    "12a456",
                    " 12345",
                    "",
                    1234567,
                    -1,
                    12.5,
                    True,
                    None,
                    [123456],
                    "１２３４５６",
                ]
            )
            return self.request({self.keyname: v}), "Error: MFA code must be 6 digits", True
        if choice == 3:
            v = self.rng.choice([0, -5, 2**32, 1.5e9, "1700000000", True, None, [1700000000]])
            return (
                dumps({"TS": v, "SIG": "0" * 64, self.output_key(): 1}),
                "Error: TS must be a unix time",
                True,
            )
        v = self.rng.choice([5, None, True, "abc", "0" * 63, "0" * 65, ["0" * 64]])
        return (
            dumps({"SIG": v, "TS": 1700000000, self.output_key(): 1}),
            "Error: SIG must be 64 hex digits",
            True,
        )

    def unknown_pin(self):
        choice = self.rng.randrange(3)
        if choice == 0:
            p = self.rng.choice(self.unconfigured)
            key = self.rng.choice(["%s%d", "%s%02d"]) % (self.prefix, p)
            return self.request({key: 1}), "Error: %s is not configured" % key, True
        if choice == 1:
            p = self.rng.choice(self.contacts)
            key = self.rng.choice(["%s%d", "%s%02d"]) % (self.prefix, p)
            return (
                self.request({key: self.rng.choice([0, 1])}),
                "Error: %s is a contact switch and cannot be set" % key,
                True,
            )
        key = self.rng.choice(
            [
                "%s%03d" % (self.prefix, self.rng.choice(self.outputs)),
                "%s%d" % (self.prefix, self.rng.randint(100, 99999)),
                "%s-1" % self.prefix,
                self.prefix,
                "%s%da" % (self.prefix, self.rng.choice(self.outputs)),
                "%s%d" % (self.prefix.lower(), self.rng.choice(self.outputs)),
                " %s%d" % (self.prefix, self.rng.choice(self.outputs)),
                "%s %d" % (self.prefix, self.rng.choice(self.outputs)),
                "%s\u0661\u0666" % self.prefix,
            ]
        )
        return self.request({key: 1}), "Error: unknown key '%s'" % printable(key), True

    def unknown_key_name(self, lo, hi):
        reserved = ("CMD", "TS", "SIG", self.keyname, "FROM")
        while True:
            key = self.text(lo, hi)
            digits = key[len(self.prefix) :]
            if key not in reserved and not (key.startswith(self.prefix) and digits.isdigit()):
                return key

    def unknown_key(self):
        key = self.unknown_key_name(0, 24)
        return (
            self.request({key: self.rng.choice([1, 0, "on", None])}),
            "Error: unknown key '%s'" % printable(key),
            True,
        )

    def unknown_command(self):
        while True:
            cmd = self.rng.choice(
                [
                    "reboot",
                    "reset",
                    "format",
                    "STATS ",
                    "stat",
                    "get ip",
                    "",
                    "shell",
                    self.text(1, 20),
                ]
            )
            if cmd.lower() not in COMMANDS:
                break
        return (
            dumps({"CMD": cmd}),
            "Error: unknown command '%s' (%s)" % (printable(cmd), ", ".join(COMMANDS)),
            True,
        )

    def command_not_alone(self):
        cmd = self.rng.choice(COMMANDS)
        other = self.rng.choice(
            [{self.output_key(): 1}, {self.keyname: 123456}, {"TS": 1700000000, "SIG": "0" * 64}]
        )
        return self.request(dict(other, CMD=cmd), extra={}), "Error: send CMD on its own", True

    def half_signed(self):
        choice = self.rng.randrange(3)
        if choice == 0:
            return (
                dumps({self.output_key(): 1, "TS": 1700000000}),
                "Error: a signed request needs both TS and SIG",
                True,
            )
        if choice == 1:
            return (
                dumps({self.output_key(): 0, "SIG": "ab" * 32}),
                "Error: a signed request needs both TS and SIG",
                True,
            )
        return (
            dumps({"TS": 1700000000, "SIG": "0" * 64}),
            "Error: a signed request must set a pin",
            True,
        )

    def wrong_code(self):
        # No pin is MFA-protected in the test config: any code is refused (then locked out).
        code = self.rng.choice([self.rng.randint(0, 999999), "%06d" % self.rng.randint(0, 999999)])
        return (
            dumps({self.keyname: code}),
            "Error: MFA validation failed, GPIO cannot be set",
            False,
        )

    def too_large(self, lo=MAX_REQUEST + 1, hi=MAX_INBOUND):
        size = self.rng.randint(lo, hi)
        choice = self.rng.randrange(3)
        if choice == 0:  # a valid request, padded
            head = '{"%s": 1, "pad": "' % self.output_key()
            payload = (head + "x" * max(0, size - len(head) - 2) + '"}').encode()
        elif choice == 1:  # noise, not even UTF-8
            payload = bytes(self.rng.getrandbits(8) for _ in range(size))
        else:  # a forgery of the device's own output, padded: size is checked first
            head = '{"%s": 1, "FROM": "%s", "pad": "' % (self.output_key(), self.device)
            payload = (head + "y" * max(0, size - len(head) - 2) + '"}').encode()
        return (
            payload,
            "Error: request too large (%d bytes, max %d)" % (len(payload), MAX_REQUEST),
            True,
        )

    def huge_message(self):
        lo = MAX_MESSAGE if self.rng.random() < 0.5 else MAX_INBOUND + 1
        return self.too_large(lo, MAX_MESSAGE)

    def forged(self):
        choice = self.rng.randrange(6)
        junk = self.text(1, 40)
        if choice == 0:
            states = dict(
                ("%s%d" % (self.prefix, p), self.rng.choice([0, 1]))
                for p in self.rng.sample(self.outputs, 2)
            )
            states["FROM"] = self.rng.choice([self.device, "someone", ""])
            payload = dumps(states)
        elif choice == 1:
            payload = dumps({"NOTIFY": {self.output_key(): 1}, "FROM": self.device})
        elif choice == 2:
            payload = dumps({self.output_key(): 1, "note": "FROM"})  # the mark anywhere will do
        elif choice == 3:
            payload = dumps({"STATUS": "offline", "FROM": self.device}) + junk.encode()
        else:
            # Random words after the prefix: never equal to a line the device itself sends.
            prefix = self.rng.choice(FORGED_PREFIXES)
            tail = self.rng.choice([' {"%s": 1}' % self.output_key(), " " + junk, ""])
            payload = (prefix + " forged %08x" % self.rng.getrandbits(32) + tail).encode()
            if self.rng.random() < 0.2:
                payload += b"\xff\xfe"
        return payload, None, True


# kind -> relative weight. huge_message is rare: a 64 KB drain takes the device a while.
KINDS = {
    "invalid_json": 10,
    "not_utf8": 8,
    "not_object": 6,
    "deep_nesting": 6,
    "huge_number": 6,
    "huge_string": 6,
    "wrong_type": 10,
    "unknown_pin": 8,
    "unknown_key": 5,
    "unknown_command": 5,
    "command_not_alone": 3,
    "half_signed": 3,
    "wrong_code": 3,
    "too_large": 4,
    "huge_message": 0.5,
    "forged": 10,
}


def dumps(value):
    return json.dumps(value, ensure_ascii=False).encode()


def generate(seed, count, outputs, contacts, **device):
    """`count` cases from `seed`; the same arguments always give the same cases."""
    rng = random.Random(seed)
    gen = Generator(rng, outputs, contacts, **device)
    kinds, weights = zip(*KINDS.items())
    cases = []
    for i in range(count):
        kind = rng.choices(kinds, weights)[0]
        payload, expect, exact = getattr(gen, kind)()
        if silent(payload) != (expect is None):
            raise AssertionError(
                "generator bug: %s case %r is %ssilent"
                % (kind, payload[:80], "" if expect else "not ")
            )
        if (
            expect is not None
            and not expect.startswith("Error: request too large")
            and len(payload) > MAX_REQUEST
        ):
            raise AssertionError("generator bug: %s case is %d bytes" % (kind, len(payload)))
        cases.append(Case(i, kind, payload, expect, exact))
    return cases


def one_of_each(seed, outputs, contacts, **device):
    """One case of every kind, in KINDS order: a short sample whose every answer can be seen."""
    rng = random.Random(seed)
    gen = Generator(rng, outputs, contacts, **device)
    return [Case(i, kind, *getattr(gen, kind)()) for i, kind in enumerate(KINDS)]


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    seed, count = int(argv[0]), int(argv[1]) if len(argv) > 1 else 20
    # The pins of tests/support/simharness.py's base_config.
    for case in generate(seed, count, outputs=(16, 17, 18, 19, 26, 27), contacts=(0, 1, 2, 3)):
        print(case)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
