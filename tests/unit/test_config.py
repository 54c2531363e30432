# SPDX-License-Identifier: MIT
import json

from check import raises
from tinyctrl import config

KEY = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def minimal(**changes):
    cfg = {
        "wifi": {"ssid": "home"},
        "mqtt": {"server": "broker", "topic": "home/pico"},
        "gpio": {"relay": [16]},
    }
    for k, v in changes.items():
        cfg[k] = v
    return cfg


def problems(cfg):
    return raises(config.ConfigError, config.validate, cfg).problems


def test_minimal_config_gets_the_seed_defaults():
    cfg = config.validate(minimal())
    assert cfg["mqtt"]["port"] == 1883 and cfg["mqtt"]["keepalive"] == 120
    assert cfg["mqtt"]["ssl"] is False
    assert cfg["gpio"]["prefix"] == "GP" and cfg["gpio"]["active_low"] is True
    assert cfg["guard"]["cooldown_s"] == 2 and cfg["guard"]["max_changes"] == 5
    assert cfg["guard"]["publish_max"] == 20 and cfg["guard"]["publish_window_s"] == 10
    assert cfg["mfa"]["keyname"] == "MFA" and cfg["mfa"]["max_expired_codes"] == 5
    assert cfg["publish_interval_s"] == 7200 and cfg["ntp"]["interval_s"] == 86400
    assert cfg["timezone"] == "EST" and cfg["wifi"]["max_retries"] == 30


def test_the_issue_example_is_valid():
    text = json.dumps(
        {
            "wifi": {"ssid": "s", "password": "p", "max_retries": 30, "reset_delay_s": 600},
            "mqtt": {
                "server": "b",
                "port": 8883,
                "ssl": True,
                "ca_file": "ca.pem",
                "user": "u",
                "password": "p",
                "client_id": "pico-1",
                "topic": "home/pico",
                "keepalive": 120,
            },
            "gpio": {
                "prefix": "GP",
                "relay": [16, 17],
                "momentary": {"18": 2, "19": 2},
                "contact": [0, 1, 2, 3],
                "notify": [0, 1, 16, 17],
                "active_low": True,
            },
            "mfa": {"keyname": "MFA", "max_expired_codes": 5, "pins": {"16": [KEY]}},
            "guard": {
                "cooldown_s": 2,
                "max_changes": 5,
                "window_s": 60,
                "max_violations": 3,
                "publish_max": 20,
                "publish_window_s": 10,
            },
            "publish_interval_s": 7200,
            "ntp": {"host": "pool.ntp.org", "interval_s": 86400, "force_wait_s": 180},
            "ip_provider": "https://jsonip.com",
            "timezone": "EST",
        }
    )
    cfg = config.parse(text)
    assert cfg["gpio"]["momentary"] == {18: 2, 19: 2}
    assert cfg["mfa"]["pins"][16][0] == b"Hello!\xde\xad\xbe\xefHello!\xde\xad\xbe\xef"


def test_seed_style_momentary_list_means_two_seconds():
    assert config.validate(minimal(gpio={"momentary": [18, 19]}))["gpio"]["momentary"] == {
        18: 2,
        19: 2,
    }


def test_required_keys_are_named():
    assert problems({}) == [
        "wifi: required",
        "mqtt: required",
        "gpio: configure at least one pin in relay, momentary or contact",
    ]
    assert problems(minimal(mqtt={"topic": "t"})) == ["mqtt.server: required"]


def test_a_cluster_is_a_list_of_nodes_and_one_server_still_works():
    one = config.validate(minimal(mqtt={"server": "b", "port": 1884, "topic": "t"}))["mqtt"]
    assert one["servers"] == [("b", 1884)] and (one["server"], one["port"]) == ("b", 1884)
    m = {"servers": ["n1", "n2:1999", "10.0.0.3"], "topic": "t", "ssl": True, "tls_insecure": True}
    nodes = config.validate(minimal(mqtt=m))["mqtt"]
    assert nodes["servers"] == [("n1", 8883), ("n2", 1999), ("10.0.0.3", 8883)]
    assert (nodes["server"], nodes["port"]) == ("n1", 8883)  # tried first


