# SPDX-License-Identifier: MIT
"""tests/support/fuzz.py copies the protocol's constants on purpose, so that it is an oracle
independent of the device's parser. These checks keep the copies honest: change a limit in the
device without changing the fuzzer and this fails, naming the constant."""

import ast
import os

import fuzz
from tinyctrl import config, protocol

MODULES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "modules",
    "tinyctrl",
)


def module_constant(name, constant):
    """A top-level constant of a device module, read from its source: mqtt.py imports mqtt_as,
    which CPython cannot."""
    with open(os.path.join(MODULES, name)) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", None) == constant for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError("%s has no %s" % (name, constant))


def test_request_size_limit():
    assert fuzz.MAX_REQUEST == protocol.MAX_REQUEST


def test_inbound_drain_limit():
    assert fuzz.MAX_INBOUND == module_constant("mqtt.py", "MAX_INBOUND")


def test_commands():
    assert sorted(fuzz.COMMANDS) == sorted(protocol.COMMANDS)


def test_pin_values():
    assert sorted(fuzz.VALID_VALUES) == sorted(protocol._VALUES)


def test_forged_prefixes_and_mark():
    assert tuple(p.encode() for p in fuzz.FORGED_PREFIXES) == protocol.TEXT_PREFIXES
    assert fuzz.looks_forged(b"{" + protocol.MARK + b': "x"}')


def test_silent_payloads():
    for payload in (b"", b'{"GP16": 1, "FROM": "x"}', b"Info: x"):
        assert fuzz.silent(payload)
        assert protocol.parse(payload, "GP", "MFA", (16,), ()) is None


def test_pins():
    assert fuzz.PICO_W_PINS == config.PICO_W_PINS


def test_nesting_depth():
    # fuzz.py writes the depth into its expected error line.
    with open(fuzz.__file__) as f:
        assert "(max %d levels)" % protocol.MAX_DEPTH in f.read()
