# SPDX-License-Identifier: MIT
# config.json: loading, defaults and the one validator, for the device and for a PC.
# Every problem is reported with the key it concerns; nothing here touches hardware.
import json
import os

from .clock import TIMEZONES, utc_offset_s
from .homeassistant import CONTACT_CLASSES, RELAY_CLASSES
from .totp import base32_decode

# GPIOs a user can wire on the Pico W (23, 24, 25 and 29 belong to the Wi-Fi chip).
PICO_W_PINS = tuple(range(0, 23)) + (26, 27, 28)
MAX_PAYLOAD = 64 * 1024


class ConfigError(Exception):
    def __init__(self, problems):
        super().__init__("; ".join(problems))
        self.problems = problems


# Each section: key -> (default, check). A default of REQUIRED must be given.
# Built on demand: the tables are garbage once config.json is validated, not heap for life.
REQUIRED = object()
SECTIONS = ("wifi", "mqtt", "gpio", "mfa", "sign", "guard", "ntp", "homeassistant", "local")


def _schema():
    return {
        "wifi": {
            "ssid": (REQUIRED, "text"),
            "password": ("", "secret"),
            "max_retries": (30, "count"),
            "reset_delay_s": (600, "period"),
        },
        "mqtt": {
            "server": (REQUIRED, "text"),
            "port": (None, "port"),
            "ssl": (False, "bool"),
            "ca_file": ("", "str"),
            "tls_insecure": (False, "bool"),
            "user": ("", "str"),
            "password": ("", "secret"),
            "client_id": ("", "client_id"),
            "topic": (REQUIRED, "topic"),
            "keepalive": (120, "keepalive"),
        },
        "gpio": {
            "prefix": ("GP", "prefix"),
            "relay": ([], "pins"),
            "momentary": ({}, "momentary"),
            "contact": ([], "pins"),
            "notify": ([], "pins"),
            "active_low": (True, "bool"),
            # Issue 13: what relays do when nobody sends commands (see _relay_options).
            "power_on_state": ({}, "power_on_state"),
            "restore_after_power_cut": ("off", "power_cut"),
            "max_on_s": ({}, "max_on_s"),
            "interlock": ([], "interlock"),
            "interlock_mode": ("refuse", "interlock_mode"),
            "interlock_dead_ms": (0, "dead_ms"),
        },
        "mfa": {
            "keyname": ("MFA", "keyname"),
            "max_expired_codes": (5, "count"),
            "grant_s": (30, "grant"),
            "pins": ({}, "mfa_pins"),
        },
        "sign": {
            "keys": ({}, "sign_keys"),
            "pins": ({}, "sign_pins"),
            "window_s": (60, "grant"),
        },
        "guard": {
            "cooldown_s": (2, "number"),
            "max_changes": (5, "count"),
            "window_s": (60, "count"),
            "max_violations": (3, "count"),
            "publish_max": (20, "count"),
            "publish_window_s": (10, "count"),
            "auth_failures": (3, "auth_failures"),
            "auth_lockout_s": (30, "auth_lockout"),
        },
        "ntp": {
            "host": ("pool.ntp.org", "text"),
            "port": (123, "port"),
            "interval_s": (86400, "period"),
            "force_wait_s": (180, "count"),
        },
        "homeassistant": {
            "discovery": (False, "bool"),
            "prefix": ("homeassistant", "topic"),
            "name": ("", "str"),
            "names": ({}, "pin_texts"),
            "device_class": ({}, "pin_texts"),
        },
        # What the board does by itself: wall switches and buttons, and the broker gone
        # (see _local_option and _check_local).
        "local": {
            "inputs": ({}, "local_inputs"),
            "debounce_ms": (50, "debounce_ms"),
            "long_press_ms": (800, "long_press_ms"),
            "disabled": ([], "pins"),
            "failsafe": ({}, "failsafe"),
        },
    }


