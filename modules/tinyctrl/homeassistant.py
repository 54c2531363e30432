# SPDX-License-Identifier: MIT
# Home Assistant MQTT discovery (issue 14): topics and payloads from the validated config, and
# the task that announces them (its only I/O is the MQTT client it is given).
#
# One retained device-based discovery message, <prefix>/device/<board id>/config, with "dev", "o"
# and "cmps" (Home Assistant 2024.11+). The single topic and its JSON stay as they are: every
# value template takes only the device's own JSON (it carries "FROM") holding the pin's key, and
# renders "" for everything else (text lines, other clients' requests), which Home Assistant
# ignores without logging an error.
import asyncio

from . import __version__ as VERSION

BIRTH = b"online"  # Home Assistant's birth message on <prefix>/status
ONLINE = b"online"
# Home Assistant's binary_sensor and switch device classes (integrations' const.py, 2025.4).
CONTACT_CLASSES = (
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
    "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy",
    "opening", "plug", "power", "presence", "problem", "running", "safety", "smoke", "sound",
    "tamper", "update", "vibration", "window")
RELAY_CLASSES = ("outlet", "switch")
# The device's own JSON with this key; '' (ignored) for anything else. `is mapping` never
# touches an undefined value_json (a text line), so nothing is logged.
_PIN_TEMPLATE = ("{{ value_json.%s if value_json is mapping and 'FROM' in value_json"
                 " and '%s' in value_json else '' }}")
# The single topic's last will, {"STATUS": "offline", "FROM": ...}, is the one "offline".
_OFFLINE_TEMPLATE = ("{{ 'offline' if value_json is mapping and 'FROM' in value_json"
                     " and value_json.STATUS == 'offline' else '' }}")
# Diagnostics come from the stats line: "Uptime=1 days 5 hrs 3 min, ..., Temp=18.6C/65.5F, ..."
_STATS_TEMPLATE = "{%% set m = value | regex_findall('^Uptime=%s') %%}{{ %s if m else '' }}"
_DIAGNOSTICS = (
    # key, name, stats pattern, value, unit, device class, state class
    ("uptime", "Uptime", "([0-9]+) days ([0-9]+) hrs ([0-9]+) min",
     "m[0][0]|int * 1440 + m[0][1]|int * 60 + m[0][2]|int", "min", "duration", "total_increasing"),
    ("rssi", "Wi-Fi signal", ".*, Rssi=(-?[0-9]+)dBm", "m[0]", "dBm", "signal_strength",
     "measurement"),
    ("temperature", "Temperature", ".*, Temp=(-?[0-9.]+)C", "m[0]", "\u00b0C", "temperature",
     "measurement"),
)


def discovery_topic(ha, board_id):
    return "%s/device/%s/config" % (ha["prefix"], board_id)


def birth_topic(ha):
    return ha["prefix"] + "/status"


def status_topic(topic):
    """Where the device says `online` (not retained: see README, "Home Assistant")."""
    return topic + "/status"


def protected(cfg):
    """Pins that need an MFA code or a signature: Home Assistant can compute neither."""
    return set(cfg["mfa"]["pins"]) | set(cfg["sign"]["pins"])


def _string(s):
    """A JSON string in ASCII only (so its length is its size in bytes)."""
    if all(" " <= c <= "~" for c in s):  # the usual case, without a piece per character
        return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')
    out = ['"']
    for c in s:
        n = ord(c)
        if c == '"' or c == "\\":
            out.append("\\" + c)
        elif 32 <= n < 127:
            out.append(c)
        elif n < 0x10000:
            out.append("\\u%04x" % n)
        else:  # outside the BMP: a UTF-16 surrogate pair (RFC 8259, section 7)
            n -= 0x10000
            out.append("\\u%04x\\u%04x" % (0xD800 | n >> 10, 0xDC00 | n & 0x3FF))
    out.append('"')
    return "".join(out)


def _component(pairs):
    return "{" + ",".join('"%s":%s' % kv for kv in pairs) + "}"


def _pin_component(cfg, pin, read_only, board_id):
    g, ha = cfg["gpio"], cfg["homeassistant"]
    key = "%s%d" % (g["prefix"], pin)
    pairs = [("name", _string(ha["names"].get(pin, key))),
             ("uniq_id", _string("%s_%s" % (board_id, key))), ("qos", "1")]
    if pin in g["contact"] or read_only:
        pairs.append(("p", '"binary_sensor"'))
        pairs.append(("val_tpl", _string(_PIN_TEMPLATE % (key, key))))
        pairs.append(("pl_on", '"1"'))
        pairs.append(("pl_off", '"0"'))
        if pin in g["contact"] and pin in ha["device_class"]:
            pairs.append(("dev_cla", _string(ha["device_class"][pin])))
    elif pin in g["momentary"]:
        pairs.append(("p", '"button"'))
        pairs.append(("pl_prs", _string('{"%s": 1}' % key)))
    else:
        pairs.append(("p", '"switch"'))
        pairs.append(("val_tpl", _string(_PIN_TEMPLATE % (key, key))))
        pairs.append(("pl_on", _string('{"%s": 1}' % key)))
        pairs.append(("pl_off", _string('{"%s": 0}' % key)))
        pairs.append(("stat_on", '"1"'))
        pairs.append(("stat_off", '"0"'))
        if pin in ha["device_class"]:
            pairs.append(("dev_cla", _string(ha["device_class"][pin])))
    return key, _component(pairs)


