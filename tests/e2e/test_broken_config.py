# SPDX-License-Identifier: MIT
"""A broken config.json of every kind the validator knows (modules/tinyctrl/config.py) on the
simulator: each is reported with the key it concerns, the controller stops with a nonzero
exit and the config_error LED, without a traceback, a connection attempt or a restart loop.

One test reads config.py and fails if the validator has a message no case here produces, so a
new check cannot go untested.
"""

import ast
import concurrent.futures
import json
import os
import re
import subprocess
import tempfile

import deps
import pytest
from simharness import KEY_A, base_config, missing_requirements

CONFIG_PY = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "modules",
    "tinyctrl",
    "config.py",
)
HALT_S = 20  # the check takes well under a second; a restart loop would never end
HEADER = "is not valid, the controller is stopped:"
# Secrets the cases configure: a report names the key, never the value.
SECRETS = (
    "wifi-secret-pw",
    KEY_A,
    "not base32 at all!",
    "JBSWY3DP",
    "k" * 32,
    "SECRETKEYA234567",
    "A" * 16,
    "a long random string",
    " " * 16,
    "0123456789abcdef0123",
)


def valid():
    # Unused loopback ports: a config that passed by mistake could not reach anything.
    return base_config(9, 9, 9)


def changed(**edits):
    """The valid config with edits: {"mqtt.port": 0} sets a key, {"mqtt.port": DELETE} drops it."""
    cfg = valid()
    for path, value in edits.items():
        *parents, key = path.split("__")
        node = cfg
        for name in parents:
            node = node[name]
        if value is DELETE:
            del node[key]
        else:
            node[key] = value
    return cfg


DELETE = object()

