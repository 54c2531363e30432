# SPDX-License-Identifier: MIT
import json
import sys

from check import raises
from tinyctrl import protocol

OUT = {16: 0, 17: 0, 18: 0}
CONTACTS = {0: 0, 1: 0}


def parse(payload):
    return protocol.parse(payload, "GP", "MFA", OUT, CONTACTS)


def error(payload):
    return str(raises(protocol.RequestError, parse, payload))


def test_seed_requests():
    assert parse(b'{"GP16":1}').pins == {16: 1}
    assert parse(b'{"GP16": 0, "GP17": 1}').pins == {16: 0, 17: 1}
    assert parse(b'{"CMD":"stats"}').cmd == "stats"
    assert parse(b'{"CMD":"REFRESH"}').cmd == "refresh"
    assert parse(b'{"MFA": 123456}').code == 123456
    assert parse(b'{"MFA": "012345", "GP18": 1}').code == 12345


def test_values_iot_mqtt_panel_may_send():
    for raw, v in (("1", 1), ("0", 0), ("true", 1), ('"ON"', 1), ('"off"', 0), ('"1"', 1)):
        assert parse(('{"GP16": %s}' % raw).encode()).pins == {16: v}


def test_device_output_is_never_a_request():
    assert parse(b'{"GP16": 1, "FROM": "pico"}') is None
    assert parse(b'{"NOTIFY": {"GP1": 1}, "FROM": "pico"}') is None
    assert parse(b"Error: MFA validation failed, GPIO cannot be set") is None
    assert parse(b"Uptime=1 days 5 hrs, Outages=0") is None
    assert parse(b"Info: MFA code accepted") is None


def test_errors_say_what_is_wrong():
    assert error(b"hello").startswith("Error: request is not valid JSON")
    assert error(b"[1]").startswith("Error: request must be a JSON object")
    assert error(b"{}").startswith("Error: request must be a JSON object")
    assert error(b'{"GP16": 2}') == "Error: GP16 value must be 0 or 1"
    assert error(b'{"GP16": [1]}') == "Error: GP16 value must be 0 or 1"
    assert error(b'{"GP5": 1}') == "Error: GP5 is not configured"
    assert error(b'{"GP1": 1}') == "Error: GP1 is a contact switch and cannot be set"
    assert (
        error(b'{"CMD": "format"}')
        == "Error: unknown command 'format' (stats, getip, refresh, ntp)"
    )
    assert error(b'{"CMD": "stats", "GP16": 1}') == "Error: send CMD on its own"
    assert error(b'{"MFA": 1234567}') == "Error: MFA code must be 6 digits"
    assert error(b'{"MFA": "12a456"}') == "Error: MFA code must be 6 digits"
    assert error(b'{"GP16": 1, "TS": 5}') == "Error: a signed request needs both TS and SIG"
    assert error(b"\xff\xfe") == "Error: request is not UTF-8 text"


def test_echoed_input_is_short_and_printable():
    e = error(('{"\\u0007%s": 1}' % ("x" * 100)).encode())
    assert e == "Error: unknown key '?xxxxxxxxxxxxxxx...'"


def test_size_limit_comes_before_parsing():
    big = b'{"GP16": 1, "x": "' + b"a" * 600 + b'"}'
    assert error(big) == "Error: request too large (%d bytes, max 512)" % len(big)
    deep = b"[" * 200 + b"]" * 200
    assert error(deep) == "Error: request is nested too deeply (max 8 levels)"


def test_responses_are_seed_shaped_json():
    msg = protocol.state_json("GP", {16: 1, 1: 0}, "pico")
    assert msg == '{"GP1": 0, "GP16": 1, "FROM": "pico"}'
    assert json.loads(msg)["GP16"] == 1
    assert json.loads(protocol.notify_json("GP", {16: 1}, "pico"))["NOTIFY"] == {"GP16": 1}
    assert json.loads(protocol.ip_json("203.0.113.7", "pico"))["IP"] == "203.0.113.7"
    for m in (msg, protocol.notify_json("GP", {1: 1}, "p"), protocol.status_json("offline", "p")):
        assert protocol.is_device_output(m.encode())


def test_canonical_text_for_signatures_orders_pins():
    assert (
        protocol.canonical("home/pico", 1700000000, {18: 1, 16: 0}, "GP")
        == "home/pico|1700000000|GP16=0,GP18=1"
    )


def test_strict_json_accepts_what_rfc8259_allows():
    sj = protocol.strict_json
    assert sj(' {"a" : [1, -2.5e3, true, false, null, "x\\"\\u0041"], "b": {}} ') == {
        "a": [1, -2500.0, True, False, None, 'x"A'],
        "b": {},
    }
    assert sj("0") == 0 and sj('""') == ""
    assert [sj(n) for n in ("-0", "0.5", "1E+2", "-12.5e-3")] == [0, 0.5, 100.0, -0.0125]


# Malformed requests MicroPython's json.loads lets through (test_json_check_core_c uses them too).
MALFORMED = (
    '{"GP16" 1}',
    '{"GP17": 1, "GP16":}',
    '{"GP16": 0]',
    '{"GP16": 1,}',
    "{'GP16': 1}",
    '{"GP16": 01}',
    '{"GP16": -01}',
    '{"GP16": 1.}',
    '{"GP16": 1e}',
    '{"GP16": 1.e5}',
    '{"GP16": -}',
    '{"GP16": 1} x',
    '{"GP16": .5}',
    '{"a": "\\x"}',
    '{"a": tru}',
)


