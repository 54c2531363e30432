# SPDX-License-Identifier: MIT
# Moving relays: decide every requested pin first, then move them together (Action N), within
# the burnout guard; a momentary relay is released by a task of its own after its wait.
import asyncio

from .guard import BurnoutGuard


class Relays:
    def __init__(self, hw, cfg, outbox, now):
        g, gd = cfg["gpio"], cfg["guard"]
        self.prefix = g["prefix"]
        self.outbox = outbox
        self.now = now  # monotonic milliseconds
        self.pins = {}
        for p in g["relay"] + sorted(g["momentary"]):
            self.pins[p] = hw.RelayPin(p, g["active_low"])
        self.momentary = g["momentary"]  # pin -> seconds held
        self.burnout = BurnoutGuard(gd["cooldown_s"], gd["max_changes"], gd["window_s"],
                                    gd["max_violations"])
        self._releases = {}  # momentary pin -> release task

    def value(self, pin):
        return self.pins[pin].value()

    def name(self, pin):
        return "%s%d" % (self.prefix, pin)

    def apply(self, wanted):
        """Move the pins in `wanted` ({pin: value}); refusals go out as error lines."""
        now = self.now()
        moves = []
        for pin, v in wanted.items():
            if self.pins[pin].value() == v:
                continue
            if pin in self.momentary and v == 0:  # early release is always safe
                moves.append((pin, 0))
                continue
            reason = self.burnout.refuse(pin, now, self.name(pin), v)
            if reason:
                self.outbox.error(reason)
                continue
            self.burnout.record(pin, now)
            moves.append((pin, v))
        for pin, v in moves:
            self.pins[pin].value(v)
        self.outbox.state(wanted)  # the requested pins' state, moved or not
        for pin, v in moves:
            if pin in self.momentary:
                self._momentary(pin, v)
            self.outbox.changed(pin, v)

    def _momentary(self, pin, v):
        task = self._releases.pop(pin, None)
        if task:
            task.cancel()
        if v:
            self._releases[pin] = asyncio.create_task(self._release(pin, self.momentary[pin]))

    async def _release(self, pin, wait_s):
        await asyncio.sleep_ms(int(wait_s * 1000))
        self._releases.pop(pin, None)
        self.pins[pin].value(0)
        self.outbox.changed(pin, 0)
