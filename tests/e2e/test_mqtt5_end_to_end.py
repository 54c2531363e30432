# SPDX-License-Identifier: MIT
"""MQTT 5 on the device (mqtt.version, README "MQTT 5"), against the simulator and a real
mosquitto on loopback:

- a request whose Message Expiry Interval passes while the device is offline is never applied;
  one with a long expiry is, once the device is back;
- a request with a Response Topic and Correlation Data is answered there (its state, its Info:
  or Error: line), the device's topic unchanged; a response topic that is the device's own, a
  `$` topic, Home Assistant's or too long is refused and gets nothing; a flood of such requests
  stays within the publish guard; hostile properties cost no reconnect;
- a session taken over by another client with the device's client id: one log line, the reason
  in stats, and the device holds off instead of taking it back at once;
- "auto" on a broker that refuses MQTT 5 as a 3.1.1 broker does (CONNACK 0x01) falls back to
  3.1.1; version 3 never tries 5;
- a wrong password is one log line and one try per 60 s;
- mqtt.session_expiry_s is what the broker keeps the session for.
"""

import os
import subprocess
import threading
import time

import paho.mqtt.client as paho
import pytest
from faults import Only311, wifi_down
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from services import Mosquitto
from simharness import (
    DEVICE,
    TOPIC,
    Client,
    MessageLog,
    Sim,
    base_config,
    state,
    text,
    wait_log,
    wait_until,
)

from tinyctrl import mqtt5, protocol

# Not in the quick tier: offline waits, a takeover's hold-off.
pytestmark = pytest.mark.slow

KEEPALIVE_S = 4


class V5Client(MessageLog):
    """A paho MQTT 5 client; records (topic, payload, correlation data) of what it receives."""

    def __init__(self, port, topics=(TOPIC,), client_id="tester5"):
        super().__init__()
        self.disconnected = threading.Event()
        self.reasons = []
        self.mqtt = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5
        )
        self.mqtt.on_message = self._on_message
        self.mqtt.on_disconnect = self._on_disconnect
        ready = threading.Event()
        self.mqtt.on_subscribe = lambda *a: ready.set()
        self.mqtt.connect("127.0.0.1", port, keepalive=30)
        self.mqtt.loop_start()
        for t in topics:
            ready.clear()
            self.mqtt.subscribe(t, qos=1)
            assert ready.wait(10), "could not subscribe to " + t

    def _on_message(self, client, userdata, msg):
        self._add((msg.topic, msg.payload, getattr(msg.properties, "CorrelationData", None)))

    def _on_disconnect(self, client, userdata, flags, reason, properties):
        self.reasons.append(reason)
        self.disconnected.set()

    def publish(self, payload, topic=TOPIC, **props):
        p = Properties(PacketTypes.PUBLISH)
        for k, v in props.items():
            setattr(p, k, v)
        info = self.mqtt.publish(topic, payload, qos=1, properties=p if props else None)
        info.wait_for_publish(10)

    def wait_for(self, match, since=0, timeout=15):
        """The first (topic, payload, correlation data) from index `since` on that matches."""
        return self._first(lambda m: match(*m), since, timeout)

    def on(self, topic, since=0):
        with self._cond:
            return [m for m in self.messages[since:] if m[0] == topic]

    def close(self):
        self.mqtt.loop_stop()
        self.mqtt.disconnect()


def is_state(pin, value):
    def match(topic, payload, corr):
        said = protocol.read_output(payload, "GP")
        return bool(said) and said[0] == "state" and said[1].get(pin) == value

    return match


@pytest.fixture(scope="module")
def rig(services):
    broker, ntp, ip = services
    cfg = base_config(broker.port, ntp.port, ip.port, mqtt={"keepalive": KEEPALIVE_S})
    watcher = V5Client(broker.port, topics=(TOPIC, "reply/#", "homeassistant/#", "$SYS/x"))
    m = watcher.mark()
    sim = Sim(cfg)
    watcher.wait_for(is_state(16, 0), since=m, timeout=40)
    yield sim, watcher, broker
    watcher.close()
    sim.stop()


def settle():
    time.sleep(0.4)  # the burnout guard's cooldown (0.3 s) between moves of one pin


