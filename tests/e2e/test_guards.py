# SPDX-License-Identifier: MIT
"""Burnout guards and the device's own publish pacing, end to end."""

import time

import pytest
from simharness import base_config, device, state, text

PUBLISH_MAX, PUBLISH_WINDOW = 8, 4


@pytest.fixture(scope="module")
def rig(services):
    broker, ntp, ip = services
    cfg = base_config(
        broker.port,
        ntp.port,
        ip.port,
        guard={
            "cooldown_s": 1,
            "max_changes": 3,
            "window_s": 30,
            "max_violations": 2,
            "publish_max": PUBLISH_MAX,
            "publish_window_s": PUBLISH_WINDOW,
        },
    )
    with device(cfg, broker.port) as (sim, client, _):
        yield sim, client


def changes(sim, pin):
    return [line for _, line in sim.outputs if line.startswith("GP%d=" % pin)]


def test_cooldown_collapses_a_burst_to_its_first_change(rig):
    sim, client = rig
    m = client.mark()
    for i in range(20):
        client.send({"GP17": (i + 1) % 2}, qos=1)
    sim.wait_pin(17, 1)
    err = client.wait_for(text("Error: GP17 cooling down"), since=m)
    assert b"try again in" in err
    time.sleep(1.5)
    assert changes(sim, 17) == ["GP17=1"]
    # The true state is re-published after the refusals.
    reports = [o for o in client.device_json(since=m) if "GP17" in o]
    assert reports and reports[-1]["GP17"] == 1


def test_too_many_changes_is_a_violation_then_a_lock(rig):
    sim, client = rig
    m = client.mark()
    # GP17 changed once above; two more fill max_changes=3 in the 30 s window.
    for v in (0, 1):
        time.sleep(1.1)
        client.send({"GP17": v})
        sim.wait_pin(17, v)
    time.sleep(1.1)
    client.send({"GP17": 0})
    first = client.wait_for(text("Error: GP17 changed 3 times in 30s"), since=m)
    assert b"violation 1 of 2" in first
    time.sleep(1.1)
    client.send({"GP17": 0})
    client.wait_for(text("Error: GP17 locked after 2 burnout violations until reset"), since=m)
    assert sim.pin(17) == 1
    client.wait_for(state("GP17", 1), since=m)  # refusals re-publish the true state
    # Other relays are unaffected.
    client.send({"GP16": 1})
    sim.wait_pin(16, 1)


def test_device_paces_itself_under_its_publish_limit(rig):
    sim, client = rig
    m = client.mark()
    start = time.monotonic()
    for i in range(60):  # each request asks for a reply: stats, refresh, bad input
        client.send([{"CMD": "stats"}, {"CMD": "refresh"}, "bad"][i % 3], qos=0)
        sim.contact(i % 4, i % 2)
    time.sleep(PUBLISH_WINDOW * 2)
    sent = [
        t
        for t, p in client.messages[m:]
        if b"FROM" in p or p.startswith((b"Error:", b"Uptime=", b"Info:"))
    ]
    assert sent, "the device answered nothing"
    for i, t in enumerate(sent):
        assert len([s for s in sent[i:] if s - t < PUBLISH_WINDOW - 0.2]) <= PUBLISH_MAX
    # Still publishing, not halted: a fresh request is answered.
    m = client.mark()
    client.send({"CMD": "stats"})
    client.wait_for(text("Uptime="), since=m, timeout=PUBLISH_WINDOW * 2)
    assert "halted" not in sim.log()
    assert time.monotonic() - start < 60
