from tinyctrl.guard import BurnoutGuard, ErrorBudget, PublishGuard


def test_cooldown_refuses_a_burst_without_counting_violations():
    g = BurnoutGuard(cooldown_s=2, max_changes=5, window_s=60, max_violations=3)
    assert g.refuse(16, 0.0, "GP16") is None
    g.record(16, 0.0)
    for t in (0.1, 0.5, 1.9):
        assert "cooling down" in g.refuse(16, t, "GP16")
    assert g.refuse(16, 2.0, "GP16") is None
    assert not g.locked(16)


def test_rate_limit_counts_violations_then_locks_until_reset():
    g = BurnoutGuard(cooldown_s=0, max_changes=3, window_s=60, max_violations=2)
    for t in (0, 1, 2):
        assert g.refuse(16, t, "GP16") is None
        g.record(16, t)
    first = g.refuse(16, 3, "GP16")
    assert "changed 3 times in 60s" in first and "violation 1 of 2" in first
    assert "locked after 2" in g.refuse(16, 4, "GP16")
    assert g.locked(16)
    assert "locked" in g.refuse(16, 1000, "GP16")  # the window passing does not unlock
    assert g.refuse(17, 5, "GP17") is None  # other pins unaffected


def test_rate_window_slides():
    g = BurnoutGuard(cooldown_s=0, max_changes=2, window_s=10, max_violations=5)
    for t in (0, 1):
        g.record(16, t)
    assert g.refuse(16, 5, "GP16") is not None
    assert g.refuse(16, 10.5, "GP16") is None  # the change at t=0 left the window


def test_pacer_never_lets_the_fuse_blow():
    p = PublishGuard(publish_max=20, publish_window_s=10)
    now, sent = 0.0, []
    while now < 100:
        wait = p.wait_s(now)
        if wait:
            now += wait
            continue
        assert p.sent(now)
        sent.append(now)
    for i, t in enumerate(sent):  # no window of 10 s holds more than 20
        assert len([s for s in sent[i:] if s - t < 10]) <= 20
    assert len(sent) >= 100  # and the long-run rate is about 1/s


def test_fuse_blows_when_publishes_bypass_the_pacer():
    p = PublishGuard(publish_max=5, publish_window_s=10)
    results = [p.sent(0.1 * i) for i in range(6)]
    assert results == [True] * 5 + [False]
    assert p.halted


def test_error_budget_counts_what_it_drops():
    b = ErrorBudget(2, 10)
    assert [b.allow(t) for t in (0, 1, 2, 3)] == [True, True, False, False]
    assert b.suppressed == 2
    assert b.allow(10.5)
