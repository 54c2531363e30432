# SPDX-License-Identifier: MIT
"""The emulated access point's faults (emu.cyw43.AccessPointBus,
emu.isolation.IsolatedNatBridge) on plain CPython: the events each fault queues, decoded as
cyw43-driver's cyw43_ll_parse_async_event() reads them, the refusal of a wrong passphrase, and
the firewall's drop and release. No emulator boot, no namespace."""

import struct

import pytest
from emu.cyw43 import (
    CYW43_EV_DEAUTH_IND,
    LINK_REASON_BEACON_LOSS,
    NO_AP_SCAN_S,
    WLC_E_SUP_DEAUTH,
    WLC_SET_WSEC_PMK,
    WLC_SUP_KEYXCHANGE_WAIT_M3,
    AccessPointBus,
)
from emu.isolation import IsolatedNatBridge
from rp2040py.external.cyw43 import bus, nat, net

# Offset of the event core in an ASYNCEVENT_HEADER packet: SDPCM header, BDC header, Ethernet
# header, bcmeth header; then 2 reserved bytes, flags, event type, status, reason (big-endian).
EVENT_AT = bus.SDPCM_HEADER_LEN + 4 + 14 + 10
LINK_DOWN = (bus.CYW43_EV_LINK, 0, 0)  # (event, status, flags)


def decode(packet):
    flags, event, status, reason = struct.unpack_from(">HIII", packet, EVENT_AT + 2)
    return event, status, reason, flags


class FakeClock:
    def __init__(self):
        self.alarms = []

    def create_alarm(self, callback):
        clock = self

        class Alarm:
            def schedule(self, nanos):
                clock.alarms.append((nanos, callback))

        return Alarm()


@pytest.fixture
def chip():
    ap = AccessPointBus()
    ap.sent = []
    ap.queue_rx_packet = lambda packet: ap.sent.append(decode(packet))
    ap._clock = FakeClock()
    return ap


def test_ap_up_joins_as_rp2040py_scripts_it(chip):
    chip._queue_join_events()
    assert chip.sent[-1] == (bus.CYW43_EV_LINK, 0, 0, 1)  # link up ends the join


def test_ap_gone_is_a_lost_link_then_no_network_after_the_join_scan(chip):
    chip.set_ap("gone")
    assert chip.sent == [(bus.CYW43_EV_LINK, 0, LINK_REASON_BEACON_LOSS, 0)]
    chip.sent.clear()
    chip._queue_join_events()
    assert chip.sent == []  # the scan takes its time
    [(nanos, scan_done)] = chip._clock.alarms
    assert nanos == NO_AP_SCAN_S * 1_000_000_000
    scan_done()
    # cyw43_ctrl.c: SET_SSID status 3 reason 0 -> WIFI_JOIN_STATE_NONET (STAT_NO_AP_FOUND)
    assert chip.sent == [(bus.CYW43_EV_SET_SSID, 3, 0, 0)]


def test_deauth_makes_the_driver_disassociate_and_joins_are_deauthenticated(chip):
    chip.set_ap("deauth")
    # cyw43_ctrl.c: DEAUTH_IND status 0 reason 2 -> pend_disassoc (WLC_DISASSOC -> EV_DISASSOC)
    assert chip.sent == [(CYW43_EV_DEAUTH_IND, 0, 2, 0), (bus.CYW43_EV_LINK, 0, 0, 0)]
    chip.sent.clear()
    chip._queue_join_events()
    assert chip.sent == [
        (bus.CYW43_EV_AUTH, 0, 0, 0),
        (CYW43_EV_DEAUTH_IND, 0, 2, 0),
        (bus.CYW43_EV_LINK, 0, 0, 0),
    ]


def test_ap_back_joins_again(chip):
    chip.set_ap("gone")
    chip.set_ap("up")
    chip.sent.clear()
    chip._queue_join_events()
    assert (bus.CYW43_EV_LINK, 0, 0, 1) in chip.sent and not chip._clock.alarms


