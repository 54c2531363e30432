# SPDX-License-Identifier: MIT
"""The board itself: copy the firmware to a Pico W in BOOTSEL mode (its RPI-RP2 drive), and copy
config.json (and the CA certificate) onto it with the real mpremote, then reset it."""

import glob
import os
import platform
import string
import struct
import subprocess
import sys
import threading

from . import NO_ANSWER, Failure

# A UF2 block (github.com/microsoft/uf2): 512 bytes, a 32-byte header of little-endian words
# (two start magics, flags, address, payload size, block number, block count, family id) and
# an end magic in its last word.
UF2_BLOCK = 512
UF2_HEADER = struct.Struct("<8I")
UF2_MAGIC = (0x0A324655, 0x9E5D5157)
UF2_END = 0x0AB16F30
UF2_FAMILY_FLAG = 0x2000
RP2040 = 0xE48BFF56  # the only family the Pico W's boot ROM writes to flash
FAMILIES = {  # for the message when the image is for another chip
    0xE48BFF57: "RP2350 (absolute)",
    0xE48BFF59: "RP2350 (Arm)",
    0xE48BFF5A: "RP2350 (RISC-V)",
    0x1C5F21B0: "ESP32",
    0xBFDD4EEE: "ESP32-S2",
    0xC47E5767: "ESP32-S3",
    0xD42BA06C: "ESP32-C3",
    0x68ED2B88: "SAMD21",
    0x55114460: "SAMD51",
    0xADA52840: "nRF52840",
    0x57755A57: "STM32F4",
}
BOARD_ID = "Board-ID: RPI-RP2"
LINUX_MOUNTS = "/proc/mounts"
MACOS_VOLUMES = "/Volumes"
MPREMOTE_TIMEOUT_S = 30  # copying config.json and a CA certificate takes a few seconds


def is_bootsel_drive(folder):
    try:
        with open(os.path.join(folder, "INFO_UF2.TXT"), errors="replace") as f:
            return BOARD_ID in f.read(4096)
    except OSError:
        return False


def windows_drives():
    return ["%s:\\" % letter for letter in string.ascii_uppercase]


def mount_points(system):
    """Where `system` (platform.system()) mounts drives: every one a USB drive may be."""
    if system == "Windows":
        return windows_drives()
    if system == "Darwin":
        return sorted(glob.glob(os.path.join(MACOS_VOLUMES, "*")))
    try:
        with open(LINUX_MOUNTS) as f:
            return [line.split()[1].replace("\\040", " ") for line in f if len(line.split()) > 1]
    except OSError:
        return []


def find_drive(system=None):
    """The mounted RPI-RP2 drive of a Pico in BOOTSEL mode, found by its INFO_UF2.TXT."""
    for folder in mount_points(system or platform.system()):
        if is_bootsel_drive(folder):
            return folder
    return None


def check_uf2(path):
    """The file's size after checking every block, as the boot ROM would read them: magic
    words, the RP2040 family, numbered 0 to n-1 of n. The ROM skips blocks it cannot use, so a
    wrong image is 'copied' and the board keeps its old firmware, or half of a new one."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise Failure("%s: no such file" % path)
    except OSError as e:
        raise Failure("%s: cannot read it (%s)" % (path, e.strerror or e))
    if not data or len(data) % UF2_BLOCK or not _magic(data, 0):
        raise Failure("%s: not a UF2 firmware file" % path)
    count = len(data) // UF2_BLOCK
    for i in range(count):
        _, _, flags, _, _, number, total, family = UF2_HEADER.unpack_from(data, i * UF2_BLOCK)
        if not _magic(data, i * UF2_BLOCK):
            raise Failure("%s: block %d is damaged (no UF2 magic)" % (path, i))
        if not flags & UF2_FAMILY_FLAG:
            raise Failure(
                "%s: not a UF2 firmware file (no family id, so not for the RP2040)" % path
            )
        if family != RP2040:
            raise Failure(
                "%s: a UF2 image for %s (family 0x%08x), not the Pico W's RP2040"
                % (path, FAMILIES.get(family, "another chip"), family)
            )
        if total != count:
            raise Failure(
                "%s: %d of its %d blocks are there; the file is cut short or joined "
                "with another" % (path, count, total)
            )
        if number != i:
            raise Failure(
                "%s: block %d says it is block %d; the file is damaged" % (path, i, number)
            )
    return size


def _magic(data, at):
    end = struct.unpack_from("<I", data, at + UF2_BLOCK - 4)[0]
    return UF2_HEADER.unpack_from(data, at)[:2] == UF2_MAGIC and end == UF2_END


def flash(uf2, drive=None, progress=None):
    """Copy `uf2` onto the BOOTSEL drive; the Pico writes it to flash and restarts."""
    size = check_uf2(uf2)
    if drive:
        if not is_bootsel_drive(drive):
            raise Failure(
                "%s: not a Pico in BOOTSEL mode (no INFO_UF2.TXT with %s)" % (drive, BOARD_ID)
            )
    else:
        drive = find_drive()
        if not drive:
            raise Failure(
                "no RPI-RP2 drive found: hold BOOTSEL while plugging the Pico W in, "
                "wait for the drive to mount (or give --drive DIR)"
            )
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
            raise Failure(
                "%s: copy failed after %d of %d bytes (%s)" % (target, done, size, e.strerror or e)
            )
    return target


def mpremote(port, *commands, timeout=MPREMOTE_TIMEOUT_S, show=None):
    """Run the real mpremote on `port` (None: the first board it finds); its output lines,
    each also given to `show` as it comes."""
    argv = [sys.executable, "-m", "mpremote", "connect", port or "auto"]
    for i, command in enumerate(commands):
        argv += (["+"] if i else []) + list(command)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    except OSError as e:
        raise Failure("mpremote: cannot run it (%s)" % (e.strerror or e))
    expired = []
    timer = threading.Timer(timeout, lambda: expired.append(proc.kill()))
    timer.start()
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip())
            if show:
                show(lines[-1])
        returncode = proc.wait()
    finally:
        timer.cancel()
        proc.kill()
        proc.stdout.close()
    if expired:
        raise Failure(
            "board%s did not answer within %d s (is it running? a program that blocks "
            "the REPL?)" % (" at " + port if port else "", timeout),
            NO_ANSWER,
        )
    out = "\n".join(lines).strip()
    if returncode:
        last = out.splitlines()[-1] if out else "mpremote exited with %d" % returncode
        if "no device found" in out:
            raise Failure(
                "no board found: plug the Pico W in (not in BOOTSEL mode) or give --port",
                NO_ANSWER,
            )
        if "failed to access" in out:
            raise Failure("no board at %s (%s)" % (port, last.split(": ", 1)[-1]), NO_ANSWER)
        raise Failure("mpremote: " + last)
    return out


def copy_config(port, config_path, ca=None, push_key=None, show=None):
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
    return mpremote(port, *commands, show=show)