def _top():
    return {
        "publish_interval_s": (7200, "period"),
        "ip_provider": ("https://jsonip.com", "str"),
        "timezone": ("EST", "timezone"),
        "watchdog_s": (30, "period"),
        "name": ("tinyctrl", "client_id"),  # published in "FROM"; the client id never is
        "getip_wait_s": (60, "count"),
    }


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


# Bounds on what protects a pin (issue 9, finding 3): beyond them a protection is gone in
# all but name. README.md ("Limits") and SECURITY.md say why.
BOUNDS = {
    "grant": (1, 300),  # mfa.grant_s, sign.window_s: a captured grant or request lives this long
    "auth_failures": (1, 10),  # guesses before a lockout
    "auth_lockout": (1, 3600),  # 0 would mean no lockout at all
}
MIN_KEY_SYMBOLS = 5  # distinct characters in a key: AAAAAAAAAAAAAAAA is no secret
# Keys printed in README.md's example: published, so no secret.
EXAMPLE_KEYS = ("SECRETKEYA234567", "SECRETKEYB234567", "a long random string")


def shown(text):
    """`text` for an error message if it looks like a name, else a placeholder: it may be a
    secret put in the wrong place, and error messages go to the console (issue 9, finding 4)."""
    text = str(text)
    if len(text) < 16 and all(c.isalpha() or c.isdigit() or c in "_-." for c in text):
        return text
    return "<not shown>"


def _pin(v, where, problems):
    """A pin number from 16, "16" or "GP16"-less digits; None (and a problem) if invalid."""
    if isinstance(v, str) and v.isdigit():
        v = int(v)
    if not _is_int(v):
        problems.append("%s: '%s' is not a pin number" % (where, shown(v)))
        return None
    if v not in PICO_W_PINS:
        problems.append("%s: GP%d does not exist on the Pico W (GP0-GP22, GP26-GP28)" % (where, v))
        return None
    return v


def _pin_key(k, out, where, problems):
    """The pin a key of a pin-keyed map names, or None: the one rule for every such map. "16"
    and "016" both name GP16, and which of their values would count is anyone's guess."""
    p = _pin(k, where, problems)
    if p is not None and p in out:
        problems.append("%s: GP%d is listed twice" % (where, p))
        return None
    return p


