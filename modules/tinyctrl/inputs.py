# SPDX-License-Identifier: MIT
# Local inputs (config "local.inputs"): wall switches and push buttons wired to the board move
# relays with no broker at all. A move goes through Relays.apply as a request does (burnout
# guard, interlocks and their dead time, max_on_s) but not through AuthGate: whoever presses
# the button is at the board. local.disabled turns it off per relay.
#
# Unlike a contact (published at its first edge), an input counts a change only once it has
# held for local.debounce_ms: a bouncing button or the spike of a relay coil switching next to
# its wire must never toggle a relay.
import asyncio

from . import log

POLL_MS = 1000  # the safety net for an edge the IRQ missed


class Input:
    def __init__(self, pin, spec, contact):
        self.pin = pin
        self.relay = spec["relay"]
        self.mode = spec["mode"]  # "toggle", "follow" or "press"
        self.invert = spec["invert"]
        self.long = spec["long"]  # local.inputs.N.long: the long-press action, or None
        self.contact = contact  # port.ContactPin: 1 = closed
        self.stable = self.read()  # as the debounce last accepted it
        self.since = None  # when the input first read unlike `stable`
        self.pressed_at = None  # a press waiting to be short or long
        self.long_done = False

    def read(self):
        """1 = active: closed, or open with local.inputs.N.invert (a normally-closed button,
        a follow input that switches the relay off when closed)."""
        return self.contact.value() ^ self.invert


class Inputs:
    def __init__(self, cfg, hw, relays, outbox, mono_ms):
        local = cfg["local"]
        self.relays = relays
        self.outbox = outbox
        self.mono_ms = mono_ms
        self.debounce_ms = local["debounce_ms"]
        self.long_ms = local["long_press_ms"]
        self.disabled = set(local["disabled"])  # relays whose local control is off
        self._edge = hw.EdgeFlag()
        self.inputs = []
        for p in sorted(local["inputs"]):
            self.inputs.append(Input(p, local["inputs"][p], hw.ContactPin(p, self._on_edge)))

    def _on_edge(self, _pin):
        self._edge.set()  # IRQ context: the task does the rest

    def step(self, now_ms):
        """Read every input, act on what has settled; the ms until a step is due again."""
        due = POLL_MS
        for inp in self.inputs:
            v = inp.read()
            if v == inp.stable:
                inp.since = None
            elif inp.since is None and self.debounce_ms:
                inp.since = now_ms
            if inp.since is not None and v != inp.stable:
                left = self.debounce_ms - (now_ms - inp.since)
                if left > 0:
                    due = min(due, left)
                    continue
            if v != inp.stable:
                inp.stable, inp.since = v, None
                self._changed(inp, v, now_ms)
            if inp.pressed_at is not None and not inp.long_done:
                left = self.long_ms - (now_ms - inp.pressed_at)
                if left <= 0:
                    inp.long_done = True
                    self._act(inp, inp.long, "long press")
                else:
                    due = min(due, left)
        return due

    def _changed(self, inp, v, now_ms):
        if inp.mode == "follow":
            return self._act(inp, "on" if v else "off")
        if inp.mode == "toggle":  # a wall rocker: every change
            return self._act(inp, "toggle")
        if not inp.long:  # "press": act on the press
            return v and self._act(inp, "toggle")
        if v:  # short or long: known at the release or after long_press_ms
            inp.pressed_at, inp.long_done = now_ms, False
            return
        if inp.pressed_at is not None and not inp.long_done:
            self._act(inp, "toggle")
        inp.pressed_at = None

    def _act(self, inp, action, how=""):
        relays, r = self.relays, inp.relay
        if action == "all_off":
            targets = relays.pins
        elif action == "off_group":  # e.g. stop a motor whichever way it runs
            targets = relays.group.get(r) or (r,)
        else:
            targets = (r,)
        wanted = {}
        for q in targets:
            if q in self.disabled:
                continue
            if action == "toggle":  # a momentary relay is pulsed
                wanted[q] = 1 if q in relays.momentary else 1 - relays.value(q)
            else:
                wanted[q] = 1 if action == "on" else 0
        name = relays.name
        if not wanted:
            return log(
                "local: %s ignored: local control of %s is off (local.disabled)"
                % (name(inp.pin), name(r))
            )
        moved = relays.apply(wanted) or {}
        if moved:
            self.outbox.reply(
                "Info: %s (local, %s%s)"
                % (
                    ", ".join(
                        "%s %s" % (name(q), "on" if moved[q] else "off") for q in sorted(moved)
                    ),
                    name(inp.pin),
                    ", " + how if how else "",
                )
            )

    async def run(self):
        while True:
            wait = self.step(self.mono_ms())
            try:
                await asyncio.wait_for_ms(self._edge.wait(), wait)
            except asyncio.TimeoutError:
                pass