def test_stats_says_mqtt_5(rig):
    sim, watcher, _ = rig
    m = watcher.mark()
    watcher.publish('{"CMD": "stats"}')
    _, payload, _ = watcher.wait_for(lambda t, p, c: p.startswith(b"Uptime="), since=m)
    assert b", Mqtt=5, Version=" in payload, payload


def test_expired_request_is_never_applied_and_a_long_lived_one_is(rig, report):
    sim, watcher, _ = rig
    sim.wait_pin(16, 0)
    sim.wait_pin(17, 0)
    before = sim.log().count("connection lost, outage")
    since = len(sim.outputs)
    with wifi_down(sim):
        wait_log(sim, "connection lost, outage", count=before + 1, timeout=20)
        watcher.publish('{"GP16": 1}', MessageExpiryInterval=2)
        watcher.publish('{"GP17": 1}', MessageExpiryInterval=600)
        time.sleep(4)  # past the first request's expiry
    up = time.monotonic()
    sim.wait_pin(17, 1, timeout=30)
    applied = time.monotonic() - up
    time.sleep(2)  # anything else the broker kept would have come with it
    assert sim.pin(16) == 0
    assert not [line for _, line in sim.outputs[since:] if line == "GP16=1"]
    report(
        "MQTT 5: expired request (2 s) dropped by the broker; long-lived one "
        "applied %.1f s after the link came back" % applied
    )
    settle()
    watcher.publish('{"GP17": 0}')
    sim.wait_pin(17, 0)


def test_request_with_response_topic_is_answered_there(rig, report):
    sim, watcher, _ = rig
    settle()
    m = watcher.mark()
    sent = time.monotonic()
    watcher.publish('{"GP16": 1}', ResponseTopic="reply/pc1", CorrelationData=b"req-1")
    topic, payload, corr = watcher.wait_for(
        lambda t, p, c: t == "reply/pc1" and is_state(16, 1)(t, p, c), since=m
    )
    took = time.monotonic() - sent
    assert corr == b"req-1"
    # The device's topic carries the state as ever (IoT MQTT Panel, Home Assistant).
    watcher.wait_for(lambda t, p, c: t == TOPIC and is_state(16, 1)(t, p, c), since=m)
    sim.wait_pin(16, 1)
    report("MQTT 5: answer on the response topic %.0f ms after the request" % (took * 1000))
    # A command's line, and an error line, each with their own correlation data.
    m = watcher.mark()
    watcher.publish('{"CMD": "stats"}', ResponseTopic="reply/pc1", CorrelationData=b"req-2")
    _, payload, corr = watcher.wait_for(
        lambda t, p, c: t == "reply/pc1" and p.startswith(b"Uptime="), since=m
    )
    assert corr == b"req-2"
    watcher.publish('{"GP99": 1}', ResponseTopic="reply/pc1", CorrelationData=b"req-3")
    _, payload, corr = watcher.wait_for(
        lambda t, p, c: t == "reply/pc1" and p.startswith(b"Error:"), since=m
    )
    assert corr == b"req-3"
    watcher.wait_for(lambda t, p, c: t == TOPIC and p == payload, since=m)
    settle()
    watcher.publish('{"GP16": 0}')
    sim.wait_pin(16, 0)


@pytest.mark.parametrize(
    "where, why",
    [
        (TOPIC, "the device's own topic"),
        (TOPIC + "/status", "the device's own topic"),
        ("homeassistant/x", "under homeassistant"),
        ("$SYS/x", "$ topic"),
        ("reply/" + "x" * 200, "longer than"),
    ],
)
def test_response_topic_is_only_a_destination(rig, where, why):
    sim, watcher, _ = rig
    settle()
    m = watcher.mark()
    watcher.publish('{"CMD": "stats"}', ResponseTopic=where, CorrelationData=b"x")
    _, line, _ = watcher.wait_for(
        lambda t, p, c: t == TOPIC and p.startswith(b"Error: response topic refused"), since=m
    )
    assert why.encode() in line, line
    # The request itself is still served, on the device's topic only.
    watcher.wait_for(lambda t, p, c: t == TOPIC and p.startswith(b"Uptime="), since=m)
    time.sleep(0.5)
    assert [x for x in watcher.messages[m:] if x[0] != TOPIC] == []


