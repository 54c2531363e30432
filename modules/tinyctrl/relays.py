# SPDX-License-Identifier: MIT
# Moving relays: decide every requested pin first, then move them together (Action N), within
# the burnout guard; a momentary relay is released by a task of its own after its wait.
# Power-on states, auto-off after gpio.max_on_s, and interlock groups whose relays are never
# on together.
import asyncio

from .config import TIMED_RELAYS
from .guard import BurnoutGuard

# How long a max_on_s relay has been on, kept across a watchdog or soft reset: per relay 4 bits
# of one scratch word, in fifteenths of its max_on_s, counted ahead (a reset finds the step it
# fell in used up: the relay goes off early, never late).
TIME_STEPS = 15


class Relays:
    def __init__(self, cfg, hw, outbox, mono_ms, memory=None):
        g, gd = cfg["gpio"], cfg["guard"]
        self.prefix = g["prefix"]
        self.outbox = outbox
        self.mono_ms = mono_ms  # -> monotonic milliseconds
        self.pins = {}
        for p in g["relay"] + sorted(g["momentary"]):
            self.pins[p] = hw.RelayPin(p, g["active_low"])
        self.momentary = g["momentary"]  # pin -> seconds held
        self.burnout = BurnoutGuard(
            gd["cooldown_s"], gd["max_changes"], gd["window_s"], gd["max_violations"]
        )
        self._releases = {}  # momentary or max_on_s pin -> its switch-off task
        self.power_on_state = g["power_on_state"]
        self.max_on_s = g["max_on_s"]
        self.memory = memory  # memory.RelayMemory, for "restore"
        # max_on_s relays that may be on after a reset: their slot in the time word.
        self.timed = sorted(
            p for p in self.max_on_s if self.power_on_state.get(p, "off") != "off"
        )[:TIMED_RELAYS]
        self._time_word = 0
        self.groups = g["interlock"]
        self.group = {}  # interlocked pin -> its group
        for grp in self.groups:
            for p in grp:
                self.group[p] = grp
        self.interlock_switch = g["interlock_mode"] == "switch"
        self.dead_ms = g["interlock_dead_ms"]
        self._off_at = {}  # interlocked pin -> when it last went off (ms)
        self._delayed = {}  # interlocked pin -> task switching it on after the dead time

    def value(self, pin):
        return self.pins[pin].value()

    def name(self, pin):
        return "%s%d" % (self.prefix, pin)

    def states(self):
        """Every relay's state as a bit mask (what RelayMemory keeps)."""
        mask = 0
        for p, pin in self.pins.items():
            if pin.value():
                mask |= 1 << p
        return mask

    def power_on(self, cause):
        """Apply gpio.power_on_state after a reset of `cause` ("power", "watchdog", "soft").
        Not a change for the burnout guard; momentary relays always start off. Restored relays
        go first: one that was running keeps its interlock group. gpio.interlock_dead_ms holds
        across the reset: a relay of a group whose other relay ran until the reset (or, after a
        power cut, may have) waits it out."""
        saved = self.memory.recall(cause) if self.memory else 0
        before = self.memory.before(cause) if self.memory else None  # every relay; None: unknown
        word = (self.memory.time_before(cause) if self.memory else None) or 0
        now_ms = self.mono_ms()
        if before is not None:
            for q in self.group:
                if before >> q & 1:  # it went off at the reset: the dead time counts from now
                    self._off_at[q] = now_ms
        lines = []
        for want in ("restore", "on"):
            for p in sorted(self.pins):
                mode = self.power_on_state.get(p, "off")
                if (
                    mode != want
                    or p in self.momentary
                    or (mode == "restore" and not saved >> p & 1)
                ):
                    continue
                grp = self.group.get(p, ())
                running = [
                    q for q in grp if q != p and (self.pins[q].value() or q in self._delayed)
                ]
                if running:
                    lines.append(
                        (
                            p,
                            "%s off (%s; interlocked with %s, which is on)"
                            % (self.name(p), mode, self.name(running[0])),
                        )
                    )
                    continue
                wait = 0
                if grp and (before is None or any(before >> q & 1 for q in grp if q != p)):
                    wait = self.dead_ms
                if wait:
                    self._delayed[p] = asyncio.create_task(self._on_after(p, wait))
                    lines.append(
                        (
                            p,
                            "%s on in %d ms (%s; gpio.interlock_dead_ms)"
                            % (self.name(p), wait, mode),
                        )
                    )
                    continue
                used = 0
                if p in self.timed and before is not None and before >> p & 1:
                    used = word >> 4 * self.timed.index(p) & 15  # on until the reset
                if used >= TIME_STEPS:
                    lines.append((p, "%s off (%s; gpio.max_on_s used up)" % (self.name(p), mode)))
                    continue
                self.pins[p].value(1)
                self._moved(p, 1, now_ms, used)
                left = ""
                if used:
                    left = "; %ds of gpio.max_on_s left" % (
                        self.max_on_s[p] * (TIME_STEPS - used) // TIME_STEPS
                    )
                lines.append((p, "%s on (%s%s)" % (self.name(p), mode, left)))
        if lines:  # in pin order, whatever went first
            lines.sort()
            self.outbox.reply(
                "Info: power-on after %s reset: %s" % (cause, ", ".join(line for _, line in lines))
            )

    def apply(self, wanted):
        """Move the pins in `wanted` ({pin: value}); refusals go out as error lines. Returns
        the pins that moved now ({pin: value}); a delayed on is not among them."""
        now_ms = self.mono_ms()
        self.outbox.state(wanted)  # the requested pins' state, moved or not
        both = self._interlocked(wanted)
        if both:
            return self.outbox.error(
                "Error: %s are interlocked, never on together; request "
                "refused" % " and ".join(self.name(p) for p in both)
            )
        for p in wanted:  # a pin's own newest request wins over its delayed on
            self._cancel_delayed(p)
        moves = {}
        for v in (0, 1):  # offs first: an interlocked on sees the group after them
            for pin, want in wanted.items():
                if want == v and self.pins[pin].value() != v:
                    self._decide(pin, v, now_ms, moves)
        for v in (0, 1):
            for pin, want in moves.items():
                if want == v:
                    self.pins[pin].value(v)
        for pin, v in moves.items():
            self._moved(pin, v, now_ms)
        return moves

    def _decide(self, pin, v, now_ms, moves):
        if pin in self.momentary and v == 0:  # early release is always safe
            moves[pin] = 0
            return
        others = [
            q
            for q in self.group.get(pin, ())
            if q != pin and v and self.pins[q].value() and moves.get(q) != 0
        ]
        # Another pin's authorised on, waiting out the dead time: only a request that could
        # move that pin itself may replace it (interlock_mode "switch": the same keys).
        waiting = [q for q in self.group.get(pin, ()) if q != pin and v and q in self._delayed]
        if (others or waiting) and not self.interlock_switch:
            return self.outbox.error(
                "Error: %s not switched on: interlocked with %s, which is %s"
                % (
                    self.name(pin),
                    self.name((others + waiting)[0]),
                    "on" if others else "switching on",
                )
            )
        reason = self.burnout.refuse(pin, now_ms, self.name(pin), v)
        if reason:
            return self.outbox.error(reason)
        self.burnout.record(pin, now_ms)
        if pin not in self.group or not v:
            moves[pin] = v
            return
        for q in waiting:  # interlock_mode "switch": the newest request wins
            self._cancel_delayed(q)
        for q in others:  # interlock_mode "switch": off first, whatever the guard says
            moves[q] = 0
        off = [q for q in self.group[pin] if moves.get(q) == 0]
        wait = self.dead_ms if off else 0
        for q in self.group[pin]:
            if q != pin and q in self._off_at:
                wait = max(wait, self.dead_ms - (now_ms - self._off_at[q]))
        line = ""
        if others:
            line = "%s switched off first: interlocked with %s" % (
                ", ".join(self.name(q) for q in others),
                self.name(pin),
            )
        if wait > 0:
            line += "%s%s on in %d ms (gpio.interlock_dead_ms)" % (
                "; " if line else "",
                self.name(pin),
                wait,
            )
        if line:
            self.outbox.reply("Info: " + line)
        if wait > 0:
            self._delayed[pin] = asyncio.create_task(self._on_after(pin, wait))
        else:
            moves[pin] = 1

    def _interlocked(self, wanted):
        """Two pins of one group asked on together: the pins, else None."""
        for grp in self.groups:
            ons = [p for p in grp if wanted.get(p) == 1]
            if len(ons) > 1:
                return ons
        return None

    def _cancel_delayed(self, pin):
        task = self._delayed.pop(pin, None)
        if task:
            task.cancel()

    async def _on_after(self, pin, wait_ms):
        """An interlocked on after gpio.interlock_dead_ms (the motor stops before reversing)."""
        await asyncio.sleep_ms(wait_ms)
        self._delayed.pop(pin, None)
        others = [q for q in self.group[pin] if q != pin and self.pins[q].value()]
        if others:
            return self.outbox.error(
                "Error: %s not switched on: interlocked with %s, which is on"
                % (self.name(pin), self.name(others[0]))
            )
        self.pins[pin].value(1)
        self._moved(pin, 1, self.mono_ms())

    def _moved(self, pin, v, now_ms, used=0):
        """Book-keeping after `pin` moved to `v`: timers, memory, the outbox. `used`: steps
        of its max_on_s already used before a reset."""
        if not v and pin in self.group:
            self._off_at[pin] = now_ms
        wait_s = self.momentary.get(pin) or self.max_on_s.get(pin)
        if wait_s:
            task = self._releases.pop(pin, None)
            if task:
                task.cancel()
            if v:
                self._releases[pin] = asyncio.create_task(self._release(pin, wait_s, used))
            elif pin in self.timed:
                self._time_used(pin, 0)
        if self.memory:  # momentary too: the interlock dead time after a reset needs them
            self.memory.save(self.states())
        self.outbox.changed(pin, v)

    def _time_used(self, pin, steps):
        at = 4 * self.timed.index(pin)
        self._time_word = self._time_word & ~(15 << at) | steps << at
        if self.memory:
            self.memory.save_time(self._time_word)

    async def _release(self, pin, wait_s, used=0):
        ms = int(wait_s * 1000)
        if pin not in self.timed:
            await asyncio.sleep_ms(ms)
        step = ms // TIME_STEPS
        while pin in self.timed and used < TIME_STEPS:
            used += 1
            self._time_used(pin, used)  # ahead: a reset in this step finds it used
            await asyncio.sleep_ms(step if used < TIME_STEPS else ms - step * (TIME_STEPS - 1))
        self._releases.pop(pin, None)
        self.pins[pin].value(0)
        if pin in self.max_on_s:  # the forgotten command, the lost client: say why
            self.outbox.reply(
                "Info: %s switched off after %ds (gpio.max_on_s)" % (self.name(pin), wait_s)
            )
        self._moved(pin, 0, self.mono_ms())
