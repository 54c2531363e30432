# SPDX-License-Identifier: MIT
# Relay states kept for gpio.power_on_state "restore" (and how long gpio.max_on_s relays have
# been on): in memory that survives a watchdog or soft reset (the port's scratch words), and,
# if gpio.restore_after_power_cut is "flash", in a small file for after a power cut. The file is
# written only when a restored
# relay really changed, at most once per FLASH_EVERY_S (coalesced), to bound flash wear.
import asyncio

from . import log

FLASH_EVERY_S = 10


class RelayMemory:
    def __init__(self, cfg, hw):
        g = cfg["gpio"]
        self.hw = hw
        self.use_flash = g["restore_after_power_cut"] == "flash"
        self.restored = 0  # bit mask of the pins whose power-on state is "restore"
        for p, mode in g["power_on_state"].items():
            if mode == "restore":
                self.restored |= 1 << p
        self._written = 0  # the mask in the file (restored pins only); no file: all off
        self._dirty = asyncio.Event()
        self.writes = 0

    def recall(self, cause):
        """The states (bit mask) to restore after a reset of `cause`; 0 where nothing is known."""
        saved = self.hw.saved_relays() if cause != "power" else None
        if saved is None and self.use_flash:
            saved = self._read_file()
        if self.use_flash:
            self._written = self._read_file() or 0
        return (saved or 0) & self.restored

    def before(self, cause):
        """Every relay's state (bit mask) just before a watchdog or soft reset; None after a
        power cut, when nobody knows (the flash file keeps restored relays only)."""
        return self.hw.saved_relays() if cause != "power" else None

    def time_before(self, cause):
        """The word of how long max_on_s relays had been on (relays.TIME_STEPS) before a
        watchdog or soft reset; None after a power cut."""
        return self.hw.saved_relay_time() if cause != "power" else None

    def save_time(self, word):
        self.hw.save_relay_time(word)

    def save(self, mask):
        self.hw.save_relays(mask)
        if self.use_flash and (mask & self.restored) != self._written:
            self._dirty.set()

    def _read_file(self):
        try:
            with open(self.hw.STATE_PATH) as f:
                return int(f.read(12))
        except (OSError, ValueError):
            return None  # never written, or cut short: everything starts off

    async def run(self, states):
        """Writes the file when a restored relay changed; `states()` is the current mask."""
        while self.use_flash:
            await self._dirty.wait()
            self._dirty.clear()
            mask = states() & self.restored
            if mask != self._written:
                try:
                    with open(self.hw.STATE_PATH, "w") as f:
                        f.write(str(mask))
                    self._written = mask
                    self.writes += 1
                except OSError as e:
                    log("relay state not written:", repr(e))
            await asyncio.sleep(FLASH_EVERY_S)
