# SPDX-License-Identifier: MIT
"""Behaviour (the timings are figures of ./build.sh bench): a change goes out at once,
what comes while a publish is in flight goes out combined (Action E), and a bouncing contact
gives one change. The real controller on the simulator, a loopback mosquitto, and a loopback
proxy that holds the device's traffic to keep a publish in flight."""

import time

import pytest
from faults import DropProxy
from simharness import Client, Sim, base_config, state

IN_FLIGHT_S = 1  # well within mqtt_as's response time (10 s) and the keepalive (10 s)


@pytest.fixture(scope="module")
def rig(services):
    broker, ntp, ip = services
    proxy = DropProxy(broker.port)
    client = Client(broker.port)
    mark = client.mark()
    sim = Sim(base_config(proxy.port, ntp.port, ip.port))
    client.wait_for(state("GP0", 0), since=mark, timeout=40)
    yield sim, client, proxy
    client.close()
    sim.stop()
    proxy.close()


def device_states(client, since):
    """The device's state messages (not NOTIFY) since `since`, without FROM."""
    return [
        dict((k, v) for k, v in obj.items() if k != "FROM")
        for obj in client.device_json(since)
        if "NOTIFY" not in obj
    ]


def test_changes_while_a_publish_is_in_flight_go_out_combined(rig):
    sim, client, proxy = rig
    time.sleep(0.5)  # the full list sent on connect has had its PUBACK: nothing in flight
    m = client.mark()
    proxy.drop()
    try:
        sim.contact(0, 1)  # published at once, and held by the proxy: in flight
        time.sleep(IN_FLIGHT_S / 2)
        sim.contact(1, 1)
        sim.contact(2, 1)
        time.sleep(IN_FLIGHT_S / 2)
        sim.wait_pin(0, 0)  # the simulator is alive (no output changes meanwhile)
    finally:
        proxy.resume()
    client.wait_for(lambda p: b"NOTIFY" in p and b'"GP1"' in p, since=m)
    got = device_states(client, m)
    assert got[0] == {"GP0": 1}, got
    assert {"GP1": 1, "GP2": 1} in got, got  # one message for both
    assert not [s for s in got if ("GP1" in s) != ("GP2" in s)], got
    notify = [obj["NOTIFY"] for obj in client.device_json(m) if "NOTIFY" in obj]
    assert notify == [{"GP0": 1, "GP1": 1}], notify  # GP2 is not in gpio.notify
    for pin in (0, 1, 2):
        sim.contact(pin, 0)
    client.wait_for(state("GP2", 0), since=m)
    sim.assert_alive()


def test_bouncing_contact_gives_one_change_and_ends_right(rig):
    sim, client, _ = rig
    time.sleep(0.3)
    m = client.mark()
    sim.send("GP3=1\nGP3=0\nGP3=1\nGP3=0\nGP3=1")  # one write: edges far closer than the debounce
    client.wait_for(state("GP3", 1), since=m)
    time.sleep(0.5)
    got = [s["GP3"] for s in device_states(client, m) if "GP3" in s]
    assert got == [1], got
    m = client.mark()
    sim.contact(3, 0)
    client.wait_for(state("GP3", 0), since=m)


def test_change_and_change_back_after_the_debounce_gives_both(rig):
    sim, client, _ = rig
    time.sleep(0.3)
    m = client.mark()
    sim.contact(1, 1)
    client.wait_for(state("GP1", 1), since=m)
    sim.contact(1, 0)
    client.wait_for(state("GP1", 0), since=m)
    got = [s["GP1"] for s in device_states(client, m) if "GP1" in s]
    assert got == [1, 0], got
    client.wait_for(lambda p: b'"NOTIFY": {"GP1": 0}' in p, since=m)
    notify = [obj["NOTIFY"] for obj in client.device_json(m) if "NOTIFY" in obj]
    assert notify in ([{"GP1": 1}, {"GP1": 0}], [{"GP1": 0}]), notify
