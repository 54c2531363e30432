# SPDX-License-Identifier: MIT
# config.json: loading, defaults and the one validator, for the device and for a PC.
# Every problem is reported with the key it concerns; nothing here touches hardware.
#
# The validator reads as a spec: each section is a table of rows, key -> (default, checker,
# bounds...), each checker a small function that appends what is wrong and returns the value
# normalised; then each section's cross-field rules, which never read a field whose own check
# failed; then one normalising pass.
import json
import os

from .clock import TIMEZONES, utc_offset_s
from .homeassistant import CONTACT_CLASSES, RELAY_CLASSES
from .totp import base32_decode
from .update import public_key

# GPIOs a user can wire on the Pico W (23, 24, 25 and 29 belong to the Wi-Fi chip).
PICO_W_PINS = tuple(range(0, 23)) + (26, 27, 28)
MAX_PAYLOAD = 64 * 1024
REQUIRED = object()
SECTIONS = (
    "wifi",
    "mqtt",
    "gpio",
    "mfa",
    "sign",
    "guard",
    "ntp",
    "homeassistant",
    "local",
    "update",
)
# Bounds on what protects a pin: beyond them a protection is gone in all but name. README.md
# ("Limits") and SECURITY.md say why.
GRANT_S = (1, 300)  # mfa.grant_s, sign.window_s: a captured grant or request lives this long
AUTH_FAILURES = (1, 10)  # guesses before a lockout
AUTH_LOCKOUT_S = (1, 3600)  # 0 would mean no lockout at all
MAX_EXPIRED_CODES = 10  # each accepted code makes guessing easier
MIN_KEY_SYMBOLS = 5  # distinct characters in a key: AAAAAAAAAAAAAAAA is no secret
# Keys printed in README.md's example: published, so no secret.
EXAMPLE_KEYS = ("SECRETKEYA234567", "SECRETKEYB234567", "a long random string")
COUNT = (0, 10**6)
PERIOD = (-1, 10**8)  # seconds; -1 turns it off
POWER_ON_MODES = ("off", "on", "restore")
MAX_ON_S = (1, 7 * 86400)
DEAD_MS = (0, 10000)
TIMED_RELAYS = 8  # max_on_s relays on after a reset: 4 bits each of one scratch word (relays.py)
MIN_PUBLISH_MAX = 4  # state, notify, replies and errors share it
MAX_SERVERS = 8  # mqtt.servers: the nodes of one broker cluster


class ConfigError(Exception):
    def __init__(self, problems):
        super().__init__("; ".join(problems))
        self.problems = problems


def shown(text):
    """`text` for an error message if it looks like a name, else a placeholder: it may be a
    secret put in the wrong place, and error messages go to the console."""
    text = str(text)
    if len(text) < 16 and all(c.isalpha() or c.isdigit() or c in "_-." for c in text):
        return text
    return "<not shown>"


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


# ---- checkers: (value, where, problems, *bounds) -> the value, normalised


def _str(v, where, problems):
    if not isinstance(v, str):
        problems.append("%s: must be a string" % where)
    return v


def _text(v, where, problems):
    if isinstance(_str(v, where, problems), str) and not v:
        problems.append("%s: must not be empty" % where)
    return v


def _letters(v, where, problems, most):
    if isinstance(_str(v, where, problems), str) and not (v.isalpha() and 0 < len(v) <= most):
        problems.append("%s: must be 1-%d letters" % (where, most))
    return v


def _topic(v, where, problems):
    if isinstance(_str(v, where, problems), str) and (
        not v or "+" in v or "#" in v or len(v) > 200
    ):
        problems.append("%s: must be a topic name without wildcards" % where)
    return v


def _client_id(v, where, problems):
    if isinstance(_str(v, where, problems), str) and (
        len(v) > 64 or any(not (c.isalpha() or c.isdigit() or c in "_-.") for c in v)
    ):
        problems.append("%s: use at most 64 letters, digits, '_', '-', '.'" % where)
    return v


def _timezone(v, where, problems):
    if (
        isinstance(_str(v, where, problems), str)
        and v not in TIMEZONES
        and utc_offset_s(v) is None
    ):
        problems.append(
            "%s: %r is not one of %s or an offset like +05:30" % (where, v, ", ".join(TIMEZONES))
        )
    return v


