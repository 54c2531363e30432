# SPDX-License-Identifier: MIT
"""The emulator harness's network guard, on plain CPython: no emulator boot, no namespace."""

import asyncio
import socket
import struct

import pytest

from emu.cyw43 import IsolatedCyw43439
from emu.image import DEFAULT_UF2
from emu.isolation import BROKER_ADDR, DnsStub, IsolatedNatBridge, Router, route
from emu.lab import Lab

LOCAL_BROKER = ("127.0.0.1", 41883)
ROUTES = {("tcp",) + BROKER_ADDR: LOCAL_BROKER}


def test_mapped_destination_goes_to_its_local_service():
    assert route(ROUTES, "tcp", *BROKER_ADDR) == LOCAL_BROKER


@pytest.mark.parametrize(
    "proto,ip,port",
    [
        ("tcp", "93.184.216.34", 443),  # anywhere on the internet
        ("tcp", BROKER_ADDR[0], 8883),  # the broker's address, another port
        ("udp", BROKER_ADDR[0], 1883),  # the broker's port, another protocol
        ("udp", "1.1.1.1", 53),  # rp2040py's own default DNS upstream
        ("udp", "224.0.0.251", 5353),  # mDNS, which the firmware sends on its own
    ],
)
def test_unknown_destinations_are_refused(proto, ip, port):
    assert route(ROUTES, proto, ip, port) is None


def test_a_route_to_a_non_loopback_address_is_refused():
    leaky = {("tcp",) + BROKER_ADDR: ("10.1.2.3", 1883)}
    assert route(leaky, "tcp", *BROKER_ADDR) is None


def test_router_remembers_what_it_refused():
    router = Router(ROUTES)
    assert router("tcp", "198.51.100.1", 80) is None
    assert router("tcp", *BROKER_ADDR) == LOCAL_BROKER
    assert router.refused == ["tcp 198.51.100.1:80"]


def attached_bridge(router):
    from rp2040py.external import attach_external_devices
    from rp2040py.rp2040 import RP2040

    chip = IsolatedCyw43439(router)
    attach_external_devices(RP2040(), chip)
    return chip.bus.nat_bridge


def test_the_wifi_chip_uses_the_isolated_bridge():
    assert isinstance(attached_bridge(Router({})), IsolatedNatBridge)


def test_bridge_refuses_unmapped_tcp_connect():
    bridge = attached_bridge(Router(ROUTES))
    with pytest.raises(ConnectionRefusedError):
        asyncio.run(bridge._connect("93.184.216.34", 443))


def test_bridge_drops_unmapped_udp():
    from rp2040py.external.cyw43 import nat, net

    router = Router({})
    bridge = attached_bridge(router)
    guest_mac = bytes([2, 0, 0, 0, 0, 2])
    dns_query = (
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"
    )
    udp = net.pack_udp(nat.GUEST_IP, bytes([8, 8, 8, 8]), 40000, 53, dns_query)
    ip = net.pack_ipv4(nat.GUEST_IP, bytes([8, 8, 8, 8]), net.IP_PROTO_UDP, udp)
    bridge.handle_outbound_ethernet_frame(
        net.pack_ethernet(nat.GATEWAY_MAC, guest_mac, net.ETHERTYPE_IPV4, ip)
    )
    assert router.refused == ["udp 8.8.8.8:53"]


def dns_question(name, qtype=1):
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return (
        struct.pack("!HHHHHH", 0xBEEF, 0x0100, 1, 0, 0, 0)
        + labels
        + b"\x00"
        + struct.pack("!HH", qtype, 1)
    )


def test_dns_stub_answers_known_names_and_nothing_else():
    stub = DnsStub({"broker.tinyctrl.test": "192.0.2.10"})
    try:
        known = stub.answer(dns_question("broker.tinyctrl.test"))
        assert struct.unpack_from("!H", known, 6)[0] == 1  # one answer
        assert known[-4:] == socket.inet_aton("192.0.2.10")
        unknown = stub.answer(dns_question("example.com"))
        assert struct.unpack_from("!H", unknown, 2)[0] & 0xF == 3  # NXDOMAIN
        assert struct.unpack_from("!H", unknown, 6)[0] == 0
    finally:
        stub.close()


def test_lab_refuses_to_start_outside_an_isolated_namespace():
    if [n for _, n in socket.if_nameindex()] == ["lo"]:
        pytest.skip("this process already is in a loopback-only namespace")
    with pytest.raises(RuntimeError, match="isolated"):
        Lab(DEFAULT_UF2, "/nonexistent")
