# SPDX-License-Identifier: MIT
# The bootloader's flag log as the image reads and appends it (tinyctrl.bootflags), under
# CPython and MicroPython: the record format is the bootloader's (its C header, parsed here),
# a record half programmed by a power cut is never another valid record, and the state is the
# last valid record.
import os
import struct

from check import raises

from tinyctrl import bootflags

HEADER = __file__.rsplit("/", 3)[0] + "/ports/rp2/bootloader/pico_fota_bootloader.patch"
KINDS = ("IDLE", "SWAP_WANTED", "SWAPPING", "TRIAL", "COMMITTED", "ROLLING_BACK", "ROLLED_BACK")


def erased():
    return bytearray(b"\xff" * bootflags.LOG_BYTES)


def program(log, offset, page):
    """What flash does: bits go from 1 to 0 only."""
    for i, b in enumerate(page):
        log[offset + i] &= b


def test_kinds_are_the_bootloaders():
    with open(HEADER) as f:
        text = f.read()
    for name in KINDS:
        marker = "+#define PFB_RECORD_%s 0x0" % name
        at = text.find(marker)
        assert at >= 0, name
        assert int(text[at + len(marker)]) == getattr(bootflags, name), name


def test_an_erased_log_is_idle():
    assert bootflags.state(erased()) == (bootflags.IDLE, 0, 0)


def test_a_first_install_writes_one_idle_record():
    # boot2040.ld's .flash_info: LONG(0x0100feff)
    log = erased()
    struct.pack_into("<I", log, 0, 0x0100FEFF)
    assert bootflags.record(bootflags.IDLE) == 0x0100FEFF
    assert bootflags.state(log) == (bootflags.IDLE, 0, 1)


def test_appended_records_make_the_state():
    log = erased()
    for kind, arg in ((bootflags.SWAP_WANTED, 210), (bootflags.SWAPPING, 210)):
        program(log, *bootflags.append(log, kind, arg))
        assert bootflags.state(log)[:2] == (kind, arg)
    assert bootflags.state(log)[2] == 2


def test_a_half_programmed_record_is_never_another():
    # Programming clears bits: a cut leaves the target's bits plus some still set. Such a
    # word must be invalid, or the record it was to be.
    seed = os.urandom(64)
    for n, kind in enumerate(range(1, 8)):
        for arg in (0, 1, 210, 222):
            target = bootflags.record(kind, arg)
            for i in range(40):
                extra = struct.unpack("<I", bytes(seed[(n + i + j) % 64] for j in range(4)))[0]
                word = target | (extra & ~target & 0xFFFFFFFF)
                assert not bootflags.valid(word) or word == target, (hex(target), hex(word))


def test_garbage_words_are_skipped_and_a_full_log_refuses():
    log = erased()
    struct.pack_into("<I", log, 0, bootflags.record(bootflags.COMMITTED))
    struct.pack_into("<I", log, 4, 0)  # not a record
    assert bootflags.state(log) == (bootflags.COMMITTED, 0, 2)
    full = bytearray(bootflags.LOG_BYTES)  # every word programmed to 0
    raises(OSError, bootflags.append, full, bootflags.IDLE)


def test_sectors_cover_the_larger_image():
    assert bootflags.sectors(4096, 1) == 1
    assert bootflags.sectors(859904, 860000) == 210
