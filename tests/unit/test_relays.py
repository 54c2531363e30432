# SPDX-License-Identifier: MIT
"""Relays: power-on states, auto-off, interlock groups and the relay memory, with a
port whose pins and scratch word the test reads."""

import asyncio

from check import run_async
from tinyctrl import config
from tinyctrl.memory import RelayMemory
from tinyctrl.relays import Relays


class Port:
    """The port's RelayPin, scratch word and flash file (a dict), as the tests see them."""

    STATE_PATH = "relay_state.test"

    def __init__(self, scratch=None, time_word=None):
        self.levels = {}
        self.scratch = scratch
        self.time_word = time_word

    def RelayPin(self, gpio, active_low):
        return Pin(self, gpio)

    def saved_relays(self):
        return self.scratch

    def save_relays(self, mask):
        self.scratch = mask

    def saved_relay_time(self):
        return self.time_word

    def save_relay_time(self, word):
        self.time_word = word


class Pin:
    def __init__(self, port, gpio):
        self.port, self.gpio = port, gpio
        port.levels[gpio] = 0

    def value(self, v=None):
        if v is None:
            return self.port.levels[self.gpio]
        self.port.levels[self.gpio] = v


class Outbox:
    def __init__(self):
        self.lines = []
        self.changes = []

    def state(self, pins):
        pass

    def changed(self, pin, value):
        self.changes.append((pin, value))

    def reply(self, text):
        self.lines.append(text)

    error = reply


class Clock:
    t = 100000

    def __call__(self):
        return self.t


def make(port=None, **gpio):
    g = {"relay": [16, 17, 20, 21], "momentary": {"18": 1}}
    g.update(gpio)
    cfg = config.validate(
        {
            "wifi": {"ssid": "s"},
            "mqtt": {"server": "b", "topic": "t"},
            "gpio": g,
            "guard": {"cooldown_s": 0, "max_changes": 100},
        }
    )
    port = port or Port()
    out = Outbox()
    memory = RelayMemory(cfg, port)
    return Relays(cfg, port, out, Clock(), memory), port, out


def test_two_of_a_group_asked_on_together_is_refused_whole():
    r, port, out = make(interlock=[[20, 21]])
    r.apply({16: 1, 20: 1, 21: 1})
    assert port.levels[16] == port.levels[20] == port.levels[21] == 0
    assert out.lines == [
        "Error: GP20 and GP21 are interlocked, never on together; request refused"
    ]


def test_refuse_mode_keeps_the_one_that_is_on():
    r, port, out = make(interlock=[[20, 21]])
    r.apply({20: 1})
    r.apply({21: 1, 16: 1})
    assert (port.levels[20], port.levels[21], port.levels[16]) == (1, 0, 1)
    assert out.lines == ["Error: GP21 not switched on: interlocked with GP20, which is on"]
    r.apply({20: 0, 21: 1})  # off in the same request: allowed, offs come first
    assert (port.levels[20], port.levels[21]) == (0, 1)


def test_switch_mode_turns_the_other_off_first():
    r, port, out = make(interlock=[[20, 21]], interlock_mode="switch")
    r.apply({20: 1})
    r.apply({21: 1})
    assert (port.levels[20], port.levels[21]) == (0, 1)
    assert out.lines == ["Info: GP20 switched off first: interlocked with GP21"]
    assert out.changes[-2:] == [(20, 0), (21, 1)]


def test_dead_time_delays_the_on_and_a_newer_request_cancels_it():
    async def main():
        r, port, out = make(interlock=[[20, 21]], interlock_mode="switch", interlock_dead_ms=50)
        r.apply({20: 1})
        r.apply({21: 1})
        assert (port.levels[20], port.levels[21]) == (0, 0)  # both off during the dead time
        assert out.lines == [
            "Info: GP20 switched off first: interlocked with GP21; GP21 on in "
            "50 ms (gpio.interlock_dead_ms)"
        ]
        await asyncio.sleep_ms(300)  # generous: a loaded CI machine runs the loop late
        assert port.levels[21] == 1
        r.apply({21: 0})
        r.apply({20: 1})  # 21 went off just now: 20 waits too
        r.apply({20: 0})  # ... and is not switched on at all
        await asyncio.sleep_ms(300)
        assert (port.levels[20], port.levels[21]) == (0, 0)

    run_async(main)


