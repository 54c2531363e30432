# SPDX-License-Identifier: MIT
# Simulated Wi-Fi for the unix port, modelled on the Pico W's CYW43 driver.
#
# The simulator's "WIFI=0" takes the access point away (a router power cut, or a de-auth
# flood); "WIFI=1" brings it back. The station then behaves as cyw43-driver
# (src/cyw43_ctrl.c, cyw43_wifi_link_status and _cyw43_process_async_event) and
# MicroPython's extmod/network_cyw43.c (status() is cyw43_tcpip_link_status) report it:
#
#   driver event / state                      status()            isconnected()
#   connect(): join started (JOIN_STATE_ACTIVE) STAT_CONNECTING (1)  False
#   join done, DHCP done (LINK up, address)   STAT_GOT_IP (3)     True
#   SET_SSID status 3 reason 0: no AP found   STAT_NO_AP_FOUND (-2) False
#     (the join scan found no such SSID; it ends the attempt)
#   EV_LINK down (AP gone, beacons lost)      STAT_CONNECTING (1)  False
#     (join state stays ACTIVE until the host calls disconnect(), as in the driver)
#   EV_DISASSOC (de-auth), disconnect()       STAT_IDLE (0)       False
#     (a de-auth, EV_DEAUTH_IND reason 2, makes the driver send WLC_DISASSOC; the chip answers
#     EV_DISASSOC. tests/support/emu/cyw43.py's AccessPointBus sends these to the real driver.)
#
# The access point's password is TINYCTRL_SIM_WIFI_PASSWORD when that is set: a join with
# another key ends as the driver ends it, STAT_WRONG_PASSWORD (CYW43_LINK_BADAUTH) after JOIN_MS.
#
# Times are the model's, not measurements of a chip: JOIN_MS from connect() to an address
# when the AP is there, NO_AP_MS until a join with no AP fails.
import os
import time

STA_IF = 0
STAT_IDLE = 0  # CYW43_LINK_DOWN
STAT_CONNECTING = 1  # CYW43_LINK_JOIN
STAT_NOIP = 2  # CYW43_LINK_NOIP: joined, no address yet (no constant in MicroPython)
STAT_GOT_IP = 3  # CYW43_LINK_UP
STAT_CONNECT_FAIL = -1  # CYW43_LINK_FAIL
STAT_NO_AP_FOUND = -2  # CYW43_LINK_NONET
STAT_WRONG_PASSWORD = -3  # CYW43_LINK_BADAUTH

JOIN_MS = 1000
NO_AP_MS = 3000

_ap = [True]  # is the access point there?
_ap_password = os.getenv("TINYCTRL_SIM_WIFI_PASSWORD")  # None: any key joins
_stations = []


def set_link(up):
    """The access point appears or disappears; associated stations lose their link."""
    _ap[0] = up
    if not up:
        for s in _stations:
            if s._state == STAT_GOT_IP:
                s._state = STAT_CONNECTING  # EV_LINK down: join state still ACTIVE


class WLAN:
    def __init__(self, interface=STA_IF):
        self._active = False
        self._state = STAT_IDLE
        self._joining = False  # a join attempt is under way
        self._join_started = 0
        self._key = None
        _stations.append(self)

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)
        if not on:
            self.disconnect()

    def connect(self, ssid=None, key=None):
        if not self._active:
            raise OSError("Wi-Fi interface is not active")
        self._state = STAT_CONNECTING
        self._join_started = time.ticks_ms()
        self._joining = True
        self._key = key

    def disconnect(self):
        self._state = STAT_IDLE
        self._joining = False

    def _update(self):
        if not self._joining:
            return
        elapsed = time.ticks_diff(time.ticks_ms(), self._join_started)
        if _ap[0] and elapsed >= JOIN_MS:
            wrong = _ap_password is not None and self._key != _ap_password
            self._state = STAT_WRONG_PASSWORD if wrong else STAT_GOT_IP
            self._joining = False
        elif not _ap[0] and elapsed >= NO_AP_MS:
            self._state = STAT_NO_AP_FOUND
            self._joining = False

    def isconnected(self):
        self._update()
        return self._state == STAT_GOT_IP

    def status(self, param=None):
        if param == "rssi":
            return -48
        self._update()
        return self._state

    def config(self, *args, **kwargs):
        return None

    def ifconfig(self):
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")
