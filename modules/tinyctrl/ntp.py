# SPDX-License-Identifier: MIT
# NTP in one place: the SNTP packet (pure, testable without a network), the query, and the
# task that keeps the clock in step, periodically and when {"CMD":"ntp"} asks.
import asyncio
import socket
import struct
import time

from . import clock, log
from .guard import RateLimit

DELTA = 2208988800  # 1900-01-01 to 1970-01-01
REQUEST = b"\x1b" + b"\x00" * 47  # LI 0, version 3, mode 3 (client)
RETRY_S = 60


def parse(data):
    """Unix time (to the nearest second) from an SNTP reply; ValueError if it is not a usable
    server reply."""
    if len(data) < 48 or data[0] & 0x07 not in (4, 5) or data[1] == 0:
        raise ValueError("bad NTP reply")
    secs, frac = struct.unpack("!II", data[40:48])
    if secs == 0:
        raise ValueError("bad NTP reply")
    return secs - DELTA + (frac >> 31)


async def query(host, port, timeout_s=3):
    """Unix time from an SNTP server. getaddrinfo blocks; the watchdog timeout allows for it."""
    addr = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0][-1]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setblocking(False)
        s.sendto(REQUEST, addr)
        for _ in range(timeout_s * 20):
            await asyncio.sleep_ms(50)
            try:
                data = s.recv(64)
            except OSError:
                continue
            if data:
                return parse(data)
    finally:
        s.close()
    raise OSError("no NTP reply from %s" % host)


class Sync:
    """Keeps `clock` (a clock.Clock) and the board's clock in step with NTP: every
    ntp.interval_s, and at once when asked (at most once per ntp.force_wait_s)."""

    def __init__(self, cfg, hw, clock, outbox, mono_ms):
        self.cfg = cfg
        self.hw = hw
        self.clock = clock
        self.outbox = outbox
        self.mono_ms = mono_ms  # -> monotonic milliseconds
        self._forced = asyncio.Event()
        self._force_limit = RateLimit(cfg["ntp"]["force_wait_s"])

    def force(self):
        """{"CMD":"ntp"}: sync now, unless one was forced within ntp.force_wait_s."""
        refusal = self._force_limit.refuse(self.mono_ms(), "NTP sync was forced")
        if refusal:
            return self.outbox.error(refusal)
        self._forced.set()

    async def once(self):
        """One NTP query; sets the board's clock too (TLS checks certificate dates against it)."""
        n = self.cfg["ntp"]
        t = await query(n["host"], n["port"])
        self.hw.set_time(t)
        self.clock.sync(t, time.time())
        log("clock synced:", clock.format_local("UTC", t), "UTC")
        return t

    async def run(self):
        n = self.cfg["ntp"]
        while True:
            forced = self._forced.is_set()
            self._forced.clear()
            try:
                t = await self.once()
                if forced:
                    self.outbox.reply(
                        "Info: clock synced, Rtc=" + clock.format_local(self.cfg["timezone"], t)
                    )
                wait = n["interval_s"]
            except Exception as e:
                log("ntp:", repr(e))
                if forced:
                    self.outbox.error("Error: NTP sync failed")
                wait = RETRY_S
            if wait < 0:  # periodic sync off: wait for a forced one
                await self._forced.wait()
                continue
            try:
                await asyncio.wait_for(self._forced.wait(), wait)
            except asyncio.TimeoutError:
                pass