# (id, config as a dict or raw text, the problem line it must produce)
CASES = [
    ("invalid_json", '{"wifi": {"ssid": "x"}', "config.json: invalid JSON ("),
    ("not_an_object", "[1, 2]", "config.json: must be a JSON object"),
    ("unknown_top_key", changed(colour="red"), "unknown key 'colour'"),
    ("unknown_section_key", changed(mqtt__hostname="x"), "mqtt: unknown key 'hostname'"),
    ("section_not_object", changed(ntp=[]), "ntp: must be an object"),
    ("wifi_missing", changed(wifi=DELETE), "wifi: required"),
    ("mqtt_missing", changed(mqtt=DELETE), "mqtt: required"),
    ("ssid_missing", changed(wifi__ssid=DELETE), "wifi.ssid: required"),
    ("server_missing", changed(mqtt__server=DELETE), "mqtt.server: required"),
    ("topic_missing", changed(mqtt__topic=DELETE), "mqtt.topic: required"),
    (
        "servers_not_a_list",
        changed(mqtt__server=DELETE, mqtt__servers="a,b"),
        "mqtt.servers: must be a list of 1-8 addresses (host or host:port)",
    ),
    (
        "servers_bad_address",
        changed(mqtt__server=DELETE, mqtt__servers=["a", "b:0"]),
        "mqtt.servers[1]: must be a host or host:port (port 1-65535)",
    ),
    (
        "server_and_servers",
        changed(mqtt__servers=["a"]),
        "mqtt.servers: give mqtt.server or mqtt.servers, not both",
    ),
    ("not_a_string", changed(mqtt__user=5), "mqtt.user: must be a string"),
    ("empty_text", changed(wifi__ssid=""), "wifi.ssid: must not be empty"),
    ("bad_prefix", changed(gpio__prefix="G1"), "gpio.prefix: must be 1-8 letters"),
    ("bad_keyname", changed(mfa={"keyname": "MFA-1"}), "mfa.keyname: must be 1-16 letters"),
    (
        "wildcard_topic",
        changed(mqtt__topic="home/#"),
        "mqtt.topic: must be a topic name without wildcards",
    ),
    (
        "bad_client_id",
        changed(mqtt__client_id="pico test"),
        "mqtt.client_id: use at most 64 letters, digits, '_', '-', '.'",
    ),
    (
        "bad_timezone",
        changed(timezone="Mars"),
        "timezone: 'Mars' is not one of UTC, EST, CST, MST, PST or an offset",
    ),
    ("not_a_bool", changed(mqtt__ssl="yes"), "mqtt.ssl: must be true or false"),
    (
        "port_out_of_range",
        changed(mqtt__port=70000),
        "mqtt.port: must be a whole number from 1 to 65535",
    ),
    (
        "count_as_text",
        changed(wifi__max_retries="3"),
        "wifi.max_retries: must be a whole number from 0 to 1000000",
    ),
    (
        "keepalive_negative",
        changed(mqtt__keepalive=-5),
        "mqtt.keepalive: must be a whole number from 0 to 65535",
    ),
    (
        "period_below_off",
        changed(publish_interval_s=-2),
        "publish_interval_s: must be a whole number from -1 to 100000000 (-1 turns it off)",
    ),
    ("negative_number", changed(guard__cooldown_s=-1), "guard.cooldown_s: must be a number >= 0"),
    ("pins_not_a_list", changed(gpio__relay="16"), "gpio.relay: must be a list of pin numbers"),
    ("pin_not_a_number", changed(gpio__relay=[16, 1.5]), "gpio.relay: '1.5' is not a pin number"),
    (
        "pin_not_on_pico_w",
        changed(gpio__contact=[0, 25]),
        "gpio.contact: GP25 does not exist on the Pico W (GP0-GP22, GP26-GP28)",
    ),
    (
        "momentary_not_a_map",
        changed(gpio__momentary="18"),
        'gpio.momentary: must map pin to seconds, e.g. {"18": 2}',
    ),
    (
        "momentary_wait",
        changed(gpio__momentary={"18": 0}),
        "gpio.momentary.18: wait must be a number of seconds from 0 to 3600",
    ),
    ("mfa_pins_not_a_map", changed(mfa={"pins": [16]}), "mfa.pins: must map pin numbers to lists"),
    ("mfa_keys_empty", changed(mfa={"pins": {"16": []}}), "mfa.pins.16: must be a non-empty list"),
    ("mfa_key_not_text", changed(mfa={"pins": {"16": [5]}}), "mfa.pins.16: key must be a string"),
    (
        "mfa_key_not_base32",
        changed(mfa={"pins": {"16": ["not base32 at all!"]}}),
        "mfa.pins.16: key is not Base32 (A-Z, 2-7)",
    ),
    (
        "mfa_key_short",
        changed(mfa={"pins": {"16": ["JBSWY3DP"]}}),
        "mfa.pins.16: key is shorter than 80 bits (16 Base32 characters)",
    ),
    (
        "mfa_too_many_expired_codes",
        changed(mfa={"max_expired_codes": 11}),
        "mfa.max_expired_codes: at most 10 (each accepted code makes guessing easier)",
    ),
    ("mfa_pin_not_relay", changed(mfa={"pins": {"0": [KEY_A]}}), "mfa.pins: GP0 is not a relay"),
    (
        "sign_keys_not_a_map",
        changed(sign={"keys": ["k"]}),
        "sign.keys: must map a client name to its key",
    ),
    (
        "sign_key_short",
        changed(sign={"keys": {"cron": "short"}}),
        "sign.keys.cron: key must be a string of at least 16 characters",
    ),
    (
        "sign_pin_key_not_text",
        changed(sign={"keys": {"cron": "k" * 32}, "pins": {"16": [7]}}),
        "sign.pins.16: must name a key in sign.keys",
    ),
    (
        "sign_pin_unknown_key",
        changed(sign={"keys": {"cron": "k" * 32}, "pins": {"16": ["nobody"]}}),
        "sign.pins.16: no key named 'nobody' in sign.keys",
    ),
    (
        "tls_without_ca",
        changed(mqtt__ssl=True),
        "mqtt.ca_file: required when mqtt.ssl is true (or set mqtt.tls_insecure: true to skip "
        "certificate checks)",
    ),
    (
        "mqtt_version_4",
        changed(mqtt__version=4),
        'mqtt.version: must be 5, 3 (MQTT 3.1.1) or "auto"',
    ),
    (
        "session_expiry_negative",
        changed(mqtt__session_expiry_s=-1),
        "mqtt.session_expiry_s: must be a whole number from 0 to 4294967295",
    ),
    (
        "keepalive_zero",
        changed(mqtt__keepalive=0),
        "mqtt.keepalive: must be at least 1 so outages are detected",
    ),
    (
        "pin_in_two_groups",
        changed(gpio__contact=[0, 1, 2, 3, 16]),
        "gpio: GP16 is in both relay and contact",
    ),
    (
        "no_pins",
        changed(gpio={"relay": [], "momentary": {}, "contact": []}),
        "gpio: configure at least one pin in relay, momentary or contact",
    ),
    (
        "notify_unconfigured",
        changed(gpio__notify=[0, 5]),
        "gpio.notify: GP5 is not a configured pin",
    ),
    ("guard_window_zero", changed(guard__window_s=0), "guard.window_s: must be at least 1"),
    (
        "publish_max_tiny",
        changed(guard__publish_max=3),
        "guard.publish_max: must be at least 4 (state, notify, replies and errors share it)",
    ),
    (
        "ha_names_not_a_map",
        changed(homeassistant={"names": ["Light"]}),
        'homeassistant.names: must map pin numbers to text, e.g. {"16": "Light"}',
    ),
    (
        "ha_name_too_long",
        changed(homeassistant={"names": {"16": "x" * 65}}),
        "homeassistant.names.16: must be text of 1-64 characters",
    ),
    (
        "ha_name_unconfigured_pin",
        changed(homeassistant={"names": {"5": "Light"}}),
        "homeassistant.names: GP5 is not a configured pin",
    ),
    (
        "ha_contact_class",
        changed(homeassistant={"device_class": {"0": "toaster"}}),
        "homeassistant.device_class.0: 'toaster' is not a binary_sensor class (e.g. door, "
        "garage_door, window)",
    ),
    (
        "ha_relay_class",
        changed(homeassistant={"device_class": {"16": "door"}}),
        "homeassistant.device_class.16: a relay is 'outlet' or 'switch'",
    ),
    (
        "ha_class_on_momentary",
        changed(homeassistant={"device_class": {"18": "switch"}}),
        "homeassistant.device_class: GP18 is not a relay or contact",
    ),
    (
        "ha_prefix_holds_topic",
        changed(homeassistant={"prefix": "home"}),
        "homeassistant.prefix: must not contain mqtt.topic (Home Assistant reads everything "
        "under it)",
    ),
    # SECURITY.md, finding 2.3: configs that silently remove a protection; bounds in README.md.
    (
        "no_lockout",
        changed(guard__auth_lockout_s=0),
        "guard.auth_lockout_s: must be a whole number from 1 to 3600",
    ),
    (
        "endless_guessing",
        changed(guard__auth_failures=1000000),
        "guard.auth_failures: must be a whole number from 1 to 10",
    ),
    (
        "endless_grant",
        changed(mfa={"grant_s": 10**6}),
        "mfa.grant_s: must be a whole number from 1 to 300",
    ),
    (
        "endless_signature",
        changed(sign={"window_s": 10**6}),
        "sign.window_s: must be a whole number from 1 to 300",
    ),
    (
        "readme_totp_key",
        changed(mfa={"pins": {"16": ["SECRETKEYA234567"]}}),
        "mfa.pins.16: key is the example from README.md; generate your own",
    ),
    (
        "readme_sign_key",
        changed(sign={"keys": {"cron": "a long random string"}}),
        "sign.keys.cron: key is the example from README.md; generate your own",
    ),
    (
        "one_letter_totp_key",
        changed(mfa={"pins": {"16": ["A" * 16]}}),
        "mfa.pins.16: key has fewer than 5 different characters; generate a random one",
    ),
    (
        "spaces_sign_key",
        changed(sign={"keys": {"cron": " " * 16}}),
        "sign.keys.cron: key has fewer than 5 different characters; generate a random one",
    ),
    (
        "one_key_two_names",
        changed(sign={"keys": {"cron": "0123456789abcdef0123", "backup": "0123456789abcdef0123"}}),
        "same key as sign.keys.",
    ),
    (
        "pin_listed_twice",
        changed(mfa={"pins": {"16": [KEY_A], "016": [KEY_A]}}),
        "mfa.pins: GP16 is listed twice",
    ),
    # Finding 4: a secret in a place where a name belongs is not echoed either.
    (
        "secret_as_pin",
        changed(mfa={"pins": {KEY_A: [KEY_A]}}),
        "mfa.pins: '<not shown>' is not a pin number",
    ),
    (
        "secret_as_key_name",
        changed(sign={"keys": {"cron": "k" * 32}, "pins": {"16": [KEY_A]}}),
        "sign.pins.16: no key named '<not shown>' in sign.keys",
    ),
    (
        "secret_as_unknown_key",
        changed(wifi__JBSWY3DPEHPK3PXP=1),
        "wifi: unknown key '<not shown>'",
    ),
    # Finding 2: the device's name is published; the client id must stay unknown.
    (
        "name_is_client_id",
        changed(name="pico-test"),
        "name: must differ from mqtt.client_id (whoever knows the client id can take the "
        "device's place)",
    ),
    ("name_empty", changed(name=""), "name: must not be empty"),
    ("missing_file", None, "config.json: not found; copy config.json onto the device"),
    (
        "file_too_large",
        json.dumps(valid()) + " " * (64 * 1024),
        "config.json: larger than 65536 bytes",
    ),
    (
        "many_problems",
        changed(wifi__ssid="", mqtt__topic="a/+", gpio__notify=[9], guard__publish_max=1),
        "wifi.ssid: must not be empty",
    ),
    # power-on state, auto-off, interlocks (base config: relays 16, 17, momentary
    # 18, 19, 26, 27, contacts 0-3)
    (
        "power_on_mode",
        changed(gpio__power_on_state={"16": "last"}),
        "gpio.power_on_state.16: 'last' is not one of off, on, restore",
    ),
    (
        "power_on_not_a_map",
        changed(gpio__power_on_state="on"),
        'gpio.power_on_state: must map pin to a value, e.g. {"16": "restore"}',
    ),
    (
        "power_on_contact",
        changed(gpio__power_on_state={"0": "on"}),
        "gpio.power_on_state: GP0 is not a relay",
    ),
    (
        "power_on_momentary",
        changed(gpio__power_on_state={"18": "restore"}),
        "gpio.power_on_state.18: a momentary relay always starts off",
    ),
    (
        "power_cut_mode",
        changed(gpio__restore_after_power_cut="eeprom"),
        "gpio.restore_after_power_cut: 'eeprom' is not one of off, flash",
    ),
    (
        "max_on_s_value",
        changed(gpio__max_on_s={"16": 0}),
        "gpio.max_on_s.16: must be a whole number of seconds from 1 to 604800",
    ),
    (
        "max_on_s_momentary",
        changed(gpio__max_on_s={"18": 5}),
        "gpio.max_on_s.18: a momentary relay already has its wait in gpio.momentary",
    ),
    ("max_on_s_contact", changed(gpio__max_on_s={"1": 5}), "gpio.max_on_s: GP1 is not a relay"),
    (
        "interlock_shape",
        changed(gpio__interlock=[16, 17]),
        "gpio.interlock: must be a list of pin lists, e.g. [[20, 21]]",
    ),
    (
        "interlock_one_pin",
        changed(gpio__interlock=[[16]]),
        "gpio.interlock[0]: a group needs at least two pins",
    ),
    (
        "interlock_two_groups",
        changed(gpio__interlock=[[16, 17], [17, 18]]),
        "gpio.interlock: GP17 is in two groups",
    ),
    (
        "interlock_contact",
        changed(gpio__interlock=[[16, 0]]),
        "gpio.interlock[0]: GP0 is a contact, not a relay",
    ),
    (
        "interlock_unknown_pin",
        changed(gpio__interlock=[[16, 5]]),
        "gpio.interlock[0]: GP5 is not a relay",
    ),
    (
        "interlock_both_on",
        changed(gpio__interlock=[[16, 17]], gpio__power_on_state={"16": "on", "17": "on"}),
        "gpio.interlock[0]: GP16 and GP17 are both on at power-on (gpio.power_on_state)",
    ),
    (
        "interlock_switch_mixed",
        changed(
            gpio__interlock=[[16, 17]],
            gpio__interlock_mode="switch",
            mfa={"pins": {"16": [KEY_A]}},
        ),
        "gpio.interlock[0]: GP16 and GP17 must need the same mfa.pins and sign.pins keys",
    ),
    (
        "interlock_mode",
        changed(gpio__interlock_mode="both"),
        "gpio.interlock_mode: 'both' is not one of refuse, switch",
    ),
    (
        "interlock_dead_ms",
        changed(gpio__interlock_dead_ms=20000),
        "gpio.interlock_dead_ms: must be a whole number of ms from 0 to 10000",
    ),
    (
        "max_on_s_too_many_timed",
        changed(
            gpio__relay=[4, 5, 6, 7, 8, 9, 10, 11, 12],
            gpio__power_on_state=dict((str(p), "on") for p in range(4, 13)),
            gpio__max_on_s=dict((str(p), 60) for p in range(4, 13)),
        ),
        'gpio.max_on_s: at most 8 relays with a power_on_state "on" or "restore"',
    ),
    # local control: inputs and the offline failsafe (base config as above)
    (
        "local_debounce",
        changed(local={"debounce_ms": 5000}),
        "local.debounce_ms: must be a whole number of ms from 0 to 1000",
    ),
    (
        "local_long_press",
        changed(local={"long_press_ms": 50}),
        "local.long_press_ms: must be a whole number of ms from 200 to 10000",
    ),
    (
        "local_inputs_not_a_map",
        changed(local={"inputs": [4]}),
        'local.inputs: must map pins to objects, e.g. {"4": {"relay": 16, "mode": "toggle"}}',
    ),
    (
        "local_input_not_an_object",
        changed(local={"inputs": {"4": 16}}),
        'local.inputs.4: must be an object, e.g. {"4": {"relay": 16, "mode": "toggle"}}',
    ),
    (
        "local_input_unknown_key",
        changed(local={"inputs": {"4": {"relay": 16, "hold": 1}}}),
        "local.inputs.4: unknown key 'hold'",
    ),
    (
        "local_input_no_relay",
        changed(local={"inputs": {"4": {"mode": "toggle"}}}),
        "local.inputs.4.relay: required",
    ),
    (
        "local_input_mode",
        changed(local={"inputs": {"4": {"relay": 16, "mode": "hold"}}}),
        "local.inputs.4.mode: 'hold' is not one of toggle, follow, press",
    ),
    (
        "local_input_invert",
        changed(local={"inputs": {"4": {"relay": 16, "invert": 1}}}),
        "local.inputs.4.invert: must be true or false",
    ),
    (
        "local_input_long",
        changed(local={"inputs": {"4": {"relay": 16, "mode": "press", "long": "reboot"}}}),
        "local.inputs.4.long: 'reboot' is not one of off, on, off_group, all_off",
    ),
    (
        "local_input_long_not_press",
        changed(local={"inputs": {"4": {"relay": 16, "long": "off"}}}),
        'local.inputs.4.long: only a push button (mode "press") has a long press',
    ),
    (
        "local_input_is_a_contact",
        changed(local={"inputs": {"1": {"relay": 16}}}),
        "local.inputs: GP1 is already a contact in gpio",
    ),
    (
        "local_input_relay_unknown",
        changed(local={"inputs": {"4": {"relay": 5}}}),
        "local.inputs.4.relay: GP5 is not a relay",
    ),
    (
        "local_input_listed_twice",
        changed(local={"inputs": {"4": {"relay": 16}, "04": {"relay": 17}}}),
        "local.inputs: GP4 is listed twice",
    ),
    (
        "local_disabled_not_a_relay",
        changed(local={"disabled": [0]}),
        "local.disabled: GP0 is not a relay",
    ),
    (
        "local_failsafe_not_a_map",
        changed(local={"failsafe": 300}),
        'local.failsafe: must map pins to objects, e.g. {"19": {"after_s": 300, "state": "off"}}',
    ),
    (
        "local_failsafe_after",
        changed(local={"failsafe": {"16": {"after_s": 0}}}),
        "local.failsafe.16.after_s: must be a whole number of seconds from 1 to 604800",
    ),
    (
        "local_failsafe_state",
        changed(local={"failsafe": {"16": {"after_s": 60, "state": "toggle"}}}),
        "local.failsafe.16.state: 'toggle' is not one of off, on",
    ),
    (
        "local_failsafe_momentary",
        changed(local={"failsafe": {"18": {"after_s": 60}}}),
        "local.failsafe.18: a momentary relay releases itself",
    ),
    (
        "local_failsafe_contact",
        changed(local={"failsafe": {"0": {"after_s": 60}}}),
        "local.failsafe: GP0 is not a relay",
    ),
    (
        "update_key_not_a_key",
        changed(update={"key": "04abcd"}),
        "update.key: must be an ECDSA P-256 public key, 130 hex digits starting 04 "
        "(tinyctrl key new --update writes it)",
    ),
    ("update_key_not_text", changed(update={"key": 7}), "update.key: must be a string"),
    # One rule for every pin-keyed map: "16" and "016" are one pin.
    (
        "power_on_listed_twice",
        changed(gpio__power_on_state={"16": "on", "016": "off"}),
        "gpio.power_on_state: GP16 is listed twice",
    ),
    (
        "max_on_s_listed_twice",
        changed(gpio__max_on_s={"16": 60, "016": 600}),
        "gpio.max_on_s: GP16 is listed twice",
    ),
]


