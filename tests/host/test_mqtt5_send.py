# SPDX-License-Identifier: MIT
"""`tinyctrl send` with MQTT 5 (README "MQTT 5"), against the simulator and a real mosquitto:
its answer comes on its own response topic with its correlation data (a forged line on the
device's topic does not fool it); --expire lets the broker drop a request the device did not
read in time, --queue keeps it; on a 3.1.1 broker it says an unanswered request stays queued."""

import json
import threading
import time

import paho.mqtt.client as paho
import pytest
from faults import Only311
from hostcli import one_line_error, run
from simharness import NAME, TOPIC, Client, Sim, base_config, state, wait_log

# Not in the quick tier: the device offline and back.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rig(services):
    broker, ntp, ip = services
    cfg = base_config(broker.port, ntp.port, ip.port, mqtt={"keepalive": 4})
    client = Client(broker.port)
    m = client.mark()
    sim = Sim(cfg)
    client.wait_for(state("GP16", 0), since=m, timeout=40)
    yield sim, client, sim.config_path, broker
    client.close()
    sim.stop()


def settle():
    time.sleep(0.4)  # the burnout guard's cooldown (0.3 s) between moves of one pin


def test_send_takes_its_own_answer_not_a_forged_line(rig):
    sim, client, config, broker = rig
    forger = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="forger")
    forger.connect("127.0.0.1", broker.port)
    forger.loop_start()
    stop = threading.Event()
    forged = json.dumps({"GP16": 1, "FROM": NAME})

    def forge():  # another client on the topic, saying GP16 is on
        while not stop.is_set():
            forger.publish(TOPIC, forged, qos=0)
            time.sleep(0.01)

    t = threading.Thread(target=forge, daemon=True)
    t.start()
    try:
        time.sleep(0.3)
        done = run("send", "-c", config, "--json", '{"GP16": 0}')
    finally:
        stop.set()
        t.join()
        forger.loop_stop()
        forger.disconnect()
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert json.loads(out["answer"]) == {"GP16": 0, "FROM": NAME}, out
    assert sim.pin(16) == 0


def outage(sim):
    n = sim.log().count("connection lost, outage")
    sim.wifi(0)
    wait_log(sim, "connection lost, outage", count=n + 1, timeout=20)


def back(sim):
    n = sim.log().count("subscribed to")
    sim.wifi(1)
    wait_log(sim, "subscribed to", count=n + 1, timeout=30)


def test_send_expire_lets_the_broker_drop_an_unread_request(rig):
    sim, _, config, _ = rig
    settle()
    outage(sim)
    try:
        done = run("send", "-c", config, "--pin", "16", "--on", "--timeout", "2", "--expire", "3")
        assert done.returncode == 3, done.stderr
        line = one_line_error(done)
        assert "drops the request 3 s after it was sent (--expire)" in line and "GP16" in line
        time.sleep(4)
    finally:
        back(sim)
    time.sleep(2)  # a request still queued would have come with the session
    assert sim.pin(16) == 0


def test_send_queue_keeps_the_request_until_the_device_is_back(rig):
    sim, _, config, _ = rig
    settle()
    outage(sim)
    try:
        done = run("send", "-c", config, "--pin", "16", "--on", "--timeout", "2", "--queue")
        assert done.returncode == 3, done.stderr
        line = one_line_error(done)
        assert "--queue: the request waits queued at the broker" in line, line
        time.sleep(4)
    finally:
        back(sim)
    sim.wait_pin(16, 1, timeout=10)
    settle()
    assert run("send", "-c", config, "--pin", "16", "--off").returncode == 0
    sim.wait_pin(16, 0)


def test_send_and_expire_conflict():
    done = run("send", "--pin", "16", "--on", "--expire", "5", "--queue")
    assert done.returncode == 2 and "not allowed with" in done.stderr


def test_send_on_a_311_broker_says_the_request_stays_queued(services, tmp_path):
    broker, ntp, ip = services
    front = Only311(broker.port)
    try:
        path = tmp_path / "config.json"
        cfg = base_config(front.port, ntp.port, ip.port, mqtt={"topic": "t/old"})
        path.write_text(json.dumps(cfg))
        line = one_line_error(run("send", "-c", path, "--pin", "16", "--on", "--timeout", "2"))
        assert "no answer from the device within 2 s" in line
        assert "MQTT 3.1.1" in line and "queued at the broker" in line and "GP16" in line
        assert front.levels[:2] == [5, 4], front.levels  # "auto": tried 5, then 3.1.1
    finally:
        front.close()


def test_send_to_a_device_that_answers_with_311_only(services, tmp_path):
    """A board still on 3.1.1 (mqtt.version 3, or firmware before MQTT 5) on an MQTT 5
    broker answers on its topic only: send says so and takes that answer."""
    broker, ntp, ip = services
    topic = "t/old-board"
    cfg = base_config(
        broker.port,
        ntp.port,
        ip.port,
        mqtt={"topic": topic, "client_id": "old-board", "version": 3},
    )
    client = Client(broker.port, topic=topic, client_id="tester-old")
    m = client.mark()
    sim = Sim(cfg)
    try:
        client.wait_for(state("GP16", 0), since=m, timeout=40)
        cfg["mqtt"]["version"] = "auto"  # the PC's copy of the config
        path = tmp_path / "config.json"
        path.write_text(json.dumps(cfg))
        done = run("send", "-c", path, "--pin", "16", "--on", "--timeout", "3")
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == [NAME, "GP16=1"]
        assert "answered on its topic, not on this PC's response topic" in done.stderr
        sim.wait_pin(16, 1)
    finally:
        client.close()
        sim.stop()
