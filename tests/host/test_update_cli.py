# SPDX-License-Identifier: MIT
"""`tinyctrl update CONFIG UF2` as a user runs it, against a stand-in device on a loopback
mosquitto that answers in the device's words (checked against download.py and image_trial.py):
no update key, a UF2 that is no update, each one line and exit 2; an update the device
confirms (exit 0, its phase lines, progress, paced so the device sees no broker backlog); a
refusal of chunk 0 (exit 1, nothing sent after it) and one halfway (sending stops); a rollback
(exit 1 with the device's reason); silence (exit 3 within --timeout)."""

import json
import os
import queue
import re
import threading
import time

import paho.mqtt.client as mqtt
import pytest
import uf2s
from hostcli import Terminal, one_line_error, run
from services import Mosquitto, free_port
from simharness import TOPIC, base_config
from tinyctrl_host import push
from tinyctrl_host import update as host_update

from tinyctrl import download

MODULES = os.path.join(os.path.dirname(__file__), "..", "..", "modules", "tinyctrl")
VERSION = "9.0.0"
RUNNING = "1.1.0"
# The device's lines as modules/tinyctrl words them
# (test_the_stand_in_words_its_lines_as_the_device_does).
ACCEPTED = "Info: update %d to %s accepted, downloading %d bytes"
RECEIVED = "Info: update %d received and checked"
RESTARTING = "Info: update %d: restarting to switch to %s"
CONFIRMED = "Info: update %s confirmed: running %s"
ROLLED_BACK = "Error: update %s rolled back to %s: %s did not confirm within %d s (%s)"
NOT_NEWER = "version %s is not newer than the running %s (replay or downgrade)"
MISSING = "update %d: chunk %d of %d missing"
ABANDONED = "update %d abandoned: no chunk for %d s"


def device_source(name):
    with open(os.path.join(MODULES, name)) as f:
        return f.read()


def mqtt_constant(name):
    return int(re.search(r"^%s = (\d+)" % name, device_source("mqtt.py"), re.M).group(1))


def uf2(path, pages):
    """A build's UF2 of an image `pages` flash pages long naming VERSION; its path and the
    image's size."""
    image = uf2s.app_image(VERSION, pages=pages)
    path.write_bytes(uf2s.uf2(uf2s.pages_at(uf2s.APP, image)))
    return str(path), len(image)


def chunk_count(image_bytes):
    """How many messages an update of an image of `image_bytes` is: head and image."""
    line = host_update.manifest_line(bytes(image_bytes), "PICO_W_TINYCTRL", VERSION)
    return -(-(len(line) + 130 + image_bytes) // download.CHUNK)


def write_config(folder, port, key=True):
    cfg = base_config(port, 123, 80)
    path = os.path.join(str(folder), "garage.json")
    if key:
        cfg["update"] = {"key": host_update.new_key(path)}  # the private key beside the config
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


@pytest.fixture(scope="module")
def broker():
    with Mosquitto() as b:
        yield b


class StandIn:
    """The device as the broker sees it: reads the chunks on <topic>/update one at a time,
    each taking the board's time to write (`write_s`), records them (when it began and ended
    reading one, update id, index, count), and publishes on its topic, in order, the
    (delay, line) pairs `answer(uid, index, count)` gives for each."""

    def __init__(self, port, answer=lambda uid, index, count: (), write_s=0.007):
        # write_s: 7 ms a chunk, the board's average (measured on the emulated board)
        self.chunks = []
        self.write_s = write_s
        self.answer = answer
        self.lines = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="stand-in")
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.subscribe(TOPIC + "/update", qos=1)
        self.client.loop_start()
        assert subscribed.wait(10), "the stand-in could not subscribe"
        threading.Thread(target=self._publish, daemon=True).start()

    def _on_message(self, client, userdata, msg):
        began = time.monotonic()
        uid, part = msg.payload.split(b"\n", 1)[0].split()
        index, count = (int(n) for n in part.split(b"/"))
        time.sleep(self.write_s)
        self.chunks.append((began, time.monotonic(), int(uid), index, count))
        for said in self.answer(int(uid), index, count):
            self.lines.put(said)

    def _publish(self):
        while True:
            delay, line = self.lines.get()
            time.sleep(delay)
            self.client.publish(TOPIC, line, qos=1)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def installs(size, outcome):
    """A device that takes an update of `size` bytes and, after its restart, says
    `outcome(uid)`."""

    def answer(uid, index, count):
        if index == 0:
            return [(0, ACCEPTED % (uid, VERSION, size))]
        if index == count - 1:
            return [(0, RECEIVED % uid), (0, RESTARTING % (uid, VERSION)), (0.3, outcome(uid))]
        return []

    return answer


