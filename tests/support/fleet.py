# SPDX-License-Identifier: MIT
"""A fleet of simulated devices on one broker (tests/e2e/test_fleet.py, `./build.sh bench
--fleet`): one simulator process each, each with its own board id, topic, client id and name,
and one observer on all their topics and Home Assistant's discovery prefix.

Figures only here (latencies, reconnect times, RSS, CPU); the test asserts behaviour.
"""

import json
import math
import os
import threading
import time

import paho.mqtt.client as paho
from simharness import Sim, base_config
from tinyctrl import protocol

PREFIX = "fleet"
HA_PREFIX = "homeassistant"
RELAY = 16
ALL_PINS = (0, 1, 2, 3, 16, 17, 18, 19, 26, 27)
# Each device is idle but for the tests' commands: a guard that lets a few changes a minute.
GUARD = {"cooldown_s": 0.1, "max_changes": 50, "window_s": 60, "publish_max": 200}
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def topic(i):
    return "%s/d%03d" % (PREFIX, i)


def board_id(i):
    return "f1ee7000%04x" % i


def full_state(payload):
    """The state listing every pin, sent on each (re)connect (Action F)."""
    said = protocol.read_output(payload, "GP")
    return bool(said) and said[0] == "state" and all(p in said[1] for p in ALL_PINS)


def relay_is(value):
    def match(payload):
        said = protocol.read_output(payload, "GP")
        return bool(said) and said[0] == "state" and said[1].get(RELAY) == value

    return match


def percentile(values, q):
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, min(len(s) - 1, math.ceil(q * len(s)) - 1))]


class Observer:
    """One paho client on every device's topic and the discovery prefix; records each
    message per topic with its arrival time, and sends commands."""

    def __init__(self, port, client_id="fleet-observer"):
        self.port = port
        self.messages = {}  # topic -> [(monotonic, payload, retained)]
        self._cond = threading.Condition()
        self.mqtt = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.mqtt.on_message = self._on_message
        subscribed = threading.Event()
        self.mqtt.on_subscribe = lambda *a: subscribed.set()
        self.mqtt.connect("127.0.0.1", port, keepalive=30)
        self.mqtt.subscribe([(PREFIX + "/#", 1), (HA_PREFIX + "/#", 1)])
        self.mqtt.loop_start()
        if not subscribed.wait(10):
            raise RuntimeError("fleet observer could not subscribe")

    def _on_message(self, client, userdata, msg):
        with self._cond:
            self.messages.setdefault(msg.topic, []).append(
                (time.monotonic(), msg.payload, msg.retain)
            )
            self._cond.notify_all()

    def mark(self, t):
        with self._cond:
            return len(self.messages.get(t, ()))

    def send(self, t, payload):
        info = self.mqtt.publish(t, json.dumps(payload), qos=1)
        return info

    def wait_for(self, t, match, since=0, timeout=15):
        """Arrival time of the first message on `t` from index `since` on that matches."""
        end = time.monotonic() + timeout
        with self._cond:
            i = since
            while True:
                got = self.messages.get(t, [])
                while i < len(got):
                    at, payload, _ = got[i]
                    i += 1
                    if match(payload):
                        return at
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "%s: no matching message; last %s" % (t, [m[1] for m in got[-5:]])
                    )
                self._cond.wait(left)

    def retained(self, prefix):
        with self._cond:
            return dict(
                (t, m[-1][1])
                for t, m in self.messages.items()
                if t.startswith(prefix) and m[-1][2]
            )

    def close(self):
        self.mqtt.loop_stop()
        self.mqtt.disconnect()


class Fleet:
    """`n` simulators on the broker at `port`, started together."""

    def __init__(self, n, port, ntp_port, ip_port, servers=None, discovery=True):
        self.n = n
        self.sims = []
        self.started_at = time.monotonic()
        for i in range(n):
            cfg = base_config(port, ntp_port, ip_port, guard=GUARD)
            cfg["mqtt"].update(topic=topic(i), client_id="fleet-%03d" % i)
            cfg["name"] = "dev-%03d" % i
            if servers:  # a cluster (mqtt.servers)
                del cfg["mqtt"]["server"], cfg["mqtt"]["port"]
                cfg["mqtt"]["servers"] = servers
            if discovery:
                cfg["homeassistant"] = {"discovery": True, "prefix": HA_PREFIX}
            self.sims.append(Sim(cfg, board_id=board_id(i)))

    def wait_up(self, observer, since, timeout):
        """Arrival time of each device's full state from the marks `since` on."""
        return [observer.wait_for(topic(i), full_state, since[i], timeout) for i in range(self.n)]

    def marks(self, observer):
        return [observer.mark(topic(i)) for i in range(self.n)]

    def command_one_at_a_time(self, observer, value, timeout=10):
        """Seconds from each relay command to its echo, one device after another."""
        out = []
        for i in range(self.n):
            since = observer.mark(topic(i))
            sent = time.monotonic()
            observer.send(topic(i), {"GP%d" % RELAY: value})
            out.append(observer.wait_for(topic(i), relay_is(value), since, timeout) - sent)
        return out

    def command_all_at_once(self, observer, value, timeout=30):
        """Seconds from each relay command to its echo, the commands to every device sent
        back to back."""
        since = self.marks(observer)
        sent = []
        for i in range(self.n):
            sent.append(time.monotonic())
            observer.send(topic(i), {"GP%d" % RELAY: value})
        return [
            observer.wait_for(topic(i), relay_is(value), since[i], timeout) - sent[i]
            for i in range(self.n)
        ]

    def cpu_s(self):
        """CPU seconds (user + system) each simulator has used so far."""
        out = []
        for sim in self.sims:
            with open("/proc/%d/stat" % sim.proc.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out.append((int(fields[11]) + int(fields[12])) / CLK_TCK)
        return out

    def rss_kb(self):
        out = []
        for sim in self.sims:
            with open("/proc/%d/statm" % sim.proc.pid) as f:
                out.append(int(f.read().split()[1]) * PAGE // 1024)
        return out

    def idle_cpu_percent(self, seconds):
        before = self.cpu_s()
        time.sleep(seconds)
        return [100 * (b - a) / seconds for a, b in zip(before, self.cpu_s())]

    def assert_alive(self):
        for sim in self.sims:
            sim.assert_alive()

    def stop(self):
        threads = [threading.Thread(target=sim.stop) for sim in self.sims]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