def test_cluster_addresses_are_checked():
    def mqtt_problems(servers, **more):
        return problems(minimal(mqtt=dict(servers=servers, topic="t", **more)))

    bounds = "mqtt.servers: must be a list of 1-8 addresses (host or host:port)"
    assert mqtt_problems([]) == [bounds]
    assert mqtt_problems(["n%d" % i for i in range(9)]) == [bounds]
    assert mqtt_problems("n1,n2") == [bounds]
    assert mqtt_problems(["n1", 5, "n2:0", "n3:x", ":1883", "a b", "n4:70000"]) == [
        "mqtt.servers[%d]: must be a host or host:port (port 1-65535)" % i for i in range(1, 7)
    ]
    assert mqtt_problems(["n1"], server="n1") == [
        "mqtt.servers: give mqtt.server or mqtt.servers, not both"
    ]


def test_pin_problems_name_the_key_and_the_pin():
    p = problems(minimal(gpio={"relay": [16, 23], "contact": [16], "notify": [5]}))
    assert "gpio.relay: GP23 does not exist on the Pico W (GP0-GP22, GP26-GP28)" in p
    assert "gpio: GP16 is in both relay and contact" in p
    assert "gpio.notify: GP5 is not a configured pin" in p
    assert "gpio.relay: 'x' is not a pin number" in problems(minimal(gpio={"relay": ["x"]}))


def test_wrong_types_and_ranges():
    p = problems(
        minimal(
            mqtt={"server": "b", "topic": "t/#", "port": 70000, "keepalive": "60"},
            wifi={"ssid": "", "max_retries": -2},
        )
    )
    assert "mqtt.topic: must be a topic name without wildcards" in p
    assert "mqtt.port: must be a whole number from 1 to 65535" in p
    assert "mqtt.keepalive: must be a whole number from 0 to 65535" in p
    assert "wifi.ssid: must not be empty" in p
    assert "wifi.max_retries: must be a whole number from 0 to 1000000" in p
    assert (
        "publish_interval_s: must be a whole number from -1 to 100000000 (-1 turns it off)"
        in problems(minimal(publish_interval_s=1.5))
    )
    assert "gpio.active_low: must be true or false" in problems(
        minimal(gpio={"relay": [1], "active_low": 1})
    )


def test_unknown_keys_are_typos():
    assert problems(minimal(gpoi={})) == ["unknown key 'gpoi'"]
    assert problems(minimal(mqtt={"server": "b", "topic": "t", "pasword": "x"})) == [
        "mqtt: unknown key 'pasword'"
    ]


def test_mfa_keys_must_be_base32_and_never_echoed():
    p = problems(minimal(mfa={"pins": {"16": ["not-base32-secret!"]}}))
    assert p == ["mfa.pins.16: key is not Base32 (A-Z, 2-7)"]
    assert "shorter than 80 bits" in problems(minimal(mfa={"pins": {"16": ["MZXW6==="]}}))[0]
    assert "mfa.pins: GP17 is not a relay" in problems(minimal(mfa={"pins": {"17": [KEY]}}))


def test_signing_keys_must_exist():
    p = problems(
        minimal(sign={"keys": {"cron": "0123456789abcdef0123"}, "pins": {"16": ["nobody"]}})
    )
    assert p == ["sign.pins.16: no key named 'nobody' in sign.keys"]


def test_tls_needs_a_ca_unless_explicitly_insecure():
    p = problems(minimal(mqtt={"server": "b", "topic": "t", "ssl": True}))
    assert p[0].startswith("mqtt.ca_file: required when mqtt.ssl is true")
    cfg = config.validate(
        minimal(mqtt={"server": "b", "topic": "t", "ssl": True, "tls_insecure": True})
    )
    assert cfg["mqtt"]["port"] == 8883