def _check(kind, v, where, problems):
    """Returns the normalised value, appending to problems if it is invalid."""
    if kind in RELAY_OPTION_KINDS:
        return _relay_option(kind, v, where, problems)
    if kind in LOCAL_KINDS:
        return _local_option(kind, v, where, problems)
    if kind in ("text", "str", "secret", "prefix", "keyname", "topic", "client_id", "timezone"):
        if not isinstance(v, str):
            problems.append("%s: must be a string" % where)
            return v
        if kind == "text" and not v:
            problems.append("%s: must not be empty" % where)
        elif kind == "prefix" and not (v.isalpha() and 0 < len(v) <= 8):
            problems.append("%s: must be 1-8 letters" % where)
        elif kind == "keyname" and not (0 < len(v) <= 16 and v.isalpha()):
            problems.append("%s: must be 1-16 letters" % where)
        elif kind == "topic" and (not v or "+" in v or "#" in v or len(v) > 200):
            problems.append("%s: must be a topic name without wildcards" % where)
        elif kind == "client_id" and (len(v) > 64 or any(not (c.isalpha() or c.isdigit() or c in "_-.") for c in v)):
            problems.append("%s: use at most 64 letters, digits, '_', '-', '.'" % where)
        elif kind == "timezone" and v not in TIMEZONES and utc_offset_s(v) is None:
            problems.append("%s: %r is not one of %s or an offset like +05:30" % (where, v, ", ".join(TIMEZONES)))
        return v
    if kind == "bool":
        if not isinstance(v, bool):
            problems.append("%s: must be true or false" % where)
        return v
    if kind in ("count", "port", "keepalive", "period") or kind in BOUNDS:
        lo, hi = BOUNDS.get(kind) or {"count": (0, 10**6), "port": (1, 65535), "keepalive": (0, 65535),
                                      "period": (-1, 10**8)}[kind]
        if not _is_int(v) or not lo <= v <= hi:
            extra = " (-1 turns it off)" if kind == "period" else ""
            problems.append("%s: must be a whole number from %d to %d%s" % (where, lo, hi, extra))
        return v
    if kind == "number":
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            problems.append("%s: must be a number >= 0" % where)
        return v
    if kind == "pins":
        if not isinstance(v, list):
            problems.append("%s: must be a list of pin numbers" % where)
            return []
        pins = [_pin(p, where, problems) for p in v]
        return sorted(set(p for p in pins if p is not None))
    if kind == "momentary":
        if isinstance(v, list):  # seed style: pins only, 2 s each
            v = dict((str(p), 2) for p in v)
        if not isinstance(v, dict):
            problems.append("%s: must map pin to seconds, e.g. {\"18\": 2}" % where)
            return {}
        out = {}
        for k, secs in v.items():
            p = _pin_key(k, out, where, problems)
            if isinstance(secs, bool) or not isinstance(secs, (int, float)) or not 0 < secs <= 3600:
                problems.append("%s.%s: wait must be a number of seconds from 0 to 3600" % (where, shown(k)))
            elif p is not None:
                out[p] = secs
        return out
    if kind == "pin_texts":
        if not isinstance(v, dict):
            problems.append("%s: must map pin numbers to text, e.g. {\"16\": \"Light\"}" % where)
            return {}
        out = {}
        for k, text in v.items():
            p = _pin_key(k, out, where, problems)
            if not isinstance(text, str) or not 0 < len(text) <= 64:
                problems.append("%s.%s: must be text of 1-64 characters" % (where, k))
            elif p is not None:
                out[p] = text
        return out
    if kind == "mfa_pins":
        return _pin_map(v, where, problems, _base32_key)
    if kind == "sign_pins":
        return _pin_map(v, where, problems, _key_name)
    if kind == "sign_keys":
        if not isinstance(v, dict):
            problems.append("%s: must map a client name to its key" % where)
            return {}
        seen = {}
        for name, key in v.items():
            at = "%s.%s" % (where, shown(name))
            if not isinstance(key, str) or len(key) < 16:
                problems.append("%s: key must be a string of at least 16 characters" % at)
            elif _weak(key, key):
                problems.append("%s: %s" % (at, _weak(key, key)))
            elif key in seen:  # one key, two names: each request could be replayed once per name
                problems.append("%s: same key as %s.%s; give each client its own"
                                % (at, where, shown(seen[key])))
            else:
                seen[key] = name
        return v
    raise ValueError(kind)


# ---- issue 13: power-on state, auto-off and interlocks (Tasmota's PowerOnState, PulseTime and
# Interlock; ESPHome's restore_mode and interlock)
POWER_ON_MODES = ("off", "on", "restore")
RELAY_OPTION_KINDS = ("power_on_state", "power_cut", "max_on_s", "interlock", "interlock_mode",
                      "dead_ms")
MAX_ON_S_LIMIT = 7 * 86400
TIMED_RELAYS = 8  # max_on_s relays on after a reset: 4 bits each of one scratch word (relays.py)
MAX_DEAD_MS = 10000


