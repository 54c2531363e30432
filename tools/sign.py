# SPDX-License-Identifier: MIT
"""Sign a tinyctrl request, for a program (scheduler, script) that sets a pin without TOTP.

  python3 tools/sign.py --topic home/pico --key-file scheduler.key GP16=1 [GP17=0 ...]

prints the JSON to publish on the topic, e.g. {"GP16": 1, "TS": 1767225600, "SIG": "9f2c..."}:

  mosquitto_pub -t home/pico -q 1 \\
      -m "$(python3 tools/sign.py --topic home/pico --key-file k GP16=1)"

The key is the string given under sign.keys in the device's config.json. It is read from
--key-file or the TINYCTRL_SIGN_KEY environment variable, never from the command line, where
`ps` and shell history would show it. A request is valid once, within sign.window_s seconds of
its TS, and only on the device whose topic it names: sign each request just before sending it.
See SECURITY.md, "Signed commands".

Standalone on purpose (standard library only): copy it next to the program that needs it.
"""

import argparse
import hashlib
import hmac
import json
import os
import sys
import time


def canonical(topic, ts, pins, prefix="GP"):
    """The text SIG covers: topic|TS|pins sorted by number, e.g.
    "home/pico|1767225600|GP16=1,GP17=0"."""
    return "%s|%d|%s" % (
        topic,
        ts,
        ",".join("%s%d=%d" % (prefix, p, pins[p]) for p in sorted(pins)),
    )


def sign(key, topic, pins, ts=None, prefix="GP"):
    """The request for `pins` ({16: 1, ...}) as a dict ready for json.dumps.

    `key` is the sign.keys string; `ts` defaults to now (unix seconds)."""
    ts = int(time.time()) if ts is None else int(ts)
    values = {int(p): int(v) for p, v in pins.items()}
    if not values or any(v not in (0, 1) for v in values.values()):
        raise ValueError("give at least one pin, each set to 0 or 1")
    mac = hmac.new(key.encode(), canonical(topic, ts, values, prefix).encode(), hashlib.sha256)
    request = {"%s%d" % (prefix, p): values[p] for p in sorted(values)}
    request.update(TS=ts, SIG=mac.hexdigest())
    return request


def parse_pin(text, prefix):
    name, _, value = text.partition("=")
    number = name[len(prefix) :] if name.startswith(prefix) else ""
    if not number.isdigit() or value not in ("0", "1"):
        raise argparse.ArgumentTypeError(
            "expected %sNN=0 or %sNN=1, got %r" % (prefix, prefix, text)
        )
    return int(number), int(value)


def read_key(path):
    if path:
        with open(path) as f:
            return f.read().strip()
    key = os.environ.get("TINYCTRL_SIGN_KEY", "")
    if not key:
        raise SystemExit("sign.py: give --key-file FILE or set TINYCTRL_SIGN_KEY")
    return key


def main(argv):
    parser = argparse.ArgumentParser(description="Print a signed tinyctrl request as JSON.")
    parser.add_argument("pins", nargs="+", metavar="GPNN=0|1", help="pins to set")
    parser.add_argument("--topic", required=True, help="the device's mqtt.topic")
    parser.add_argument(
        "--key-file", help="file holding the sign.keys string (else $TINYCTRL_SIGN_KEY)"
    )
    parser.add_argument("--prefix", default="GP", help="the device's gpio.prefix (default GP)")
    parser.add_argument("--ts", type=int, help="unix time to sign for (default: now)")
    args = parser.parse_args(argv)
    try:
        pins = dict(parse_pin(p, args.prefix) for p in args.pins)
    except argparse.ArgumentTypeError as e:
        parser.error(str(e))
    print(json.dumps(sign(read_key(args.key_file), args.topic, pins, args.ts, args.prefix)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