def test_timezones():
    for tz in ("UTC", "EST", "PST", "+05:30", "-08:00", "UTC+2"):
        config.validate(minimal(timezone=tz))
    assert problems(minimal(timezone="Mars/Olympus")) == [
        "timezone: 'Mars/Olympus' is not one of UTC, EST, CST, MST, PST or an offset like +05:30"
    ]


def test_broken_json_and_non_objects():
    assert problems("[]") == ["config.json: must be a JSON object"]
    e = raises(config.ConfigError, config.parse, '{"wifi": ')
    assert e.problems[0].startswith("config.json: invalid JSON")
    assert "wifi: must be an object" in problems(minimal(wifi=[1]))


def test_publish_max_leaves_room_for_every_kind_of_message():
    assert (
        "guard.publish_max: must be at least 4" in problems(minimal(guard={"publish_max": 2}))[0]
    )


def test_expired_code_window_is_capped():
    assert problems(minimal(mfa={"max_expired_codes": 11})) == [
        "mfa.max_expired_codes: at most 10 (each accepted code makes guessing easier)"
    ]


# ---- SECURITY.md, findings 2.2-2.4: configs that silently remove a protection, secrets in
# messages


def test_protections_have_bounds():
    for section, key, bad, lo, hi in (
        ("guard", "auth_lockout_s", 0, 1, 3600),
        ("guard", "auth_failures", 10**6, 1, 10),
        ("mfa", "grant_s", 10**6, 1, 300),
        ("sign", "window_s", 10**6, 1, 300),
    ):
        p = problems(minimal(**{section: {key: bad}}))
        assert p == ["%s.%s: must be a whole number from %d to %d" % (section, key, lo, hi)], p
        assert config.validate(minimal(**{section: {key: hi}}))[section][key] == hi


def test_weak_and_example_keys_are_refused_without_echo():
    for key in ("SECRETKEYA234567", "AAAAAAAAAAAAAAAA", "ABABABABABABABAB"):
        p = problems(minimal(mfa={"pins": {"16": [key]}}))
        assert len(p) == 1 and p[0].startswith("mfa.pins.16: key ") and key not in p[0], p
    for key in ("a long random string", " " * 16, "x" * 20):
        p = problems(minimal(sign={"keys": {"cron": key}, "pins": {"16": ["cron"]}}))
        assert len(p) == 1 and p[0].startswith("sign.keys.cron: key ") and key not in p[0], p


def test_one_signing_key_under_two_names_is_refused():
    key = "0123456789abcdef0123"
    p = problems(minimal(sign={"keys": {"cron": key, "backup": key}, "pins": {"16": ["cron"]}}))
    # MicroPython's dict order is not insertion order: either name may be the second.
    assert p in (
        ["sign.keys.backup: same key as sign.keys.cron; give each client its own"],
        ["sign.keys.cron: same key as sign.keys.backup; give each client its own"],
    ), p


def test_a_pin_listed_twice_is_refused():
    p = problems(minimal(mfa={"pins": {"16": [KEY], "016": [KEY]}}))
    assert p == ["mfa.pins: GP16 is listed twice"]


def test_a_secret_in_the_wrong_place_is_never_echoed():
    cases = [
        minimal(mfa={"pins": {KEY: ["16"]}}),
        minimal(sign={"keys": {KEY: 1}}),
        minimal(sign={"keys": {"cron": "0123456789abcdef0123"}, "pins": {"16": [KEY]}}),
        minimal(gpio={"relay": [16], "momentary": {KEY: 1}}),
        minimal(mqtt={"server": "b", "topic": "t", KEY: 1}),
    ]
    for cfg in cases:
        p = problems(cfg)
        assert p and not any(KEY[:8] in line for line in p), p
        assert any("<not shown>" in line for line in p), p