def _relay_option(kind, v, where, problems):
    """The syntax of one issue 13 key; how the keys fit the pins is _relay_options' job."""
    choices = {"power_cut": ("off", "flash"), "interlock_mode": ("refuse", "switch")}.get(kind)
    if choices:
        if v not in choices:
            problems.append("%s: %r is not one of %s" % (where, v, ", ".join(choices)))
        return v
    if kind == "dead_ms":
        if not _is_int(v) or not 0 <= v <= MAX_DEAD_MS:
            problems.append("%s: must be a whole number of ms from 0 to %d" % (where, MAX_DEAD_MS))
        return v
    if kind == "interlock":
        if not isinstance(v, list) or any(not isinstance(g, list) for g in v):
            problems.append("%s: must be a list of pin lists, e.g. [[20, 21]]" % where)
            return []
        groups = []
        for i, group in enumerate(v):
            pins = [_pin(p, "%s[%d]" % (where, i), problems) for p in group]
            pins = sorted(set(p for p in pins if p is not None))
            if len(pins) < 2:
                problems.append("%s[%d]: a group needs at least two pins" % (where, i))
            groups.append(pins)
        return groups
    if not isinstance(v, dict):
        example = '{"16": "restore"}' if kind == "power_on_state" else '{"16": 600}'
        problems.append("%s: must map pin to a value, e.g. %s" % (where, example))
        return {}
    out = {}
    for k, item in v.items():
        p = _pin_key(k, out, where, problems)
        if kind == "power_on_state" and item not in POWER_ON_MODES:
            problems.append("%s.%s: %r is not one of %s" % (where, k, item, ", ".join(POWER_ON_MODES)))
        elif kind == "max_on_s" and (not _is_int(item) or not 1 <= item <= MAX_ON_S_LIMIT):
            problems.append("%s.%s: must be a whole number of seconds from 1 to %d"
                            % (where, k, MAX_ON_S_LIMIT))
        elif p is not None:
            out[p] = item
    return out


def _relay_options(gpio, problems):
    """The issue 13 keys against the configured pins."""
    momentary = gpio["momentary"]
    outputs = set(gpio["relay"]) | set(momentary)
    for p, mode in gpio["power_on_state"].items():
        if p not in outputs:
            problems.append("gpio.power_on_state: GP%d is not a relay" % p)
        elif p in momentary and mode != "off":
            problems.append("gpio.power_on_state.%d: a momentary relay always starts off" % p)
    for p in gpio["max_on_s"]:
        if p in momentary:
            problems.append("gpio.max_on_s.%d: a momentary relay already has its wait in "
                            "gpio.momentary" % p)
        elif p not in outputs:
            problems.append("gpio.max_on_s: GP%d is not a relay" % p)
    timed = [p for p in gpio["max_on_s"] if gpio["power_on_state"].get(p, "off") != "off"]
    if len(timed) > TIMED_RELAYS:
        problems.append("gpio.max_on_s: at most %d relays with a power_on_state \"on\" or "
                        "\"restore\" (the time each has been on is kept across a reset)"
                        % TIMED_RELAYS)
    seen = {}
    for i, group in enumerate(gpio["interlock"]):
        ons = [p for p in group if gpio["power_on_state"].get(p) == "on"]
        if len(ons) > 1:
            problems.append("gpio.interlock[%d]: GP%d and GP%d are both on at power-on "
                            "(gpio.power_on_state)" % (i, ons[0], ons[1]))
        for p in group:
            if p in seen:
                problems.append("gpio.interlock: GP%d is in two groups" % p)
            elif p in gpio["contact"]:
                problems.append("gpio.interlock[%d]: GP%d is a contact, not a relay" % (i, p))
            elif p not in outputs:
                problems.append("gpio.interlock[%d]: GP%d is not a relay" % (i, p))
            seen[p] = i


# ---- local control: inputs that move relays without the broker (Tasmota's SwitchMode,
# ESPHome's binary_sensor automations), and what a relay does when the broker is gone
INPUT_MODES = ("toggle", "follow", "press")
LONG_ACTIONS = ("off", "on", "off_group", "all_off")
FAILSAFE_STATES = ("off", "on")
LOCAL_KINDS = ("local_inputs", "debounce_ms", "long_press_ms", "failsafe")
LOCAL_MS = {"debounce_ms": (0, 1000), "long_press_ms": (200, 10000)}