def _bool(v, where, problems):
    if not isinstance(v, bool):
        problems.append("%s: must be true or false" % where)
    return v


def _whole(v, where, problems, lo, hi):
    if not _is_int(v) or not lo <= v <= hi:
        extra = " (-1 turns it off)" if lo == -1 else ""
        problems.append("%s: must be a whole number from %d to %d%s" % (where, lo, hi, extra))
    return v


def _at_least_one(v, where, problems):
    if _whole(v, where, problems, *COUNT) == 0:
        problems.append("%s: must be at least 1" % where)
    return v


def _address(item):
    """ "host" or "host:port" -> (host, port text or None)."""
    host, colon, port = item.rpartition(":")
    return (host, port) if colon else (item, None)


def _servers(v, where, problems):
    # mqtt.servers: ["host", "host:port", ...], the nodes of ONE cluster (README)
    if not isinstance(v, list) or not 1 <= len(v) <= MAX_SERVERS:
        problems.append(
            "%s: must be a list of 1-%d addresses (host or host:port)" % (where, MAX_SERVERS)
        )
        return v
    for i, item in enumerate(v):
        host, port = _address(item) if isinstance(item, str) else ("", None)
        if (
            not host
            or len(item) > 255
            or any(c in " /#+" for c in item)
            or port is not None
            and not (port.isdigit() and 1 <= int(port) <= 65535)
        ):
            problems.append("%s[%d]: must be a host or host:port (port 1-65535)" % (where, i))
    return v


def _keepalive(v, where, problems):
    if _whole(v, where, problems, 0, 65535) == 0:
        problems.append("%s: must be at least 1 so outages are detected" % where)
    return v


def _mqtt_version(v, where, problems):
    if v != "auto" and not (_is_int(v) and v in (3, 5)):
        problems.append('%s: must be 5, 3 (MQTT 3.1.1) or "auto"' % where)
    return v


def _expired_codes(v, where, problems):
    if _is_int(_whole(v, where, problems, *COUNT)) and v > MAX_EXPIRED_CODES:
        problems.append("%s: at most 10 (each accepted code makes guessing easier)" % where)
    return v


def _publish_max(v, where, problems):
    if _is_int(_whole(v, where, problems, *COUNT)) and v < MIN_PUBLISH_MAX:
        problems.append(
            "%s: must be at least 4 (state, notify, replies and errors share it)" % where
        )
    return v


def _number(v, where, problems):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        problems.append("%s: must be a number >= 0" % where)
    return v


def _choice(v, where, problems, choices):
    if v not in choices:
        problems.append("%s: %r is not one of %s" % (where, v, ", ".join(choices)))
    return v


def _pin(v, where, problems):
    """A pin number from 16 or "16"; None (and a problem) if invalid."""
    if isinstance(v, str) and v.isdigit():
        v = int(v)
    if not _is_int(v):
        problems.append("%s: '%s' is not a pin number" % (where, shown(v)))
        return None
    if v not in PICO_W_PINS:
        problems.append("%s: GP%d does not exist on the Pico W (GP0-GP22, GP26-GP28)" % (where, v))
        return None
    return v


def _pins(v, where, problems):
    if not isinstance(v, list):
        problems.append("%s: must be a list of pin numbers" % where)
        return []
    pins = [_pin(p, where, problems) for p in v]
    out = []
    for p in pins:
        if p in out:
            problems.append("%s: GP%d is listed twice" % (where, p))
        elif p is not None:
            out.append(p)
    return sorted(out)


def _pin_map(v, where, problems, item, example):
    """A map pin -> item(value, where, problems), as {pin: value} without the invalid items.
    "18" and "018" are one pin: listed twice, which value would count?"""
    if not isinstance(v, dict):
        problems.append("%s: must map %s" % (where, example))
        return {}
    out = {}
    for k, value in v.items():
        p = _pin(k, where, problems)
        got = item(value, "%s.%s" % (where, shown(k)), problems)
        if p is None or got is None:
            continue
        if p in out:
            problems.append("%s: GP%d is listed twice" % (where, p))
        else:
            out[p] = got
    return out


def _seconds_held(secs, where, problems):
    if isinstance(secs, bool) or not isinstance(secs, (int, float)) or not 0 < secs <= 3600:
        problems.append("%s: wait must be a number of seconds from 0 to 3600" % where)
        return None
    return secs