def test_the_device_name_is_published_not_the_client_id():
    cfg = config.validate(minimal())
    assert cfg["name"] == "tinyctrl" and cfg["mqtt"]["client_id"] == ""
    p = problems(minimal(name="pico", mqtt={"server": "b", "topic": "t", "client_id": "pico"}))
    assert p == [
        "name: must differ from mqtt.client_id (whoever knows the client id can take the "
        "device's place)"
    ]


# ---- a cross-field rule never reads a field whose own check failed

WRONG = (None, "x", "", 5, -1, 1.5, True, [], [1], {}, {"16": 1}, "16")


def full():
    """A config that uses every section, Home Assistant's too."""
    return {
        "wifi": {"ssid": "home"},
        "mqtt": {"server": "broker", "topic": "home/pico"},
        "gpio": {
            "relay": [16, 20, 21],
            "momentary": {"18": 2},
            "contact": [0],
            "interlock": [[20, 21]],
            "interlock_mode": "switch",
        },
        "mfa": {"pins": {"16": [KEY]}},
        "sign": {"keys": {"cron": "a-random-signing-key-0123"}, "pins": {"18": ["cron"]}},
        "homeassistant": {"names": {"16": "Lamp"}},
        "name": "dev",
    }


def test_any_field_wrong_or_missing_is_a_config_error_never_a_crash():
    config.validate(full())
    cases = 0
    for section, values in config.defaults().items():
        keys = list(values) if isinstance(values, dict) else [None]
        if section == "mqtt":
            keys += ["server", "topic"]
        if section == "wifi":
            keys += ["ssid"]
        for key in keys:
            for wrong in WRONG + ("missing",):
                cfg = full()
                node = cfg if key is None else cfg.setdefault(section, {})
                name = section if key is None else key
                if wrong == "missing":
                    node.pop(name, None)
                else:
                    node[name] = wrong
                try:
                    config.validate(cfg)
                except config.ConfigError:
                    pass
                cases += 1
    assert cases > 500, cases


def test_a_pin_listed_twice_is_refused_in_every_list_and_map():
    assert problems(minimal(gpio={"relay": [16, 16]})) == ["gpio.relay: GP16 is listed twice"]
    assert problems(
        minimal(gpio={"relay": [16], "power_on_state": {"16": "on", "016": "off"}})
    ) == ["gpio.power_on_state: GP16 is listed twice"]
    assert problems(minimal(gpio={"relay": [16], "max_on_s": {"16": 60, "016": 600}})) == [
        "gpio.max_on_s: GP16 is listed twice"
    ]


def test_mqtt_version_and_session_expiry():
    base = {
        "name": "d",
        "wifi": {"ssid": "w"},
        "mqtt": {"server": "b", "topic": "t"},
        "gpio": {"relay": [16]},
    }
    cfg = config.validate(base)
    assert cfg["mqtt"]["version"] == "auto" and cfg["mqtt"]["session_expiry_s"] == 86400
    for v in (5, 3, "auto"):
        base["mqtt"]["version"] = v
        assert config.validate(base)["mqtt"]["version"] == v
    for v in (4, "5", True, 5.0, None):
        base["mqtt"]["version"] = v
        e = raises(config.ConfigError, config.validate, base)
        assert 'mqtt.version: must be 5, 3 (MQTT 3.1.1) or "auto"' in " ".join(e.problems), v
    base["mqtt"]["version"] = 5
    base["mqtt"]["session_expiry_s"] = 0  # ends with the connection: allowed
    assert config.validate(base)["mqtt"]["session_expiry_s"] == 0
    for v in (-1, 1 << 32, "1"):
        base["mqtt"]["session_expiry_s"] = v
        e = raises(config.ConfigError, config.validate, base)
        assert "mqtt.session_expiry_s: must be a whole number from 0 to 4294967295" in " ".join(
            e.problems
        )
