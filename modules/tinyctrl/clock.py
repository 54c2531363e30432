# SPDX-License-Identifier: MIT
# Clocks: the monotonic millisecond clock, the wall clock, time zones (US daylight saving)
# and formatting. No I/O here (NTP is in ntp.py).
# Unix times are integer seconds: a Pico W float has 24 bits, so a float unix time is off
# by up to a minute, and a TOTP check against it fails.
import time

_US_ZONES = {"EST": -5, "CST": -6, "MST": -7, "PST": -8}


def civil(days):
    """(year, month, day) for days since 1970-01-01 (proleptic Gregorian)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, d


def days_from_civil(y, m, d):
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    mp = m - 3 if m > 2 else m + 9
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _nth_sunday(y, m, n):
    first = days_from_civil(y, m, 1)
    weekday = (first + 4) % 7  # 1970-01-01 was a Thursday; 0 = Sunday
    return first + (7 - weekday) % 7 + 7 * (n - 1)


# The zone names config.json accepts, east to west after UTC (also the order error messages list).
TIMEZONES = ("UTC",) + tuple(sorted(_US_ZONES, key=lambda zone: -_US_ZONES[zone]))


def utc_offset_s(tz):
    """Seconds east of UTC for '+05:30' / '-08:00' / 'UTC+2', else None."""
    s = tz[3:] if tz.startswith("UTC") else tz
    if not s or s[0] not in "+-":
        return None
    parts = s[1:].split(":")
    if len(parts) > 2 or not all(p.isdigit() and len(p) <= 2 for p in parts):
        return None
    h = int(parts[0])
    m = int(parts[1]) if len(parts) == 2 else 0
    if h > 14 or m > 59:
        return None
    secs = h * 3600 + m * 60
    return -secs if s[0] == "-" else secs


def offset_s(tz, utc):
    """Seconds to add to UTC for zone `tz` at unix time `utc`."""
    if tz in _US_ZONES:
        std = _US_ZONES[tz] * 3600
        y = civil(int(utc) // 86400)[0]
        # US rule since 2007: 2nd Sunday of March 02:00 standard to 1st Sunday of November 02:00
        # daylight.
        start = _nth_sunday(y, 3, 2) * 86400 + 2 * 3600 - std
        end = _nth_sunday(y, 11, 1) * 86400 + 2 * 3600 - (std + 3600)
        return std + 3600 if start <= utc < end else std
    if tz == "UTC":
        return 0
    return utc_offset_s(tz) or 0


def format_local(tz, utc):
    t = int(utc + offset_s(tz, utc))
    y, m, d = civil(t // 86400)
    return "%04d-%02d-%02d %02d:%02d" % (y, m, d, t % 86400 // 3600, t % 3600 // 60)


def format_uptime(secs):
    secs = int(secs)
    return "%d days %d hrs %d min" % (secs // 86400, secs % 86400 // 3600, secs % 3600 // 60)


class Clock:
    """Unix time = the platform's time.time() plus an offset learnt from NTP, in whole seconds."""

    def __init__(self):
        self.offset = 0
        self.last_sync = None  # platform time of the last sync
        self.first_sync = None  # unix time of the first sync since boot (auth.py's floor)

    def sync(self, ntp_time, platform_time):
        self.offset = int(ntp_time) - int(platform_time)
        self.last_sync = platform_time
        if self.first_sync is None:
            self.first_sync = int(ntp_time)

    @property
    def synced(self):
        return self.last_sync is not None

    def now(self, platform_time):
        return int(platform_time) + self.offset


class Monotonic:
    """Milliseconds since start from ticks_ms, unwrapped (ticks wrap after ~12 days); an
    integer, so a long uptime keeps millisecond steps (a Pico W float would not)."""

    def __init__(self):
        self._last = time.ticks_ms()
        self._ms = 0

    def __call__(self):
        t = time.ticks_ms()
        self._ms += time.ticks_diff(t, self._last)
        self._last = t
        return self._ms
