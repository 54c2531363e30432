# SPDX-License-Identifier: MIT
"""The Pico W's CYW43439 Wi-Fi chip: rp2040py's model with SDPCM credit granted as a real chip
does, an access point that can fail as real ones do, and traffic only through the isolated
bridge."""

import struct

from emu.isolation import IsolatedNatBridge
from rp2040py.external.cyw43 import Cyw43439, bus

# cyw43-driver's event numbers and statuses (src/cyw43_ll.h, src/cyw43_ctrl.c) that bus.py has no
# name for; the chip's firmware sends them as Broadcom's WLC_E_* events.
CYW43_EV_DEAUTH_IND = 6
WLC_E_STATUS_NO_NETWORKS = 3  # EV_SET_SSID status 3, reason 0: the join's scan found no such SSID
DEAUTH_REASON_AUTH_INVALID = 2  # 802.11 reason 2: previous authentication no longer valid
LINK_REASON_BEACON_LOSS = 1  # WLC_E_LINK_BCN_LOSS: the AP's beacons stopped
# A wrong passphrase. cyw43_ll.c's cyw43_ll_wifi_join() gives the chip the key in
# WLC_SET_WSEC_PMK (wsec_pmk_t: le16 length, le16 flags, the passphrase). The AP cannot check
# the MIC of our 4-way handshake message 2 and de-authenticates us: the chip's supplicant
# reports PSK_SUP waiting for message 3 (WLC_SUP_KEYXCHANGE_WAIT_M3), reason WLC_E_SUP_DEAUTH,
# which cyw43_ctrl.c turns into WIFI_JOIN_STATE_BADAUTH: status() -3 (STAT_WRONG_PASSWORD).
# Reason WLC_E_SUP_WPA_PSK_TMO (15) instead would make the driver rejoin, as at a cell's edge.
WLC_SET_WSEC_PMK = 268
WLC_SUP_KEYXCHANGE_WAIT_M3 = 8
WLC_E_SUP_DEAUTH = 14
# A join scans every channel for the SSID before it reports it absent (about 2 s on a CYW43439:
# 13 channels, active and passive dwell times); the simulator's NO_AP_MS is the same idea.
NO_AP_SCAN_S = 2


# Frames the emulated chip lets the driver send beyond the last one it has seen (SDPCM
# bus_data_credit). cyw43-driver takes a credit at most 20 ahead of its last one (cyw43_ll.c,
# sdpcm_process_rx_packet()); 16 covers a burst lwIP sends without reading (TCP_SND_BUF is
# 8 segments) so the driver does not stall, which would drop what arrives meanwhile.
SDPCM_CREDIT_WINDOW = 16


class SdpcmCreditBus(bus.GSPIBus):
    """rp2040py's CYW43439 bus, granting SDPCM credit from the driver's own sequence numbers.

    cyw43-driver numbers each frame it sends (8 bits) and may send while the chip's latest
    bus_data_credit differs from that number; it stalls while they are equal, and after 1 s
    gives up on the frame ("STALL(0;n-n): timeout", "send_ethernet failed: -110") and drops any
    data frame it reads while stalled (cyw43_sdpcm_send_common()). A real chip grants credit
    ahead of the frames it has received. bus.py instead adds one credit per frame it sends to
    the guest, so every frame that answers no guest frame (the NAT bridge's ACK of each
    segment, data from the broker, an event) moves the credit one further ahead; after 256 it
    wraps round to the driver's number. If that frame is the last one queued, every later
    send stalls and fails (a frame the chip never gets is never answered) until the broker
    happens to send something. The bench's emulated latency runs with Home Assistant
    discovery on hit this: the device's state message stopped mid-publish, mqtt_as
    gave up on the connection, and its reconnect stalled too."""

    def __init__(self):
        self._guest_next_seq = 0  # before super().__init__(), which sets the credit
        super().__init__()

    @property
    def _bus_data_credit(self):
        """What bus.py's frame builders put in each header: a window past the guest's frames."""
        return (self._guest_next_seq + SDPCM_CREDIT_WINDOW) & 0xFF

    @_bus_data_credit.setter
    def _bus_data_credit(self, _count):
        pass  # bus.py's count of frames sent to the guest (see the class docstring)

    def _write_wlan(self, data):
        # Byte 4 of a valid SDPCM header (size, then its complement) is the frame's number.
        if len(data) >= bus.SDPCM_HEADER_LEN:
            size, size_com = struct.unpack_from("<HH", data)
            if size == ~size_com & 0xFFFF:
                self._guest_next_seq = (data[4] + 1) & 0xFF
        super()._write_wlan(data)

    def power_off(self):
        super().power_off()
        self._guest_next_seq = 0  # the driver starts counting again after WL_ON


