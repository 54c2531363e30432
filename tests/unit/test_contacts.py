# SPDX-License-Identifier: MIT
"""Watching contacts: the first edge is published at once, a bouncing contact gives
one change, and a contact that comes back after the debounce gives both changes."""

import asyncio

from check import run_async
from tinyctrl.contacts import DEBOUNCE_MS, Contacts


class Hardware:
    """The port's ContactPin and EdgeFlag, with contacts driven by the test."""

    def __init__(self):
        self.pins = {}

    def ContactPin(self, gpio, handler):
        pin = Pin(gpio, handler)
        self.pins[gpio] = pin
        return pin

    def EdgeFlag(self):
        return EdgeFlag()


class Pin:
    def __init__(self, gpio, handler):
        self.gpio = gpio
        self.handler = handler
        self.level = 0

    def value(self):
        return self.level

    def set(self, level):
        if level != self.level:
            self.level = level
            self.handler(self)


class EdgeFlag:
    def __init__(self):
        self._event = asyncio.Event()

    def set(self):
        self._event.set()

    async def wait(self):
        await self._event.wait()
        self._event.clear()


class Outbox:
    def __init__(self):
        self.changes = []

    def changed(self, pin, value):
        self.changes.append((pin, value))


def make():
    hw, outbox = Hardware(), Outbox()
    return hw, outbox, Contacts([0, 1], hw, outbox)


def test_scan_reports_only_changes():
    hw, outbox, contacts = make()
    assert not contacts.scan()
    hw.pins[1].level = 1  # no IRQ: the poll's scan finds it
    assert contacts.scan() and outbox.changes == [(1, 1)]
    assert not contacts.scan() and contacts.value(1) == 1
    hw.pins[1].level = 0  # read mid-bounce, not yet scanned: the reported state stands
    assert contacts.value(1) == 1


REPORTED = None  # a step's wait: until the watcher has reported a change, however long it took


async def _watch(steps):
    """Run the watcher through `steps` (pin, level, then ms to wait or REPORTED); returns its
    changes."""
    hw, outbox, contacts = make()
    task = asyncio.create_task(contacts.run())
    await asyncio.sleep_ms(0)
    seen = []
    for pin, level, wait_ms in steps:
        before = len(outbox.changes)
        hw.pins[pin].set(level)
        if wait_ms is REPORTED:
            while len(outbox.changes) == before:
                await asyncio.sleep_ms(0)
        else:
            await asyncio.sleep_ms(wait_ms)
        seen.append(list(outbox.changes))
    await asyncio.sleep_ms(3 * DEBOUNCE_MS)
    task.cancel()
    return seen, outbox.changes, hw


def test_first_edge_is_published_at_once():
    seen, changes, _ = run_async(lambda: _watch([(0, 1, 2)]))
    assert seen[0] == [(0, 1)]  # 2 ms after the edge: no waiting for the contact to settle
    assert changes == [(0, 1)]


def test_bouncing_contact_gives_one_change_and_ends_right():
    bounce = [(1, 1, 1), (1, 0, 1), (1, 1, 1), (1, 0, 1), (1, 1, 1)]  # all within the debounce
    seen, changes, hw = run_async(lambda: _watch(bounce))
    assert changes == [(1, 1)] and hw.pins[1].value() == 1


def test_bounce_that_settles_back_gives_the_return_too():
    # Closed, and open again as soon as the closing is reported: within the debounce, however
    # slow a loaded machine runs the watcher (a return before the first read is never seen).
    bounce = [(1, 1, REPORTED), (1, 0, 1)]
    seen, changes, _ = run_async(lambda: _watch(bounce))
    assert changes == [(1, 1), (1, 0)]


def test_change_and_change_back_after_the_debounce_gives_both():
    steps = [(0, 1, 2 * DEBOUNCE_MS), (0, 0, 2 * DEBOUNCE_MS), (1, 1, 0)]
    seen, changes, _ = run_async(lambda: _watch(steps))
    assert changes == [(0, 1), (0, 0), (1, 1)]
