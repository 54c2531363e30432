# SPDX-License-Identifier: MIT
"""What anyone who can publish on the broker can try (SECURITY.md, "Threat model"), end to end:
the controller on the simulator, a loopback mosquitto, an attacker with broker credentials.

Each test is an attack that worked before the device knew better: a message too large for one
topic that ate the request on another, a flood that made the broker drop the owner's request so
its code stayed unspent, interlocks that let an open pin move a protected one, harmless commands
that crowded out every other message, forged and retained device messages, and an overwritten
Home Assistant discovery config."""

import base64
import json
import os
import signal
import time

import pytest
import simharness as sh
from services import Mosquitto

# Not in the quick tier (./build.sh test --quick): attacks that wait out TOTP steps and floods.
pytestmark = pytest.mark.slow

DENIED = b"Error: MFA validation failed, GPIO cannot be set"
BOARD = "tinyctrl-74696e7973696d31"  # the simulator's board id (ports/unix/machine.py)
CONFIG_TOPIC = "homeassistant/device/%s/config" % BOARD
STATUS_TOPIC = sh.TOPIC + "/status"
# GP16 and GP18 (garage) share the owner's phone key; GP17 and GP19 another's; GP22 a third,
# interlocked with the open GP26 (a motor's two directions).
LAMP, LIGHT, GARAGE, GATE, UP, DOWN, DOOR = 16, 17, 18, 19, 22, 26, 0


def new_key():
    return base64.b32encode(os.urandom(20)).decode()


KEY_PHONE, KEY_FLOOD, KEY_MOTOR = new_key(), new_key(), new_key()


def attack_config(services, **changes):
    broker, ntp, ip = services
    cfg = sh.base_config(
        broker.port,
        ntp.port,
        ip.port,
        gpio={
            "relay": [LAMP, LIGHT, UP, DOWN],
            "momentary": {str(GARAGE): 1, str(GATE): 1},
            "contact": [DOOR],
            "notify": [DOOR],
            "interlock": [[UP, DOWN]],
            "interlock_dead_ms": 3000,
        },
        mfa={
            "pins": {
                str(LAMP): [KEY_PHONE],
                str(GARAGE): [KEY_PHONE],
                str(LIGHT): [KEY_FLOOD],
                str(GATE): [KEY_FLOOD],
                str(UP): [KEY_MOTOR],
            }
        },
        homeassistant={"discovery": True},
    )
    for name, values in changes.items():
        cfg[name].update(values)
    return cfg


def retained(port, topic, timeout=2.0):
    """The retained message on `topic`, or None: what a client subscribing now is handed."""
    c = sh.Client(port, topic=topic, client_id="retained-reader")
    time.sleep(timeout)
    c.close()
    return c.retained[0] if c.retained else None


def started(cfg, client):
    """A simulator subscribed, its clock synced, and codes that fit its clock."""
    m = client.mark()
    sim = sh.Sim(cfg)
    client.wait_for(sh.state("GP16", 0), since=m, timeout=40)
    sh.wait_log(sim, "clock synced")
    codes = sh.Codes()
    codes.synced()
    return sim, codes


def reply(client, since):
    return client.wait_for(
        lambda p: p.startswith(b"Error:") or p.startswith(b"Info:"), since=since
    )


@pytest.fixture(scope="module")
def rig(services):
    """One device with Home Assistant discovery, started after an attacker planted a retained
    `online` on its status topic and a retained request on its topic."""
    port = services[0].port
    planter = sh.Client(port, client_id="planter")
    for topic, payload in ((STATUS_TOPIC, b"online"), (sh.TOPIC, b'{"GP26": 1}')):
        planter.mqtt.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
    planter.close()
    owner = sh.Client(port, client_id="owner")
    attacker = sh.Client(port, client_id="attacker")
    sim, codes = started(attack_config(services), owner)
    yield sim, owner, attacker, codes
    owner.close()
    attacker.close()
    sim.stop()


def test_retained_forgeries_on_the_devices_topics_are_cleared(rig, services):
    """A retained `online` would show a dead device as available to a restarted Home
    Assistant; a retained request would come back at every connect."""
    sim, owner, _, _ = rig
    sh.wait_until(
        lambda: retained(services[0].port, STATUS_TOPIC) is None,
        10,
        "the planted online is cleared",
    )
    assert retained(services[0].port, sh.TOPIC) is None
    assert sim.pin(DOWN) == 0  # and the retained request was refused, as before
    sim.assert_alive()


