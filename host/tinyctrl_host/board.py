# SPDX-License-Identifier: MIT
"""The board itself: copy the firmware to a Pico W in BOOTSEL mode (its RPI-RP2 drive), and copy
config.json (and the CA certificate) onto it with the real mpremote, then reset it."""
import os
import subprocess
import sys

from . import Failure

UF2_MAGIC = b"UF2\n"  # first word of every 512-byte UF2 block
UF2_BLOCK = 512
BOARD_ID = "Board-ID: RPI-RP2"


def is_bootsel_drive(folder):
    try:
        with open(os.path.join(folder, "INFO_UF2.TXT"), errors="replace") as f:
            return BOARD_ID in f.read(4096)
    except OSError:
        return False


def find_drive():
    """The mounted RPI-RP2 drive of a Pico in BOOTSEL mode, found by its INFO_UF2.TXT."""
    try:
        with open("/proc/mounts") as f:
            mounts = [line.split()[1].replace("\\040", " ") for line in f]
    except OSError:
        mounts = []
    for folder in mounts:
        if is_bootsel_drive(folder):
            return folder
    return None


def check_uf2(path):
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(4)
    except FileNotFoundError:
        raise Failure("%s: no such file" % path)
    except OSError as e:
        raise Failure("%s: cannot read it (%s)" % (path, e.strerror or e))
    if head != UF2_MAGIC or size == 0 or size % UF2_BLOCK:
        raise Failure("%s: not a UF2 firmware file" % path)
    return size


def flash(uf2, drive=None, progress=None):
    """Copy `uf2` onto the BOOTSEL drive; the Pico writes it to flash and restarts."""
    size = check_uf2(uf2)
    if drive:
        if not is_bootsel_drive(drive):
            raise Failure("%s: not a Pico in BOOTSEL mode (no INFO_UF2.TXT with %s)"
                          % (drive, BOARD_ID))
    else:
        drive = find_drive()
        if not drive:
            raise Failure("no RPI-RP2 drive found: hold BOOTSEL while plugging the Pico W in, "
                          "wait for the drive to mount (or give --drive DIR)")
    target = os.path.join(drive, os.path.basename(uf2))
    done = 0
    if progress:
        progress(0, size)
    try:
        with open(uf2, "rb") as src, open(target, "wb") as dst:
            while True:
                block = src.read(64 * UF2_BLOCK)
                if not block:
                    break
                dst.write(block)
                done += len(block)
                if progress:
                    progress(done, size)
            dst.flush()
            os.fsync(dst.fileno())
    except OSError as e:
        # The Pico restarts as soon as it has the last block, so the drive may vanish at the end.
        if done < size:
            raise Failure("%s: copy failed after %d of %d bytes (%s)"
                          % (target, done, size, e.strerror or e))
    return target


def mpremote(port, *commands, timeout=120):
    """Run the real mpremote on `port` (None: the first board it finds); its output lines."""
    argv = [sys.executable, "-m", "mpremote", "connect", port or "auto"]
    for i, command in enumerate(commands):
        argv += (["+"] if i else []) + list(command)
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failure("board%s did not answer within %d s (is it running? a program that blocks "
                      "the REPL?)" % (" at " + port if port else "", timeout))
    out = (done.stdout + done.stderr).strip()
    if done.returncode:
        last = out.splitlines()[-1] if out else "mpremote exited with %d" % done.returncode
        if "no device found" in out:
            raise Failure("no board found: plug the Pico W in (not in BOOTSEL mode) or give "
                          "--port")
        if "failed to access" in out:
            raise Failure("no board at %s (%s)" % (port, last.split(": ", 1)[-1]))
        raise Failure("mpremote: " + last)
    return out


def copy_config(port, config_path, ca=None, push_key=None):
    """Copy config.json (and the CA certificate under the name config.json gives it, and the
    device key config pushes are sealed with: over USB, never over the broker), then reset
    the board (machine.reset): it starts as after power-on and reads the new file. (mpremote's
    soft-reset would leave it in the raw REPL, where main.py does not run.)"""
    commands = [("cp", config_path, ":config.json")]
    if ca:
        commands.append(("cp", ca[0], ":" + ca[1]))
    if push_key:
        commands.append(("cp", push_key, ":push.key"))
    commands.append(("reset",))
    return mpremote(port, *commands)
