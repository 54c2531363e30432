# SPDX-License-Identifier: MIT
# Guards take integer milliseconds; their settings are seconds, as in config.json.
from tinyctrl.guard import BurnoutGuard, ErrorBudget, PublishGuard, RateLimit

YEAR_MS = 365 * 86400 * 1000


def test_cooldown_refuses_a_burst_without_counting_violations():
    for start in (0, YEAR_MS):  # integer times keep millisecond steps after a year's uptime
        g = BurnoutGuard(cooldown_s=2, max_changes=5, window_s=60, max_violations=3)
        assert g.refuse(16, start, "GP16") is None
        g.record(16, start)
        for t in (1, 500, 1001, 1999):
            assert "cooling down, try again in %ds" % (1 if t > 1000 else 2) in g.refuse(
                16, start + t, "GP16"
            )
        assert g.refuse(16, start + 2000, "GP16") is None
        assert not g.locked(16)


def test_rate_limit_counts_violations_then_locks_until_reset():
    g = BurnoutGuard(cooldown_s=0, max_changes=3, window_s=60, max_violations=2)
    for t in (0, 1000, 2000):
        assert g.refuse(16, t, "GP16") is None
        g.record(16, t)
    first = g.refuse(16, 3000, "GP16")
    assert "changed 3 times in 60s, paused for 57s" in first and "violation 1 of 2" in first
    assert "locked after 2" in g.refuse(16, 4000, "GP16")
    assert g.locked(16)
    assert "locked" in g.refuse(16, 1000000, "GP16")  # the window passing does not unlock
    assert g.refuse(17, 5000, "GP17") is None  # other pins unaffected


def test_rate_window_slides():
    g = BurnoutGuard(cooldown_s=0, max_changes=2, window_s=10, max_violations=5)
    for t in (0, 1000):
        g.record(16, t)
    assert g.refuse(16, 5000, "GP16") is not None
    assert g.refuse(16, 10500, "GP16") is None  # the change at t=0 left the window


def test_pacer_never_lets_the_fuse_blow():
    p = PublishGuard(publish_max=20, publish_window_s=10)
    now, sent = 0, []
    while now < 100000:
        wait = p.wait_ms(now)
        assert isinstance(wait, int)
        if wait:
            now += wait
            continue
        assert p.sent(now)
        sent.append(now)
    for i, t in enumerate(sent):  # no window of 10 s holds more than 20
        assert len([s for s in sent[i:] if s - t < 10000]) <= 20
    assert len(sent) >= 100  # and the long-run rate is about 1/s


def test_fuse_blows_when_publishes_bypass_the_pacer():
    p = PublishGuard(publish_max=5, publish_window_s=10)
    results = [p.sent(100 * i) for i in range(6)]
    assert results == [True] * 5 + [False]
    assert p.halted


def test_error_budget_counts_what_it_drops():
    b = ErrorBudget(2, 10)
    assert [b.allow(t) for t in (0, 1000, 2000, 3000)] == [True, True, False, False]
    assert b.suppressed == {"request": 2}
    assert b.allow(10500)


def test_a_locked_relay_may_still_switch_off():
    g = BurnoutGuard(0, 1, 60, 1)
    g.record(16, 0)
    assert g.refuse(16, 100, "GP16", 1).startswith("Error: GP16 locked")
    assert g.locked(16)
    assert (
        g.refuse(16, 200, "GP16", 0) is None
    )  # off is the safe direction (SECURITY.md, finding 2.6)
    assert g.refuse(16, 300, "GP16", 1).startswith("Error: GP16 locked")


def test_error_budget_is_kept_per_kind():
    b = ErrorBudget(2, 10)
    assert [b.allow(t) for t in (0, 1, 2, 3)] == [True, True, False, False]
    assert [b.allow(t, "auth") for t in (4, 5, 6)] == [True, True, False]
    assert b.take_suppressed("request") == 2 and b.take_suppressed("auth") == 1
    assert b.take_suppressed("auth") == 0


def test_rate_limit_says_when_to_try_again():
    r = RateLimit(60)
    assert r.refuse(1000, "getip was asked") is None
    assert r.refuse(11500, "getip was asked") == "Error: getip was asked 10s ago; try again in 50s"
    assert r.refuse(61000, "getip was asked") is None