def test_an_oversized_message_on_the_birth_topic_eats_no_request(rig):
    """The size of a payload too large to read belongs to that message alone: the owner's next
    request is carried out, and its code is spent."""
    sim, owner, attacker, codes = rig
    attacker.mqtt.publish("homeassistant/status", b"x" * 1500, qos=1).wait_for_publish(10)
    time.sleep(0.5)
    code = codes.fresh(KEY_PHONE)
    m = owner.mark()
    owner.send({"MFA": code, "GP%d" % GARAGE: 1})
    owner.wait_for(sh.state("GP%d" % GARAGE, 1), since=m)
    m = attacker.mark()
    attacker.send({"MFA": code, "GP%d" % LAMP: 1})
    assert reply(attacker, m) == DENIED
    assert sim.pin(LAMP) == 0
    assert b"request too large" not in b"".join(p for _, p in owner.messages[m:])


def test_a_request_that_moves_nothing_leaves_an_authorised_delayed_on(rig):
    """GP22 (protected) waits out the dead time after GP26 went off; an off for GP26, already
    off, cancels nothing, and an on for GP26 is refused while GP22 waits."""
    sim, owner, attacker, codes = rig
    owner.send({"GP%d" % DOWN: 1})
    sim.wait_pin(DOWN, 1)
    time.sleep(0.5)  # past guard.cooldown_s
    m = owner.mark()
    owner.send({"GP%d" % DOWN: 0})
    sim.wait_pin(DOWN, 0)
    owner.send({"MFA": codes.fresh(KEY_MOTOR), "GP%d" % UP: 1})
    assert b"GP22 on in" in reply(owner, m)
    m = attacker.mark()
    attacker.send({"GP%d" % DOWN: 0})
    attacker.send({"GP%d" % DOWN: 1})
    attacker.wait_for(
        sh.text("Error: GP26 not switched on: interlocked with GP22, which is switching on"),
        since=m,
    )
    sim.wait_pin(UP, 1, timeout=6)
    assert sim.pin(DOWN) == 0
    time.sleep(0.5)
    owner.send({"MFA": codes.fresh(KEY_MOTOR), "GP%d" % UP: 0})
    sim.wait_pin(UP, 0)


def test_forged_device_messages_are_answered_with_the_truth(rig, services):
    """A forged contact state or `offline` in the device's name would stand until the pin
    changes (hours): the device, which receives every message on its topic, contradicts it."""
    sim, owner, attacker, _ = rig
    sim.contact(DOOR, 1)
    owner.wait_for(sh.state("GP0", 1))
    time.sleep(0.5)
    m = owner.mark()
    attacker.send({"GP0": 0, "FROM": sh.NAME})
    owner.wait_for(sh.state("GP0", 1), since=m, timeout=5)
    status = sh.Client(services[0].port, topic=STATUS_TOPIC, client_id="status-watch")
    try:
        s = status.mark()
        attacker.send({"STATUS": "offline", "FROM": sh.NAME})
        status.wait_for(lambda p: p == b"online", since=s, timeout=5)
        s = status.mark()
        attacker.mqtt.publish(STATUS_TOPIC, b"offline", qos=1).wait_for_publish(10)
        status.wait_for(lambda p: p == b"online", since=s, timeout=5)
    finally:
        status.close()
    sim.contact(DOOR, 0)
    sim.assert_alive()


def test_an_overwritten_discovery_config_is_announced_again(rig, services):
    """Any broker user can rename, re-type or remove the device's entities by overwriting its
    retained config; the device answers with its own within a publish window."""
    sim, owner, attacker, _ = rig
    port = services[0].port
    sh.wait_until(lambda: retained(port, CONFIG_TOPIC, 1.0), 20, "the device's announcement")
    own = retained(port, CONFIG_TOPIC)
    forged = json.dumps({"dev": {"ids": [BOARD], "name": "hacked"}, "cmps": {}}).encode()
    attacker.mqtt.publish(CONFIG_TOPIC, forged, qos=1, retain=True).wait_for_publish(10)
    sh.wait_until(lambda: retained(port, CONFIG_TOPIC, 1.0) == own, 25, "the config restored")
    attacker.mqtt.publish(CONFIG_TOPIC, b"", qos=1, retain=True).wait_for_publish(10)
    sh.wait_until(lambda: retained(port, CONFIG_TOPIC, 1.0) == own, 25, "the device restored")
    sim.assert_alive()


