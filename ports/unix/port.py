# SPDX-License-Identifier: MIT
# The unix port layer: the controller's hardware, simulated (see HACKING.md, "The port contract").
import asyncio
import sys

import machine
import network
from download_slot import DownloadSlot  # noqa: F401 (the port contract)
from ecdsa_sim import verify as ecdsa_verify  # noqa: F401 (the board's is _tinyctrl's)

from tinyctrl import __version__

CONFIG_PATH = "config.json"
STATE_PATH = "relay_state"  # beside config.json: RelayMemory's file for after a power cut


def use_config(path):
    """The simulator's board keeps its files where its config.json is, as a board keeps both
    on its one filesystem: two simulated boards never share a relay_state."""
    global CONFIG_PATH, STATE_PATH
    CONFIG_PATH = path
    STATE_PATH = path.rsplit("/", 1)[0] + "/relay_state" if "/" in path else "relay_state"


IMAGE_ID = "tinyctrl-image board=UNIX_SIM version=" + __version__  # as _tinyctrl.IMAGE_ID

on_output = None  # the simulator's hook: on_output(gpio, logical_value)
contacts = {}  # gpio -> ContactPin, for the simulator to drive


class RelayPin:
    def __init__(self, gpio, active_low):
        self.gpio = gpio
        self.active_low = active_low
        was_on = machine.level(gpio) == (0 if active_low else 1)
        self._pin = machine.Pin(gpio, machine.Pin.OUT, value=1 if active_low else 0)
        if was_on and on_output:  # a reset de-energises every relay, as on the board
            on_output(gpio, 0)

    def value(self, v=None):
        level = self._pin.value()
        if v is None:
            return level ^ self.active_low
        if (level ^ self.active_low) != v:
            self._pin.value(v ^ self.active_low)
            if on_output:
                on_output(self.gpio, v)


class ContactPin:
    def __init__(self, gpio, handler):
        self.gpio = gpio
        self._pin = machine.Pin(gpio, machine.Pin.IN, machine.Pin.PULL_UP)
        self._pin.irq(handler, machine.Pin.IRQ_FALLING | machine.Pin.IRQ_RISING)
        contacts[gpio] = self

    def value(self):
        return 1 - self._pin.value()  # closed contact pulls the pin low

    def close(self, closed):
        machine.drive(self.gpio, 0 if closed else 1)


class EdgeFlag:
    """asyncio.ThreadSafeFlag's interface. Simulated edges are raised inside the event loop,
    so an Event is safe here; on the unix port a waiting ThreadSafeFlag would make every
    poll of the loop sleep 1 ms and slow the simulated device to ~120 messages/s."""

    def __init__(self):
        self._event = asyncio.Event()

    def set(self):
        self._event.set()

    async def wait(self):
        await self._event.wait()
        self._event.clear()


class StatusLed:
    state = None

    def show(self, state):
        if state != StatusLed.state:
            StatusLed.state = state
            print("tinyctrl: LED", state, file=sys.stderr)


class Watchdog:
    """The PC has no hardware watchdog: arming and feeding do nothing here."""

    def start(self, timeout_ms):
        self.timeout_ms = timeout_ms

    def feed(self):
        pass

    def stop(self):
        pass


def set_time(unix_time):
    """The PC's clock is already right (and not ours to set)."""


def temperature_c():
    return 21.5


_station = network.WLAN(network.STA_IF)


# The simulated CYW43's link states between connect() and an address (network.py).
WIFI_JOINING = (network.STAT_CONNECTING, network.STAT_NOIP)


def wifi_start(sta):
    sta.active(True)


def wifi_rssi():
    return _station.status("rssi")


_counters = {"cause": "power", "resets": 0, "outages": 0}


def boot_record():
    return dict(_counters)


def save_counters(resets, outages):
    _counters["resets"] = resets
    _counters["outages"] = outages


# The scratch word: relay states (RelayMemory) survive a reset but not a power cut.
_relays = [None]


def saved_relays():
    return _relays[0]


def save_relays(mask):
    _relays[0] = mask


_relay_time = [None]  # a second scratch word: how long max_on_s relays have been on


def saved_relay_time():
    return _relay_time[0]


def save_relay_time(word):
    _relay_time[0] = word


def unique_id():
    """The board id: fixed bytes for the simulator (see machine.py)."""
    return machine.unique_id()


class Reset(Exception):
    pass


def reset():
    _counters["resets"] += 1
    _counters["cause"] = "soft"
    raise Reset()


def watchdog_reset():
    """The simulator's RESET: the watchdog fired (RAM lost; counters and the scratch word kept,
    the reset counted and reported as "watchdog", as ports/rp2/port.py's boot_record does)."""
    _counters["resets"] += 1
    _counters["cause"] = "watchdog"
    raise Reset()


def _reset_from_a_task(loop, context):
    """machine.reset() on the board resets from any task; here Reset leaves the event loop
    from any task too, not only from the one asyncio.run awaits (push.py resets from its own)."""
    if isinstance(context["exception"], Reset):
        raise context["exception"]
    loop.default_exception_handler(loop, context)


asyncio.get_event_loop().set_exception_handler(_reset_from_a_task)


def power_cut():
    """The simulator's POWERCYCLE: RAM and scratch words lost, only files (flash) kept."""
    _counters.update(cause="power", resets=0, outages=0)
    _relays[0] = _relay_time[0] = None
    raise Reset()
