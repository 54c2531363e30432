# SPDX-License-Identifier: MIT
# Burnout and flood guards, as in the seed. `now_ms` is integer milliseconds from the caller's
# monotonic clock: a Pico W float has 24 bits, too few for seconds of a long uptime.


def ceil_s(ms):
    """Whole seconds, rounded up, for "try again in Ns"."""
    return (ms + 999) // 1000


class BurnoutGuard:
    """Limits how often each relay may change.

    - cooldown: a change within `cooldown_s` of the last one is refused (a burst,
      e.g. a backlog released after reconnect, collapses to its first change).
    - rate: more than `max_changes` in `window_s` is a violation; the pin pauses
      until the window has room again.
    - lock: after `max_violations` violations the pin refuses to switch on until reset.
      Off is the safe direction and stays allowed: one change at most,
      since the relay is then off.
    """

    def __init__(self, cooldown_s, max_changes, window_s, max_violations):
        self.cooldown_ms = int(cooldown_s * 1000)
        self.max_changes = max_changes
        self.window_ms = window_s * 1000
        self.max_violations = max_violations
        self._changes = {}  # pin -> recent change times, oldest first
        self._violations = {}

    def locked(self, pin):
        return self._violations.get(pin, 0) >= self.max_violations

    def refuse(self, pin, now_ms, name, value=1):
        """None if `pin` may change to `value` now, else the reason (an error line)."""
        if self.locked(pin) and value == 0:
            return None
        if self.locked(pin):
            return "Error: %s locked after %d burnout violations until reset" % (
                name,
                self.max_violations,
            )
        times = self._changes.get(pin)
        if not times:
            return None
        while times and now_ms - times[0] >= self.window_ms:
            times.pop(0)
        if times and now_ms - times[-1] < self.cooldown_ms:
            return "Error: %s cooling down, try again in %ds" % (
                name,
                ceil_s(self.cooldown_ms - (now_ms - times[-1])),
            )
        if len(times) >= self.max_changes:
            v = self._violations.get(pin, 0) + 1
            self._violations[pin] = v
            if v >= self.max_violations:
                return "Error: %s locked after %d burnout violations until reset" % (name, v)
            wait = ceil_s(self.window_ms - (now_ms - times[0]))
            return "Error: %s changed %d times in %ds, paused for %ds (violation %d of %d)" % (
                name,
                len(times),
                self.window_ms // 1000,
                wait,
                v,
                self.max_violations,
            )
        return None

    def record(self, pin, now_ms):
        times = self._changes.setdefault(pin, [])
        times.append(now_ms)
        if len(times) > self.max_changes:
            times.pop(0)


class PublishGuard:
    """The device's own flood fuse and the pacer that keeps it from blowing.

    The pacer is a token bucket holding half the fuse's budget and refilling at half its
    rate, so paced traffic never exceeds `publish_max` in any `publish_window_s`. Anything
    that does (a bug, not a user) blows the fuse: publishing stops until reset, as in the seed.
    """

    def __init__(self, publish_max, publish_window_s):
        self.max = publish_max
        self.window_ms = publish_window_s * 1000
        self.capacity = max(1, publish_max // 2)
        self.rate = (publish_max - self.capacity) / self.window_ms  # tokens per ms
        self.tokens = self.capacity
        self._refilled = None
        self._sent = []
        self.halted = False

    def wait_ms(self, now_ms):
        """Milliseconds to wait before the next publish may go."""
        if self._refilled is not None:
            self.tokens = min(self.capacity, self.tokens + (now_ms - self._refilled) * self.rate)
        self._refilled = now_ms
        return 0 if self.tokens >= 1 else int((1 - self.tokens) / self.rate) + 1

    def sent(self, now_ms):
        """Record a publish; returns False once the fuse has blown."""
        self.tokens -= 1
        sent = self._sent
        while sent and now_ms - sent[0] >= self.window_ms:
            sent.pop(0)
        sent.append(now_ms)
        if len(sent) > self.max:
            self.halted = True
        return not self.halted


class ErrorBudget:
    """Error lines answer hostile or broken clients; at most `limit` per `window_s` of each
    kind, so a flood of garbage cannot flood the broker back, nor hide the failed
    authentications among it. Dropped lines are counted per kind."""

    def __init__(self, limit, window_s):
        self.limit = limit
        self.window_ms = window_s * 1000
        self._times = {}  # kind -> recent times
        self.suppressed = {}  # kind -> lines dropped since the last one published

    def allow(self, now_ms, kind="request"):
        times = self._times.setdefault(kind, [])
        while times and now_ms - times[0] >= self.window_ms:
            times.pop(0)
        if len(times) >= self.limit:
            self.drop(kind)
            return False
        times.append(now_ms)
        return True

    def drop(self, kind):
        self.suppressed[kind] = self.suppressed.get(kind, 0) + 1

    def take_suppressed(self, kind):
        return self.suppressed.pop(kind, 0)


class RateLimit:
    """A command that costs the device (NTP, getip: DNS and a TLS handshake on a Pico W)
    runs at most once per `wait_s`."""

    def __init__(self, wait_s):
        self.wait_ms = wait_s * 1000
        self._last = None

    def refuse(self, now_ms, what):
        """None if it may run now (and it counts as run), else the error line,
        e.g. what = "NTP sync was forced"."""
        last = self._last
        if last is not None and now_ms - last < self.wait_ms:
            return "Error: %s %ds ago; try again in %ds" % (
                what,
                (now_ms - last) // 1000,
                ceil_s(self.wait_ms - (now_ms - last)),
            )
        self._last = now_ms
        return None
