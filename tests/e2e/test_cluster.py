# SPDX-License-Identifier: MIT
"""A device on a real two-node broker cluster (mqtt.servers): aedes nodes on loopback that
share sessions and messages through redis (tests/support/broker_cluster, its npm packages
pinned by the lockfile and installed into the cache by deps.cluster_broker_dir).

The device starts on node A with servers [A, B]; node A is killed: the device is back on
node B within FAILOVER_BOUND_S, its session (subscription, queued QoS 1 messages) kept, and a
QoS 1 momentary press sent to node B during the failover and one after it are each applied
exactly once. Then A comes back, B is killed, and the device fails back to A the same way.
A fleet of FLEET_SIZE devices on [A, B] all move to B when A is killed, and each answers there.
"""

import json
import time

import deps
import fleet
import pytest
from services import AedesNode, NtpServer, PublicIpServer, Redis
from simharness import Client, Sim, base_config, missing_requirements

# Real reconnect waits and two failovers: not in the quick tier.
pytestmark = pytest.mark.slow

KEEPALIVE_S = 4
ALL_PINS = (0, 1, 2, 3, 16, 17, 18, 19, 26, 27)
MOMENTARY_S = 0.2  # GP18's wait: a press completes quickly and a second one is a new press
# A killed node closes the device's socket at once. Then, by the model in test_outages.py:
# 1 s pause, the Wi-Fi rejoin (1 s) and stability check (2 s), the reconnect back-off's
# first random wait (mqtt.py: BACKOFF_FIRST_MS, at most 2 s), CONNECT and SUBSCRIBE; plus
# scheduling on a loaded 2-core machine.
FAILOVER_BOUND_S = 1 + 1 + 2 + 2 + 4
FLEET_SIZE = 20
# The same for 20 devices at once on 2 shared cores, as test_fleet.py's storm.
FLEET_FAILOVER_BOUND_S = FAILOVER_BOUND_S + 10


def full_state(payload):
    if not payload.startswith(b"{") or b'"FROM"' not in payload:
        return False
    return all(("GP%d" % p) in json.loads(payload) for p in ALL_PINS)


def presses(sim, since):
    return sum(1 for _, line in sim.outputs[since:] if line == "GP18=1")


@pytest.fixture(scope="module")
def cluster():
    why = missing_requirements()
    folder, why = (None, why) if why else deps.cluster_broker_dir()
    if why:
        pytest.skip(why)
    redis = Redis()
    nodes = [AedesNode(folder, redis, name).start() for name in ("a", "b")]
    yield nodes
    for node in nodes:
        node.stop()
    redis.close()


def test_device_fails_over_to_the_next_node_with_its_session(cluster, report):
    a, b = cluster
    ntp, ip = NtpServer(), PublicIpServer()
    cfg = base_config(0, ntp.port, ip.port)
    del cfg["mqtt"]["server"], cfg["mqtt"]["port"]
    cfg["mqtt"].update(
        servers=["127.0.0.1:%d" % a.port, "127.0.0.1:%d" % b.port], keepalive=KEEPALIVE_S
    )
    cfg["gpio"]["momentary"]["18"] = MOMENTARY_S
    watch_b = Client(b.port, client_id="watch-b")  # on the other node: the cluster carries it
    sim = Sim(cfg)
    try:
        watch_b.wait_for(full_state, timeout=30)
        assert "next broker node" not in sim.log()  # started on A, the first
        figures = []
        for dead, alive, watcher in ((a, b, watch_b), (b, a, None)):
            if watcher is None:
                alive.start()  # A is back
                watcher = Client(alive.port, client_id="watch-a")
                time.sleep(1)
            since_output, mark = len(sim.outputs), watcher.mark()
            killed = time.monotonic()
            dead.stop(kill=True)
            watcher.send({"GP18": 1})  # during the failover: queued in the device's session
            back = watcher.wait_for(full_state, since=mark, timeout=FAILOVER_BOUND_S + 10)
            t_back = next(t for t, p in watcher.messages[mark:] if p == back)
            assert t_back - killed <= FAILOVER_BOUND_S, "back on the next node after %.1f s" % (
                t_back - killed
            )
            assert "next broker node 127.0.0.1:%d" % alive.port in sim.log()
            deadline = time.monotonic() + 5
            while presses(sim, since_output) < 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(MOMENTARY_S + 1)
            watcher.send({"GP18": 1})  # after it
            deadline = time.monotonic() + 5
            while presses(sim, since_output) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(3)  # a duplicate redelivery would arrive in this time
            assert presses(sim, since_output) == 2, sim.outputs[-10:]
            assert sim.pin(18) == 0
            figures.append(t_back - killed)
            if watcher is not watch_b:
                watcher.close()
        sim.assert_alive()
        report(
            "cluster failover (aedes + redis, 2 nodes): back on the next node %.1f s and "
            "%.1f s after its node was killed (bound %d s); each QoS 1 press applied once"
            % (figures[0], figures[1], FAILOVER_BOUND_S)
        )
    finally:
        sim.stop()
        watch_b.close()
        ntp.close()
        ip.close()


def test_a_fleet_fails_over_together(cluster, report):
    a, b = cluster
    if b.proc is None:
        b.start()  # the test above left it killed
    ntp, ip = NtpServer(), PublicIpServer()
    servers = ["127.0.0.1:%d" % a.port, "127.0.0.1:%d" % b.port]
    observer = fleet.Observer(b.port)  # on the node that stays: the cluster carries the rest
    devices = fleet.Fleet(FLEET_SIZE, None, ntp.port, ip.port, servers=servers, discovery=False)
    try:
        devices.wait_up(observer, [0] * FLEET_SIZE, 90)
        marks = devices.marks(observer)
        killed = time.monotonic()
        a.stop(kill=True)
        back = [t - killed for t in devices.wait_up(observer, marks, FLEET_FAILOVER_BOUND_S + 10)]
        assert max(back) <= FLEET_FAILOVER_BOUND_S, "last device back after %.1f s" % max(back)
        latencies = devices.command_all_at_once(observer, 1)
        for sim in devices.sims:
            sim.wait_pin(16, 1)
            assert "next broker node 127.0.0.1:%d" % b.port in sim.log()
        devices.assert_alive()
        report(
            "cluster failover of a fleet of %d: all on the other node %.1f-%.1f s after their "
            "node was killed (bound %d s); then a command to each at once: p50 %.1f ms, "
            "p99 %.1f ms"
            % (
                FLEET_SIZE,
                min(back),
                max(back),
                FLEET_FAILOVER_BOUND_S,
                1000 * fleet.percentile(latencies, 0.5),
                1000 * fleet.percentile(latencies, 0.99),
            )
        )
    finally:
        devices.stop()
        observer.close()
        ntp.close()
        ip.close()
