# SPDX-License-Identifier: MIT
"""The RPI-RP2 drive found where each OS mounts USB drives: /proc/mounts on Linux, /Volumes on
macOS, drive letters on Windows. Only the OS detection layer is faked here."""

import os

from tinyctrl_host import board


def bootsel(folder):
    os.makedirs(folder)
    with open(os.path.join(folder, "INFO_UF2.TXT"), "w") as f:
        f.write("UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n")
    return str(folder)


def test_macos_volumes(tmp_path, monkeypatch):
    monkeypatch.setattr(board, "MACOS_VOLUMES", str(tmp_path))
    os.makedirs(tmp_path / "Macintosh HD")
    drive = bootsel(tmp_path / "RPI-RP2")
    assert board.find_drive("Darwin") == drive


def test_windows_drive_letters(tmp_path, monkeypatch):
    letters = {"C:\\": tmp_path / "c", "E:\\": tmp_path / "e"}
    os.makedirs(letters["C:\\"])
    bootsel(letters["E:\\"])
    monkeypatch.setattr(board, "windows_drives", lambda: list(letters))
    real = board.is_bootsel_drive
    monkeypatch.setattr(board, "is_bootsel_drive", lambda folder: real(str(letters[folder])))
    assert board.find_drive("Windows") == "E:\\"


def test_linux_mounts(tmp_path, monkeypatch):
    drive = bootsel(tmp_path / "RPI RP2")  # a space, written \040 in /proc/mounts
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/sda1 / ext4 rw 0 0\n/dev/sdb1 %s vfat rw 0 0\n" % drive.replace(" ", "\\040")
    )
    monkeypatch.setattr(board, "LINUX_MOUNTS", str(mounts))
    assert board.find_drive("Linux") == drive