def _local_option(kind, v, where, problems):
    """The syntax of the local section's keys; how they fit the pins is _check_local's job."""
    if kind in LOCAL_MS:
        lo, hi = LOCAL_MS[kind]
        if not _is_int(v) or not lo <= v <= hi:
            problems.append("%s: must be a whole number of ms from %d to %d" % (where, lo, hi))
        return v
    example = ('{"4": {"relay": 16, "mode": "toggle"}}' if kind == "local_inputs"
               else '{"19": {"after_s": 300, "state": "off"}}')
    if not isinstance(v, dict):
        problems.append("%s: must map pins to objects, e.g. %s" % (where, example))
        return {}
    keys = {"local_inputs": ("relay", "mode", "invert", "long"),
            "failsafe": ("after_s", "state")}[kind]
    out = {}
    for k, item in v.items():
        p = _pin_key(k, out, where, problems)
        at = "%s.%s" % (where, shown(k))
        if not isinstance(item, dict):
            problems.append("%s: must be an object, e.g. %s" % (at, example))
            continue
        bad = [x for x in item if x not in keys]
        if bad:
            problems.append("%s: unknown key '%s'" % (at, shown(bad[0])))
        if kind == "failsafe":
            secs, state = item.get("after_s"), item.get("state", "off")
            if not _is_int(secs) or not 1 <= secs <= MAX_ON_S_LIMIT:
                problems.append("%s.after_s: must be a whole number of seconds from 1 to %d"
                                % (at, MAX_ON_S_LIMIT))
            elif state not in FAILSAFE_STATES:
                problems.append("%s.state: %r is not one of %s" % (at, state, ", ".join(
                    FAILSAFE_STATES)))
            elif p is not None:
                out[p] = {"after_s": secs, "state": state}
            continue
        relay = None
        if "relay" not in item:
            problems.append("%s.relay: required" % at)
        else:
            relay = _pin(item["relay"], at + ".relay", problems)
        mode, long = item.get("mode", "toggle"), item.get("long")
        invert = _check("bool", item.get("invert", False), at + ".invert", problems)
        if mode not in INPUT_MODES:
            problems.append("%s.mode: %r is not one of %s" % (at, mode, ", ".join(INPUT_MODES)))
        elif long is not None and long not in LONG_ACTIONS:
            problems.append("%s.long: %r is not one of %s" % (at, long, ", ".join(LONG_ACTIONS)))
        elif long is not None and mode != "press":
            problems.append("%s.long: only a push button (mode \"press\") has a long press" % at)
        elif p is not None and relay is not None and invert in (True, False):
            out[p] = {"relay": relay, "mode": mode, "invert": invert, "long": long}
    return out


def _check_local(cfg, problems):
    """The local section against the configured pins."""
    local, gpio = cfg["local"], cfg["gpio"]
    momentary = gpio["momentary"]
    outputs = set(gpio["relay"]) | set(momentary)
    kinds = (("relay", gpio["relay"]), ("momentary relay", momentary),
             ("contact", gpio["contact"]))
    for p, spec in local["inputs"].items():
        taken = [name for name, pins in kinds if p in pins]
        if taken:
            problems.append("local.inputs: GP%d is already a %s in gpio" % (p, taken[0]))
        if spec["relay"] not in outputs:
            problems.append("local.inputs.%d.relay: GP%d is not a relay" % (p, spec["relay"]))
    for key in ("disabled", "failsafe"):
        for p in local[key]:
            if p not in outputs:
                problems.append("local.%s: GP%d is not a relay" % (key, p))
            elif key == "failsafe" and p in momentary:
                problems.append("local.failsafe.%d: a momentary relay releases itself" % p)


def _switch_groups(gpio, mfa_pins, sign_pins, problems):
    """With interlock_mode "switch" a request for one pin of a group switches the others off:
    each pin of a group must need what the others need, or an open pin moves a protected one."""
    if gpio["interlock_mode"] != "switch":
        return
    for i, group in enumerate(gpio["interlock"]):
        needs = [(sorted(mfa_pins.get(p, [])), sorted(sign_pins.get(p, []))) for p in group]
        for p, need in zip(group[1:], needs[1:]):
            if need != needs[0]:
                problems.append("gpio.interlock[%d]: GP%d and GP%d must need the same mfa.pins "
                                "and sign.pins keys with interlock_mode \"switch\" (a request "
                                "for one switches the other off)" % (i, group[0], p))
                break