def test_a_flood_that_makes_the_broker_drop_the_owners_request_leaves_its_code_useless(
    services, report
):
    """A broker drops QoS 1 messages for a client it cannot queue more for (mosquitto:
    max_inflight_messages, then max_queued_messages). A device slower than the flood (here
    stopped for a moment, so the drop is certain) never sees the owner's request and cannot
    spend its code; having then read messages back to back, it refuses every code and time
    stamp made before the flood ended."""
    broker = Mosquitto(extra_conf="max_queued_messages 10\n").start()
    owner = sh.Client(broker.port, client_id="owner-f")
    attacker = sh.Client(broker.port, client_id="attacker-f")
    sim = None
    try:
        sim, codes = started(attack_config((broker,) + services[1:]), owner)
        code = codes.fresh(KEY_FLOOD)
        flood = b"[" + b"1," * 250 + b"1]"  # valid JSON, slow to read: 251 numbers
        m = owner.mark()
        sim.proc.send_signal(signal.SIGSTOP)
        try:
            for _ in range(60):
                last = attacker.mqtt.publish(sh.TOPIC, flood, qos=1)
            last.wait_for_publish(10)  # the broker has them all: its queue for the device is full
            owner.mqtt.publish(
                sh.TOPIC, json.dumps({"MFA": code, "GP%d" % GATE: 1}), qos=1
            ).wait_for_publish(10)
            time.sleep(0.5)
        finally:
            sim.proc.send_signal(signal.SIGCONT)
        time.sleep(3)  # the backlog drains
        seen = [p for _, p in owner.messages[m:]]
        assert b"GP%d" % GATE not in b"".join(p for p in seen if b'"FROM"' in p), (
            "the broker did not drop the owner's request: the attack was not reproduced"
        )
        with open(os.path.join(broker.dir, "log"), "rb") as f:
            assert (
                b"Outgoing messages are being dropped for client %s" % sh.DEVICE.encode()
                in f.read()
            )
        m = attacker.mark()
        attacker.send({"MFA": code, "GP%d" % LIGHT: 1})
        assert reply(attacker, m) == DENIED
        assert sim.pin(LIGHT) == 0 and sim.pin(GATE) == 0
        assert any(p.startswith(b"Info: requests are arriving faster") for p in seen)
        sim.assert_alive()
    finally:
        if sim:
            sim.stop()
        owner.close()
        attacker.close()
        broker.close()


def test_an_interlock_that_switches_a_protected_relay_off_needs_its_keys(services):
    """With interlock_mode "switch" an on for one pin of a group switches the others off: a
    group that mixes protected and open pins is refused at start-up, with the reason."""
    sim = sh.Sim(attack_config(services, gpio={"interlock_mode": "switch"}))
    try:
        assert sim.proc.wait(20) != 0, "the controller ran"
        problem = (
            "gpio.interlock[0]: GP22 and GP26 must need the same mfa.pins and sign.pins "
            'keys with interlock_mode "switch"'
        )
        sh.wait_until(lambda: any(problem in line for _, line in sim.outputs), 5, "the problem")
        assert "Traceback" not in sim.log() and sim.pin(UP) == sim.pin(DOWN) == 0
    finally:
        sim.stop()


def test_harmless_commands_do_not_starve_the_other_messages(services, report):
    """A flood of stats and refresh requests, within the publish pacing: a door's NOTIFY and a
    failed authentication still go out within a few publish slots."""
    owner = sh.Client(services[0].port, client_id="owner-s")
    attacker = sh.Client(services[0].port, client_id="attacker-s")
    m = owner.mark()
    sim = sh.Sim(
        attack_config(
            services,
            guard={"publish_max": 20, "publish_window_s": 10},
            homeassistant={"discovery": False},
        )
    )
    try:
        owner.wait_for(sh.state("GP16", 0), since=m, timeout=40)
        end = time.monotonic() + 18
        changed = None
        while time.monotonic() < end:
            attacker.send({"CMD": "stats"}, qos=0)
            attacker.send({"CMD": "refresh"}, qos=0)
            if changed is None and time.monotonic() > end - 14:  # the bucket is empty by now
                m = owner.mark()
                sim.contact(DOOR, 1)
                owner.send({"MFA": 123456, "GP%d" % LAMP: 1})
                changed = time.monotonic()
            time.sleep(0.125)  # 8 requests a second
        assert changed is not None
        delays = {}
        for t, p in owner.messages[m:]:
            kind = (
                "notify"
                if p.startswith(b'{"NOTIFY"')
                else "error"
                if p.startswith(b"Error:")
                else None
            )
            if kind and kind not in delays:
                delays[kind] = t - changed
        report(
            "flood of stats and refresh: NOTIFY after %s s, auth error after %s s"
            % tuple("%.1f" % delays[k] if k in delays else "never" for k in ("notify", "error"))
        )
        assert set(delays) == {"notify", "error"} and max(delays.values()) < 10, delays
        sim.assert_alive()
    finally:
        sim.stop()
        owner.close()
        attacker.close()
