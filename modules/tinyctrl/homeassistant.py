# SPDX-License-Identifier: MIT
# Home Assistant MQTT discovery: topics and payloads from the validated config, and
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
    "battery",
    "battery_charging",
    "carbon_monoxide",
    "cold",
    "connectivity",
    "door",
    "garage_door",
    "gas",
    "heat",
    "light",
    "lock",
    "moisture",
    "motion",
    "moving",
    "occupancy",
    "opening",
    "plug",
    "power",
    "presence",
    "problem",
    "running",
    "safety",
    "smoke",
    "sound",
    "tamper",
    "update",
    "vibration",
    "window",
)
RELAY_CLASSES = ("outlet", "switch")
# The device's own JSON with this key; '' (ignored) for anything else. `is mapping` never
# touches an undefined value_json (a text line), so nothing is logged. In three parts around the
# key, so it is written without building the template (no quote or backslash to escape).
_PIN_TEMPLATE = (
    "{{ value_json.",
    " if value_json is mapping and 'FROM' in value_json and '",
    "' in value_json else '' }}",
)
# The single topic's last will, {"STATUS": "offline", "FROM": ...}, is the one "offline".
_OFFLINE_TEMPLATE = (
    "{{ 'offline' if value_json is mapping and 'FROM' in value_json"
    " and value_json.STATUS == 'offline' else '' }}"
)
# Diagnostics come from the stats line: "Uptime=1 days 5 hrs 3 min, ..., Temp=18.6C/65.5F, ..."
_STATS_TEMPLATE = "{%% set m = value | regex_findall('^Uptime=%s') %%}{{ %s if m else '' }}"
_DIAGNOSTICS = (
    # key, name, stats pattern, value, unit, device class, state class
    (
        "uptime",
        "Uptime",
        "([0-9]+) days ([0-9]+) hrs ([0-9]+) min",
        "m[0][0]|int * 1440 + m[0][1]|int * 60 + m[0][2]|int",
        "min",
        "duration",
        "total_increasing",
    ),
    (
        "rssi",
        "Wi-Fi signal",
        ".*, Rssi=(-?[0-9]+)dBm",
        "m[0]",
        "dBm",
        "signal_strength",
        "measurement",
    ),
    (
        "temperature",
        "Temperature",
        ".*, Temp=(-?[0-9.]+)C",
        "m[0]",
        "\u00b0C",
        "temperature",
        "measurement",
    ),
)

