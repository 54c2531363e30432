# SPDX-License-Identifier: MIT
# The bootloader's flag log, as the image reads and appends it (the bootloader's side is
# ports/rp2/bootloader/pico_fota_bootloader.patch, flash_utils.h). Its 4 KB sector holds 32-bit
# records appended in order; the last valid one is the state. A record is kind, arg, ~kind,
# ~arg (bytes 3 to 0, little-endian in flash): programming only clears bits, so an erased word
# or one a power cut left half programmed is never a valid record of another kind.
import struct

IDLE = 1  # nothing to do (a first install, or a rollback reported)
SWAP_WANTED = 2  # arg: sectors to swap; the image asks for its update
SWAPPING = 3  # the bootloader has started the swap
TRIAL = 4  # arg: sectors swapped; the new image's one boot to commit itself
COMMITTED = 5  # the new image proved itself
ROLLING_BACK = 6  # the bootloader swaps the old image back
ROLLED_BACK = 7  # the old image is back, for it to report

LOG_BYTES = 4096
PAGE = 256  # flash programs whole pages; 0xff bytes leave flash as it is
SECTOR = 4096
# Words the image may append between two compactions (the bootloader compacts an idle log at
# a boot with less than 64 words left): one update and its report.
IMAGE_RECORDS = 3
_ERASED = 0xFFFFFFFF


def record(kind, arg=0):
    return kind << 24 | arg << 16 | (~kind & 0xFF) << 8 | (~arg & 0xFF)


def valid(word):
    return (word >> 8) & 0xFF == ~(word >> 24) & 0xFF and word & 0xFF == ~(word >> 16) & 0xFF


def state(log):
    """(kind, arg, words used) of the log's bytes: IDLE when it holds no valid record."""
    kind, arg, used = IDLE, 0, 0
    for i in range(len(log) // 4):
        word = struct.unpack_from("<I", log, 4 * i)[0]
        if word == _ERASED:
            break
        used = i + 1
        if valid(word):
            kind, arg = word >> 24, (word >> 16) & 0xFF
    return kind, arg, used


def append(log, kind, arg=0):
    """(offset in the sector, page) that appends a record to the log's bytes: a page of 0xff
    with the record at the first erased word."""
    used = state(log)[2]
    if used >= LOG_BYTES // 4:
        raise OSError("the flag log is full")
    at = 4 * used
    page = bytearray(b"\xff" * PAGE)
    struct.pack_into("<I", page, at % PAGE, record(kind, arg))
    return at - at % PAGE, page


def sectors(*lengths):
    """Sectors a swap must move to exchange images of these byte lengths."""
    return (max(lengths) + SECTOR - 1) // SECTOR
