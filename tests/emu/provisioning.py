# SPDX-License-Identifier: MIT
"""`tinyctrl provision` end to end on the emulated Pico W, run by tests/support/emu/runner.py
inside a network namespace: the real UF2, installed over a board that ran the old flash layout
(the filesystem at 0x12C000), finds no filesystem where its own goes, formats one and says it
has no config.json; the host tool, with the real mpremote on the board's console (a pty),
copies config.json and resets the board, which comes online on the local broker. Prints one
"ok: ..." line per step passed; any failure raises (the runner exits 1).

Timeouts in emulated seconds are the board's; the tool's own are wall seconds (the emulator runs
about 30 times slower than real time)."""

import json
import os
import pathlib
import subprocess
import sys

from emu.configs import device_config
from emu.image import FS_BLOCK_SIZE, littlefs_image

REPO = pathlib.Path(__file__).resolve().parents[2]
# The Pico W's filesystem before the bootloader: stock MicroPython's 848 KB at the end of flash
# (ports/rp2/boards/RPI_PICO_W/mpconfigboard.h), the UF2 before it.
OLD_FS_BYTES = 848 * 1024
OLD_FS_START = 2 * 1024 * 1024 - OLD_FS_BYTES
TOOL_TIMEOUT_S = 30 * 60  # wall seconds: the reset and boot to subscribed take ~10 s emulated


def step(text):
    print("ok: " + text, flush=True)


def old_layout_flash(workdir):
    """{offset: bytes} of the filesystem a board that ran tinyctrl before 1.1.0 (or stock
    MicroPython) holds, its config.json in it: where the first install's UF2 leaves it."""
    image = pathlib.Path(workdir, "old-littlefs.img")
    old = json.dumps(device_config(topic="tinyctrl/before-the-bootloader")).encode()
    littlefs_image(image, {"config.json": old}, OLD_FS_BYTES // FS_BLOCK_SIZE)
    return {OLD_FS_START: image.read_bytes()}


def provision(lab, workdir):
    board = lab.boot(None, left=old_layout_flash(workdir))
    shown = board.wait_for("reset the board", 30)
    assert "not found" in shown, shown
    step("a board without config.json shows the config error")
    # The old filesystem's tail is where the new one lives: the firmware found no littlefs
    # there and formatted it (MicroPython's rp2 _boot.py).
    assert board.files() == {}, "the filesystem holds %s" % sorted(board.files())
    step("a board that ran the old flash layout starts with an empty filesystem")

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