# The update entity's versions, from the stats line's "Version=1.1.0" (a JSON object: a bare
# string would set only the installed version, and the entity's state stays unknown).
_VERSION = (
    ".*, Version=([^,]+)",
    "{'installed_version': m[0], 'latest_version': m[0]} | tojson",
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


# The announcement is written as pieces that are mostly constants or strings the config already
# holds, to a callable (no generators, no joined copies): building it allocated ~100 KB of
# short-lived strings on the unix port before.


def _escaped(s):
    """s as the inside of a JSON string in ASCII only (so its length is its size in bytes)."""
    for c in s:  # a loop, not all(...): a generator per string is most of the garbage
        if not " " <= c <= "~" or c == '"' or c == "\\":
            break
    else:
        return s  # the usual case: no copy
    out = []
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
    return "".join(out)


def _string(out, s):
    out('"')
    out(_escaped(s))
    out('"')


def _pin_template(out, key):
    out('"')
    out(_PIN_TEMPLATE[0])
    out(key)
    out(_PIN_TEMPLATE[1])
    out(key)
    out(_PIN_TEMPLATE[2])
    out('"')


def _command_topic(out, cfg):
    out(',"cmd_t":')
    _string(out, cfg["mqtt"]["topic"])


def _pin_component(out, cfg, pin, read_only, board_id):
    g, ha = cfg["gpio"], cfg["homeassistant"]
    key = "%s%d" % (g["prefix"], pin)  # prefix: letters only (config.py), nothing to escape
    out('"%s":{"name":' % key)
    _string(out, ha["names"].get(pin, key))
    out(',"uniq_id":')
    _string(out, "%s_%s" % (board_id, key))
    out(',"qos":1')
    if pin in g["contact"] or read_only:
        out(',"p":"binary_sensor","val_tpl":')
        _pin_template(out, key)
        out(',"pl_on":"1","pl_off":"0"')
        if pin in g["contact"] and pin in ha["device_class"]:
            out(',"dev_cla":')
            _string(out, ha["device_class"][pin])
    elif pin in g["momentary"]:
        out(',"p":"button","pl_prs":"{\\"%s\\": 1}"' % key)
        _command_topic(out, cfg)
    else:
        out(',"p":"switch","val_tpl":')
        _pin_template(out, key)
        out(',"pl_on":"{\\"%s\\": 1}","pl_off":"{\\"%s\\": 0}"' % (key, key))
        out(',"stat_on":"1","stat_off":"0"')
        _command_topic(out, cfg)
        if pin in ha["device_class"]:
            out(',"dev_cla":')
            _string(out, ha["device_class"][pin])
    out("}")


def announcement(out, cfg, device, board_id, diagnostics):
    """Writes the discovery payload, piece by piece, with out(piece). `device` is the name the
    device's JSON carries in "FROM", `board_id` the board's unique id (default client id
    `tinyctrl-<board id>`), stable across reboots; `diagnostics` the sensors the board has,
    e.g. ("uptime", "rssi")."""
    topic = cfg["mqtt"]["topic"]
    ha = cfg["homeassistant"]
    out('{"dev":{"ids":[')
    _string(out, board_id)
    out('],"name":')
    _string(out, ha["name"] or device)
    out(',"mf":"tinyctrl","mdl":"Raspberry Pi Pico W","sw":')
    _string(out, VERSION)
    out('},"o":{"name":"tinyctrl","sw":')
    _string(out, VERSION)
    out('},"stat_t":')
    _string(out, topic)
    # Home Assistant shares only topics and availability from here (mqtt/schemas.py,
    # SHARED_OPTIONS), so each component carries its own qos. The command topic is not
    # shared: an update entity with one would offer to install.
    # Availability: `online` on <topic>/status, `offline` from the single topic's last will;
    # whichever came last counts.
    out(',"avty_mode":"latest","avty":[{"t":')
    _string(out, status_topic(topic))
    out('},{"t":')
    _string(out, topic)
    out(',"val_tpl":')
    _string(out, _OFFLINE_TEMPLATE)
    out('}],"cmps":{')
    read_only = protected(cfg)
    g = cfg["gpio"]
    sep = ""
    for pin in g["relay"] + sorted(g["momentary"]) + g["contact"]:
        out(sep)
        _pin_component(out, cfg, pin, pin in read_only, board_id)
        sep = ","
    for key, name, pattern, value, unit, dev_cla, stat_cla in _DIAGNOSTICS:
        if key in diagnostics:
            out('%s"%s":{"p":"sensor","name":' % (sep, key))
            _string(out, name)
            out(',"uniq_id":')
            _string(out, "%s_%s" % (board_id, key))
            out(',"ent_cat":"diagnostic","val_tpl":')
            _string(out, _STATS_TEMPLATE % (pattern, value))
            out(',"unit_of_meas":')
            _string(out, unit)
            out(',"dev_cla":"%s","stat_cla":"%s"}' % (dev_cla, stat_cla))
            sep = ","
    # Read-only: no command topic, so Home Assistant offers no install (only `tinyctrl update`
    # holds the owner's key). The device knows no newer release, so latest is what it runs.
    out('%s"firmware":{"p":"update","name":"Firmware","uniq_id":' % sep)
    _string(out, board_id + "_firmware")
    out(',"dev_cla":"firmware","val_tpl":')
    _string(out, _STATS_TEMPLATE % _VERSION)
    out('},"stats":{"p":"button","name":"Update diagnostics","uniq_id":')
    _string(out, board_id + "_stats")
    out(',"ent_cat":"diagnostic","qos":1,"pl_prs":"{\\"CMD\\": \\"stats\\"}"')
    _command_topic(out, cfg)
    out("}}}")


def payload(cfg, device, board_id, diagnostics):
    """The discovery payload as one bytearray, or b"" (removes the device) with discovery off.
    Written twice by announcement(): once to count its size, once into the buffer, so the heap
    holds one copy plus one small piece, never the pieces and their join."""
    if not cfg["homeassistant"]["discovery"]:
        return b""
    at = [0]

    def count(piece):
        at[0] += len(piece)

    announcement(count, cfg, device, board_id, diagnostics)
    buf = bytearray(at[0])
    at[0] = 0

    def copy(piece):
        i = at[0]
        at[0] = i + len(piece)
        buf[i : at[0]] = piece.encode()

    announcement(copy, cfg, device, board_id, diagnostics)
    return buf


class Announcer:
    """Announces the device after each connect and each Home Assistant birth: discovery (or its
    removal), `online`, then the state and the stats line the entities read, all through the
    outbox. Births coalesce, and at most one announcement goes per publish window, so a flood
    of births cannot blow the flood fuse. A discovery config the device did not publish (any
    broker user can overwrite it) is answered with the device's own, in the same rhythm."""

    def __init__(self, cfg, hw, outbox, board_id):
        self.cfg = cfg
        self.ha = cfg["homeassistant"]
        self.hw = hw
        self.outbox = outbox
        self.board_id = board_id
        self.birth = birth_topic(self.ha)
        self.discovery = discovery_topic(self.ha, board_id)
        self._topics = (self.birth.encode(), self.discovery.encode())
        self._echoes = []  # sizes of announcements published and not yet seen back
        self._wake = asyncio.Event()

    async def connected(self, client):
        await client.subscribe(self.birth, 1)
        await client.subscribe(self.discovery, 1)
        self._wake.set()

    def message(self, topic, msg, oversize):
        """True if this was Home Assistant's birth topic or the device's discovery topic, which
        are handled here. `oversize` is the size of a payload too large to read."""
        if topic not in self._topics:
            return False
        if topic == self._topics[0]:
            if msg == BIRTH:  # Home Assistant (re)started: announce again
                self._wake.set()
        elif (oversize or len(msg)) in self._echoes:
            self._echoes.remove(oversize or len(msg))
        else:  # overwritten, removed, or a retained one from before this connection
            self._wake.set()
        return True

    def _payload(self):
        diagnostics = ["uptime"]
        if self.hw.temperature_c() is not None:
            diagnostics.append("temperature")
        if self.hw.wifi_rssi() is not None:
            diagnostics.append("rssi")
        msg = payload(self.cfg, self.cfg["name"], self.board_id, diagnostics)
        self._echoes = self._echoes[-1:] + [len(msg)]
        return msg

    async def run(self):
        outbox = self.outbox
        while not outbox.halted:
            await self._wake.wait()
            self._wake.clear()
            outbox.post(self.discovery, self._payload, True)  # built when it is sent
            outbox.post(status_topic(self.cfg["mqtt"]["topic"]), ONLINE)
            outbox.full()
            if self.ha["discovery"]:
                outbox.stats()
            await asyncio.sleep(self.cfg["guard"]["publish_window_s"])