def _momentary(v, where, problems):
    if isinstance(v, list):  # seed style: pins only, 2 s each
        v = dict((str(p), 2) for p in v)
    return _pin_map(v, where, problems, _seconds_held, 'pin to seconds, e.g. {"18": 2}')


def _pin_text(text, where, problems):
    if not isinstance(text, str) or not 0 < len(text) <= 64:
        problems.append("%s: must be text of 1-64 characters" % where)
        return None
    return text


def _pin_texts(v, where, problems):
    return _pin_map(v, where, problems, _pin_text, 'pin numbers to text, e.g. {"16": "Light"}')


def _key_list(item):
    def check(keys, where, problems):
        if not isinstance(keys, list) or not keys:
            problems.append("%s: must be a non-empty list" % where)
            return None
        got = [item(x, where, problems) for x in keys]
        return [x for x in got if x is not None]

    return check


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
            MIN_KEY_SYMBOLS
        )
    return None


def _key_name(name, where, problems):
    if not isinstance(name, str):
        problems.append("%s: must name a key in sign.keys" % where)
        return None
    return name


def _mfa_pins(v, where, problems):
    return _pin_map(v, where, problems, _key_list(_base32_key), "pin numbers to lists")


def _sign_pins(v, where, problems):
    return _pin_map(v, where, problems, _key_list(_key_name), "pin numbers to lists")


def _sign_keys(v, where, problems):
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
            problems.append(
                "%s: same key as %s.%s; give each client its own" % (at, where, shown(seen[key]))
            )
        else:
            seen[key] = name
    return v


# Power-on state, auto-off and interlocks (Tasmota's PowerOnState, PulseTime and Interlock;
# ESPHome's restore_mode and interlock): their syntax here, how they fit the pins in
# _gpio_rules.


def _power_on_mode(mode, where, problems):
    if mode not in POWER_ON_MODES:
        return _choice(mode, where, problems, POWER_ON_MODES) and None
    return mode


def _power_on_state(v, where, problems):
    return _pin_map(v, where, problems, _power_on_mode, 'pin to a value, e.g. {"16": "restore"}')


def _on_seconds(secs, where, problems):
    lo, hi = MAX_ON_S
    if not _is_int(secs) or not lo <= secs <= hi:
        problems.append("%s: must be a whole number of seconds from %d to %d" % (where, lo, hi))
        return None
    return secs


def _max_on_s(v, where, problems):
    return _pin_map(v, where, problems, _on_seconds, 'pin to a value, e.g. {"16": 600}')


def _dead_ms(v, where, problems):
    if not _is_int(v) or not DEAD_MS[0] <= v <= DEAD_MS[1]:
        problems.append("%s: must be a whole number of ms from 0 to %d" % (where, DEAD_MS[1]))
    return v


def _interlock(v, where, problems):
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


# Local control: inputs that move relays without the broker (Tasmota's SwitchMode, ESPHome's
# binary_sensor automations), and what a relay does when the broker is gone; their syntax
# here, how they fit the pins in _local_rules.
INPUT_MODES = ("toggle", "follow", "press")
LONG_ACTIONS = ("off", "on", "off_group", "all_off")
FAILSAFE_STATES = ("off", "on")
INPUT_EXAMPLE = '{"4": {"relay": 16, "mode": "toggle"}}'
FAILSAFE_EXAMPLE = '{"19": {"after_s": 300, "state": "off"}}'


def _ms(v, where, problems, lo, hi):
    if not _is_int(v) or not lo <= v <= hi:
        problems.append("%s: must be a whole number of ms from %d to %d" % (where, lo, hi))
    return v


def _object(item, where, problems, keys, example):
    """`item` if it is an object of only `keys`, else None (and a problem)."""
    if not isinstance(item, dict):
        problems.append("%s: must be an object, e.g. %s" % (where, example))
        return None
    unknown = [x for x in item if x not in keys]
    if unknown:
        problems.append("%s: unknown key '%s'" % (where, shown(unknown[0])))
    return item