def run_sim(config_dir, config_name="config.json"):
    """Run the simulator on a config until it exits; stdin is closed, so a controller that
    did start would stop at once instead of waiting."""
    args, env = deps.simulator_command(os.path.join(config_dir, config_name))
    done = subprocess.run(
        args,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=HALT_S,
        cwd=config_dir,
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def problems_of(config, name="config.json"):
    """(exit code, the problem lines it printed, stdout, stderr) for one config file."""
    with tempfile.TemporaryDirectory(prefix="tinyctrl-badcfg-") as d:
        if config is not None:
            with open(os.path.join(d, name), "w") as f:
                f.write(config if isinstance(config, str) else json.dumps(config))
        code, out, err = run_sim(d, name)
    lines = [line[4:] for line in out.splitlines() if line.startswith("  - ")]
    return code, lines, out, err


def assert_safe_halt(code, out, err):
    assert code not in (0, None), (code, out, err)
    assert HEADER in out and "fix the file" in out, out
    assert "LED config_error" in err, err
    assert "Traceback" not in out + err, out + err
    assert "LED connecting" not in err, "it tried to connect:\n" + err
    assert not [secret for secret in SECRETS if secret in out + err], out + err


@pytest.fixture(scope="module")
def outcomes():
    """Each case's (exit code, problem lines, stdout, stderr), all run once, two at a time."""
    why = missing_requirements()
    if why:
        pytest.skip(why)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = pool.map(lambda case: problems_of(case[1]), CASES)
        return dict(zip((case[0] for case in CASES), results))


@pytest.mark.parametrize("name, problem", [(c[0], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_broken_config_is_reported_and_halts(outcomes, name, problem):
    code, lines, out, err = outcomes[name]
    assert_safe_halt(code, out, err)
    assert any(problem in line for line in lines), (problem, lines)


def test_every_problem_is_listed_at_once(outcomes):
    assert len(outcomes["many_problems"][1]) == 4, outcomes["many_problems"][1]


def test_missing_ca_file_names_the_key_and_the_file(outcomes):
    cfg = changed(mqtt__ssl=True, mqtt__ca_file="broker-ca.pem")
    code, lines, out, err = problems_of(cfg)
    assert code not in (0, None) and "LED config_error" in err and "Traceback" not in out + err, (
        code,
        out,
        err,
    )
    assert "mqtt.ca_file" in out and "broker-ca.pem" in out, out


def validator_messages():
    """The format string of every problem config.py can report, from its source."""
    tree = ast.parse(open(CONFIG_PY).read())
    found = []

    def formats(node):
        if isinstance(node, ast.IfExp):
            return formats(node.body) + formats(node.orelse)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            return formats(node.left)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        return []

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if (
            isinstance(f, ast.Attribute)
            and f.attr == "append"
            and getattr(f.value, "id", None) == "problems"
        ):
            found += formats(node.args[0])
        elif getattr(f, "id", None) == "ConfigError" and isinstance(node.args[0], ast.List):
            for element in node.args[0].elts:
                found += formats(element)
    return found


def as_pattern(message):
    """A regex for the lines a %-format string produces."""
    parts = re.split(r"(%[sdr])", message)
    return re.compile(
        "".join({"%s": ".*", "%d": "-?[0-9]+", "%r": ".*"}.get(p, re.escape(p)) for p in parts)
        + "$"
    )


def test_every_validator_message_has_a_case(outcomes):
    messages = validator_messages()
    assert len(messages) > 30, messages  # the parser still finds them
    lines = [line for _, found, _, _ in outcomes.values() for line in found]
    missing = [m for m in messages if not any(as_pattern(m).match(line) for line in lines)]
    assert not missing, "validator messages no broken config here produces: %s" % missing