def test_hostile_properties_cost_no_reconnect(rig):
    """Properties too large to read are drained, as a large payload is, and read as none: the
    device says the request is too large and stays connected. (What upstream's decoder cannot
    parse is read as none too, mqtt._decode_properties; mosquitto forwards no such property.)"""
    sim, watcher, _ = rig
    outages = sim.log().count("connection lost")
    m = watcher.mark()
    watcher.publish('{"CMD": "stats"}', UserProperty=[("k", "x" * 3000)])
    _, line, _ = watcher.wait_for(
        lambda t, p, c: t == TOPIC and p.startswith(b"Error: request too large"), since=m
    )
    watcher.publish('{"CMD": "stats"}', UserProperty=[("k", "\u00e9" * 200)])  # read
    watcher.wait_for(lambda t, p, c: t == TOPIC and p.startswith(b"Uptime="), since=m)
    time.sleep(1)
    assert sim.log().count("connection lost") == outages, sim.log()[-600:]


def test_flood_with_response_topics_stays_within_the_publish_guard(rig, report):
    sim, watcher, broker = rig
    cfg_max, window_s = 200, 10  # simharness.base_config's guard
    settle()
    flood = V5Client(broker.port, topics=(), client_id="flooder")
    m = watcher.mark()
    start = time.monotonic()
    n = 600
    for i in range(n):
        p = Properties(PacketTypes.PUBLISH)
        p.ResponseTopic = "reply/flood"
        p.CorrelationData = b"%d" % i
        flood.mqtt.publish(TOPIC, '{"CMD": "stats"}', qos=0, properties=p)
    time.sleep(window_s)
    flood.close()
    answers = len(watcher.on("reply/flood", m))
    device_out = sum(
        1
        for t, p, _ in watcher.messages[m:]
        if t != TOPIC or protocol.is_device_output(p) or p.startswith(b"Uptime=")
    )
    assert 0 < answers < n
    assert device_out <= cfg_max + cfg_max // 2, device_out  # one window and the next's start
    # Not halted: the fuse held, a request is still answered.
    m = watcher.mark()
    watcher.publish('{"CMD": "stats"}', ResponseTopic="reply/pc1", CorrelationData=b"after")
    watcher.wait_for(lambda t, p, c: t == "reply/pc1" and c == b"after", since=m, timeout=20)
    report(
        "MQTT 5: %d stats requests with response topics in %.1f s: %d answers, "
        "%d device publishes in %d s (publish_max %d per %d s)"
        % (n, time.monotonic() - start, answers, device_out, window_s, cfg_max, window_s)
    )


def test_session_taken_over_holds_off(rig, report):
    """mosquitto 2.0.11 closes the old connection without DISCONNECT 0x8E: the device
    recognises the fight by its sessions closed soon after they began, and holds off."""
    sim, watcher, broker = rig
    kicked = []  # when the broker closed the impostor's connection (the device took it back)
    impostor = paho.Client(
        paho.CallbackAPIVersion.VERSION2, client_id=DEVICE, protocol=paho.MQTTv5
    )
    impostor.on_disconnect = lambda *a: kicked.append(time.monotonic())
    impostor.reconnect_delay_set(1, 2)
    line = "broker: session closed by the broker 3 times within 30 s of connecting"
    start = time.monotonic()
    impostor.connect("127.0.0.1", broker.port, keepalive=30)
    impostor.loop_start()
    try:
        wait_log(sim, line, timeout=60)
        noticed = time.monotonic()
        assert "next try in %d s" % mqtt5.TAKEOVER_HOLD_S in sim.log()
        time.sleep(mqtt5.TAKEOVER_HOLD_S - 5)
        late = [t for t in kicked if t > noticed + 1]
        assert not late, "the device took the session back during its hold-off"
    finally:
        impostor.loop_stop()
        impostor.disconnect()
    m = watcher.mark()
    t = time.monotonic()
    watcher.wait_for(is_state(16, 0), since=m, timeout=30)  # back, full state
    report(
        "MQTT 5: client id taken over: recognised after %.1f s (%d kicks), held off %d s, "
        "back %.1f s after the impostor left"
        % (noticed - start, len(kicked), mqtt5.TAKEOVER_HOLD_S, time.monotonic() - t)
    )
    m = watcher.mark()
    watcher.publish('{"CMD": "stats"}')
    _, payload, _ = watcher.wait_for(lambda t, p, c: p.startswith(b"Uptime="), since=m)
    assert b"Mqtt=5 (last: session closed by the broker" in payload, payload