def _input(item, where, problems):
    if _object(item, where, problems, ("relay", "mode", "invert", "long"), INPUT_EXAMPLE) is None:
        return None
    relay = None
    if "relay" not in item:
        problems.append("%s.relay: required" % where)
    else:
        relay = _pin(item["relay"], where + ".relay", problems)
    mode, long = item.get("mode", "toggle"), item.get("long")
    invert = _bool(item.get("invert", False), where + ".invert", problems)
    if mode not in INPUT_MODES:
        problems.append("%s.mode: %r is not one of %s" % (where, mode, ", ".join(INPUT_MODES)))
    elif long is not None and long not in LONG_ACTIONS:
        problems.append("%s.long: %r is not one of %s" % (where, long, ", ".join(LONG_ACTIONS)))
    elif long is not None and mode != "press":
        problems.append('%s.long: only a push button (mode "press") has a long press' % where)
    elif relay is not None and invert in (True, False):
        return {"relay": relay, "mode": mode, "invert": invert, "long": long}
    return None


def _local_inputs(v, where, problems):
    return _pin_map(v, where, problems, _input, "pins to objects, e.g. " + INPUT_EXAMPLE)


def _failsafe_item(item, where, problems):
    if _object(item, where, problems, ("after_s", "state"), FAILSAFE_EXAMPLE) is None:
        return None
    secs, state = item.get("after_s"), item.get("state", "off")
    if not _is_int(secs) or not MAX_ON_S[0] <= secs <= MAX_ON_S[1]:
        problems.append(
            "%s.after_s: must be a whole number of seconds from 1 to %d" % (where, MAX_ON_S[1])
        )
    elif state not in FAILSAFE_STATES:
        problems.append(
            "%s.state: %r is not one of %s" % (where, state, ", ".join(FAILSAFE_STATES))
        )
    else:
        return {"after_s": secs, "state": state}
    return None


def _failsafe(v, where, problems):
    return _pin_map(
        v, where, problems, _failsafe_item, "pins to objects, e.g. " + FAILSAFE_EXAMPLE
    )


def _update_key(v, where, problems):
    """The owner's public update key (tinyctrl key new --update), or "": no updates."""
    if isinstance(_str(v, where, problems), str) and v and public_key(v) is None:
        problems.append(
            "%s: must be an ECDSA P-256 public key, 130 hex digits starting 04 "
            "(tinyctrl key new --update writes it)" % where
        )
    return v


# ---- the schema: section -> key -> (default, checker, bounds...). Built on demand: the
# tables are garbage once config.json is validated, not heap for life.


def _schema():
    return {
        "": {
            "publish_interval_s": (7200, _whole) + PERIOD,
            "ip_provider": ("https://jsonip.com", _str),
            "timezone": ("EST", _timezone),
            "watchdog_s": (30, _whole) + PERIOD,
            "name": ("tinyctrl", _client_id),  # published in "FROM"; the client id never is
            "getip_wait_s": (60, _whole) + COUNT,
        },
        "wifi": {
            "ssid": (REQUIRED, _text),
            "password": ("", _str),
            "max_retries": (30, _whole) + COUNT,
            "reset_delay_s": (600, _whole) + PERIOD,
        },
        "mqtt": {
            "server": (None, _text),  # one of server and servers is required
            "servers": (None, _servers),  # None: [server]
            "port": (None, _whole, 1, 65535),  # None: 8883 with ssl, else 1883
            "ssl": (False, _bool),
            "ca_file": ("", _str),
            "tls_insecure": (False, _bool),
            "user": ("", _str),
            "password": ("", _str),
            "client_id": ("", _client_id),  # "": tinyctrl-<board id>
            "topic": (REQUIRED, _topic),
            "keepalive": (120, _keepalive),
            "version": ("auto", _mqtt_version),  # 5, 3 (3.1.1), or "auto": 5, else 3.1.1
            "session_expiry_s": (86400, _whole, 0, 0xFFFFFFFF),  # MQTT 5 Session Expiry
        },
        "gpio": {
            "prefix": ("GP", _letters, 8),
            "relay": ([], _pins),
            "momentary": ({}, _momentary),
            "contact": ([], _pins),
            "notify": ([], _pins),
            "active_low": (True, _bool),
            "power_on_state": ({}, _power_on_state),
            "restore_after_power_cut": ("off", _choice, ("off", "flash")),
            "max_on_s": ({}, _max_on_s),
            "interlock": ([], _interlock),
            "interlock_mode": ("refuse", _choice, ("refuse", "switch")),
            "interlock_dead_ms": (0, _dead_ms),
        },
        "mfa": {
            "keyname": ("MFA", _letters, 16),
            "max_expired_codes": (5, _expired_codes),
            "grant_s": (30, _whole) + GRANT_S,
            "pins": ({}, _mfa_pins),
        },
        "sign": {
            "keys": ({}, _sign_keys),
            "pins": ({}, _sign_pins),
            "window_s": (60, _whole) + GRANT_S,
        },
        "guard": {
            "cooldown_s": (2, _number),
            "max_changes": (5, _at_least_one),
            "window_s": (60, _at_least_one),
            "max_violations": (3, _at_least_one),
            "publish_max": (20, _publish_max),
            "publish_window_s": (10, _at_least_one),
            "auth_failures": (3, _whole) + AUTH_FAILURES,
            "auth_lockout_s": (30, _whole) + AUTH_LOCKOUT_S,
        },
        "ntp": {
            "host": ("pool.ntp.org", _text),
            "port": (123, _whole, 1, 65535),
            "interval_s": (86400, _whole) + PERIOD,
            "force_wait_s": (180, _whole) + COUNT,
        },
        "homeassistant": {
            "discovery": (False, _bool),
            "prefix": ("homeassistant", _topic),
            "name": ("", _str),
            "names": ({}, _pin_texts),
            "device_class": ({}, _pin_texts),
        },
        "local": {  # what the board does by itself: wall switches, buttons, the broker gone
            "inputs": ({}, _local_inputs),
            "debounce_ms": (50, _ms, 0, 1000),
            "long_press_ms": (800, _ms, 200, 10000),
            "disabled": ([], _pins),
            "failsafe": ({}, _failsafe),
        },
        "update": {  # firmware updates over the broker (tinyctrl update)
            "key": ("", _update_key),
        },
    }


