# SPDX-License-Identifier: MIT
# Receiving a firmware update (tinyctrl.download) into the simulator's download slot
# (ports/unix/download_slot.py), under CPython and MicroPython, in a folder of its own: a
# signed newer update lands in the slot byte for byte and is checked; every refusal (wrong
# key, older or equal version, a version that rolled back, another board, a tampered or
# truncated image, a missing chunk, garbage, an abandoned update, no update.key) is one line
# and leaves no slot behind; those refused on the first chunk never create one.
import os
import sys

from check import hexlify
from test_update import IMAGE, KEY_HEX, OTHER_KEY_HEX, SIGS, line

from tinyctrl import chunks, download, image_trial

sys.path.append(__file__.rsplit("/", 3)[0] + "/ports/unix")
import ecdsa_sim  # noqa: E402
from download_slot import DownloadSlot  # noqa: E402

SLOT = "update.slot"


class Hw:
    def __init__(self, folder, board="UNIX_SIM"):
        self.CONFIG_PATH = folder + "config.json"
        self.IMAGE_ID = "tinyctrl-image board=%s version=1.1.0" % board

    DownloadSlot = DownloadSlot

    @staticmethod
    def ecdsa_verify(key, digest, sig):
        return ecdsa_sim.verify(key, digest, sig)


class Outbox:
    def __init__(self):
        self.replies, self.errors = [], []

    def reply(self, line):
        self.replies.append(line)

    def error(self, line, kind="request"):
        self.errors.append((kind, line))


def stream(version="1.2.0", image=IMAGE):
    return line(version) + b"\n" + SIGS[version].encode() + b"\n" + image


def chunked(data, uid=7):
    size = download.CHUNK
    count = (len(data) + size - 1) // size
    return [
        b"%d %d/%d\n" % (uid, i, count) + data[i * size : (i + 1) * size] for i in range(count)
    ]


class Device:
    def __init__(self, key=KEY_HEX, board="UNIX_SIM", running="1.1.0"):
        self.dir = "/tmp/tinyctrl-download-" + hexlify(os.urandom(6)) + "/"
        os.mkdir(self.dir)
        cfg = {"mqtt": {"topic": "home/pico"}, "update": {"key": key}}
        self.now = 0
        self.outbox = Outbox()
        hw = Hw(self.dir, board)
        image = image_trial.ImageTrial(hw, self.outbox, self.dir, 0, "home/pico", running)
        self.rx = download.Receiver(cfg, hw, self.outbox, lambda: self.now, image, running)

    def send(self, messages):
        for m in messages:
            self.rx.message(m, 0)

    def slot(self):
        try:
            with open(self.dir + SLOT, "rb") as f:
                return f.read()
        except OSError:
            return None

    def refusals(self):
        assert all(kind == "update" for kind, _ in self.outbox.errors), self.outbox.errors
        return [text for _, text in self.outbox.errors]


def test_a_signed_newer_update_lands_in_the_slot_and_is_checked():
    dev = Device()
    assert dev.rx.enabled and dev.rx.topic == "home/pico/update"
    parts = chunked(stream())
    assert all(len(p) <= 1024 for p in parts)  # under the device's inbound limit
    dev.send(parts[:1])
    assert dev.outbox.replies == ["Info: update 7 to 1.2.0 accepted, downloading 1024 bytes"]
    dev.send(parts[1:] + parts[1:])  # delivered twice (QoS 1): taken once
    assert dev.refusals() == []
    assert dev.slot() == IMAGE
    assert dev.outbox.replies[-1] == "Info: update 7 received and checked"
    assert dev.rx.ready.version == "1.2.0"
    dev.send(chunked(stream("9.0.0"), 8))  # one at a time: this one waits for its switch
    assert dev.slot() == IMAGE and len(dev.outbox.replies) == 2


