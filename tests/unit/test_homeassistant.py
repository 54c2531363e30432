# SPDX-License-Identifier: MIT
# Home Assistant discovery payloads; runs under CPython and MicroPython.
import json

from check import raises
from tinyctrl import config, homeassistant

KEY = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
BOARD = "tinyctrl-74696e7973696d31"


def configured(**ha):
    section = {"discovery": True}
    section.update(ha)
    return config.validate(
        {
            "wifi": {"ssid": "home"},
            "mqtt": {"server": "broker", "topic": "home/pico"},
            "gpio": {"relay": [16, 17], "momentary": {"18": 2, "19": 1}, "contact": [0, 1]},
            "mfa": {"pins": {"17": [KEY]}},
            "sign": {"keys": {"cron": "a-random-signing-key-0123"}, "pins": {"19": ["cron"]}},
            "homeassistant": section,
        }
    )


def announced(cfg, diagnostics=("uptime", "rssi", "temperature")):
    return json.loads(homeassistant.payload(cfg, "pico-garage", BOARD, diagnostics))


def problems(**ha):
    return raises(config.ConfigError, configured, **ha).problems


def test_the_section_is_optional_and_off_by_default():
    cfg = config.validate(
        {"wifi": {"ssid": "home"}, "mqtt": {"server": "b", "topic": "t"}, "gpio": {"relay": [16]}}
    )
    assert cfg["homeassistant"] is None  # nothing is published for Home Assistant
    cfg = config.validate(
        {
            "wifi": {"ssid": "home"},
            "mqtt": {"server": "b", "topic": "t"},
            "gpio": {"relay": [16]},
            "homeassistant": {},
        }
    )
    assert cfg["homeassistant"]["discovery"] is False
    assert cfg["homeassistant"]["prefix"] == "homeassistant"


def test_bad_sections_are_refused_with_the_key():
    assert problems(discovery="yes") == ["homeassistant.discovery: must be true or false"]
    assert problems(prefix="ha/#") == [
        "homeassistant.prefix: must be a topic name without wildcards"
    ]
    assert problems(colour=1) == ["homeassistant: unknown key 'colour'"]
    assert problems(names={"5": "Hall"}) == ["homeassistant.names: GP5 is not a configured pin"]
    assert problems(names={"16": ""}) == [
        "homeassistant.names.16: must be text of 1-64 characters"
    ]
    assert problems(names=["16"])[0].startswith("homeassistant.names: must map pin numbers")
    assert problems(device_class={"1": "garage"})[0].startswith(
        "homeassistant.device_class.1: 'garage' is not a binary_sensor class"
    )
    assert problems(device_class={"16": "door"}) == [
        "homeassistant.device_class.16: a relay is 'outlet' or 'switch'"
    ]
    assert problems(device_class={"18": "outlet"}) == [
        "homeassistant.device_class: GP18 is not a relay or contact"
    ]
    assert problems(prefix="home")[0].startswith(
        "homeassistant.prefix: must not contain mqtt.topic"
    )


def test_one_device_with_every_pin_and_the_diagnostics():
    d = announced(
        configured(
            names={"16": "Garage light", "0": "Front door"},
            device_class={"0": "door", "1": "garage_door", "16": "outlet"},
        )
    )
    assert d["dev"]["ids"] == [BOARD] and d["dev"]["name"] == "pico-garage"
    assert d["o"]["name"] == "tinyctrl"
    assert d["stat_t"] == "home/pico" and "cmd_t" not in d  # not shared: see "firmware"
    c = d["cmps"]
    assert sorted(c) == [
        "GP0",
        "GP1",
        "GP16",
        "GP17",
        "GP18",
        "GP19",
        "firmware",
        "rssi",
        "stats",
        "temperature",
        "uptime",
    ]
    assert c["GP16"]["p"] == "switch" and c["GP16"]["name"] == "Garage light"
    assert json.loads(c["GP16"]["pl_on"]) == {"GP16": 1}
    assert json.loads(c["GP16"]["pl_off"]) == {"GP16": 0}
    assert c["GP16"]["dev_cla"] == "outlet"
    assert c["GP18"]["p"] == "button" and json.loads(c["GP18"]["pl_prs"]) == {"GP18": 1}
    assert c["GP0"]["p"] == "binary_sensor" and c["GP0"]["dev_cla"] == "door"
    assert c["GP1"]["dev_cla"] == "garage_door" and c["GP1"]["name"] == "GP1"
    for key in ("rssi", "temperature", "uptime", "stats"):
        assert c[key]["ent_cat"] == "diagnostic"
    for key in ("GP0", "GP16", "GP17", "GP18", "stats"):
        assert c[key]["qos"] == 1
    assert json.loads(c["stats"]["pl_prs"]) == {"CMD": "stats"}
    for key in ("GP16", "GP18", "stats"):  # what Home Assistant may command
        assert c[key]["cmd_t"] == "home/pico", c[key]
    # The installed version, read-only: without a command topic Home Assistant cannot install.
    assert c["firmware"]["p"] == "update" and c["firmware"]["dev_cla"] == "firmware"
    assert "cmd_t" not in c["firmware"] and "pl_inst" not in c["firmware"]
    assert "Version=" in c["firmware"]["val_tpl"]


