# SPDX-License-Identifier: MIT
"""The time the lab's NTP server gives the board: when it last answered, and a clock that runs
with the board's emulated seconds."""

import dataclasses
import threading
import time


@dataclasses.dataclass
class NtpFix:
    """When the guest last got an NTP answer: host time and emulated time at that moment."""

    host_time: float
    emulated_s: float


class EmulatedClock:
    """Unix time that runs with the board's emulated seconds, for the lab's NTP server (opt-in:
    Lab.use_emulated_clock()). Host time, which the server gives by default, runs about 30 times
    faster than the guest: a 30 s TOTP step passes in about one emulated second, so a code used
    before a reboot is stale long before the board is back, and no replay test could fail.

    The base is fixed at the first answer: `lead_s` before the start of a TOTP step, so the
    guest's first sync and the steps after it fall where a scenario can count on them."""

    def __init__(self, emulated_s, lead_s, step_s=30):
        self._emulated_s = emulated_s
        self.lead_s = lead_s
        self.step_s = step_s
        self.base = None
        self.served = []  # unix time of every NTP answer, in order
        self._lock = threading.Lock()

    def answer(self):
        """The NtpServer's clock: the time to serve now, remembered."""
        with self._lock:
            if self.base is None:
                next_step = (int(time.time()) // self.step_s + 1) * self.step_s
                self.base = next_step - self.lead_s - self._emulated_s()
            now = self.base + self._emulated_s()
            self.served.append(now)
        return now

    def now(self):
        """What the guest's synced clock reads now (give or take the answer's way to it)."""
        if self.base is None:
            raise RuntimeError("the guest has not had an NTP answer yet")
        return self.base + self._emulated_s()
