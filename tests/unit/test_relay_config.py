# SPDX-License-Identifier: MIT
"""Relay option keys: power-on state, auto-off, interlocks; each bad value names its key."""

from check import raises
from tinyctrl import config


def cfg_with(**gpio):
    g = {"relay": [16, 17, 20, 21], "momentary": {"18": 2}, "contact": [0]}
    g.update(gpio)
    return {
        "wifi": {"ssid": "home"},
        "mqtt": {"server": "broker", "topic": "home/pico"},
        "gpio": g,
    }


def problems(**gpio):
    return raises(config.ConfigError, config.validate, cfg_with(**gpio)).problems


def test_defaults_keep_the_seed_behaviour():
    g = config.validate(cfg_with())["gpio"]
    assert g["power_on_state"] == {} and g["restore_after_power_cut"] == "off"
    assert g["max_on_s"] == {} and g["interlock"] == []
    assert g["interlock_mode"] == "refuse" and g["interlock_dead_ms"] == 0


def test_a_full_example_is_normalised():
    g = config.validate(
        cfg_with(
            power_on_state={"16": "restore", "17": "on", "18": "off"},
            restore_after_power_cut="flash",
            max_on_s={"16": 600},
            interlock=[[21, "20"]],
            interlock_mode="switch",
            interlock_dead_ms=500,
        )
    )["gpio"]
    assert g["power_on_state"] == {16: "restore", 17: "on", 18: "off"}
    assert g["max_on_s"] == {16: 600} and g["interlock"] == [[20, 21]]
    assert g["restore_after_power_cut"] == "flash" and g["interlock_mode"] == "switch"


def test_unknown_modes_are_refused_naming_the_key():
    assert problems(power_on_state={"16": "last"}) == [
        "gpio.power_on_state.16: 'last' is not one of off, on, restore"
    ]
    assert problems(restore_after_power_cut="eeprom") == [
        "gpio.restore_after_power_cut: 'eeprom' is not one of off, flash"
    ]
    assert problems(interlock_mode="both") == [
        "gpio.interlock_mode: 'both' is not one of refuse, switch"
    ]
    assert problems(power_on_state=["16"])[0].startswith("gpio.power_on_state: must map pin")


def test_a_pin_in_two_groups_is_refused():
    assert problems(interlock=[[16, 17], [17, 20]]) == ["gpio.interlock: GP17 is in two groups"]


def test_a_group_with_a_contact_or_unknown_pin_is_refused():
    assert problems(interlock=[[16, 0]]) == ["gpio.interlock[0]: GP0 is a contact, not a relay"]
    assert problems(interlock=[[16, 5]]) == ["gpio.interlock[0]: GP5 is not a relay"]
    assert problems(interlock=[[16]]) == ["gpio.interlock[0]: a group needs at least two pins"]
    assert problems(interlock=[16, 17])[0].startswith("gpio.interlock: must be a list of pin")
    assert problems(interlock=[[16, 40]])[0].startswith("gpio.interlock[0]: GP40 does not exist")


def test_max_on_s_on_a_momentary_pin_is_refused():
    assert problems(max_on_s={"18": 5}) == [
        "gpio.max_on_s.18: a momentary relay already has its wait in gpio.momentary"
    ]
    assert problems(max_on_s={"0": 5}) == ["gpio.max_on_s: GP0 is not a relay"]
    for bad in (0, -1, 1.5, True, "60", 7 * 86400 + 1):
        assert problems(max_on_s={"16": bad}) == [
            "gpio.max_on_s.16: must be a whole number of seconds from 1 to 604800"
        ], bad


def test_momentary_relays_never_come_back_on():
    for mode in ("on", "restore"):
        assert problems(power_on_state={"18": mode}) == [
            "gpio.power_on_state.18: a momentary relay always starts off"
        ]
    assert problems(power_on_state={"0": "on"}) == ["gpio.power_on_state: GP0 is not a relay"]


def test_two_interlocked_relays_cannot_both_power_on():
    assert problems(interlock=[[20, 21]], power_on_state={"20": "on", "21": "on"}) == [
        "gpio.interlock[0]: GP20 and GP21 are both on at power-on (gpio.power_on_state)"
    ]


def test_dead_time_is_bounded():
    for bad in (-1, 10001, 0.5, False):
        assert problems(interlock_dead_ms=bad) == [
            "gpio.interlock_dead_ms: must be a whole number of ms from 0 to 10000"
        ], bad


def test_switch_mode_groups_need_the_same_keys_on_every_pin():
    """A request for one pin of a group switches the others off: an open pin must not move
    a protected one."""
    key = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    cfg = cfg_with(interlock=[[20, 21]], interlock_mode="switch")
    cfg["mfa"] = {"pins": {"20": [key]}}
    assert raises(config.ConfigError, config.validate, cfg).problems == [
        "gpio.interlock[0]: GP20 and GP21 must need the same mfa.pins and sign.pins keys with "
        'interlock_mode "switch" (a request for one switches the other off)'
    ]
    cfg["mfa"]["pins"]["21"] = [key]
    config.validate(cfg)
    cfg["gpio"]["interlock_mode"] = "refuse"  # refused, not switched: mixing is safe
    del cfg["mfa"]["pins"]["21"]
    config.validate(cfg)


def test_every_pin_keyed_map_refuses_a_pin_listed_twice():
    # "16" and "016" are one pin: which value would count?
    assert problems(power_on_state={"16": "on", "016": "off"}) == [
        "gpio.power_on_state: GP16 is listed twice"
    ]
    assert problems(max_on_s={"16": 60, "016": 600}) == ["gpio.max_on_s: GP16 is listed twice"]
    assert problems(momentary={"18": 2, "018": 5}) == ["gpio.momentary: GP18 is listed twice"]
    raw = cfg_with()
    raw["homeassistant"] = {"names": {"16": "Light", "016": "Lamp"}}
    assert raises(config.ConfigError, config.validate, raw).problems == [
        "homeassistant.names: GP16 is listed twice"
    ]


def test_at_most_eight_max_on_s_relays_may_be_on_after_a_reset():
    pins = list(range(4, 13))
    raw = cfg_with(
        relay=pins,
        power_on_state=dict((str(p), "on") for p in pins),
        max_on_s=dict((str(p), 60) for p in pins),
    )
    assert raises(config.ConfigError, config.validate, raw).problems == [
        'gpio.max_on_s: at most 8 relays with a power_on_state "on" or "restore" (the time '
        "each has been on is kept across a reset)"
    ]