def test_unique_ids_come_from_the_board_not_the_topic_or_client_id():
    d = announced(configured())
    ids = [c["uniq_id"] for c in d["cmps"].values()]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith(BOARD + "_") for i in ids)
    other = config.validate(
        {
            "wifi": {"ssid": "h"},
            "mqtt": {"server": "b", "topic": "elsewhere", "client_id": "x"},
            "gpio": {"relay": [16]},
            "homeassistant": {"discovery": True},
        }
    )
    assert announced(other)["cmps"]["GP16"]["uniq_id"] == BOARD + "_GP16"
    assert (
        homeassistant.discovery_topic(other["homeassistant"], BOARD)
        == "homeassistant/device/%s/config" % BOARD
    )


def test_pins_needing_mfa_or_a_signature_are_read_only():
    c = announced(configured())["cmps"]
    for key in ("GP17", "GP19"):  # MFA relay, signed momentary relay
        assert c[key]["p"] == "binary_sensor", c[key]
        assert "pl_prs" not in c[key] and "cmd_t" not in c[key]


def test_templates_take_only_the_devices_json_with_the_pin():
    tpl = announced(configured())["cmps"]["GP16"]["val_tpl"]
    assert "value_json is mapping" in tpl and "'FROM' in value_json" in tpl
    assert "'GP16' in value_json" in tpl and tpl.endswith("else '' }}")
    avty = announced(configured())["avty"]
    assert avty[0] == {"t": "home/pico/status"}
    assert avty[1]["t"] == "home/pico" and "'FROM' in value_json" in avty[1]["val_tpl"]
    assert announced(configured())["avty_mode"] == "latest"


def test_diagnostics_only_where_the_board_has_them():
    c = announced(configured(), diagnostics=("uptime",))["cmps"]
    assert "uptime" in c and "temperature" not in c and "rssi" not in c


def test_names_in_any_script_stay_valid_json_and_ascii():
    name = 'T\u00fcr "Nord" \\'
    raw = homeassistant.payload(configured(names={"16": name, "0": "\U0001f6aa"}), "p", BOARD, ())
    assert all(b < 128 for b in raw)
    assert json.loads(raw)["cmps"]["GP16"]["name"] == name
    # outside the BMP: a surrogate pair (MicroPython's json.loads does not join them)
    assert b'"name":"\\ud83d\\udeaa"' in raw


def test_discovery_off_removes_the_device():
    assert homeassistant.payload(configured(discovery=False), "pico", BOARD, ()) == b""


def test_payload_is_built_once_to_its_exact_size():
    cfg = configured()
    raw = homeassistant.payload(cfg, "pico", BOARD, ("uptime",))
    pieces = []
    homeassistant.announcement(pieces.append, cfg, "pico", BOARD, ("uptime",))
    assert isinstance(raw, bytearray) and bytes(raw) == "".join(pieces).encode()


class Hardware:
    def temperature_c(self):
        return None

    def wifi_rssi(self):
        return None


class Posts:
    halted = False

    def __init__(self):
        self.posts = []

    def post(self, topic, payload, retain=False):
        self.posts.append((topic, payload, retain))


def test_a_discovery_config_the_device_did_not_publish_is_answered():
    """Any broker user can overwrite the retained config; the device's own echo is let be."""
    cfg = configured()
    box = Posts()
    ann = homeassistant.Announcer(cfg, Hardware(), box, BOARD)
    topic = homeassistant.discovery_topic(cfg["homeassistant"], BOARD).encode()
    size = len(ann._payload())  # what the outbox renders when the post goes
    assert ann.message(topic, b"", size) and not ann._wake.is_set()  # its echo
    assert ann.message(topic, b"", size) and ann._wake.is_set()  # once only: this one is not
    ann._wake.clear()
    assert ann.message(topic, b"", 0) and ann._wake.is_set()  # removed by someone
    ann._wake.clear()
    assert ann.message(b"homeassistant/status", b"online", 0) and ann._wake.is_set()
    assert not ann.message(b"home/pico", b'{"GP16": 1}', 0)
