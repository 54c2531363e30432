# SPDX-License-Identifier: MIT
# Watching contacts: an IRQ on either edge wakes one task, which reads every contact and hands
# changes to the outbox. The first edge is read and published at once; the contact is read
# again only after DEBOUNCE_MS, so a bouncing contact gives one change, not several. A poll every
# CONTACT_POLL_S is the safety net for an edge the IRQ missed.
import asyncio

DEBOUNCE_MS = 30
CONTACT_POLL_S = 5


class Contacts:
    def __init__(self, pins, hw, outbox):
        self.outbox = outbox
        self._edge = hw.EdgeFlag()
        self.pins = {}
        for p in pins:
            self.pins[p] = hw.ContactPin(p, self._on_edge)
        self._state = dict((p, c.value()) for p, c in self.pins.items())

    def _on_edge(self, _pin):
        self._edge.set()  # IRQ context: no allocation, the task does the rest

    def value(self, pin):
        """The contact's state as last read and reported: what is published, so the published
        state ends where the contact settled even when it was read mid-bounce."""
        return self._state[pin]

    def scan(self):
        """Read every contact; report the changes to the outbox. True if any changed."""
        changed = False
        for pin, c in self.pins.items():
            v = c.value()
            if v != self._state[pin]:
                self._state[pin] = v
                self.outbox.changed(pin, v)
                changed = True
        return changed

    async def run(self):
        while True:
            try:
                await asyncio.wait_for_ms(self._edge.wait(), CONTACT_POLL_S * 1000)
            except asyncio.TimeoutError:
                pass
            if self.scan():
                # Edges within this time are bounce: the next scan, after it, sees where the
                # contact settled (one more change only if it really came back).
                await asyncio.sleep_ms(DEBOUNCE_MS)