def defaults():
    """Every optional key with its default, section by section (top-level keys at the top),
    as config.json would give them."""
    out = {}
    for name, rows in _schema().items():
        section = dict(
            (k, row[0]) for k, row in rows.items() if row[0] is not REQUIRED and row[0] is not None
        )
        if name:
            out[name] = section
        else:
            out.update(section)
    return out


def _section(raw, rows, where, problems, bad):
    """The section with defaults filled in; `bad` collects "where.key" of every field that is
    missing or failed its own check, so no cross-field rule reads it."""
    if not isinstance(raw, dict):
        problems.append("%s: must be an object" % where)
        raw = {}
    out = {}
    for key in raw:
        if key not in rows:
            problems.append(
                "%s: unknown key '%s'" % (where, shown(key))
                if where
                else "unknown key '%s'" % shown(key)
            )
    for key, row in rows.items():
        name = where + "." + key if where else key
        if key in raw:
            before = len(problems)
            out[key] = row[1](raw[key], name, problems, *row[2:])
            if len(problems) > before:
                bad.add(name)
        elif row[0] is REQUIRED:
            problems.append("%s: required" % name)
            bad.add(name)
        else:
            out[key] = row[0]
    return out


# ---- cross-field rules, per section. Each reads only fields not in `bad`.


def _mqtt_rules(cfg, bad, problems):
    mqtt = cfg["mqtt"]
    given = [k for k in ("server", "servers") if mqtt[k] is not None or "mqtt." + k in bad]
    if not given and "mqtt" not in bad:
        problems.append("mqtt.server: required")
    elif len(given) == 2:
        problems.append("mqtt.servers: give mqtt.server or mqtt.servers, not both")
    if mqtt["ssl"] is True and not mqtt["ca_file"] and mqtt["tls_insecure"] is not True:
        problems.append(
            "mqtt.ca_file: required when mqtt.ssl is true (or set mqtt.tls_insecure: "
            "true to skip certificate checks)"
        )