def test_strict_json_refuses_what_micropython_json_lets_through():
    for bad in MALFORMED:
        raises(ValueError, protocol.strict_json, bad)
        assert error(bad.encode()).startswith("Error: request is not valid JSON"), bad
    raises(ValueError, protocol.strict_json, "")
    raises(protocol.TooDeep, protocol.strict_json, "[" * 9 + "]" * 9)


BOARD_TEXTS = [
    '{"GP16": 1}',
    ' {"a" : [1, -2.5e3, true, false, null, "x\\"\\u0041"], "b": {}} ',
    '{"x": "\\/\\b\\f\\n\\r\\t\\\\ \u00e9 \u2603 \\u00e9"}',
    '{"TS": 1700000000, "GP16": 0, "GP16": 1}',
    "-0",
    "1E+2",
    "[[[[[[[[12345678901234567890123]]]]]]]]",
]


def test_json_loads_gives_what_the_reader_gives():
    """On the board strict_json checks in C (json_check_core.c, which gives the reader's
    verdicts: test_json_check_core_c) and json.loads parses: for what passes, it must give
    what the reader gives. Under MicroPython this is the board's json.loads."""
    texts = list(BOARD_TEXTS)
    if sys.implementation.name == "micropython":  # CPython's json refuses leading zeros
        texts += ['{"MFA": 0123, "MFA": 5}', '{"GP16": 1, "MFA": 012345}']
    for text in texts:
        want = protocol.strict_json(text, "MFA")
        got = json.loads(text)
        if isinstance(want.get("MFA") if isinstance(want, dict) else 0, str):
            got["MFA"] = want["MFA"]  # the check hands back the code's text
        assert got == want, text


def test_strict_json_with_the_boards_check_keeps_its_answers():
    answers = {
        '{"GP16": 1}': (0, 0, None),
        '{"MFA": 12345, "GP16": 1}': (0, 0, "012345"),
        '{"GP16" 1}': (1, 8, None),
        "[[[[[[[[[": (2, 0, None),
    }
    asked = []

    def check(text, code_key, depth):
        asked.append((code_key, depth))
        return answers[text]

    saved, protocol.json_check = protocol.json_check, check
    try:
        assert protocol.strict_json('{"GP16": 1}') == {"GP16": 1}
        assert protocol.strict_json('{"MFA": 12345, "GP16": 1}', "MFA") == {
            "MFA": "012345",
            "GP16": 1,
        }
        raises(ValueError, protocol.strict_json, '{"GP16" 1}')
        raises(protocol.TooDeep, protocol.strict_json, "[[[[[[[[[")
        assert error(b'{"GP16" 1}').startswith("Error: request is not valid JSON")
    finally:
        protocol.json_check = saved
    assert asked[:2] == [(None, protocol.MAX_DEPTH), ("MFA", protocol.MAX_DEPTH)]


def test_an_empty_message_is_no_request():
    """An empty retained publish is how MQTT clears a retained message (MQTT 3.1.1, 3.3.1.3);
    the device sends one itself, so answering it would answer its own."""
    assert parse(b"") is None


def test_an_mfa_code_with_leading_zeros_as_iot_mqtt_panel_sends_it():
    """{"MFA": <payload>} with a code like 012345 (SECURITY.md, finding 2.8): there, and only
    there."""
    assert parse(b'{"MFA": 012345}').code == 12345
    assert parse(b'{"MFA": 000001, "GP16": 1}').code == 1
    assert error(b'{"MFA": 0012345}') == "Error: MFA code must be 6 digits"
    for bad in (
        b'{"GP16": 01}',
        b'{"TS": 0123}',
        b'{"MFA": -012345}',
        b'{"MFA": 012.5}',
        b'{"x": {"MFA": 012345}}',
    ):
        assert error(bad).startswith("Error: request is not valid JSON"), bad


def test_read_output_is_the_inverse_of_the_formatters():
    read = lambda m: protocol.read_output(m, "GP")  # noqa: E731
    assert read(protocol.state_json("GP", {16: 1, 0: 0}, "dev")) == ("state", {16: 1, 0: 0}, "dev")
    assert read(protocol.notify_json("GP", {1: 1}, "dev")) == ("notify", {1: 1}, "dev")
    assert read(protocol.status_json("offline", "dev")) == ("status", "offline", "dev")
    assert read(protocol.ip_json("203.0.113.7", "dev")) == ("ip", "203.0.113.7", "dev")
    assert read(b"Error: GP16 is not configured") == (
        "text",
        "Error: GP16 is not configured",
        None,
    )
    assert read(b"Uptime=0 days 0 hrs 1 min") == ("text", "Uptime=0 days 0 hrs 1 min", None)
    for other in (
        b'{"GP16": 1}',
        b'{"GP16": 2, "FROM": "dev"}',
        b'{"GP16": 1, "FROM": 7}',
        b'{"x": 1, "FROM": "dev"}',
        b'{"GP16": 1, "FROM": "dev"',
        b"\xff FROM",
        b'{"GP16": true, "FROM": "dev"}',
        b'{"NOTIFY": 1, "FROM": "dev"}',
    ):
        assert read(other) is None, other
