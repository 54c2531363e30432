# SPDX-License-Identifier: MIT
"""The phone panel in headless Chromium against a real mosquitto and the simulator:
builds the page, then runs tests/panel/panel_checks.py in a network namespace of its own
(tests/support/panel_lab.py)."""

import subprocess

import panel_lab
import pytest


def test_panel_in_a_real_browser(capsys):
    build = subprocess.run(
        ["./build.sh", "panel"], cwd=panel_lab.ROOT, capture_output=True, text=True
    )
    assert build.returncode == 0, build.stdout + build.stderr
    why = panel_lab.missing_requirements()
    if why:
        pytest.skip(why)
    run = panel_lab.run_isolated(["-q", "-rfE", "-s"], capture_output=True, text=True, timeout=600)
    with capsys.disabled():
        # With -s the screenshot line follows the progress dots of the tests before it.
        shot = "phone screenshot:"
        summary = [
            line[line.index(shot) :] if shot in line else line
            for line in run.stdout.splitlines()
            if shot in line or line.startswith(("FAILED", "ERROR")) or " passed" in line
        ]
        print("\n[panel] " + "\n[panel] ".join(summary))
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-4000:]
