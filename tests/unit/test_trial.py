# SPDX-License-Identifier: MIT
# Receiving a pushed config and trying it (tinyctrl.push, tinyctrl.trial), under CPython and
# MicroPython, in a folder of its own: chunks in order, refusals (replay, another device,
# tampered, invalid, garbage, no key) that change no file, and the trial's state machine across
# boots: confirmed, rolled back after its bound, after a second boot, after a power cut at
# each step.
import json
import os

from check import Outbox, hexlify, run_async
from test_seal import ecb

from tinyctrl import config, push, seal, trial

KEY = bytes(range(1, 33))
NAME, TOPIC = "garage-pico", "home/pico"


def new_dir():
    path = "/tmp/tinyctrl-trial-" + hexlify(os.urandom(6))
    os.mkdir(path)
    return path + "/"


def raw_config(**top):
    raw = {
        "wifi": {"ssid": "sim", "password": "pw-one"},
        "mqtt": {"server": "127.0.0.1", "topic": TOPIC},
        "gpio": {"relay": [16, 17]},
        "name": NAME,
    }
    raw.update(top)
    return raw


def text(raw):
    return json.dumps(raw).encode()


def sealed(plain, seq, to=NAME, topic=TOPIC, key=KEY, trial_s=30):
    """What the PC sends, made with the device's own primitives (CTR is its own inverse)."""
    enc, mac = seal.derive(key)
    nonce = os.urandom(16)
    header = (
        json.dumps(
            {
                "len": len(plain),
                "nonce": hexlify(nonce),
                "seq": seq,
                "to": to,
                "topic": topic,
                "trial_s": trial_s,
                "v": 1,
            }
        ).encode()
        + b"\n"
    )
    body = seal.Ctr(ecb(enc), nonce).apply(plain)
    h = seal.Hmac(mac)
    h.update(header + body)
    return header + body + h.digest()


def chunks(data, seq):
    n = (len(data) + push.CHUNK - 1) // push.CHUNK
    return [
        b"%d %d/%d\n" % (seq, i, n) + data[i * push.CHUNK : (i + 1) * push.CHUNK] for i in range(n)
    ]


class Resets(Exception):
    pass


class Hw:
    def __init__(self, folder):
        self.CONFIG_PATH = folder + "config.json"

    def unique_id(self):
        return b"\x01\x02"

    def reset(self):
        raise Resets()


class Device:
    """One board's folder: config.json, the key, and a Receiver as the controller makes it."""

    def __init__(self, key=KEY, raw=None):
        self.dir = new_dir()
        self.hw = Hw(self.dir)
        self.write("config.json", text(raw or raw_config()))
        if key:
            self.write(push.KEY_FILE, hexlify(key).encode())
        self.now = 0
        self.start()

    def write(self, name, data):
        with open(self.dir + name, "wb") as f:
            f.write(data)

    def read(self, name):
        with open(self.dir + name, "rb") as f:
            return f.read()

    def files(self):
        return sorted(os.listdir(self.dir))

    def start(self):
        """A boot: main.load's trial.boot, then the controller's Receiver."""
        self.boot = trial.boot(self.hw.CONFIG_PATH)
        self.cfg = config.load(self.boot.path)
        self.outbox = Outbox(b'{"GP16": 0, "FROM": "garage-pico"}')
        self.rx = push.Receiver(self.cfg, self.hw, self.outbox, lambda: self.now, self.boot, ecb)

    def online(self):
        """Subscribed, and the device's first state came back on its topic."""
        self.rx.connected()
        self.rx.heard(TOPIC.encode(), self.outbox.last_sent)

    def send(self, messages):
        for m in messages:
            self.rx.message(m, 0)

    def push(self, raw, seq, **kw):
        self.send(chunks(sealed(text(raw), seq, **kw), seq))


def refused(dev):
    assert len(dev.outbox.errors) == 1, dev.outbox.errors
    kind, line = dev.outbox.errors[0]
    assert kind == "push" and line.startswith("Error: config push refused: "), line
    dev.outbox.errors = []
    assert trial.NEW not in dev.files() and trial.MARK not in dev.files()
    return line


