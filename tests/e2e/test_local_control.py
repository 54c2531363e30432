# SPDX-License-Identifier: MIT
"""Local control end to end: wall switches and push buttons on the simulator's inputs move
relays with and without the broker, past AuthGate but within the guards, and the offline
failsafe acts once per outage and says so when the device is back."""

import json
import time

import pytest
from simharness import KEY_A, base_config, device, state, text, wait_log

LOCAL = {
    "inputs": {
        "4": {"relay": 16, "mode": "toggle"},
        "5": {"relay": 17, "mode": "press"},
        "6": {"relay": 19, "mode": "press"},
        "7": {"relay": 16, "mode": "press", "long": "all_off"},
    },
    "disabled": [19],
    "debounce_ms": 50,
    "long_press_ms": 800,
    "failsafe": {"17": {"after_s": 2, "state": "off"}},
}


@pytest.fixture(scope="module")
def rig(services):
    broker, ntp, ip = services
    cfg = base_config(broker.port, ntp.port, ip.port, local=LOCAL, mfa={"pins": {"17": [KEY_A]}})
    with device(cfg, broker.port) as (sim, client, _):
        yield sim, client


def press(sim, pin, hold_s=0.2):
    """A press held past local.debounce_ms (shorter ones are bounce)."""
    sim.contact(pin, 1)
    time.sleep(hold_s)
    sim.contact(pin, 0)


def flip(sim, pin, closed):
    """A rocker switch moved; then past the relay's guard.cooldown_s (0.3 s here)."""
    sim.contact(pin, closed)
    time.sleep(0.4)


def notify(pin, value):
    def match(payload):
        obj = json.loads(payload) if payload.startswith(b"{") else {}
        return obj.get("NOTIFY") == {"GP%d" % pin: value} and "FROM" in obj

    return match


def test_a_wall_switch_toggles_and_the_state_says_local(rig):
    sim, client = rig
    m = client.mark()
    flip(sim, 4, 1)
    sim.wait_pin(16, 1)
    client.wait_for(text("Info: GP16 on (local, GP4)"), since=m)
    client.wait_for(state("GP16", 1), since=m)  # the state JSON as ever
    client.wait_for(notify(16, 1), since=m)  # GP16 is a notify pin
    flip(sim, 4, 0)  # a rocker: the other way toggles it back
    sim.wait_pin(16, 0)
    client.wait_for(text("Info: GP16 off (local, GP4)"), since=m)
    sim.assert_alive()


def test_a_button_needs_no_mfa_code_but_local_control_can_be_off(rig):
    sim, client = rig
    m = client.mark()
    client.send({"GP17": 1})  # from the broker: MFA
    client.wait_for(text("Error: MFA validation failed"), since=m)
    press(sim, 5)  # at the board: physical presence
    sim.wait_pin(17, 1)
    client.wait_for(text("Info: GP17 on (local, GP5)"), since=m)
    press(sim, 6)  # GP19's local control is off (local.disabled)
    wait_log(sim, "local: GP6 ignored: local control of GP19 is off (local.disabled)")
    assert [line for _, line in sim.outputs if line.startswith("GP19")] == []


def test_a_long_press_switches_everything_off(rig):
    sim, client = rig
    flip(sim, 4, 1)
    sim.wait_pin(16, 1)
    m = client.mark()
    press(sim, 7, hold_s=1.2)  # long_press_ms 800
    client.wait_for(text("Info: GP16 off, GP17 off (local, GP7, long press)"), since=m)
    assert sim.pin(16) == sim.pin(17) == 0
    time.sleep(0.4)
    flip(sim, 4, 0)  # for the next test, both on again
    sim.wait_pin(16, 1)
    press(sim, 5)
    sim.wait_pin(17, 1)


def test_offline_the_relay_moves_the_failsafe_acts_and_all_goes_out_when_back(rig):
    sim, client = rig
    assert (sim.pin(16), sim.pin(17)) == (1, 1)
    sim.wifi(0)
    wait_log(sim, "connection lost")
    flip(sim, 4, 1)  # toggles GP16 off, with nobody to tell
    sim.wait_pin(16, 0)
    sim.wait_pin(17, 0, timeout=10)  # local.failsafe: after 2 s unreachable
    m = client.mark()
    sim.wifi(1)
    client.wait_for(text("Info: GP16 off (local, GP4)"), since=m, timeout=30)
    line = client.wait_for(text("Info: broker unreachable for "), since=m)
    assert line.endswith(b"s: GP17 off after 2s (local.failsafe)"), line
    client.wait_for(state("GP16", 0), since=m)
    client.wait_for(state("GP17", 0), since=m)
    assert client.published_pins(m)[16] == 0 and client.published_pins(m)[17] == 0
    sim.assert_alive()