def test_refused_on_the_first_chunk_writes_nothing():
    for dev, why in (
        (Device(key=OTHER_KEY_HEX), "signature does not match update.key"),
        (
            Device(running="1.2.0"),
            "version 1.2.0 is not newer than the running 1.2.0 (replay or downgrade)",
        ),
        (
            Device(running="1.3.0"),
            "version 1.2.0 is not newer than the running 1.3.0 (replay or downgrade)",
        ),
        (Device(board="PICO_W_TINYCTRL"), "image is for UNIX_SIM, this is PICO_W_TINYCTRL"),
    ):
        dev.send(chunked(stream()))
        assert dev.refusals() == ["Error: update refused: " + why], dev.refusals()
        assert dev.slot() is None and dev.outbox.replies == [] and dev.rx.ready is None


def test_a_version_that_rolled_back_is_not_tried_again():
    dev = Device()
    with open(dev.dir + image_trial.FAILED, "w") as f:
        f.write("1.2.0\n")
    dev.send(chunked(stream()))
    assert dev.refusals() == [
        "Error: update refused: version 1.2.0: 1.2.0 rolled back on this device; build a newer one"
    ]
    assert dev.slot() is None
    dev.send(chunked(stream("9.0.0"), 8))
    assert dev.slot() == IMAGE and dev.rx.ready.version == "9.0.0"


def test_a_tampered_or_truncated_image_is_refused_and_the_slot_cleared():
    tampered = bytearray(IMAGE)
    tampered[900] ^= 1
    cases = (
        (bytes(tampered), "update 7: the image does not match its manifest's SHA-256"),
        (IMAGE[:-256], "update 7: 768 of its 1024 bytes came"),
        (IMAGE + b"x", "update 7: more than the 1024 bytes of its manifest"),
    )
    for image, why in cases:
        dev = Device()
        dev.send(chunked(stream(image=image)))
        assert dev.refusals() == ["Error: update refused: " + why], dev.refusals()
        assert dev.slot() is None and dev.rx.ready is None


def test_missing_chunks_garbage_and_floods_are_one_line_each():
    dev = Device()
    parts = chunked(stream())
    assert len(parts) == 2
    # a chunk of another count: one refusal, and the rest of update 7 is ignored
    dev.send([parts[0], b"7 2/3\n" + IMAGE[:10], parts[1]])
    assert dev.refusals() == ["Error: update refused: update 7: chunk 1 of 2 missing"]
    assert dev.slot() is None
    dev.outbox.errors = []
    dev.send([b"garbage", b"1 0/1", b"x\n" + b"y" * 100, b"5 3/2\nabc", b"6 0/99999\n"])
    assert dev.refusals() == ["Error: update refused: not an update chunk"] * 5
    dev.outbox.errors = []
    dev.send([b"9 1/2\n" + IMAGE[:10]])
    assert dev.refusals() == ["Error: update refused: chunk 1 of update 9 without its start"]
    dev.outbox.errors = []
    dev.rx.message(b"", 70000)
    assert dev.refusals() == ["Error: update refused: message too large (70000 bytes)"]
    dev.outbox.errors = []
    dev.send([b"10 0/2\n" + b"{not json}\n" + b"0" * 128 + b"\n"])
    assert dev.refusals() == ["Error: update refused: not an update (manifest is not JSON)"]


def test_an_abandoned_update_is_dropped():
    dev = Device()
    dev.send(chunked(stream())[:1])
    got = dev.slot()
    assert got and IMAGE.startswith(got) and len(got) < len(IMAGE)  # the first chunk's bytes
    dev.now = chunks.ABANDON_MS - 1
    dev.rx.tick()
    assert dev.refusals() == [] and dev.slot() is not None
    dev.now = chunks.ABANDON_MS + 1000
    dev.rx.tick()
    assert dev.refusals() == ["Error: update refused: update 7 abandoned: no chunk for 60 s"]
    assert dev.slot() is None


def test_without_update_key_nothing_is_taken():
    dev = Device(key="")
    assert not dev.rx.enabled
    dev.send(chunked(stream()))
    assert dev.refusals() == [] and dev.outbox.replies == [] and dev.slot() is None
