# SPDX-License-Identifier: MIT
"""Convert the seed project's mqtt_tiny_controller_config.py to config.json.

The file is parsed (ast), never executed: only `name = literal` lines are accepted, so a file
with code in it is refused rather than run. Every seed variable is either carried over, noted as
having no equivalent, or noted where its meaning changed."""

import ast

from tinyctrl import protocol

from . import Failure
from .configfile import defaults
from .keys import new_totp_key

# seed variable -> (section or None for top level, key)
CARRIED = {
    "wifi_ssid": ("wifi", "ssid"),
    "wifi_pass": ("wifi", "password"),
    "wifi_reset_delay_in_seconds": ("wifi", "reset_delay_s"),
    "broker_server": ("mqtt", "server"),
    "broker_user": ("mqtt", "user"),
    "broker_pass": ("mqtt", "password"),
    "mqtt_topic": ("mqtt", "topic"),
    "gpio_prefix": ("gpio", "prefix"),
    "publish_counter_max": ("guard", "publish_max"),
    "publish_threshold_in_seconds": ("guard", "publish_window_s"),
    "hardware_modified_cooldown_period_in_seconds": ("guard", "cooldown_s"),
    "hardware_modified_max": ("guard", "max_changes"),
    "hardware_modified_threshold_in_seconds": ("guard", "window_s"),
    "hardware_violation_max": ("guard", "max_violations"),
    "scheduled_publish_in_seconds": (None, "publish_interval_s"),
    "json_ip_provider": (None, "ip_provider"),
    "scheduled_clock_sync_in_seconds": ("ntp", "interval_s"),
    "forced_clock_sync_wait_in_seconds": ("ntp", "force_wait_s"),
    "totp_keyname": ("mfa", "keyname"),
    "totp_max_expired_codes": ("mfa", "max_expired_codes"),
}
PIN_SETS = {
    "gpio_pins_for_relay_switch": "relay",
    "gpio_pins_for_contact_switch": "contact",
    "gpio_pins_for_notification": "notify",
}
# Names the device fixes: the seed value is dropped, with a note when it differs.
FIXED = {
    "mqtt_qos": (1, "the device always uses QoS 1"),
    "mqtt_retain": (False, "the device never retains"),
    "mqtt_clean": (False, "the device keeps a persistent session (clean start only at power-on)"),
    "command_keyname": ("CMD", 'requests use "CMD"'),
    "ip_keyname": ("IP", 'the IP answer uses "IP"'),
    "notification_keyname": ("NOTIFY", 'notifications use "NOTIFY"'),
}
NO_EQUIVALENT = {
    "time_keyname": 'the time shows in {"CMD": "stats"} as Rtc=',
    "default_clock_year_in_unix_timestamp": "the clock waits for NTP; protected pins refuse "
    "until then",
}
# The TOTP keys in the seed's own example config: published, so they protect nothing.
SEED_EXAMPLE_KEYS = ("ONSWG4TFOQQHI33UOAQGG3DJMVXHIIBR", "MNWGSZLOOQQDEIDTMVRXEZLU")
# Guards whose -1 meant "off" in the seed; the device has no off switch for them.
NO_OFF = {
    "publish_max",
    "publish_window_s",
    "max_changes",
    "window_s",
    "max_violations",
    "cooldown_s",
    "max_expired_codes",
    "force_wait_s",
}


