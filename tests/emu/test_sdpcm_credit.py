# SPDX-License-Identifier: MIT
"""The emulated CYW43439's SDPCM credit (emu.cyw43.SdpcmCreditBus) against cyw43-driver's own
credit rules, on plain CPython: no emulator boot, no namespace.

The bench with Home Assistant discovery on: with bus.py's credit (one per frame sent to the guest)
the guest stalled after
256 frames that answered none of its own, and the stall lost the TCP stream."""

import struct

import pytest
from emu.cyw43 import SDPCM_CREDIT_WINDOW, IsolatedCyw43439, SdpcmCreditBus
from emu.isolation import Router
from rp2040py.external.cyw43 import bus

ACK_FRAME = bytes(60)  # a frame from the NAT bridge; its content does not matter here


class Driver:
    """cyw43_ll.c's side of the credit: each frame it sends takes the next 8-bit number
    (cyw43_sdpcm_send_common()), which must differ from the last credit it took to send
    at all; it takes a frame's credit only if at most 20 ahead (sdpcm_process_rx_packet())."""

    def __init__(self):
        self.credit, self.seq = 1, 0  # as cyw43_ll_bus_init() leaves them

    def receive(self, packet):
        kind, credit = packet[5] & 0x0F, packet[9]
        if kind < 3 and (credit - self.credit) & 0xFF <= 20:
            self.credit = credit

    def stalled(self):
        return self.credit == self.seq

    def data_frame(self):
        payload = bytes(2 + bus.BDC_HEADER_LEN) + ACK_FRAME
        size = bus.SDPCM_HEADER_LEN + len(payload)
        header = struct.pack(
            "<HHBBBBBBH",
            size,
            ~size & 0xFFFF,
            self.seq,
            bus.DATA_HEADER,
            0,
            bus.SDPCM_HEADER_LEN + 2,
            0,
            0,
            0,
        )
        self.seq = (self.seq + 1) & 0xFF
        return header + payload


def exchange(chip, segments):
    """The guest sends `segments` TCP segments, each answered by the chip's flow-control frame
    and the NAT bridge's ACK, and reads what the chip queued; True if it never stalled."""
    driver, queued = Driver(), []
    chip.queue_rx_packet = queued.append
    for _ in range(segments):
        if driver.stalled():
            return False
        chip._write_wlan(driver.data_frame())
        chip.queue_rx_ethernet_frame(ACK_FRAME)
        for packet in queued:
            driver.receive(packet)
        queued.clear()
    return True


def test_rp2040py_credit_drifts_into_a_stall():
    # The harness's reason to exist: if this starts passing, rp2040py fixed its credit.
    assert not exchange(bus.GSPIBus(), 600)


def test_the_guest_is_never_stalled_by_frames_it_did_not_ask_for():
    assert exchange(SdpcmCreditBus(), 600)


def test_the_emulated_wifi_chip_grants_credit_so():
    chip = IsolatedCyw43439(Router({}))
    assert isinstance(chip.bus, SdpcmCreditBus)


@pytest.mark.parametrize("frames", [0, 1, 300])
def test_credit_runs_a_window_ahead_of_the_guests_frames(frames):
    chip, driver = SdpcmCreditBus(), Driver()
    for _ in range(frames):
        chip._write_wlan(driver.data_frame())
    assert chip._bus_data_credit == (driver.seq + SDPCM_CREDIT_WINDOW) & 0xFF
    chip.power_off()  # WL_ON low: the driver numbers its frames from 0 again
    assert chip._bus_data_credit == SDPCM_CREDIT_WINDOW
