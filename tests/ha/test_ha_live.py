# SPDX-License-Identifier: MIT
"""Home Assistant discovery against a real Home Assistant core (2025.4.4, installed once into the
cache by
tests/support/homeassistant.py). The scenario (tests/ha/ha_scenarios.py) runs once, in its own
network namespace, and reports each check; each check is one test here."""

import json
import os
import subprocess

import pytest

import homeassistant as ha_support
import simharness
from netns import unshare_available

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CHECKS = [
    "hass_started",
    "one_device",
    "switch_turn_on_moves_relay",
    "contact_in_binary_sensor_within_2s",
    "button_pulses_momentary_relay",
    "mfa_pin_not_commandable",
    "diagnostic_sensors",
    "other_clients_requests_ignored",
    "manual_yaml_works",
    "no_errors_for_text_lines",
    "unavailable_when_device_drops",
    "available_again_after_reconnect",
    "restart_rediscovers",
    "restart_while_device_down",
    "discovery_off_removes_device",
    "log_clean_at_end",
]


@pytest.fixture(scope="module")
def results():
    why = (
        simharness.missing_requirements()
        or unshare_available()
        or ha_support.missing_requirements()
    )
    if why:
        pytest.skip(why)
    ha_support.install()
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "modules"))  # netns adds tests/support
    proc = ha_support.start_isolated(
        os.path.join(HERE, "ha_scenarios.py") + ":discovered",
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    out, _ = proc.communicate(timeout=900)
    got = {}
    for line in out.splitlines():
        if line.startswith('{"check"'):
            r = json.loads(line)
            got[r["check"]] = r
            print(
                "[homeassistant] %s: %s %s"
                % (r["check"], "ok" if r["ok"] else "FAIL", r["detail"])
            )
    got["_rc"] = proc.returncode
    return got


@pytest.mark.parametrize("name", CHECKS)
def test_against_home_assistant(results, name):
    assert name in results, "check not reached (scenario exit code %s)" % results["_rc"]
    assert results[name]["ok"], results[name]["detail"]