def _gpio_rules(cfg, bad, problems):
    gpio = cfg["gpio"]
    momentary = gpio["momentary"]
    seen = {}
    for group, pins in (
        ("relay", gpio["relay"]),
        ("momentary", sorted(momentary)),
        ("contact", gpio["contact"]),
    ):
        for p in pins:
            if p in seen:
                problems.append("gpio: GP%d is in both %s and %s" % (p, seen[p], group))
            seen[p] = group
    if not seen:
        problems.append("gpio: configure at least one pin in relay, momentary or contact")
    outputs = set(gpio["relay"]) | set(momentary)
    for p, mode in gpio["power_on_state"].items():
        if p not in outputs:
            problems.append("gpio.power_on_state: GP%d is not a relay" % p)
        elif p in momentary and mode != "off":
            problems.append("gpio.power_on_state.%d: a momentary relay always starts off" % p)
    for p in gpio["max_on_s"]:
        if p in momentary:
            problems.append(
                "gpio.max_on_s.%d: a momentary relay already has its wait in gpio.momentary" % p
            )
        elif p not in outputs:
            problems.append("gpio.max_on_s: GP%d is not a relay" % p)
    timed = [p for p in gpio["max_on_s"] if gpio["power_on_state"].get(p, "off") != "off"]
    if len(timed) > TIMED_RELAYS:
        problems.append(
            'gpio.max_on_s: at most %d relays with a power_on_state "on" or '
            '"restore" (the time each has been on is kept across a reset)' % TIMED_RELAYS
        )
    grouped = {}
    for i, group in enumerate(gpio["interlock"]):
        ons = [p for p in group if gpio["power_on_state"].get(p) == "on"]
        if len(ons) > 1:
            problems.append(
                "gpio.interlock[%d]: GP%d and GP%d are both on at power-on "
                "(gpio.power_on_state)" % (i, ons[0], ons[1])
            )
        for p in group:
            if p in grouped:
                problems.append("gpio.interlock: GP%d is in two groups" % p)
            elif p in gpio["contact"]:
                problems.append("gpio.interlock[%d]: GP%d is a contact, not a relay" % (i, p))
            elif p not in outputs:
                problems.append("gpio.interlock[%d]: GP%d is not a relay" % (i, p))
            grouped[p] = i
    for p in gpio["notify"]:
        if p not in seen:
            problems.append("gpio.notify: GP%d is not a configured pin" % p)


def _auth_rules(cfg, bad, problems):
    gpio, mfa, sign = cfg["gpio"], cfg["mfa"], cfg["sign"]
    outputs = set(gpio["relay"]) | set(gpio["momentary"])
    for section, key in (("mfa", "pins"), ("sign", "pins")):
        for p in cfg[section][key]:
            if p not in outputs:
                problems.append("%s.%s: GP%d is not a relay" % (section, key, p))
    for p, names in sign["pins"].items():
        for n in names:
            if n not in sign["keys"]:
                problems.append("sign.pins.%d: no key named '%s' in sign.keys" % (p, shown(n)))
    # With interlock_mode "switch" an on for one pin of a group switches the others off: each
    # pin must need what the others need, or an open pin moves a protected one.
    if gpio["interlock_mode"] != "switch" or "gpio.interlock_mode" in bad:
        return
    for i, group in enumerate(gpio["interlock"]):
        needs = [(sorted(mfa["pins"].get(p, [])), sorted(sign["pins"].get(p, []))) for p in group]
        for p, need in zip(group[1:], needs[1:]):
            if need != needs[0]:
                problems.append(
                    "gpio.interlock[%d]: GP%d and GP%d must need the same mfa.pins "
                    'and sign.pins keys with interlock_mode "switch" (a request '
                    "for one switches the other off)" % (i, group[0], p)
                )
                break


def _top_rules(cfg, bad, problems):
    if "name" in bad:
        return
    if cfg["name"] == "":
        problems.append("name: must not be empty")
    elif "mqtt.client_id" not in bad and cfg["name"] == cfg["mqtt"]["client_id"]:
        problems.append(
            "name: must differ from mqtt.client_id "
            "(whoever knows the client id can take the device's place)"
        )


def _homeassistant_rules(cfg, bad, problems):
    ha, gpio = cfg["homeassistant"], cfg["gpio"]
    contacts, relays = gpio["contact"], gpio["relay"]
    for p in ha["names"]:
        if p not in contacts and p not in relays and p not in gpio["momentary"]:
            problems.append("homeassistant.names: GP%d is not a configured pin" % p)
    for p, cls in ha["device_class"].items():
        if p in contacts:
            if cls not in CONTACT_CLASSES:
                problems.append(
                    "homeassistant.device_class.%d: '%s' is not a binary_sensor "
                    "class (e.g. door, garage_door, window)" % (p, cls)
                )
        elif p in relays:
            if cls not in RELAY_CLASSES:
                problems.append(
                    "homeassistant.device_class.%d: a relay is 'outlet' or 'switch'" % p
                )
        else:
            problems.append("homeassistant.device_class: GP%d is not a relay or contact" % p)
    if "homeassistant.prefix" in bad or "mqtt.topic" in bad:
        return
    if (cfg["mqtt"]["topic"] + "/").startswith(ha["prefix"] + "/"):
        problems.append(
            "homeassistant.prefix: must not contain mqtt.topic (Home Assistant "
            "reads everything under it)"
        )


