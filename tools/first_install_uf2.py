# SPDX-License-Identifier: MIT
"""Write the UF2 a user drags onto the board: the bootloader's UF2 (its pages from the start of
flash, and its flag log's first page) and the image's binary at the application slot, as one
UF2 file numbered 0 to n-1 for the RP2040's boot ROM.

  python3 tools/first_install_uf2.py BOOTLOADER.uf2 FIRMWARE.bin APP_START OUT.uf2

Standard library only: build.sh runs it before the project's environment exists."""

import struct
import sys

UF2_BLOCK = 512
HEADER = struct.Struct("<8I")
MAGIC = (0x0A324655, 0x9E5D5157)
END = 0x0AB16F30
FAMILY_FLAG = 0x2000
RP2040 = 0xE48BFF56
PAGE = 256


def pages_of_uf2(data):
    """[(address, 256 bytes)] of a UF2 file's blocks."""
    pages = []
    for at in range(0, len(data), UF2_BLOCK):
        m0, m1, _flags, addr, size, _n, _total, _family = HEADER.unpack_from(data, at)
        if (m0, m1) != MAGIC or size != PAGE:
            raise ValueError("not a UF2 of 256-byte pages (block %d)" % (at // UF2_BLOCK))
        pages.append((addr, data[at + 32 : at + 32 + PAGE]))
    return pages


def pages_of_bin(data, start):
    data += b"\xff" * (-len(data) % PAGE)
    return [(start + i, data[i : i + PAGE]) for i in range(0, len(data), PAGE)]


def uf2(pages):
    out = bytearray()
    for n, (addr, page) in enumerate(pages):
        out += HEADER.pack(MAGIC[0], MAGIC[1], FAMILY_FLAG, addr, PAGE, n, len(pages), RP2040)
        out += page + b"\0" * (476 - PAGE) + struct.pack("<I", END)
    return bytes(out)


def main(bootloader, firmware, app_start, out):
    app_start = int(app_start, 0)
    with open(bootloader, "rb") as f:
        boot = pages_of_uf2(f.read())
    if any(addr + PAGE > app_start for addr, _ in boot):
        sys.exit("first_install_uf2: the bootloader reaches into the application slot")
    with open(firmware, "rb") as f:
        app = pages_of_bin(f.read(), app_start)
    with open(out, "wb") as f:
        f.write(uf2(boot + app))


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__.split("\n\n")[1])
    main(*sys.argv[1:])
