# Simulated Wi-Fi for the unix port. The link is up unless the simulator takes it down;
# a station stays disconnected after a drop until it calls connect() again, as on a Pico W.
STA_IF = 0
STAT_IDLE = 0
STAT_CONNECTING = 1
STAT_GOT_IP = 3
_link = [True]


def set_link(up):
    _link[0] = up
    if not up:
        for s in _stations:
            s._connected = False


_stations = []


class WLAN:
    def __init__(self, interface=STA_IF):
        self._active = False
        self._connected = False
        _stations.append(self)

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = on

    def connect(self, ssid=None, key=None):
        self._connected = self._active and _link[0]

    def disconnect(self):
        self._connected = False

    def isconnected(self):
        return self._connected and _link[0]

    def status(self, param=None):
        if param == "rssi":
            return -48
        return STAT_GOT_IP if self.isconnected() else STAT_CONNECTING

    def config(self, *args, **kwargs):
        return None

    def ifconfig(self):
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")