def test_the_stand_in_words_its_lines_as_the_device_does():
    for module, lines in (
        ("download.py", (ACCEPTED, RECEIVED, ABANDONED)),
        ("image_trial.py", (RESTARTING, CONFIRMED, ROLLED_BACK)),
        ("update.py", (NOT_NEWER,)),
        ("chunks.py", (MISSING.replace("update", "%s", 1),)),
    ):
        source = device_source(module)
        for line in lines:
            assert '"%s"' % line in source, (module, line)


def test_without_an_update_key_it_says_how_to_make_one(tmp_path):
    path = write_config(tmp_path, free_port(), key=False)
    firmware, _ = uf2(tmp_path / "fw.uf2", 4)
    done = run("update", path, firmware)
    assert done.returncode == 2
    line = one_line_error(done)
    assert "garage.update.pem: no update key" in line and "tinyctrl key new --update" in line


def test_a_uf2_that_is_no_update_is_one_line(tmp_path):
    path = write_config(tmp_path, free_port())  # no broker there: refused before it is tried
    not_uf2 = tmp_path / "notes.uf2"
    not_uf2.write_text("hello")
    other, _ = uf2(tmp_path / "other.uf2", 4)
    with open(other, "rb") as f:
        data = f.read().replace(b"tinyctrl-image", b"tinyctrl-IMAGE")
    with open(other, "wb") as f:
        f.write(data)
    for firmware, why in (
        (tmp_path / "none.uf2", "none.uf2: no such file"),
        (not_uf2, "notes.uf2: not a UF2 firmware file"),
        (other, "other.uf2: not a tinyctrl image"),
    ):
        done = run("update", path, firmware)
        assert done.returncode == 2 and why in one_line_error(done), (why, done.stderr)


