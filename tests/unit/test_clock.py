# SPDX-License-Identifier: MIT
from tinyctrl import clock


def test_civil_round_trip():
    assert clock.civil(0) == (1970, 1, 1)
    assert clock.civil(clock.days_from_civil(2024, 2, 29)) == (2024, 2, 29)
    assert clock.days_from_civil(2000, 3, 1) == 11017
    for days in range(-800, 40000, 97):
        assert clock.days_from_civil(*clock.civil(days)) == days


def _utc(y, m, d, hh=0, mm=0):
    return clock.days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60


def test_us_eastern_daylight_saving_2024():
    # DST began 2024-03-10 07:00 UTC and ended 2024-11-03 06:00 UTC.
    assert clock.offset_s("EST", _utc(2024, 3, 10, 6, 59)) == -5 * 3600
    assert clock.offset_s("EST", _utc(2024, 3, 10, 7, 0)) == -4 * 3600
    assert clock.offset_s("EST", _utc(2024, 11, 3, 5, 59)) == -4 * 3600
    assert clock.offset_s("EST", _utc(2024, 11, 3, 6, 0)) == -5 * 3600
    assert clock.offset_s("PST", _utc(2024, 7, 1)) == -7 * 3600


def test_fixed_offsets_and_utc():
    t = _utc(2024, 2, 1, 18, 40)
    assert clock.format_local("UTC", t) == "2024-02-01 18:40"
    assert clock.format_local("+05:30", t) == "2024-02-02 00:10"
    assert clock.format_local("-08:00", t) == "2024-02-01 10:40"
    assert clock.format_local("EST", t) == "2024-02-01 13:40"


def test_uptime_format():
    assert clock.format_uptime(1 * 86400 + 5 * 3600 + 7 * 60 + 3) == "1 days 5 hrs 7 min"


def test_clock_offset():
    c = clock.Clock()
    assert not c.synced
    c.sync(1700000000, 100.7)  # the unix port's time.time() is a float
    t = c.now(110.2)
    assert c.synced and t == 1700000010 and isinstance(t, int)