def test_max_on_s_switches_off_and_says_why():
    async def main():
        r, port, out = make(max_on_s={"16": 1})
        r.apply({16: 1})
        await asyncio.sleep_ms(300)
        assert port.levels[16] == 1
        await asyncio.sleep_ms(2200)  # generous: a loaded CI machine runs the loop late
        assert port.levels[16] == 0
        assert out.lines == ["Info: GP16 switched off after 1s (gpio.max_on_s)"]
        r.apply({16: 1})
        r.apply({16: 0})  # switched off by hand: no auto-off line later
        await asyncio.sleep_ms(1500)
        assert len(out.lines) == 1

    run_async(main)


def test_power_on_states_after_a_watchdog_reset_and_a_power_cut():
    async def main():
        modes = {"16": "restore", "17": "on", "20": "restore", "21": "off"}
        r, port, out = make(power_on_state=modes)
        r.power_on("power")
        assert (port.levels[16], port.levels[17]) == (0, 1)
        r.apply({16: 1, 20: 1, 21: 1})
        scratch = port.scratch
        assert scratch == (1 << 16) | (1 << 17) | (1 << 20) | (1 << 21)
        r2, port2, out2 = make(Port(scratch), power_on_state=modes)
        r2.power_on("watchdog")
        assert [port2.levels[p] for p in (16, 17, 18, 20, 21)] == [1, 1, 0, 1, 0]
        assert out2.lines == [
            "Info: power-on after watchdog reset: GP16 on (restore), "
            "GP17 on (on), GP20 on (restore)"
        ]
        r2.apply({17: 0})  # the burnout guard never counted the restore
        assert r2.burnout._changes.get(16) is None
        r3, port3, _ = make(Port(scratch), power_on_state=modes)
        r3.power_on("power")  # power cut: the scratch word means nothing, no flash asked
        assert [port3.levels[p] for p in (16, 17, 20)] == [0, 1, 0]

    run_async(main)


def test_flash_is_written_on_real_change_only_and_coalesced():
    import os

    from tinyctrl import memory

    async def main():
        memory.FLASH_EVERY_S = 0.5
        r, port, _ = make(
            power_on_state={"16": "restore", "20": "restore"}, restore_after_power_cut="flash"
        )
        task = asyncio.create_task(r.memory.run(r.states))
        r.apply({17: 1})  # not a restore relay: nothing to write
        await asyncio.sleep_ms(50)
        assert r.memory.writes == 0
        r.apply({16: 1})
        await asyncio.sleep_ms(50)
        assert r.memory.writes == 1
        for v in (1, 0, 1, 0, 1):  # within the interval: one more write, the last state
            r.apply({20: v})
        r.apply({16: 0})
        await asyncio.sleep_ms(1500)  # one interval, and a loaded CI machine's lateness
        assert r.memory.writes == 2
        with open(Port.STATE_PATH) as f:
            assert f.read() == str(1 << 20)
        task.cancel()
        r2, port2, out2 = make(
            Port(None),
            power_on_state={"16": "restore", "20": "restore"},
            restore_after_power_cut="flash",
        )
        r2.power_on("power")  # a power cut: from the file
        assert (port2.levels[16], port2.levels[20]) == (0, 1)

    try:
        run_async(main)
    finally:
        memory.FLASH_EVERY_S = 10
        try:
            os.remove(Port.STATE_PATH)
        except OSError:
            pass