def _local_rules(cfg, bad, problems):
    local, gpio = cfg["local"], cfg["gpio"]
    momentary = gpio["momentary"]
    outputs = set(gpio["relay"]) | set(momentary)
    kinds = (
        ("relay", gpio["relay"]),
        ("momentary relay", momentary),
        ("contact", gpio["contact"]),
    )
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


RULES = (_mqtt_rules, _gpio_rules, _auth_rules, _top_rules, _local_rules)


def _normalise(cfg, folder, board_id):
    """The one place a validated config gets what is implied: the broker port from mqtt.ssl,
    mqtt.servers as (host, port) pairs (mqtt.server the first),
    the CA file beside config.json, the default client id, no Home Assistant section (None)."""
    mqtt = cfg["mqtt"]
    if mqtt["port"] is None:
        mqtt["port"] = 8883 if mqtt["ssl"] else 1883
    nodes = []  # mqtt.servers as (host, port), mqtt.port where an address has none
    for item in mqtt["servers"] or [mqtt["server"]]:
        host, port = _address(item)
        nodes.append((host, mqtt["port"] if port is None else int(port)))
    mqtt["servers"] = nodes
    mqtt["server"], mqtt["port"] = nodes[0]  # the first node is tried first
    ca = mqtt["ca_file"]
    if ca and folder is not None and not ca.startswith("/"):
        mqtt["ca_file"] = folder + "/" + ca  # "" is the board's root
    if not mqtt["client_id"] and board_id:
        mqtt["client_id"] = board_id


def validate(raw, folder=None, board_id=None):
    """Returns the normalised config (pins as ints, keys decoded) or raises ConfigError.
    `folder` is where config.json lies, without the last "/" (mqtt.ca_file is beside it),
    `board_id` the default mqtt.client_id (tinyctrl-<board id>)."""
    problems = []
    if not isinstance(raw, dict):
        raise ConfigError(["config.json: must be a JSON object"])
    rows = _schema()
    bad = set()
    top = dict((k, v) for k, v in raw.items() if k not in SECTIONS)
    cfg = _section(top, rows[""], "", problems, bad)
    for name in SECTIONS:  # in this order: MicroPython's dicts keep none
        if name in ("wifi", "mqtt") and name not in raw:
            problems.append("%s: required" % name)
            bad.add(name)
            cfg[name] = _section({}, rows[name], name, [], bad)  # its keys are implied
        else:
            cfg[name] = _section(raw.get(name, {}), rows[name], name, problems, bad)
    for rule in RULES:
        rule(cfg, bad, problems)
    if "homeassistant" in raw:
        _homeassistant_rules(cfg, bad, problems)
    else:
        cfg["homeassistant"] = None  # the device publishes nothing for Home Assistant
    if problems:
        raise ConfigError(problems)
    _normalise(cfg, folder, board_id)
    return cfg


def parse(text, folder=None, board_id=None):
    """Validate config.json text; ConfigError also covers JSON syntax errors."""
    try:
        raw = json.loads(text)
    except Exception as e:  # MicroPython and CPython raise different types
        raise ConfigError(["config.json: invalid JSON (%s)" % e])
    return validate(raw, folder, board_id)


def load(path, board_id=None):
    # The size first: MicroPython's read(n) allocates n bytes at once, and 64 KB in one piece
    # is more than a Pico W's heap may have free once the controller has run.
    try:
        if os.stat(path)[6] > MAX_PAYLOAD:
            raise ConfigError(["%s: larger than %d bytes" % (path, MAX_PAYLOAD)])
        with open(path) as f:
            text = f.read()
    except OSError:
        raise ConfigError(["%s: not found; copy config.json onto the device" % path])
    return parse(text, path.rsplit("/", 1)[0] if "/" in path else None, board_id)