def test_an_accepted_push_is_tried_then_confirmed():
    dev = Device()
    old = dev.read("config.json")
    new = raw_config(gpio={"relay": [20, 21]}, name=NAME)
    big = dict(new, sign={"keys": {"s%d" % i: hexlify(os.urandom(16)) for i in range(40)}})
    dev.push(big, 5)
    assert dev.outbox.replies == ["Info: config push 5 received, restarting to try it"]
    assert dev.read("config.json") == old  # unchanged until the trial succeeds
    assert dev.read(trial.NEW) == text(big) and dev.read(push.SEQ_FILE) == b"5"
    dev.start()  # the reset
    assert dev.cfg["gpio"]["relay"] == [20, 21] and dev.boot.trial_ms() == 30000
    dev.rx.connected()  # subscribed: a broker may grant what its ACL then starves
    dev.rx.heard(TOPIC.encode(), b'{"GP16": 1, "FROM": "garage-pico"}')  # not its own
    dev.rx.heard(b"home/pico/status", dev.outbox.last_sent)
    assert dev.outbox.replies == [] and trial.NEW in dev.files()
    dev.online()  # its own state came back: it can publish and receive
    assert dev.outbox.replies == ["Info: config push 5 confirmed"]
    dev.outbox.replies = []
    dev.write(trial.MARK, b'{"id": 6, "attempts": 0, "trial_s": 30}')
    dev.write(trial.NEW, text(big))
    dev.start()
    dev.rx.heard(TOPIC.encode(), dev.outbox.last_sent)  # the echo before the last SUBACK
    assert dev.outbox.replies == []
    dev.rx.connected()
    assert dev.outbox.replies == ["Info: config push 6 confirmed"]
    dev.outbox.replies = ["Info: config push 5 confirmed"]
    assert dev.outbox.replies == ["Info: config push 5 confirmed"]
    assert dev.read("config.json") == text(big)
    assert dev.files() == ["config.json", push.KEY_FILE, push.SEQ_FILE]
    dev.start()
    dev.online()
    assert dev.outbox.replies == [] and dev.cfg["gpio"]["relay"] == [20, 21]


def test_refusals_change_nothing():
    dev = Device()
    old = dev.read("config.json")
    dev.push(raw_config(), 9)
    dev.start()
    dev.online()
    cases = (
        (raw_config(), 9, {}, "push 9 is a replay: this device has accepted push 9"),
        (raw_config(), 8, {}, "replay"),
        (raw_config(), 10, {"to": "porch-pico"}, "sealed for another device"),
        (raw_config(), 11, {"topic": "home/porch"}, "sealed for another device"),
        (raw_config(), 12, {"key": b"\x09" * 32}, "not sealed with this device's key"),
        (raw_config(), 13, {"trial_s": 5}, "trial of 5 s"),
        (
            raw_config(gpio={"relay": [99]}, guard={"auth_failures": 0}),
            14,
            {},
            "gpio.relay: GP99 does not exist on the Pico W (GP0-GP22, GP26-GP28); "
            "guard.auth_failures: must be a whole number from 1 to 10",
        ),
        (
            raw_config(mqtt={"server": "h", "topic": TOPIC, "ssl": True, "ca_file": "ca.pem"}),
            15,
            {},
            "mqtt.ca_file: ca.pem is not on the device",
        ),
    )
    for raw, seq, kw, why in cases:
        dev.outbox.errors, dev.outbox.replies = [], []
        old = dev.read("config.json")
        dev.push(raw, seq, **kw)
        assert why in refused(dev), (why, dev.outbox.errors)
        assert dev.read("config.json") == old and dev.outbox.replies == []


def test_a_tampered_chunk_is_refused():
    dev = Device()
    parts = chunks(sealed(text(raw_config(name="x" * 600)), 3), 3)
    assert len(parts) >= 2
    bad = bytearray(parts[1])
    bad[-5] ^= 0x40
    dev.send([parts[0], bytes(bad)] + parts[2:])
    assert "this device's key" in refused(dev)
    assert push.SEQ_FILE not in dev.files()


def test_order_duplicates_gaps_and_garbage():
    dev = Device()
    parts = chunks(sealed(text(raw_config(name="y" * 2000)), 4), 4)
    dev.send([parts[0], parts[0], parts[1], parts[1]])  # QoS 1 delivers again: ignored
    dev.send(parts[3:])
    assert "chunk 2 of %d missing" % len(parts) in refused(dev)
    dev.send(parts[3:])  # the rest of a refused push: silent
    assert dev.outbox.errors == []
    for garbage in (
        b"",
        b"hello",
        b"1 0/0\n",
        b"x 0/1\nabc",
        b"1 2/1\nabc",
        b"2 0/1\n" + b"z" * (push.CHUNK + 1),
        b"7 1/3\nabc",
        b"8 0/1\nabc",
    ):
        dev.send([garbage])
        refused(dev)
    dev.rx.message(b"", 5000)
    assert "too large" in refused(dev)