def ioctl(seq, cmd, payload=b""):
    """An SDPCM control frame as cyw43_ll.c's cyw43_send_ioctl() sends it."""
    size = bus.SDPCM_HEADER_LEN + bus.IOCTL_HEADER_LEN + len(payload)
    sdpcm = struct.pack(
        "<HHBBBBBBH", size, ~size & 0xFFFF, seq, bus.CONTROL_HEADER, 0, 12, 0, 0, 0
    )
    return sdpcm + struct.pack("<IIII", cmd, len(payload), (seq + 1) << 16, 0) + payload


def join(chip, passphrase):
    """cyw43_ll_wifi_join(): the key (wsec_pmk_t, WPA2) unless open, then WLC_SET_SSID."""
    events = []
    chip.queue_rx_packet = lambda packet: (
        packet[5] & 0x0F == bus.ASYNCEVENT_HEADER and events.append(decode(packet))
    )
    if passphrase is not None:
        key = passphrase.encode()
        chip._write_wlan(ioctl(1, WLC_SET_WSEC_PMK, struct.pack("<HH64s", len(key), 1, key)))
    chip._write_wlan(ioctl(2, bus.WLC_SET_SSID, b"\0" * 36))
    return events


BADAUTH = [
    (bus.CYW43_EV_AUTH, 0, 0, 0),
    (bus.CYW43_EV_ASSOC, 0, 0, 0),
    (bus.CYW43_EV_SET_SSID, 0, 0, 0),
    # cyw43_ctrl.c: PSK_SUP, not KEYED, reason not the M1/M3/G1 timeout -> BADAUTH (status -3)
    (bus.CYW43_EV_PSK_SUP, WLC_SUP_KEYXCHANGE_WAIT_M3, WLC_E_SUP_DEAUTH, 0),
]


def test_a_wrong_passphrase_or_none_is_refused_as_the_driver_reads_bad_auth(chip):
    chip.passphrase = "wifi-secret-pw"
    assert join(chip, "not-the-wifi-pw") == BADAUTH
    assert join(chip, None) == BADAUTH  # an open join to a WPA2 AP
    assert chip.refused_joins == 2
    joined = join(chip, "wifi-secret-pw")
    assert joined[-1] == (bus.CYW43_EV_LINK, 0, 0, 1) and chip.refused_joins == 2


def test_without_a_passphrase_the_ap_takes_any_key(chip):
    assert join(chip, "anything")[-1] == (bus.CYW43_EV_LINK, 0, 0, 1)
    assert join(chip, None)[-1] == (bus.CYW43_EV_LINK, 0, 0, 1)


def guest_syn():
    tcp = net.pack_tcp(
        bytes(nat.GUEST_IP), bytes([192, 0, 2, 10]), 50000, 1883, 1, 0, net.TCP_SYN, 1024
    )
    packet = net.pack_ipv4(bytes(nat.GUEST_IP), bytes([192, 0, 2, 10]), net.IP_PROTO_TCP, tcp)
    return net.pack_ethernet(
        nat.GATEWAY_MAC, b"\x00\x10\x18\x00\x00\x02", net.ETHERTYPE_IPV4, packet
    )


def test_firewall_drops_the_guests_traffic_and_holds_the_far_sides():
    to_guest, connects = [], []

    class Rp2040:
        def schedule_threadsafe(self, coro):
            connects.append(coro)
            coro.close()

    bridge = IsolatedNatBridge(Rp2040(), to_guest.append, lambda *a: ("127.0.0.1", 1))
    bridge.set_firewall(True)
    bridge.handle_outbound_ethernet_frame(guest_syn())
    assert connects == []  # the SYN went nowhere
    bridge._to_guest(b"segment from the broker")
    assert to_guest == []
    bridge.set_firewall(False)
    assert to_guest == [b"segment from the broker"]
    bridge.handle_outbound_ethernet_frame(guest_syn())
    assert len(connects) == 1