def _base32_key(key, where, problems):
    if not isinstance(key, str):
        problems.append("%s: key must be a string" % where)
        return None
    try:
        raw = base32_decode(key)
    except ValueError:
        problems.append("%s: key is not Base32 (A-Z, 2-7)" % where)  # never echo a secret
        return None
    if len(raw) < 10:
        problems.append("%s: key is shorter than 80 bits (16 Base32 characters)" % where)
        return None
    weak = _weak(key, "".join(c for c in key.upper() if c not in " =-"))
    if weak:
        problems.append("%s: %s" % (where, weak))
        return None
    return raw


def _weak(key, symbols):
    """Why `key` is no secret, or None. Never says what the key is."""
    if key in EXAMPLE_KEYS:
        return "key is the example from README.md; generate your own"
    if len(set(symbols)) < MIN_KEY_SYMBOLS:
        return "key has fewer than %d different characters; generate a random one" % (
            MIN_KEY_SYMBOLS)
    return None


def _key_name(name, where, problems):
    if not isinstance(name, str):
        problems.append("%s: must name a key in sign.keys" % where)
        return None
    return name


def _pin_map(v, where, problems, item):
    if not isinstance(v, dict):
        problems.append("%s: must map pin numbers to lists" % where)
        return {}
    out = {}
    for k, keys in v.items():
        p = _pin_key(k, out, where, problems)
        at = "%s.%s" % (where, shown(k))
        if not isinstance(keys, list) or not keys:
            problems.append("%s: must be a non-empty list" % at)
            continue
        got = [item(x, at, problems) for x in keys]
        if p is not None:
            out[p] = [x for x in got if x is not None]
    return out


def _section(raw, schema, where, problems):
    if not isinstance(raw, dict):
        problems.append("%s: must be an object" % where)
        raw = {}
    out = {}
    for key in raw:
        if key not in schema:
            problems.append("%s: unknown key '%s'" % (where, shown(key)) if where else "unknown key '%s'" % shown(key))
    for key, (default, kind) in schema.items():
        name = where + "." + key if where else key
        if key in raw:
            out[key] = _check(kind, raw[key], name, problems)
        elif default is REQUIRED:
            problems.append("%s: required" % name)
        else:
            out[key] = default
    return out


