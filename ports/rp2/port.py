# SPDX-License-Identifier: MIT
# Pico W implementation of the port contract (see HACKING.md).
import asyncio
import machine
import network
import time
from machine import Pin
import _tinyctrl

CONFIG_PATH = "/config.json"
STATE_PATH = "/relay_state"  # RelayMemory's file for after a power cut

# Firmware updates (download.py): the image's identity, the manifest's signature check, the
# download slot and the bootloader's flag log, in flash outside the filesystem (update.py has
# the layout; _tinyctrl reaches only these two regions).
IMAGE_ID = _tinyctrl.IMAGE_ID
ecdsa_verify = _tinyctrl.ecdsa_verify
image_bytes = _tinyctrl.image_bytes
_DOWNLOAD_START = 0x0E8000
_FLAG_LOG = 0x009000
_SECTOR = 4096
_PAGE = 256


class DownloadSlot:
    """Written in order from offset 0: a sector is erased when the writing first reaches it,
    and whole pages are programmed (a part page waits for the next write)."""

    def __init__(self, _folder):
        self._erased = 0  # bytes of the slot erased so far
        self._pending = bytearray()  # bytes after the last whole page written
        self._at = 0  # slot offset of _pending's first byte

    def write(self, offset, data):
        if offset != self._at + len(self._pending):
            raise OSError("download slot written out of order")
        self._pending += data
        whole = len(self._pending) - len(self._pending) % _PAGE
        if not whole:
            return
        while self._erased < self._at + whole:
            _tinyctrl.flash_erase(_DOWNLOAD_START + self._erased)
            self._erased += _SECTOR
        _tinyctrl.flash_program(_DOWNLOAD_START + self._at, memoryview(self._pending)[:whole])
        self._at += whole
        self._pending = self._pending[whole:]

    def read(self, offset, n):
        return _tinyctrl.flash_read(_DOWNLOAD_START + offset, n)

    def clear(self):
        """The first sector erased: nothing of a refused image is left looking like one."""
        _tinyctrl.flash_erase(_DOWNLOAD_START)


class FlagLog:
    """The bootloader's flag log (bootflags.py): read whole, appended a page at a time."""

    def read(self):
        return _tinyctrl.flash_read(_FLAG_LOG, _SECTOR)

    def program(self, offset, page):
        _tinyctrl.flash_program(_FLAG_LOG + offset, page)


class RelayPin:
    def __init__(self, gpio, active_low):
        self._invert = 1 if active_low else 0
        self._on = 0
        # Start de-energised so relays do not click at boot.
        self._pin = Pin(gpio, Pin.OUT, value=self._invert)

    def value(self, v=None):
        # The state is what was last set, not read back from the pad.
        if v is None:
            return self._on
        self._on = 1 if v else 0
        self._pin.value(self._on ^ self._invert)


class ContactPin:
    def __init__(self, gpio, handler):
        self._pin = Pin(gpio, Pin.IN, Pin.PULL_UP)
        # Soft IRQ: handler(machine_pin) runs via micropython.schedule, so it may allocate.
        self._pin.irq(handler, Pin.IRQ_FALLING | Pin.IRQ_RISING, hard=False)

    def value(self):
        return 1 - self._pin.value()  # closed contact pulls the pin low


# Contact IRQs (soft, via micropython.schedule) may interrupt the event loop anywhere.
EdgeFlag = asyncio.ThreadSafeFlag


