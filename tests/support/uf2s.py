# SPDX-License-Identifier: MIT
"""UF2 files of made-up firmware images, as a build writes them (picotool's block layout), for
the tests of the PC's side of firmware updates."""

import os
import struct

from tinyctrl_host import board

from tinyctrl import update

APP = 0x10000000 + update.APP_START  # where the image is linked: the application slot


def uf2(pages):
    """A UF2 of {address: 256 bytes}, in address order, as picotool writes one."""
    out = []
    for i, addr in enumerate(sorted(pages)):
        head = struct.pack(
            "<8I", *board.UF2_MAGIC, board.UF2_FAMILY_FLAG, addr, 256, i, len(pages), board.RP2040
        )
        block = head + pages[addr] + bytes(476 - 256)
        out.append(block + struct.pack("<I", board.UF2_END))
    return b"".join(out)


def app_image(version="1.2.0", name="PICO_W_TINYCTRL", pages=8, start=APP):
    """An image linked for `start`: its vector table (stack in RAM, reset handler inside it)
    and the tinyctrl-image line, in whole pages."""
    body = struct.pack("<II", 0x20042000, start + 0x101)
    body += bytes(0xC0 - len(body)) + b"tinyctrl-image board=%s version=%s\n" % (
        name.encode(),
        version.encode(),
    )
    body += os.urandom(pages * 256 - len(body))
    return body


def pages_at(start, data):
    return dict((start + i, data[i : i + 256]) for i in range(0, len(data), 256))
