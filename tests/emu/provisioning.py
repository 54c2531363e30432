# SPDX-License-Identifier: MIT
"""`tinyctrl provision` end to end on the emulated Pico W, run by tests/support/emu/runner.py
inside a network namespace: the real UF2 boots with no config.json and says so on its console;
the host tool, with the real mpremote on the board's console (a pty), copies config.json and
resets the board, which comes online on the local broker. Prints one "ok: ..." line per step
passed; any
failure raises (the runner exits 1).

Timeouts in emulated seconds are the board's; the tool's own are wall seconds (the emulator runs
about 30 times slower than real time)."""

import json
import os
import pathlib
import subprocess
import sys

from emu.configs import device_config

REPO = pathlib.Path(__file__).resolve().parents[2]
TOOL_TIMEOUT_S = 30 * 60  # wall seconds: the reset and boot to subscribed take ~10 s emulated


def step(text):
    print("ok: " + text, flush=True)


def provision(lab, workdir):
    board = lab.boot(None)
    shown = board.wait_for("reset the board", 30)
    assert "not found" in shown, shown
    step("a board without config.json shows the config error")

    port = board.serve_console_pty()
    config = pathlib.Path(workdir, "config.json")
    cfg = device_config(topic="tinyctrl/provision")
    config.write_text(json.dumps(cfg))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "host"), str(REPO / "modules")]))
    before = board.mark()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tinyctrl_host",
            "provision",
            "--port",
            port,
            "--broker",
            "127.0.0.1:%d" % lab.broker.port,
            "--timeout",
            str(TOOL_TIMEOUT_S),
            "-c",
            str(config),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=TOOL_TIMEOUT_S + 600,
        stdin=subprocess.DEVNULL,
    )
    print(
        "tinyctrl provision exited %d\n%s%s" % (done.returncode, done.stdout, done.stderr),
        flush=True,
    )
    assert done.returncode == 0, "provision failed; console since:\n" + board.output[-2000:]
    # The device's name (config "name", default "tinyctrl") is what it publishes in "FROM".
    assert "board reset" in done.stdout and "tinyctrl is online" in done.stdout, done.stdout
    step("tinyctrl provision copied config.json, reset the board and saw it online")

    assert board.resets == 1, "expected one reset, saw %d" % board.resets
    step("the board reset once (machine.reset), as after power-on")
    assert "not found" not in board.output[before:], board.output[before:][-1500:]
    step("the controller started with the copied config.json")