def test_a_delayed_on_is_replaced_only_by_a_request_that_could_move_it():
    """Refuse mode: another pin's on is refused while one waits out the dead time, and a
    request that moves nothing (an off for a pin already off) cancels nothing."""

    async def main():
        r, port, out = make(interlock=[[20, 21]], interlock_dead_ms=100)
        r.apply({20: 1})
        r.apply({20: 0})
        r.apply({21: 1})  # 20 went off just now: 21 waits
        r.apply({20: 0})  # already off: moves nothing
        r.apply({20: 1})
        await asyncio.sleep_ms(400)
        assert (port.levels[20], port.levels[21]) == (0, 1)
        assert (
            out.lines[-1] == "Error: GP20 not switched on: interlocked with GP21, which is "
            "switching on"
        )

    run_async(main)


def test_the_dead_time_and_the_running_relay_hold_across_a_reset():
    """GP21 (restore) was on at a watchdog reset; GP20's power-on state is on. The restore
    keeps the one that was running; without it, GP20 waits out the dead time after the reset."""

    async def main():
        group = {"interlock": [[20, 21]], "interlock_dead_ms": 100}
        modes = {"20": "on", "21": "restore"}
        r, port, out = make(Port(1 << 21), power_on_state=modes, **group)
        r.power_on("watchdog")
        await asyncio.sleep_ms(300)
        assert (port.levels[20], port.levels[21]) == (0, 1)
        assert out.lines == [
            "Info: power-on after watchdog reset: GP20 off (on; interlocked "
            "with GP21, which is on), GP21 on (restore)"
        ]
        r, port, out = make(Port(1 << 21), power_on_state={"20": "on"}, **group)
        r.power_on("watchdog")
        assert (port.levels[20], port.levels[21]) == (0, 0)  # the motor stops first
        assert out.lines == [
            "Info: power-on after watchdog reset: GP20 on in 100 ms (on; gpio.interlock_dead_ms)"
        ]
        await asyncio.sleep_ms(300)
        assert port.levels[20] == 1
        r, port, out = make(Port(1 << 21), **group)
        r.power_on("watchdog")
        r.apply({20: 1})  # a request right after the reset waits too
        assert port.levels[20] == 0
        assert out.lines[-1].startswith("Info: GP20 on in ")
        await asyncio.sleep_ms(300)
        assert port.levels[20] == 1
        r, port, out = make(Port(1 << 16), power_on_state={"20": "on"}, **group)
        r.power_on("watchdog")  # nothing of the group ran: at once
        assert port.levels[20] == 1

    run_async(main)


def test_max_on_s_counts_the_time_on_before_a_reset():
    """A relay on for most of its max_on_s at a watchdog reset, restored: it goes off after
    what was left, not after max_on_s again. Counted in fifteenths, rounded up (early, not
    late)."""

    async def main():
        timed = {"power_on_state": {"16": "restore", "17": "on"}, "max_on_s": {"16": 1, "17": 1}}
        r, port, out = make(**timed)
        r.apply({16: 1})
        await asyncio.sleep_ms(700)
        assert port.levels[16] == 1
        word = port.time_word
        assert word & 15 >= 10  # slot 0: GP16, 10 of 15 steps or more used
        r, port, out = make(Port(1 << 16, word), **timed)
        r.power_on("watchdog")
        assert port.levels[16] == 1 and port.levels[17] == 1
        assert out.lines[0].startswith("Info: power-on after watchdog reset: GP16 on (restore; ")
        await asyncio.sleep_ms(500)
        assert port.levels[16] == 0 and port.levels[17] == 1  # GP17 starts afresh: it was off
        assert "Info: GP16 switched off after 1s (gpio.max_on_s)" in out.lines
        r, port, out = make(Port(1 << 16, 15), **timed)  # used up just before the reset
        r.power_on("watchdog")
        assert port.levels[16] == 0
        assert out.lines == [
            "Info: power-on after watchdog reset: GP16 off (restore; "
            "gpio.max_on_s used up), GP17 on (on)"
        ]
        r, port, out = make(Port(1 << 16, 15), **timed)
        r.power_on("power")  # a power cut: nothing known, the time starts again
        assert port.levels[16] == 0 and port.levels[17] == 1

    run_async(main)
