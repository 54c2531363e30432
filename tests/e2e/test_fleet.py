# SPDX-License-Identifier: MIT
"""A fleet: FLEET_SIZE simulated devices (one simulator process each, their own board ids,
topics, client ids and names) on one loopback mosquitto, watched by one observer
(tests/support/fleet.py).

All come up; each answers a command; a command to all at once is answered by all; after the
broker restarts, every device is back within the outage bound (the reconnect back-off
spreads them: the spread is printed, not asserted) and answers again; each announces its own
Home Assistant discovery topic, with no topic, device id or entity id shared. RSS and CPU per
simulated device are printed. `./build.sh bench --fleet` runs 100.
"""

import json
import statistics
import time

import pytest
from fleet import HA_PREFIX, Fleet, Observer, board_id, percentile, topic
from services import Mosquitto, NtpServer, PublicIpServer
from simharness import missing_requirements, wait_until

FLEET_SIZE = 20
# 20 simulators start at once on 2 shared cores: each joins (3 s), does the clean-session
# dance (2 s) and announces itself; loaded, that takes far longer than one alone.
UP_BOUND_S = 90
# Back within 10 s of the broker's return (test_outages.py), plus scheduling 20 devices
# reconnecting at once on 2 cores.
STORM_BOUND_S = 10 + 10


@pytest.fixture(scope="module")
def fleet():
    why = missing_requirements()
    if why:
        pytest.skip(why)
    broker = Mosquitto(extra_conf="set_tcp_nodelay true\n").start()
    ntp, ip = NtpServer(), PublicIpServer()
    observer = Observer(broker.port)
    devices = Fleet(FLEET_SIZE, broker.port, ntp.port, ip.port)
    devices.broker, devices.observer = broker, observer
    try:
        devices.started = devices.wait_up(observer, [0] * FLEET_SIZE, UP_BOUND_S)
        yield devices
        devices.assert_alive()
    finally:
        devices.stop()
        devices.observer.close()
        ntp.close()
        ip.close()
        broker.close()


def ms(values):
    return "p50 %.1f ms, p99 %.1f ms" % (
        1000 * percentile(values, 0.5),
        1000 * percentile(values, 0.99),
    )


def test_every_device_comes_up_and_answers_its_own_command(fleet, report):
    latencies = fleet.command_one_at_a_time(fleet.observer, 1)
    assert len(latencies) == FLEET_SIZE
    for i, sim in enumerate(fleet.sims):
        sim.wait_pin(16, 1)
        assert sim.outputs and all(line == "GP16=1" for _, line in sim.outputs), (i, sim.outputs)
    rss = fleet.rss_kb()
    cpu = fleet.idle_cpu_percent(5)
    report(
        "fleet of %d on mosquitto: all up %.1f-%.1f s after starting together; command -> "
        "echo one at a time %s; RSS per device %d KB (max %d); idle CPU per device %.2f%% "
        "(max %.2f%%)"
        % (
            FLEET_SIZE,
            min(fleet.started) - fleet.started_at,
            max(fleet.started) - fleet.started_at,
            ms(latencies),
            statistics.mean(rss),
            max(rss),
            statistics.mean(cpu),
            max(cpu),
        )
    )


def test_a_command_to_every_device_at_once(fleet, report):
    latencies = fleet.command_all_at_once(fleet.observer, 0)
    assert len(latencies) == FLEET_SIZE
    for sim in fleet.sims:
        sim.wait_pin(16, 0)
    report("fleet of %d: one command to each, all at once: %s" % (FLEET_SIZE, ms(latencies)))


def test_home_assistant_discovery_of_the_fleet_without_collisions(fleet):
    late = Observer(fleet.broker.port, "fleet-late")  # gets what is retained for it
    try:
        wait_until(lambda: len(late.retained(HA_PREFIX + "/device/")) >= FLEET_SIZE, 10, "all")
        configs = late.retained(HA_PREFIX + "/device/")
    finally:
        late.close()
    expected = dict(
        ("%s/device/tinyctrl-%s/config" % (HA_PREFIX, board_id(i)), i) for i in range(FLEET_SIZE)
    )
    assert sorted(configs) == sorted(expected)
    ids, entities = set(), set()
    for t, payload in configs.items():
        i = expected[t]
        doc = json.loads(payload)
        assert doc["stat_t"] == topic(i)
        assert all(c.get("cmd_t", topic(i)) == topic(i) for c in doc["cmps"].values())
        assert doc["dev"]["name"] == "dev-%03d" % i
        ids.update(doc["dev"]["ids"])
        for entity in doc["cmps"].values():
            assert entity["uniq_id"] not in entities, entity["uniq_id"]
            entities.add(entity["uniq_id"])
    assert len(ids) == FLEET_SIZE


def test_reconnect_storm_after_the_broker_restarts(fleet, report):
    fleet.observer.close()
    fleet.broker.stop()
    fleet.broker.start()
    restarted = time.monotonic()
    fleet.observer = Observer(fleet.broker.port)  # sessions persist; a new observer watches
    back = fleet.wait_up(fleet.observer, [0] * FLEET_SIZE, STORM_BOUND_S + 10)
    after = [t - restarted for t in back]
    assert max(after) <= STORM_BOUND_S, "last device back %.1f s after the restart" % max(after)
    latencies = fleet.command_all_at_once(fleet.observer, 1)  # their sessions kept
    for sim in fleet.sims:
        sim.wait_pin(16, 1)
    report(
        "fleet of %d: broker restarted: all back %.1f-%.1f s after it (spread %.1f s, bound "
        "%d s); then a command to all at once: %s"
        % (
            FLEET_SIZE,
            min(after),
            max(after),
            max(after) - min(after),
            STORM_BOUND_S,
            ms(latencies),
        )
    )