def test_an_update_the_device_confirms(broker, tmp_path):
    path = write_config(tmp_path, broker.port)
    firmware, size = uf2(tmp_path / "fw.uf2", 120)  # 30 KB: chunk 0, then four windows
    confirms = installs(size, lambda uid: CONFIRMED % (uid, VERSION))

    def answer(uid, index, count):
        stale = [(0, download.REFUSED + ABANDONED % (uid - 1, 60))] if index == 0 else []
        return stale + confirms(uid, index, count)

    device = StandIn(broker.port, answer)
    try:
        done = run("update", path, firmware, "--timeout", 10)
    finally:
        device.close()
    assert done.returncode == 0, done.stderr
    uid = device.chunks[0][2]
    assert done.stdout.splitlines() == [
        "device: update %d to %s accepted, downloading %d bytes" % (uid, VERSION, size),
        "device: update %d received and checked" % uid,
        "device: update %d: restarting to switch to %s" % (uid, VERSION),
        "device: update %d confirmed: running %s" % (uid, VERSION),
        "update %d: the device runs %s" % (uid, VERSION),
    ]
    shown = [
        re.fullmatch(r"sending 9\.0\.0 \(30 KB\) (\d+)%", x) for x in done.stderr.splitlines()
    ]
    assert all(shown) and [int(m.group(1)) // 25 for m in shown] == [1, 2, 3, 4], done.stderr
    count = chunk_count(size)
    assert [(u, i, n) for _, _, u, i, n in device.chunks] == [
        (uid, i, count) for i in range(count)
    ]
    # As the device counts a backlog: messages read each after less than BACKLOG_IDLE_MS idle.
    backlog, idle_s = mqtt_constant("BACKLOG"), mqtt_constant("BACKLOG_IDLE_MS") / 1000
    in_a_row = longest = 1
    for (_, ended, *_), (began, *_) in zip(device.chunks, device.chunks[1:]):
        in_a_row = in_a_row + 1 if began - ended < idle_s else 1
        longest = max(longest, in_a_row)
    assert longest < backlog and push.WINDOW < backlog, longest


def test_progress_on_a_terminal_is_one_updating_line(broker, tmp_path):
    path = write_config(tmp_path, broker.port)
    firmware, size = uf2(tmp_path / "fw.uf2", 120)
    device = StandIn(broker.port, installs(size, lambda uid: CONFIRMED % (uid, VERSION)))
    try:
        term = Terminal("update", path, firmware, "--timeout", 10)
        assert term.finish() == 0, term.transcript
    finally:
        device.close()
    shown = term.transcript.decode()
    bar = shown[shown.index("\rsending") : shown.index("100%") + 4]
    assert bar.count("\rsending") == 4 and "\n" not in bar, shown


def test_a_refusal_of_chunk_0_ends_it_at_once(broker, tmp_path):
    path = write_config(tmp_path, broker.port)
    firmware, size = uf2(tmp_path / "fw.uf2", 200)  # 67 chunks
    refusal = download.REFUSED + NOT_NEWER % (VERSION, VERSION)
    device = StandIn(broker.port, lambda uid, index, count: [(0, refusal)] if index == 0 else [])
    try:
        done = run("update", path, firmware, "--timeout", 10)
        time.sleep(0.5)  # anything sent after chunk 0 would have come by now
    finally:
        device.close()
    assert done.returncode == 1
    assert one_line_error(done) == "tinyctrl: " + refusal[len("Error: ") :]
    assert [i for *_, i, _ in device.chunks] == [0] and chunk_count(size) > push.WINDOW


def test_a_refusal_halfway_stops_the_sending(broker, tmp_path):
    path = write_config(tmp_path, broker.port)
    firmware, size = uf2(tmp_path / "fw.uf2", 400)  # 134 chunks
    count = chunk_count(size)

    def answer(uid, index, count):
        if index == 0:
            return [(0, ACCEPTED % (uid, VERSION, size))]
        if index == 25:  # as if chunk 24 had been lost
            return [(0, download.REFUSED + MISSING % (uid, 24, count))]
        return []

    device = StandIn(broker.port, answer)
    try:
        done = run("update", path, firmware, "--timeout", 10)
        time.sleep(0.5)
    finally:
        device.close()
    assert done.returncode == 1
    uid = device.chunks[0][2]
    assert done.stderr.splitlines()[-1] == "tinyctrl: update refused: " + MISSING % (
        uid,
        24,
        count,
    )
    assert 25 < len(device.chunks) <= 25 + 2 * push.WINDOW < count


def test_a_rollback_is_refused_with_the_device_reason(broker, tmp_path):
    path = write_config(tmp_path, broker.port)
    firmware, size = uf2(tmp_path / "fw.uf2", 8)
    why = "no connection to the broker"
    device = StandIn(
        broker.port, installs(size, lambda uid: ROLLED_BACK % (uid, RUNNING, VERSION, 180, why))
    )
    try:
        done = run("update", path, firmware, "--timeout", 10)
    finally:
        device.close()
    assert done.returncode == 1
    uid = device.chunks[0][2]
    assert done.stdout.splitlines()[-1] == "device: update %d: restarting to switch to %s" % (
        uid,
        VERSION,
    )
    assert done.stderr.splitlines()[-1] == (
        "tinyctrl: update %d rolled back to %s: %s did not confirm within 180 s (%s)"
        % (uid, RUNNING, VERSION, why)
    )
    assert "Traceback" not in done.stderr


def test_silence_is_no_answer_within_the_timeout(broker, tmp_path):
    path = write_config(tmp_path, broker.port)
    firmware, _ = uf2(tmp_path / "fw.uf2", 200)
    device = StandIn(broker.port)  # subscribed, never answers
    try:
        started = time.monotonic()
        done = run("update", path, firmware, "--timeout", 2)
        took = time.monotonic() - started
    finally:
        device.close()
    assert done.returncode == 3
    assert one_line_error(done) == (
        "tinyctrl: no answer from garage-pico within 2 s (is it online, with update.key in the "
        "config it runs?)"
    )
    assert 2 <= took < 10, took
    assert [i for *_, i, _ in device.chunks] == [0]