def announcement(cfg, device, board_id, diagnostics):
    """Yields the discovery payload in pieces. `device` is the name the device's JSON carries
    in "FROM", `board_id` the board's unique id (default client id `tinyctrl-<board id>`),
    stable across reboots; `diagnostics` the sensors the board has, e.g. ("uptime", "rssi")."""
    topic = cfg["mqtt"]["topic"]
    ha = cfg["homeassistant"]
    yield '{"dev":{"ids":[%s],"name":%s,"mf":"tinyctrl","mdl":"Raspberry Pi Pico W","sw":%s},' % (
        _string(board_id), _string(ha["name"] or device), _string(VERSION))
    yield '"o":{"name":"tinyctrl","sw":%s},"stat_t":%s,"cmd_t":%s,' % (
        _string(VERSION), _string(topic), _string(topic))
    # Home Assistant shares only topics and availability from here (mqtt/schemas.py,
    # SHARED_OPTIONS), so each component carries its own qos.
    # Availability: `online` on <topic>/status, `offline` from the single topic's last will;
    # whichever came last counts.
    yield '"avty_mode":"latest","avty":[{"t":%s},{"t":%s,"val_tpl":%s}],"cmps":{' % (
        _string(status_topic(topic)), _string(topic), _string(_OFFLINE_TEMPLATE))
    read_only = protected(cfg)
    g = cfg["gpio"]
    sep = ""
    for pin in g["relay"] + sorted(g["momentary"]) + g["contact"]:
        key, body = _pin_component(cfg, pin, pin in read_only, board_id)
        yield '%s"%s":%s' % (sep, key, body)
        sep = ","
    for key, name, pattern, value, unit, dev_cla, stat_cla in _DIAGNOSTICS:
        if key in diagnostics:
            yield '%s"%s":%s' % (sep, key, _component((
                ("p", '"sensor"'), ("name", _string(name)),
                ("uniq_id", _string("%s_%s" % (board_id, key))), ("ent_cat", '"diagnostic"'),
                ("val_tpl", _string(_STATS_TEMPLATE % (pattern, value))),
                ("unit_of_meas", _string(unit)), ("dev_cla", _string(dev_cla)),
                ("stat_cla", _string(stat_cla)))))
            sep = ","
    yield '%s"stats":%s}}' % (sep, _component((
        ("p", '"button"'), ("name", '"Update diagnostics"'),
        ("uniq_id", _string(board_id + "_stats")), ("ent_cat", '"diagnostic"'), ("qos", "1"),
        ("pl_prs", _string('{"CMD": "stats"}')))))


def payload(cfg, device, board_id, diagnostics):
    """The discovery payload as one bytearray, or b"" (removes the device) with discovery off.
    Built in two passes over announcement() so the heap holds one copy plus one small piece,
    never the pieces and their join."""
    if not cfg["homeassistant"]["discovery"]:
        return b""
    size = 0
    for piece in announcement(cfg, device, board_id, diagnostics):
        size += len(piece)
    buf = bytearray(size)
    i = 0
    for piece in announcement(cfg, device, board_id, diagnostics):
        buf[i:i + len(piece)] = piece.encode()
        i += len(piece)
    return buf


class Announcer:
    """Announces the device after each connect and each Home Assistant birth: discovery (or its
    removal), `online`, then the state and the stats line the entities read. Births coalesce,
    and at most one announcement goes per publish window, so a flood of births cannot blow
    the flood fuse."""

    def __init__(self, cfg, hw, client, outbox, commands, board_id):
        self.cfg = cfg
        self.ha = cfg["homeassistant"]
        self.hw = hw
        self.client = client
        self.outbox = outbox
        self.commands = commands
        self.board_id = board_id
        self.birth = birth_topic(self.ha).encode()
        self._wake = asyncio.Event()

    async def connected(self, client):
        await client.subscribe(birth_topic(self.ha), 1)
        self._wake.set()

    def message(self, topic, msg):
        """True if this was Home Assistant's birth topic, which is handled here."""
        if topic != self.birth:
            return False
        if msg == BIRTH:  # Home Assistant (re)started: announce again
            self._wake.set()
        return True

    async def _paced(self):
        """False once the flood fuse has blown; else a publish may go now."""
        pacer, now = self.outbox.pacer, self.outbox.now
        wait = pacer.wait_ms(now())
        while wait:
            await asyncio.sleep_ms(wait)
            wait = pacer.wait_ms(now())
        return pacer.sent(now())

    async def run(self):
        topic = self.cfg["mqtt"]["topic"]
        while not self.outbox.halted:
            await self._wake.wait()
            self._wake.clear()
            diagnostics = ["uptime"]
            if self.hw.temperature_c() is not None:
                diagnostics.append("temperature")
            if self.hw.wifi_rssi() is not None:
                diagnostics.append("rssi")
            if not await self._paced():
                return
            msg = payload(self.cfg, self.cfg["name"], self.board_id, diagnostics)
            await self.client.publish(discovery_topic(self.ha, self.board_id), msg, True, 1)
            msg = None  # the announcement is large: let it go before the next one is built
            if not await self._paced():
                return
            await self.client.publish(status_topic(topic), ONLINE, False, 1)
            self.commands.run("refresh")
            if self.ha["discovery"]:
                self.commands.run("stats")
            await asyncio.sleep(self.cfg["guard"]["publish_window_s"])
