# SPDX-License-Identifier: MIT
"""`tinyctrl provision` with the real mpremote against the real firmware on the emulated
Pico W (tests/emu/provisioning.py, in its own network namespace)."""

import subprocess

import pytest
from test_pico_w import HERE, why_not_runnable

from emu.runner import start_isolated

# Wall-clock limit: boot, mpremote's copy and reset, and boot to subscribed, about 30x slowed.
TIMEOUT_S = 40 * 60
STEPS = [
    "a board without config.json shows the config error",
    "a board that ran the old flash layout starts with an empty filesystem",
    "tinyctrl provision copied config.json, reset the board and saw it online",
    "the board reset once (machine.reset), as after power-on",
    "the controller started with the copied config.json",
]


def test_provision_a_board_installed_over_the_old_layout(tmp_path):
    reason = why_not_runnable()
    if reason:
        pytest.skip(reason)
    log = tmp_path / "provision.log"
    with open(log, "w") as out:
        proc = start_isolated(
            "%s:provision" % (HERE / "provisioning.py"),
            args=[tmp_path],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            proc.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    text = log.read_text()
    for step in STEPS:
        assert "ok: " + step in text, "did not get to: %s\nlog ends:\n%s" % (step, text[-4000:])
    assert proc.returncode == 0, text[-4000:]