def test_an_abandoned_push_is_dropped():
    dev = Device()
    parts = chunks(sealed(text(raw_config(name="z" * 900)), 4), 4)
    dev.send(parts[:2])
    assert trial.PART in dev.files()
    dev.now = push.ABANDON_MS - 1
    dev.rx.tick()
    assert dev.outbox.errors == []
    dev.now = push.ABANDON_MS + 1000
    dev.rx.tick()
    assert "push 4 abandoned: no chunk for 60 s" in refused(dev)
    assert trial.PART not in dev.files()


def test_without_a_key_it_does_not_listen_for_pushes():
    class Client:
        def __init__(self):
            self.topics = []

        async def subscribe(self, topic, qos):
            self.topics.append(topic)

    for key, want in ((None, []), (KEY, [TOPIC + "/config"])):
        dev = Device(key=key)
        client = Client()
        run_async(lambda: dev.rx.subscribe(client))
        assert client.topics == want


def test_the_trial_bound_rolls_back_and_says_why_at_the_next_boot():
    dev = Device()
    old = dev.read("config.json")
    dev.push(raw_config(wifi={"ssid": "sim", "password": "wrong-pw"}), 6)
    dev.start()
    assert dev.boot.trying and dev.cfg["wifi"]["password"] == "wrong-pw"
    dev.rx.failure = "connect failed (3): OSError('Wi-Fi join failed (status -3)',)"
    dev.boot.fail(dev.boot.trying, dev.rx.failure)  # what _watch_trial does at the bound
    assert dev.files() == ["config.json", trial.MARK, push.KEY_FILE, push.SEQ_FILE]
    dev.start()
    assert dev.cfg["wifi"]["password"] == "pw-one" and not dev.boot.trying
    dev.online()
    assert dev.outbox.errors == [
        (
            "push",
            "Error: config push 6 rolled back: connect failed "
            "(3): OSError('Wi-Fi join failed (status -3)',)",
        )
    ]
    assert dev.read("config.json") == old
    assert dev.files() == ["config.json", push.KEY_FILE, push.SEQ_FILE]
    dev.outbox.errors = []
    dev.push(raw_config(), 6)  # the rolled-back push replayed
    assert "replay" in refused(dev)


def test_a_second_boot_in_a_trial_rolls_back():
    dev = Device()
    dev.push(raw_config(gpio={"relay": [20]}), 7)
    dev.start()
    assert dev.cfg["gpio"]["relay"] == [20]
    dev.start()  # crashed, the watchdog, or a power cut before it reached the broker
    assert dev.cfg["gpio"]["relay"] == [16, 17]
    dev.online()
    assert dev.outbox.errors == [
        (
            "push",
            "Error: config push 7 rolled back: the device restarted before it reached the broker",
        )
    ]


def test_a_power_cut_at_any_step_leaves_one_complete_valid_config():
    """Each step's files as a power cut would leave them; every boot loads a valid config,
    the old or the new, and no trial outlives its files."""
    new = raw_config(gpio={"relay": [20]})
    steps = (
        {trial.PART: b"half a fi"},  # cut while receiving
        {push.SEQ_FILE: b"3", trial.PART: text(new)},  # after push.seq
        {push.SEQ_FILE: b"3", trial.NEW: text(new)},  # after the rename, before the marker
        {push.SEQ_FILE: b"3", trial.NEW: text(new), trial.MARK + ".tmp": b'{"id": 3'},
        {
            push.SEQ_FILE: b"3",
            trial.NEW: text(new),
            trial.MARK: b'{"id": 3, "attempts": 0, "trial_s": 30}',
        },  # before the reset
        {
            push.SEQ_FILE: b"3",
            trial.NEW: text(new),
            trial.MARK: b'{"id": 3, "attempts": 1, "trial_s": 30}',
        },  # during the trial
        {
            push.SEQ_FILE: b"3",
            "config.json": text(new),
            trial.MARK: b'{"id": 3, "attempts": 1, "trial_s": 30}',
        },  # confirmed, marker left
        {
            push.SEQ_FILE: b"3",
            trial.NEW: text(new),
            trial.MARK: b'{"id": 3, "attempts": 1, "trial_s": 30, "failed": "x"}',
        },  # rolling back
    )
    relays = ([16, 17], [16, 17], [16, 17], [16, 17], [20], [16, 17], [20], [16, 17])
    for files, want in zip(steps, relays):
        dev = Device()
        for name, data in files.items():
            dev.write(name, data)
        dev.start()
        assert dev.cfg["gpio"]["relay"] == want, (files, dev.cfg["gpio"]["relay"])
        dev.online()
        dev.start()
        assert trial.MARK not in dev.files() or dev.boot.trying is None
        assert trial.PART not in dev.files()
