# SPDX-License-Identifier: MIT
# The offline failsafe (config "local.failsafe"): per relay, the state it takes once the broker
# has been unreachable for after_s seconds, e.g. a pump off when nobody can watch it. Applied
# once per outage, through Relays.apply (its guards and interlocks), and reported with an
# Info line when the device is back. Before the first connect the broker counts as unreachable
# too: a board powered on while the router is dead is in an outage from the start.
import asyncio


class Failsafe:
    def __init__(self, cfg, relays, outbox, mono_ms):
        self.rules = cfg["local"]["failsafe"]  # pin -> {"after_s": s, "state": "off"/"on"}
        self.relays = relays
        self.outbox = outbox
        self.mono_ms = mono_ms
        self._down_since = mono_ms()
        self._done = []  # (pin, what happened), in this outage

    def link(self, up):
        """The broker connection went up or down (Controller._on_link)."""
        now_ms = self.mono_ms()
        if not up:
            if self._down_since is None:
                self._down_since = now_ms
            return
        if self._down_since is not None and self._done:
            self.outbox.reply(
                "Info: broker unreachable for %ds: %s (local.failsafe)"
                % ((now_ms - self._down_since) // 1000, ", ".join(what for _, what in self._done))
            )
        self._down_since = None
        self._done = []

    def step(self, now_ms):
        if self._down_since is None:
            return
        done = [p for p, _ in self._done]
        due = {}
        for p, rule in self.rules.items():
            if p not in done and now_ms - self._down_since >= rule["after_s"] * 1000:
                due[p] = 1 if rule["state"] == "on" else 0
        if not due:
            return
        moved = self.relays.apply(due) or {}
        for p in sorted(due):
            state = "on" if due[p] else "off"
            if p in moved:
                what = "%s %s after %ds" % (self.relays.name(p), state, self.rules[p]["after_s"])
            elif self.relays.value(p) == due[p]:
                what = "%s already %s" % (self.relays.name(p), state)
            else:
                what = "%s not switched %s (refused)" % (self.relays.name(p), state)
            self._done.append((p, what))

    async def run(self):
        while True:
            self.step(self.mono_ms())
            await asyncio.sleep(1)
