# SPDX-License-Identifier: MIT
# Assertion helpers that work the same under CPython and MicroPython (no pytest there).


def raises(exc_type, fn, *args, **kwargs):
    """Call fn; return the exc_type it raised, or fail."""
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        return e
    raise AssertionError("%s did not raise %s" % (fn, exc_type.__name__))


def hexlify(data):
    return "".join("%02x" % b for b in data)


def run_async(main):
    """Run coroutine function `main` on a fresh event loop, under CPython or MicroPython. On
    CPython, asyncio gets MicroPython's sleep_ms and wait_for_ms, which the device's tasks use."""
    import asyncio
    import sys

    if sys.implementation.name != "micropython":
        if not hasattr(asyncio, "sleep_ms"):
            asyncio.sleep_ms = lambda ms: asyncio.sleep(ms / 1000)
            asyncio.wait_for_ms = lambda aw, ms: asyncio.wait_for(aw, ms / 1000)
        return asyncio.run(main())
    try:
        return asyncio.run(main())
    finally:
        asyncio.new_event_loop()  # MicroPython keeps one loop: start the next test on a clean one


def ms():
    """Monotonic milliseconds, an integer, under CPython or MicroPython."""
    import time

    if hasattr(time, "ticks_ms"):
        return time.ticks_ms()
    return int(time.monotonic() * 1000)


class Outbox:
    """What a trial says, recorded (tinyctrl.outbox.Outbox's reply, error and pending), with
    the last message it sent: the one a trial waits to hear back."""

    def __init__(self, last_sent=b""):
        self.replies, self.errors, self.last_sent = [], [], last_sent

    def reply(self, line):
        self.replies.append(line)

    def error(self, line, kind="request"):
        self.errors.append((kind, line))

    def pending(self):
        return False
