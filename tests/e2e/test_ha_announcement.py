# SPDX-License-Identifier: MIT
"""The device's side of Home Assistant discovery on the broker: simulator + mosquitto.
tests/ha/ checks the same against a real Home Assistant."""

import json
import time

import simharness as sh

BOARD = "tinyctrl-74696e7973696d31"  # the simulator's board id (ports/unix/machine.py)
CONFIG_TOPIC = "homeassistant/device/%s/config" % BOARD


class Watcher(sh.Client):
    """Records (topic, payload, retained) of everything on the broker."""

    def __init__(self, port, client_id):
        self.seen = []
        super().__init__(port, topic="#", client_id=client_id)

    def _on_message(self, client, userdata, msg):  # in place from the subscription on: a
        # retained message comes at once
        with self._cond:
            self.seen.append((msg.topic, msg.payload, msg.retain))
            self.messages.append((time.monotonic(), msg.payload))
            self._cond.notify_all()

    def on(self, topic):
        with self._cond:
            return [(p, r) for t, p, r in self.seen if t == topic]


def forget(services):
    """Clear the retained announcement for the next test."""
    c = sh.Client(services[0].port, client_id="cleaner")
    c.mqtt.publish(CONFIG_TOPIC, b"", qos=1, retain=True).wait_for_publish(10)
    c.close()


def start(services, **ha):
    broker, ntp, ip = services
    cfg = sh.base_config(broker.port, ntp.port, ip.port)
    if ha:
        cfg["homeassistant"] = ha
    return sh.Sim(cfg)


def test_announces_online_and_state_on_connect(services):
    watcher = Watcher(services[0].port, "watch-1")
    sim = start(services, discovery=True)
    try:
        sh.wait_until(
            lambda: watcher.on(CONFIG_TOPIC) and watcher.on("home/pico/status"),
            30,
            "the announcement",
        )
        payload, retained = watcher.on(CONFIG_TOPIC)[0]
        assert retained is False  # a live subscriber gets it as published; the broker keeps it:
        again = Watcher(services[0].port, "watch-2")
        sh.wait_until(lambda: again.on(CONFIG_TOPIC), 10, "the retained announcement")
        assert again.on(CONFIG_TOPIC)[0] == (payload, True)
        assert again.on("home/pico/status") == []  # online is not retained (README)
        again.close()
        d = json.loads(payload)
        assert d["dev"]["ids"] == [BOARD] and "GP16" in d["cmps"]
        assert watcher.on("home/pico/status")[0] == (b"online", False)
        watcher.wait_for(lambda p: p.startswith(b"Uptime="), timeout=10)  # for the sensors
        sim.assert_alive()
    finally:
        sim.stop()
        watcher.close()
        forget(services)


def test_birth_reannounces_once_per_window_and_resends_state(services):
    watcher = Watcher(services[0].port, "watch-3")
    sim = start(services, discovery=True)
    try:
        sh.wait_until(lambda: watcher.on("home/pico/status"), 30, "the first announcement")
        time.sleep(10.5)  # past the publish window (guard.publish_window_s) of the first one
        mark = watcher.mark()
        for _ in range(50):  # a flood of (fake) birth messages
            watcher.mqtt.publish("homeassistant/status", "online", qos=1)
        sh.wait_until(lambda: len(watcher.on("home/pico/status")) == 2, 10, "the re-announcement")
        watcher.wait_for(sh.state("GP16", 0), since=mark, timeout=10)  # every pin again
        time.sleep(3)
        # the first, and one for the flood; the rest waits for the next window
        assert len(watcher.on(CONFIG_TOPIC)) == 2, len(watcher.on(CONFIG_TOPIC))
        assert len(watcher.on("home/pico/status")) == 2
        sim.assert_alive()
        assert "Error:" not in sim.log()  # births are not requests
    finally:
        sim.stop()
        watcher.close()
        forget(services)


def test_discovery_off_removes_and_no_section_publishes_nothing(services):
    watcher = Watcher(services[0].port, "watch-4")
    sim = start(services, discovery=False)
    try:
        sh.wait_until(lambda: watcher.on(CONFIG_TOPIC), 30, "the removal")
        assert watcher.on(CONFIG_TOPIC)[0][0] == b""
    finally:
        sim.stop()
    sim = start(services)
    try:
        mark = len(watcher.seen)
        watcher.wait_for(sh.state("GP16", 0), timeout=30)
        time.sleep(1)
        assert [t for t, _, _ in watcher.seen[mark:]] == ["home/pico"] * (len(watcher.seen) - mark)
    finally:
        sim.stop()
        watcher.close()
