# SPDX-License-Identifier: MIT
"""The firmware image: what a UF2 programs into flash, the filesystem region its binary info
declares, the littlefs image for that region, and symbols from the ELF beside it."""

import pathlib
import struct
import subprocess
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[3]
DEFAULT_UF2 = REPO / "build" / "PICO_W_TINYCTRL" / "firmware.uf2"

UF2_BLOCK = 512
UF2_MAGIC = (0x0A324655, 0x9E5D5157)
XIP_BASE = 0x10000000
BINARY_INFO_MARKERS = (0x7188EBF2, 0xE71AA390)
BINARY_INFO_TYPE_BLOCK_DEVICE = 7
FS_BLOCK_SIZE = 4096
APP_START = 0x00A000  # tinyctrl.update.APP_START: the image's slot after the bootloader


def guest_symbols(uf2, names):
    """{name: address} of `names` in the firmware's ELF next to `uf2` (build.sh leaves it
    there), or {} without it or without the ARM toolchain's nm."""
    elf = pathlib.Path(uf2).with_suffix(".elf")
    try:
        out = subprocess.run(
            ["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    found = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2] in names:
            found[fields[2]] = int(fields[0], 16)
    return found


def uf2_flash(path):
    """The flash contents a UF2 file programs, from offset 0 of flash, as bytes."""
    data = pathlib.Path(path).read_bytes()
    flash = bytearray()
    for off in range(0, len(data) - UF2_BLOCK + 1, UF2_BLOCK):
        magic0, magic1, _flags, addr, size = struct.unpack_from("<5I", data, off)
        if (magic0, magic1) != UF2_MAGIC:
            raise ValueError("%s: not a UF2 file (bad block at offset %d)" % (path, off))
        start = addr - XIP_BASE
        if len(flash) < start + size:
            flash.extend(b"\xff" * (start + size - len(flash)))
        flash[start : start + size] = data[off + 32 : off + 32 + size]
    return bytes(flash)


def filesystem_region(flash):
    """(offset, size) of the MicroPython filesystem, from the image's own binary info.

    The rp2 port declares its filesystem as a binary-info block device (`rp2_flash.c`), the same
    record `picotool info` shows, so this follows whatever the board configuration chose. The
    image's header is near its start: the start of flash, or the application slot after the
    bootloader (whose own header declares no filesystem)."""
    word = lambda off: struct.unpack_from("<I", flash, off)[0]  # noqa: E731
    for image_start in (0, APP_START):
        for off in range(image_start, image_start + 1024, 4):
            if word(off) == BINARY_INFO_MARKERS[0] and word(off + 16) == BINARY_INFO_MARKERS[1]:
                found = _block_device(flash, word(off + 4) - XIP_BASE, word(off + 8) - XIP_BASE)
                if found:
                    return found
                break
    raise ValueError("the image declares no MicroPython filesystem")


def _block_device(flash, start, end):
    word = lambda off: struct.unpack_from("<I", flash, off)[0]  # noqa: E731
    for entry in range(start, end, 4):
        record = word(entry) - XIP_BASE
        kind, _tag = struct.unpack_from("<HH", flash, record)
        if kind != BINARY_INFO_TYPE_BLOCK_DEVICE:
            continue
        name_ptr, address, size = struct.unpack_from("<3I", flash, record + 4)
        name = flash[name_ptr - XIP_BASE :].split(b"\0", 1)[0]
        if name == b"MicroPython":
            return address - XIP_BASE, size
    return None


def littlefs_image(path, files, block_count):
    """Write a littlefs image of `block_count` blocks holding `files` ({name: bytes})."""
    from rp2040py.cli.mklittlefs import build_littlefs_image

    with tempfile.TemporaryDirectory(prefix="tinyctrl-fs-") as staging:
        paths = []
        for name, content in files.items():
            p = pathlib.Path(staging, name)
            p.write_bytes(content)
            paths.append(p)
        build_littlefs_image(
            path, paths, block_size=FS_BLOCK_SIZE, block_count=block_count, force=True
        )


def littlefs_files(image, block_count):
    """{name: bytes} of the files in the root of a littlefs `image` (bytes), as the board's
    flash holds it, e.g. the moment its power was cut (PicoW.power_cut)."""
    from littlefs import LittleFS, UserContext

    context = UserContext(buffer=bytearray(image))
    fs = LittleFS(
        context=context,
        block_size=FS_BLOCK_SIZE,
        block_count=block_count,
        prog_size=256,
        mount=False,
    )
    fs.mount()
    try:
        files = {}
        for name in fs.listdir("/"):
            with fs.open(name, "rb") as f:
                files[name] = f.read()
        return files
    finally:
        fs.unmount()