def validate(raw):
    """Returns the normalised config (pins as ints, keys decoded) or raises ConfigError."""
    problems = []
    if not isinstance(raw, dict):
        raise ConfigError(["config.json: must be a JSON object"])
    top = dict((k, v) for k, v in raw.items() if k not in SECTIONS)
    cfg = _section(top, _top(), "", problems)
    schemas = _schema()
    for name in SECTIONS:  # in this order: MicroPython's dicts keep none
        schema = schemas[name]
        if name in ("wifi", "mqtt") and name not in raw:
            problems.append("%s: required" % name)
            cfg[name] = _section({}, schema, name, [])  # defaults only; its keys are implied
        else:
            cfg[name] = _section(raw.get(name, {}), schema, name, problems)

    mqtt = cfg["mqtt"]
    if mqtt.get("port") is None:
        mqtt["port"] = 8883 if mqtt["ssl"] is True else 1883
    if mqtt["ssl"] is True and not mqtt["ca_file"] and mqtt["tls_insecure"] is not True:
        problems.append("mqtt.ca_file: required when mqtt.ssl is true (or set mqtt.tls_insecure: true to skip certificate checks)")
    if mqtt["keepalive"] == 0:
        problems.append("mqtt.keepalive: must be at least 1 so outages are detected")

    gpio = cfg["gpio"]
    groups = (("relay", gpio["relay"]), ("momentary", list(gpio["momentary"])), ("contact", gpio["contact"]))
    seen = {}
    for group, pins in groups:
        for p in pins:
            if p in seen:
                problems.append("gpio: GP%d is in both %s and %s" % (p, seen[p], group))
            seen[p] = group
    if not seen:
        problems.append("gpio: configure at least one pin in relay, momentary or contact")
    _relay_options(gpio, problems)
    for p in gpio["notify"]:
        if p not in seen:
            problems.append("gpio.notify: GP%d is not a configured pin" % p)
    outputs = set(gpio["relay"]) | set(gpio["momentary"])
    for section, key in (("mfa", "pins"), ("sign", "pins")):
        for p in cfg[section][key]:
            if p not in outputs:
                problems.append("%s.%s: GP%d is not a relay" % (section, key, p))
    for p, names in cfg["sign"]["pins"].items():
        for n in names:
            if n not in cfg["sign"]["keys"]:
                problems.append("sign.pins.%d: no key named '%s' in sign.keys" % (p, shown(n)))
    _switch_groups(gpio, cfg["mfa"]["pins"], cfg["sign"]["pins"], problems)
    if _is_int(cfg["mfa"]["max_expired_codes"]) and cfg["mfa"]["max_expired_codes"] > 10:
        problems.append("mfa.max_expired_codes: at most 10 (each accepted code makes guessing easier)")
    guard = cfg["guard"]
    for key in ("max_changes", "window_s", "publish_window_s", "max_violations"):
        if guard[key] == 0:
            problems.append("guard.%s: must be at least 1" % key)
    if _is_int(guard["publish_max"]) and guard["publish_max"] < 4:
        problems.append("guard.publish_max: must be at least 4 (state, notify, replies and errors share it)")
    if cfg["name"] == "":
        problems.append("name: must not be empty")
    if cfg["name"] and cfg["name"] == mqtt["client_id"]:
        problems.append("name: must differ from mqtt.client_id "
                        "(whoever knows the client id can take the device's place)")
    _check_homeassistant(cfg, "homeassistant" in raw, problems)
    _check_local(cfg, problems)
    if problems:
        raise ConfigError(problems)
    return cfg


def _check_homeassistant(cfg, given, problems):
    """Without the section the device publishes nothing for Home Assistant (cfg value None)."""
    ha = cfg["homeassistant"]
    if not given:
        cfg["homeassistant"] = None
        return
    gpio = cfg["gpio"]
    contacts, relays = gpio["contact"], gpio["relay"]
    for p in ha["names"]:
        if p not in contacts and p not in relays and p not in gpio["momentary"]:
            problems.append("homeassistant.names: GP%d is not a configured pin" % p)
    for p, cls in ha["device_class"].items():
        if p in contacts:
            if cls not in CONTACT_CLASSES:
                problems.append("homeassistant.device_class.%d: '%s' is not a binary_sensor "
                                "class (e.g. door, garage_door, window)" % (p, cls))
        elif p in relays:
            if cls not in RELAY_CLASSES:
                problems.append("homeassistant.device_class.%d: a relay is 'outlet' or 'switch'" % p)
        else:
            problems.append("homeassistant.device_class: GP%d is not a relay or contact" % p)
    prefix = ha["prefix"]
    if isinstance(prefix, str) and (cfg["mqtt"]["topic"] + "/").startswith(prefix + "/"):
        problems.append("homeassistant.prefix: must not contain mqtt.topic (Home Assistant "
                        "reads everything under it)")


def parse(text):
    """Validate config.json text; ConfigError also covers JSON syntax errors."""
    try:
        raw = json.loads(text)
    except Exception as e:  # MicroPython and CPython raise different types
        raise ConfigError(["config.json: invalid JSON (%s)" % e])
    return validate(raw)


def load(path):
    # The size first: MicroPython's read(n) allocates n bytes at once, and 64 KB in one piece
    # is more than a Pico W's heap may have free once the controller has run.
    try:
        if os.stat(path)[6] > MAX_PAYLOAD:
            raise ConfigError(["%s: larger than %d bytes" % (path, MAX_PAYLOAD)])
        with open(path) as f:
            text = f.read()
    except OSError:
        raise ConfigError(["%s: not found; copy config.json onto the device" % path])
    return parse(text)