class AccessPointBus(SdpcmCreditBus):
    """rp2040py's CYW43439 bus with an access point that can vanish or de-authenticate us.

    Each fault sends the async events a real CYW43439 sends, so the guest's own cyw43-driver
    (`cyw43_cb_process_async_event()` in src/cyw43_ctrl.c) moves its join state the way it does
    on a board:

      fault            events, in order                          driver state, status()
      AP gone          EV_LINK flags 0 (beacon loss)             join ACTIVE, link down: 1
        its joins      EV_SET_SSID status 3 reason 0, after the  WIFI_JOIN_STATE_NONET: -2
                       join scan (NO_AP_SCAN_S)                  (STAT_NO_AP_FOUND)
      de-auth          EV_DEAUTH_IND reason 2, EV_LINK flags 0   pend_disassoc: the driver sends
                                                                 WLC_DISASSOC, the chip answers
                                                                 EV_DISASSOC: join state 0: 0
        its joins      EV_AUTH success, then the same de-auth    as above: 0 (STAT_IDLE)
      AP back          joins get bus.py's scripted success       link up, DHCP: 3 (STAT_GOT_IP)
      wrong passphrase EV_AUTH, EV_ASSOC, EV_SET_SSID success, then  WIFI_JOIN_STATE_BADAUTH: -3
                       EV_PSK_SUP status 8 reason 14 (no link)   (STAT_WRONG_PASSWORD)

    The passphrase is checked only when `passphrase` is set (None: the AP takes any key, and no
    key, as bus.py's scripted AP does). Faults are set from the emulator's thread
    (`PicoW.set_ap()`)."""

    def __init__(self):
        super().__init__()
        self.ap = "up"  # "up", "gone" or "deauth"
        self.passphrase = None  # what the AP asks for (str), or None: any
        self._join_key = None  # the passphrase of the join under way (WLC_SET_WSEC_PMK)
        self.refused_joins = 0
        self._alarm = None

    def attach_gpio(self, rp2040, **pins):
        super().attach_gpio(rp2040, **pins)
        self._clock = rp2040.clock

    def _event(self, event_type, status=0, reason=0, flags=0):
        self.queue_rx_packet(
            self._build_async_event(event_type, status, reason=reason, flags=flags)
        )

    def _deauthenticated(self):
        self._event(CYW43_EV_DEAUTH_IND, reason=DEAUTH_REASON_AUTH_INVALID)
        self._event(bus.CYW43_EV_LINK)  # flags bit 0 clear: link down

    def set_ap(self, ap):
        """The access point goes ("gone"), de-authenticates us and keeps doing so ("deauth"),
        or is back ("up"); an associated station learns of it as it would on a board."""
        was, self.ap = self.ap, ap
        if was == "up" and ap == "gone":
            self._event(bus.CYW43_EV_LINK, reason=LINK_REASON_BEACON_LOSS)
        elif was == "up" and ap == "deauth":
            self._deauthenticated()

    def _write_wlan(self, data):
        # An ioctl's command is the first word after the SDPCM header (bus.py's _write_wlan()).
        head = bus.SDPCM_HEADER_LEN
        if len(data) >= head + bus.IOCTL_HEADER_LEN + 4 and data[5] & 0x0F == bus.CONTROL_HEADER:
            if int.from_bytes(data[head : head + 4], "little") == WLC_SET_WSEC_PMK:
                pmk = data[head + bus.IOCTL_HEADER_LEN :]
                self._join_key = bytes(pmk[4 : 4 + int.from_bytes(pmk[0:2], "little")])
        super()._write_wlan(data)

    def _queue_join_events(self):
        key, self._join_key = self._join_key, None  # an open join sends no key
        if self.ap == "up" and self.passphrase is not None and key != self.passphrase.encode():
            self.refused_joins += 1
            self._event(bus.CYW43_EV_AUTH)
            self._event(bus.CYW43_EV_ASSOC)
            self._event(bus.CYW43_EV_SET_SSID)
            self._event(bus.CYW43_EV_PSK_SUP, WLC_SUP_KEYXCHANGE_WAIT_M3, reason=WLC_E_SUP_DEAUTH)
        elif self.ap == "up":
            super()._queue_join_events()
        elif self.ap == "deauth":
            self._event(bus.CYW43_EV_AUTH)
            self._deauthenticated()
        else:
            if self._alarm is None:
                self._alarm = self._clock.create_alarm(self._no_network)
            self._alarm.schedule(NO_AP_SCAN_S * 1_000_000_000)

    def _no_network(self):
        self._event(bus.CYW43_EV_SET_SSID, status=WLC_E_STATUS_NO_NETWORKS, reason=0)


class IsolatedCyw43439(Cyw43439):
    """The Pico W Wi-Fi chip, with its traffic going through `router` and never to the real
    network."""

    def __init__(self, router, on_udp_reply=None):
        super().__init__()
        self.bus = AccessPointBus()
        self._router = router
        self._on_udp_reply = on_udp_reply

    def attach(self, rp2040):
        super().attach(rp2040)
        # Replaced before the guest runs a single instruction: the stock bridge never sees a frame.
        self.bus.nat_bridge = IsolatedNatBridge(
            rp2040, self.bus.queue_rx_ethernet_frame, self._router, self._on_udp_reply
        )
