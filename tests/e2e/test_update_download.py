# SPDX-License-Identifier: MIT
"""Firmware update downloads end to end: the PC's manifest and signature (tinyctrl_host.update,
a real P-256 key from `cryptography`), chunks published on <topic>/update through a loopback
mosquitto, the simulator's receiver writing its download slot. A signed newer image lands in
the slot byte for byte while a relay still moves; a tampered image, a wrong key and a replay
of the running version are refused with one line each and leave no slot; a device without
update.key does not listen at all."""

import os
import time

from cryptography.hazmat.primitives.asymmetric import ec
from simharness import TOPIC, Client, Sim, base_config, state, text, wait_until
from tinyctrl_host import update as host_update

from tinyctrl import __version__

NEWER = "%d.0.0" % (int(__version__.split(".")[0]) + 1)
IMAGE = os.urandom(96 * 1024)  # 128 chunks of 768 bytes
OWNER = ec.generate_private_key(ec.SECP256R1())


def device(services, key=OWNER):
    broker, ntp, ip = services
    cfg = base_config(broker.port, ntp.port, ip.port)
    if key:
        cfg["update"] = {"key": host_update.public_hex(key.public_key())}
    return Sim(cfg)


def slot(sim):
    path = os.path.join(sim.dir, "update.slot")
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return f.read()


def send_update(broker, uid, version=NEWER, image=IMAGE, key=OWNER, between=None, flip=None):
    """Sign and send an update; `flip`: the byte of the stream changed on the way."""
    sender = Client(broker.port, topic=TOPIC + "/update", client_id="owner-pc-%d" % uid)
    data = bytearray(host_update.stream(key, image, "UNIX_SIM", version))
    if flip is not None:
        data[flip] ^= 0x10
    parts = host_update.chunks(bytes(data), uid)
    for i, part in enumerate(parts):
        sender.send(part)
        if between and i == len(parts) // 2:
            between()
    sender.close()
    return len(parts)


def test_a_signed_update_lands_in_the_slot_while_relays_work(services, report):
    sim = device(services)
    client = Client(services[0].port)
    try:
        client.wait_for(state("GP16", 0), timeout=40)
        m = client.mark()

        halfway = []

        def relay_moves():
            mid = client.mark()
            client.send({"GP16": 1})
            client.wait_for(state("GP16", 1), since=mid, timeout=15)
            halfway.append(sim.heap())

        idle = sim.idle_heap()
        started = time.monotonic()
        count = send_update(services[0], 11, between=relay_moves)
        client.wait_for(text("Info: update 11 received and checked"), since=m, timeout=60)
        took = time.monotonic() - started
        client.wait_for(
            text("Info: update 11 to %s accepted, downloading %d bytes" % (NEWER, len(IMAGE))),
            since=m,
        )
        assert slot(sim) == IMAGE
        assert sim.pin(16) == 1
        report(
            "simulator update download: %d chunks, %d KB in %.1f s (%.0f KB/s); heap "
            "halfway %+d bytes over idle, %+d after it"
            % (
                count,
                len(IMAGE) // 1024,
                took,
                len(IMAGE) / 1024 / took,
                halfway[0] - idle,
                sim.idle_heap() - idle,
            )
        )
        sim.assert_alive()
    finally:
        client.close()
        sim.stop()


def test_refusals_are_one_line_and_leave_no_slot(services):
    sim = device(services)
    client = Client(services[0].port)
    try:
        client.wait_for(state("GP16", 0), timeout=40)
        stranger = ec.generate_private_key(ec.SECP256R1())
        for uid, kw, why in (
            (21, {"key": stranger}, "signature does not match update.key"),
            (22, {"version": __version__}, "is not newer than the running %s" % __version__),
        ):
            m = client.mark()
            send_update(services[0], uid, **kw)
            got = client.wait_for(text("Error: update refused: "), since=m, timeout=30)
            assert why in got.decode() and b"\n" not in got
            assert slot(sim) is None
        m = client.mark()
        send_update(services[0], 23, flip=50000)  # a chunk changed on the way
        got = client.wait_for(text("Error: update refused: "), since=m, timeout=60)
        assert b"update 23: the image does not match its manifest's SHA-256" in got
        assert slot(sim) is None
        time.sleep(1)
        assert sum(1 for _, p in client.messages[m:] if p.startswith(b"Error: update")) == 1
        sim.assert_alive()
    finally:
        client.close()
        sim.stop()


def test_a_device_without_update_key_does_not_listen(services):
    sim = device(services, key=None)
    client = Client(services[0].port)
    try:
        client.wait_for(state("GP16", 0), timeout=40)
        m = client.mark()
        send_update(services[0], 31, image=IMAGE[:4096])
        time.sleep(2)
        assert not [p for _, p in client.messages[m:] if b"update" in p]
        assert slot(sim) is None
        wait_until(lambda: sim.proc.poll() is None, 1, "the simulator running")
        sim.assert_alive()
    finally:
        client.close()
        sim.stop()