def read(text, name):
    """{variable: value} from `name = literal` lines; a one-line Failure for anything else."""
    try:
        tree = ast.parse(text, filename=name)
    except SyntaxError as e:
        raise Failure("%s:%s: syntax error: %s" % (name, e.lineno, e.msg))
    except (ValueError, MemoryError, RecursionError) as e:  # a NUL byte, absurd nesting
        raise Failure("%s: not a Python file (%s)" % (name, e))
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring or a bare string used as a comment
        if not (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            raise Failure(
                "%s:%d: only `name = value` lines are read; this file has code in it "
                "and is not run" % (name, node.lineno)
            )
        try:
            values[node.targets[0].id] = ast.literal_eval(node.value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise Failure(
                "%s:%d: %s is not a plain value (code is not run)"
                % (name, node.lineno, node.targets[0].id)
            )
    return values


def convert(seed, ca_file="ca.pem"):
    """(raw config dict, carried, notes): `carried` lists "seed name -> key" for what came over
    as it was; `notes` say what changed meaning or has no equivalent."""
    cfg = defaults()
    carried, notes = [], []
    mqtt = cfg["mqtt"]
    # The seed connects with TLS on 8883 and checks no certificate (MQTTClient ssl=True).
    mqtt.update(port=8883, ssl=True, ca_file=ca_file)
    notes.append(
        "mqtt.port 8883 and mqtt.ssl true: the seed hard-codes TLS on 8883; the device "
        "also checks the broker's certificate against %s (put your broker's CA "
        "certificate there, see SECURITY.md)" % ca_file
    )
    for var, value in seed.items():
        if var in CARRIED:
            section, key = CARRIED[var]
            if _carry(cfg, section, key, value, var, notes):
                carried.append("%s -> %s" % (var, _name(section, key)))
        elif var in PIN_SETS:
            cfg["gpio"][PIN_SETS[var]] = _pins(value, var)
            carried.append("%s -> gpio.%s" % (var, PIN_SETS[var]))
        elif var == "gpio_pins_for_momentary_relay_switch":
            wait = seed.get("momentary_switch_default_wait_in_seconds", 2)
            if isinstance(value, dict):
                cfg["gpio"]["momentary"] = dict((str(p), s) for p, s in _by_pin(value, var))
            else:
                cfg["gpio"]["momentary"] = dict((str(p), wait) for p in _pins(value, var))
            carried.append("%s -> gpio.momentary (pin: seconds)" % var)
        elif var == "momentary_switch_default_wait_in_seconds":
            pass  # used above
        elif var == "gpio_pins_for_totp_enabled":
            lists = isinstance(value, dict) and all(
                isinstance(k, (list, tuple)) for k in value.values()
            )
            if not lists:
                raise Failure("%s: must be a dict pin -> list of keys" % var)
            cfg["mfa"]["pins"] = dict((str(p), list(k)) for p, k in _by_pin(value, var))
            _replace_example_keys(cfg["mfa"]["pins"], cfg["gpio"]["prefix"], notes)
            carried.append("%s -> mfa.pins" % var)
            if not value:
                notes.append("mfa.pins {}: MFA off, as in the seed")
        elif var == "mqtt_client_id":
            try:
                cid = value.decode() if isinstance(value, bytes) else value
            except UnicodeDecodeError:
                raise Failure("%s: not UTF-8 text" % var)
            mqtt["client_id"] = cid
            carried.append("%s -> mqtt.client_id (bytes to text)" % var)
        elif var == "wifi_max_retries":
            if value == -1:
                cfg["wifi"]["reset_delay_s"] = -1
                notes.append(
                    "wifi_max_retries -1 (retry for ever) is wifi.reset_delay_s -1: "
                    "the board never resets for Wi-Fi"
                )
            else:
                cfg["wifi"]["max_retries"] = value
                carried.append("%s -> wifi.max_retries" % var)
        elif var == "time_zone_name":
            cfg["timezone"] = value
            carried.append("%s -> timezone" % var)
        elif var == "commands":
            if not isinstance(value, (list, tuple, set, frozenset)):
                raise Failure("commands: must be a list of command names")
            extra = sorted(set(str(c) for c in value) - set(protocol.COMMANDS))
            if not extra:
                carried.append("commands: all available")
            else:
                notes.append(
                    "commands: %s not available (the device has %s)"
                    % (", ".join(extra), ", ".join(protocol.COMMANDS))
                )
        elif var in FIXED:
            fixed, why = FIXED[var]
            if value != fixed:
                notes.append("%s = %r has no equivalent: %s" % (var, value, why))
        elif var in NO_EQUIVALENT:
            notes.append("%s has no equivalent: %s" % (var, NO_EQUIVALENT[var]))
        else:
            notes.append("%s is not a seed setting; left out" % var)
    return cfg, carried, notes


def _replace_example_keys(pins, prefix, notes):
    """Each of the seed's published example keys becomes one new key, wherever it was used, so
    pins that shared it still share one; each replacement is noted."""
    new = {}
    for pin, keys in pins.items():
        for i, key in enumerate(keys):
            if key in SEED_EXAMPLE_KEYS:
                keys[i] = new.setdefault(key, new_totp_key())
                notes.append(
                    "%s%s key %d: the seed's published example key, replaced by a new "
                    "one; enrol it: tinyctrl key show --pin %s --index %d"
                    % (prefix, pin, i + 1, pin, i + 1)
                )


def _carry(cfg, section, key, value, var, notes):
    target = cfg[section] if section else cfg
    if value == -1 and key in NO_OFF:
        notes.append(
            "%s = -1 (off in the seed) has no equivalent: %s keeps its default %r, the "
            "device cannot turn this guard off" % (var, _name(section, key), target[key])
        )
        return False
    if key == "max_expired_codes" and isinstance(value, int) and value > 10:
        notes.append(
            "%s = %d lowered to 10, the most the device accepts (each accepted code "
            "makes guessing easier)" % (var, value)
        )
        value = 10
    target[key] = value
    return True


def _name(section, key):
    return section + "." + key if section else key


def _is_pin(p):
    return isinstance(p, int) and not isinstance(p, bool)


def _pins(value, var):
    if not isinstance(value, (set, list, tuple, frozenset)) or not all(map(_is_pin, value)):
        raise Failure("%s: must be a set of pin numbers, e.g. {16, 17}" % var)
    return sorted(value)


def _by_pin(value, var):
    """A seed dict's (pin, value) pairs in pin order."""
    if not all(map(_is_pin, value)):
        raise Failure("%s: its keys must be pin numbers, e.g. {16: ...}" % var)
    return sorted(value.items())