@pytest.mark.parametrize("version, first_levels", [("auto", [5, 4]), (3, [4])])
def test_a_311_broker(services, version, first_levels):
    broker, ntp, ip = services
    front = Only311(broker.port)
    topic = "home/old-broker"
    cfg = base_config(
        front.port,
        ntp.port,
        ip.port,
        mqtt={"topic": topic, "client_id": "old-broker-pico", "version": version},
    )
    client = Client(broker.port, topic=topic, client_id="tester-311")
    m = client.mark()
    sim = Sim(cfg)
    try:
        client.wait_for(state("GP16", 0), since=m, timeout=40)
        assert front.levels[: len(first_levels)] == first_levels, front.levels
        assert 5 not in front.levels[1:], front.levels  # 3.1.1 once refused, until reset
        if version == "auto":
            assert "CONNACK 0x01 protocol level refused (a 3.1.1 broker); using MQTT 3.1.1" in (
                sim.log()
            )
        m = client.mark()
        client.send({"GP16": 1})
        client.wait_for(state("GP16", 1), since=m)
        client.send({"CMD": "stats"})
        stats = client.wait_for(text("Uptime="), since=m)
        assert b"Mqtt=3.1.1" in stats, stats
        wait_until(lambda: sim.pin(16) == 1, 5, "GP16 on")
    finally:
        client.close()
        sim.stop()
        front.close()


@pytest.mark.parametrize("version, line", [("auto", "CONNACK 0x87"), (3, "CONNACK 0x05")])
def test_bad_password_is_one_line_and_no_tight_loop(services, tmp_path, version, line):
    _, ntp, ip = services
    passwd = tmp_path / "passwd"
    passwd.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "pico", "right"], check=True)
    root = "user root\n" if os.geteuid() == 0 else ""
    broker = Mosquitto(extra_conf="%sallow_anonymous false\npassword_file %s\n" % (root, passwd))
    broker.start()
    mqtt = {"user": "pico", "password": "wrong", "version": version}
    sim = Sim(base_config(broker.port, ntp.port, ip.port, mqtt=mqtt))
    try:
        # mosquitto 2.0.11 answers a wrong password with "not authorised"
        wait_log(sim, "broker: %s not authorised; next try in 60 s" % line)
        time.sleep(12)
        with open(os.path.join(broker.dir, "log")) as f:
            tries = f.read().count("disconnected, not authorised")
        assert tries == 1, tries  # the next in 60 s
        assert sim.log().count("not authorised") == 1
    finally:
        sim.stop()
        broker.close()


def test_the_session_lasts_session_expiry_s(services):
    """mqtt.session_expiry_s is the device's, sent on CONNECT: with 2 s, a request queued
    while the device is offline longer than that dies with its session."""
    broker, ntp, ip = services
    topic = "home/short-session"
    mqtt = {"topic": topic, "client_id": "short-session", "session_expiry_s": 2, "keepalive": 4}
    watcher = V5Client(broker.port, topics=(topic,), client_id="tester-short")
    m = watcher.mark()
    sim = Sim(base_config(broker.port, ntp.port, ip.port, mqtt=mqtt))
    try:
        watcher.wait_for(is_state(16, 0), since=m, timeout=40)
        with wifi_down(sim):
            wait_log(sim, "connection lost, outage", timeout=20)
            time.sleep(4)  # the session has expired
            watcher.publish('{"GP16": 1}', topic=topic)
        m = watcher.mark()
        watcher.wait_for(is_state(16, 0), since=m, timeout=30)  # back: a fresh session
        time.sleep(2)
        assert sim.pin(16) == 0
    finally:
        watcher.close()
        sim.stop()