# LED patterns over a 2 s cycle of 100 ms steps, bit i = LED on at step i.
_STEPS = 20
_PATTERNS = {
    "connecting": 0b00110011001100110011,  # fast blink
    "operational": (1 << _STEPS) - 1,  # steady on
    "halted": (1 << (_STEPS // 2)) - 1,  # slow blink, 1 s on / 1 s off
    "config_error": 0b101,  # double flash
}


class StatusLed:
    # All instances share the one LED and its timer. The class holds the timer,
    # so it is not collected (and stopped) when a caller drops its instance.
    _timer = None
    _pattern = _step = _lit = 0

    def __init__(self):
        cls = StatusLed
        if cls._timer is None:
            cls._led = Pin("LED", Pin.OUT, value=0)
            # Soft timer: the Pico W LED hangs off the CYW43, whose SPI bus
            # must not be driven from a hard IRQ.
            cls._timer = machine.Timer(period=100, callback=cls._tick, hard=False)

    def show(self, state):
        StatusLed._pattern = _PATTERNS[state]
        StatusLed._step = 0

    @classmethod
    def _tick(cls, _):
        lit = (cls._pattern >> cls._step) & 1
        cls._step = (cls._step + 1) % _STEPS
        if lit != cls._lit:  # each write is a CYW43 bus transaction
            cls._lit = lit
            cls._led.value(lit)


def temperature_c():
    # RP2040 datasheet 4.9.5: 0.706 V at 27 C, -1.721 mV per degree.
    volts = machine.ADC(4).read_u16() * 3.3 / 65535
    celsius = 27 - (volts - 0.706) / 0.001721
    # Beyond the chip's -40..85 C rating the reading is a fault (a bare ADC reads 0 V: 437 C).
    return celsius if -50 <= celsius <= 100 else None


# CYW43 link states between connect() and an address: joining, joined without an address.
WIFI_JOINING = (network.STAT_CONNECTING, 2)


def wifi_start(sta):
    sta.active(True)
    sta.config(pm=0xA11140)  # no power saving: Pico W guide 3.6.3, as mqtt_as does


def wifi_rssi():
    wlan = network.WLAN(network.STA_IF)
    # The driver reports junk for rssi while not associated.
    return wlan.status("rssi") if wlan.isconnected() else None


class Watchdog:
    # Fed by a C timer while feed() was called within timeout_ms, which may
    # exceed the ~8 s hardware limit (TLS handshakes and DNS block).
    def start(self, timeout_ms):
        _tinyctrl.wdt_start(timeout_ms)

    def feed(self):
        _tinyctrl.wdt_kick()

    def stop(self):
        _tinyctrl.wdt_stop()


# Watchdog scratch registers (4..7 belong to pico-sdk): 0 the reset and outage counters (15
# and 16 bits), 1 how long gpio.max_on_s relays have been on (Relays.timed, 4 bits each), 3 the
# relay states (a bit mask per GPIO); 2 is a check word over the three. They survive a
# watchdog or soft reset but not a power cycle.
_CHECK = 0x7C7C0DE5
_CAUSES = {
    _tinyctrl.RESET_POWER: "power",
    _tinyctrl.RESET_WATCHDOG: "watchdog",
    _tinyctrl.RESET_SOFT: "soft",
}


def _scratch_valid():
    get = _tinyctrl.scratch_get
    return get(2) == get(0) ^ get(1) ^ get(3) ^ _CHECK


def _counters():
    if not _scratch_valid():
        return 0, 0
    word = _tinyctrl.scratch_get(0)
    return word >> 16, word & 0xFFFF


def boot_record():
    """Called once per boot (main.build): a watchdog or soft reset is counted here."""
    resets, outages = _counters()
    cause = _CAUSES[_tinyctrl.reset_cause()]
    if cause != "power":
        resets += 1
        if _scratch_valid():  # else nothing was saved since power-on: no relay mask to keep
            _save(resets, outages, _tinyctrl.scratch_get(3), _tinyctrl.scratch_get(1))
    return {"cause": cause, "resets": resets, "outages": outages}


def _save(resets, outages, relays, relay_time):
    counters = min(resets, 0x7FFF) << 16 | min(outages, 0xFFFF)
    _tinyctrl.scratch_set(0, counters)
    _tinyctrl.scratch_set(1, relay_time)
    _tinyctrl.scratch_set(3, relays)
    _tinyctrl.scratch_set(2, counters ^ relay_time ^ relays ^ _CHECK)


def _saved(i):
    return _tinyctrl.scratch_get(i) if _scratch_valid() else None


def save_counters(resets, outages):
    _save(resets, outages, _saved(3) or 0, _saved(1) or 0)


def saved_relays():
    """The relay states saved before a watchdog or soft reset, or None (power cut)."""
    return _saved(3)


def save_relays(mask):
    resets, outages = _counters()
    _save(resets, outages, mask, _saved(1) or 0)


def saved_relay_time():
    """How long max_on_s relays had been on before a watchdog or soft reset, or None."""
    return _saved(1)


def save_relay_time(word):
    resets, outages = _counters()
    _save(resets, outages, _saved(3) or 0, word)


def unique_id():
    """The board id: the flash chip's 8-byte unique id."""
    return machine.unique_id()


def set_time(unix_time):
    y, mo, d, h, mi, sec, wd, _ = time.gmtime(int(unix_time))
    machine.RTC().datetime((y, mo, d, wd, h, mi, sec, 0))


def reset():
    machine.reset()
