# SPDX-License-Identifier: MIT
"""Boot a tinyctrl UF2 on rp2040py's emulated Pico W, with no way out to any real network.

    python3 tests/support/pico_emu.py --uf2 build/PICO_W_TINYCTRL/firmware.uf2 SCENARIO_FILE:FUNCTION

runs FUNCTION(lab) from SCENARIO_FILE in a fresh network namespace (`unshare -n`, needs root)
with a local broker, NTP server, public-IP server and DNS stub; the process exits 0 when the
scenario returns and 1 when it raises. Tests and benchmarks call `start_isolated()`, which starts
the same process from Python and returns its Popen.

Network safety, in three layers:
1. Everything that boots the emulator runs in its own network namespace holding only `lo`;
   `Lab` refuses to start anywhere else (`assert_isolated()`).
2. rp2040py's CYW43 model relays guest traffic to the real network by default (`nat.py`: TCP via
   `asyncio.open_connection` to the guest's destination, UDP to the destination or, for DNS, to
   1.1.1.1). `IsolatedCyw43439` swaps that bridge for `IsolatedNatBridge` before the guest runs:
   ARP and DHCP are answered in-process as before, and every TCP connect and UDP datagram goes
   through `route()`, which maps the few guest destinations below to the services `Lab` started
   on 127.0.0.1 and refuses (and records) everything else.
3. The firmware image is always a local file: nothing here resolves a firmware tag, so rp2040py's
   download path (`utils/firmware_retrieve.py`) is never reached. No GDB or socket REPL server
   (the other places rp2040py opens sockets) is started.
"""

import argparse
import asyncio
import collections
import dataclasses
import importlib.util
import ipaddress
import json
import os
import pathlib
import pty
import select
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import tty

import netns
from netns import assert_isolated, unshare_available  # noqa: F401 (this module's API)
from rp2040py.boards import BoardSpec, FlashLayout
from rp2040py.device import MicroPythonDevice
from rp2040py.external.bootsel_button import BootselButton
from rp2040py.external.cyw43 import Cyw43439, bus, nat, net
from rp2040py.gpio_pin import GPIOPinState

REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_UF2 = REPO / "build" / "PICO_W_TINYCTRL" / "firmware.uf2"

# Documentation addresses (RFC 5737) the guest is pointed at; only these get anywhere.
BROKER_ADDR = ("192.0.2.10", 1883)
NTP_ADDR = ("192.0.2.11", 123)
PUBLIC_IP_ADDR = ("192.0.2.12", 80)
DNS_PORT = 53
# Names the DNS stub knows (".test" is reserved, RFC 2606); anything else gets NXDOMAIN.
HOSTS = {
    "broker.tinyctrl.test": BROKER_ADDR[0],
    "ntp.tinyctrl.test": NTP_ADDR[0],
    "ip.tinyctrl.test": PUBLIC_IP_ADDR[0],
    # The broker under a name its TLS certificate does not carry (a host name check must fail).
    "alias.tinyctrl.test": BROKER_ADDR[0],
}
TLS_NAME = "broker.tinyctrl.test"  # the name in the TLS broker's certificate
TLS_PORT = 8883

UF2_BLOCK = 512
UF2_MAGIC = (0x0A324655, 0x9E5D5157)
XIP_BASE = 0x10000000
BINARY_INFO_MARKERS = (0x7188EBF2, 0xE71AA390)
BINARY_INFO_TYPE_BLOCK_DEVICE = 7
FS_BLOCK_SIZE = 4096
# RP2040 registers a watchdog reset's log reads (datasheet 4.6.5, 4.7.6): the 64-bit microsecond
# count and why the watchdog fired (bit 0 its timer ran out, bit 1 a forced reset).
TIMER_TIMERAWH, TIMER_TIMERAWL = 0x40054024, 0x40054028
WATCHDOG_REASON = 0x40058008
# Wall seconds allowed per emulated second before a wait gives up even if emulated time is
# still short (measured here: about 30 with Wi-Fi active).
WALL_PER_EMULATED_S = 120


def log(*args):
    print("pico_emu:", *args, file=sys.stderr, flush=True)


# ---- routing: the one place that decides where guest traffic may go


def route(routes, proto, ip, port):
    """The local (host, port) that guest traffic to `ip`:`port` over `proto` goes to, or None.

    `routes` maps (proto, ip, port) to a local address; only exact matches pass, and only to a
    loopback address, so a mistake in the table cannot send anything off the machine."""
    target = routes.get((proto, ip, port))
    if target is None or not ipaddress.ip_address(target[0]).is_loopback:
        return None
    return target


class Router:
    """`route()` over a fixed table, remembering what it refused so tests can show it."""

    def __init__(self, routes):
        self.routes = dict(routes)
        self.refused = []

    def __call__(self, proto, ip, port):
        target = route(self.routes, proto, ip, port)
        if target is None:
            where = "%s %s:%d" % (proto, ip, port)
            if where not in self.refused:
                log("refusing guest traffic to " + where)
            self.refused.append(where)
        return target


# ---- firmware image and filesystem


def guest_symbols(uf2, names):
    """{name: address} of `names` in the firmware's ELF next to `uf2` (build.sh leaves it
    there), or {} without it or without the ARM toolchain's nm."""
    elf = pathlib.Path(uf2).with_suffix(".elf")
    try:
        out = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    found = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2] in names:
            found[fields[2]] = int(fields[0], 16)
    return found


def uf2_flash(path):
    """The flash contents a UF2 file programs, from offset 0 of flash, as bytes."""
    data = pathlib.Path(path).read_bytes()
    flash = bytearray()
    for off in range(0, len(data) - UF2_BLOCK + 1, UF2_BLOCK):
        magic0, magic1, _flags, addr, size = struct.unpack_from("<5I", data, off)
        if (magic0, magic1) != UF2_MAGIC:
            raise ValueError("%s: not a UF2 file (bad block at offset %d)" % (path, off))
        start = addr - XIP_BASE
        if len(flash) < start + size:
            flash.extend(b"\xff" * (start + size - len(flash)))
        flash[start : start + size] = data[off + 32 : off + 32 + size]
    return bytes(flash)


def filesystem_region(flash):
    """(offset, size) of the MicroPython filesystem, from the image's own binary info.

    The rp2 port declares its filesystem as a binary-info block device (`rp2_flash.c`), the same
    record `picotool info` shows, so this follows whatever the board configuration chose."""
    word = lambda off: struct.unpack_from("<I", flash, off)[0]  # noqa: E731
    for off in range(0, 1024, 4):
        if word(off) == BINARY_INFO_MARKERS[0] and word(off + 16) == BINARY_INFO_MARKERS[1]:
            start, end = word(off + 4) - XIP_BASE, word(off + 8) - XIP_BASE
            break
    else:
        raise ValueError("no binary info header in the image")
    for entry in range(start, end, 4):
        record = word(entry) - XIP_BASE
        kind, _tag = struct.unpack_from("<HH", flash, record)
        if kind != BINARY_INFO_TYPE_BLOCK_DEVICE:
            continue
        name_ptr, address, size = struct.unpack_from("<3I", flash, record + 4)
        name = flash[name_ptr - XIP_BASE :].split(b"\0", 1)[0]
        if name == b"MicroPython":
            return address - XIP_BASE, size
    raise ValueError("the image declares no MicroPython filesystem")


def littlefs_image(path, files, block_count):
    """Write a littlefs image of `block_count` blocks holding `files` ({name: bytes})."""
    from rp2040py.cli.mklittlefs import build_littlefs_image

    with tempfile.TemporaryDirectory(prefix="tinyctrl-fs-") as staging:
        paths = []
        for name, content in files.items():
            p = pathlib.Path(staging, name)
            p.write_bytes(content)
            paths.append(p)
        build_littlefs_image(path, paths, block_size=FS_BLOCK_SIZE, block_count=block_count, force=True)


# ---- the isolated network bridge


class IsolatedNatBridge:
    """What the emulated CYW43 hands the guest's Ethernet frames to, in place of rp2040py's
    `NatBridge`: ARP and DHCP in-process, TCP and UDP only where `router` allows."""

    def __init__(self, rp2040, queue_ethernet_frame, router, on_udp_reply=None):
        self._rp2040 = rp2040
        self._queue = queue_ethernet_frame
        self._router = router
        self._on_udp_reply = on_udp_reply
        self._arp = nat.ArpResponder()
        self._dhcp = nat.DhcpServer()
        self._tcp = nat.TcpReflector(rp2040, self._to_guest, connect_fn=self._connect)
        self.firewalled = False
        self._held = []  # TCP segments from the broker side while firewalled

    def _to_guest(self, frame):
        if self.firewalled:
            self._held.append(frame)
        else:
            self._queue(frame)

    def set_firewall(self, drop):
        """A firewall between the board and its services drops (True) or passes (False) their
        traffic; ARP and DHCP, the access point's own, still work. The guest's segments are
        dropped (its TCP retransmits them); what the far side sends is held and delivered when
        the drop ends, as its own retransmissions would be (the reflector does not retransmit)."""
        self.firewalled = drop
        if not drop:
            held, self._held = self._held, []
            for frame in held:
                self._queue(frame)

    async def _connect(self, host, port):
        target = self._router("tcp", host, port)
        if target is None:
            raise ConnectionRefusedError("guest destination %s:%d is not mapped" % (host, port))
        return await asyncio.open_connection(*target)

    def reset(self):
        self._tcp.reset()

    def handle_outbound_ethernet_frame(self, frame):
        eth = net.parse_ethernet(frame)
        if eth is None:
            return
        if eth.ethertype == net.ETHERTYPE_ARP:
            reply = self._arp.maybe_handle(eth)
            if reply is not None:
                self._queue(reply)
            return
        if eth.ethertype != net.ETHERTYPE_IPV4:
            return
        ip = net.parse_ipv4(eth.payload)
        if ip is None:
            return
        if self.firewalled:
            return
        if ip.proto == net.IP_PROTO_TCP:
            self._tcp.maybe_handle(eth, ip)
        elif ip.proto == net.IP_PROTO_UDP:
            reply = self._dhcp.maybe_handle(eth)
            if reply is not None:
                self._queue(reply)
                return
            udp = net.parse_udp(ip.payload)
            if udp is None:
                return
            dst_ip = ".".join(str(b) for b in ip.dst_ip)
            target = self._router("udp", dst_ip, udp.dst_port)
            if target is not None:
                self._rp2040.schedule_threadsafe(self._relay_udp(eth, ip, udp, target))

    async def _relay_udp(self, eth, ip, udp, target):
        """One datagram to `target`, its one answer back to the guest as if from the original
        destination; no answer within 5 s is no answer, as on a real network."""
        loop = asyncio.get_running_loop()
        answered = loop.create_future()

        class OneAnswer(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                if not answered.done():
                    answered.set_result(data)

        try:
            transport, _ = await loop.create_datagram_endpoint(OneAnswer, remote_addr=target)
        except OSError:
            return
        try:
            transport.sendto(udp.payload)
            data = await asyncio.wait_for(answered, 5.0)
        except (OSError, asyncio.TimeoutError):
            return
        finally:
            transport.close()
        if self._on_udp_reply:
            self._on_udp_reply(ip.dst_ip, udp.dst_port)
        reply = net.pack_udp(ip.dst_ip, ip.src_ip, udp.dst_port, udp.src_port, data)
        packet = net.pack_ipv4(ip.dst_ip, ip.src_ip, net.IP_PROTO_UDP, reply)
        self._queue(net.pack_ethernet(eth.src_mac, nat.GATEWAY_MAC, net.ETHERTYPE_IPV4, packet))


# cyw43-driver's event numbers and statuses (src/cyw43_ll.h, src/cyw43_ctrl.c) that bus.py has no
# name for; the chip's firmware sends them as Broadcom's WLC_E_* events.
CYW43_EV_DEAUTH_IND = 6
WLC_E_STATUS_NO_NETWORKS = 3  # EV_SET_SSID status 3, reason 0: the join's scan found no such SSID
DEAUTH_REASON_AUTH_INVALID = 2  # 802.11 reason 2: previous authentication no longer valid
LINK_REASON_BEACON_LOSS = 1  # WLC_E_LINK_BCN_LOSS: the AP's beacons stopped
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
    discovery on hit this (issue 14): the device's state message stopped mid-publish, mqtt_as
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

    Faults are set from the emulator's thread (`PicoW.ap_gone()`, `PicoW.deauth()`)."""

    def __init__(self):
        super().__init__()
        self.ap = "up"  # "up", "gone" or "deauth"
        self._alarm = None

    def attach_gpio(self, rp2040, **pins):
        super().attach_gpio(rp2040, **pins)
        self._clock = rp2040.clock

    def _event(self, event_type, status=0, reason=0, flags=0):
        self.queue_rx_packet(self._build_async_event(event_type, status, reason=reason, flags=flags))

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

    def _queue_join_events(self):
        if self.ap == "up":
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
    """The Pico W Wi-Fi chip, with its traffic going through `router` and never to the real network."""

    def __init__(self, router, on_udp_reply=None):
        super().__init__()
        self.bus = AccessPointBus()
        self._router = router
        self._on_udp_reply = on_udp_reply

    def attach(self, rp2040):
        super().attach(rp2040)
        # Replaced before the guest runs a single instruction: the stock bridge never sees a frame.
        self.bus.nat_bridge = IsolatedNatBridge(rp2040, self.bus.queue_rx_ethernet_frame, self._router, self._on_udp_reply)


# ---- local services


class DnsStub(threading.Thread):
    """Answers DNS A queries for `hosts` ({name: ipv4}) on 127.0.0.1; NXDOMAIN for anything else."""

    def __init__(self, hosts):
        super().__init__(daemon=True)
        self.hosts = {k.lower().rstrip("."): v for k, v in hosts.items()}
        self.queries = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.start()

    def run(self):
        while True:
            try:
                query, addr = self.sock.recvfrom(512)
            except OSError:
                return
            answer = self.answer(query)
            if answer:
                self.sock.sendto(answer, addr)

    def answer(self, query):
        if len(query) < 12:
            return None
        qid, _flags, qdcount = struct.unpack_from("!HHH", query)
        if qdcount != 1:
            return None
        labels, pos = [], 12
        while pos < len(query) and query[pos]:
            n = query[pos]
            labels.append(query[pos + 1 : pos + 1 + n].decode("ascii", "replace"))
            pos += 1 + n
        if pos + 5 > len(query):
            return None
        qtype, _qclass = struct.unpack_from("!HH", query, pos + 1)
        question = query[12 : pos + 5]
        name = ".".join(labels).lower()
        self.queries.append(name)
        address = self.hosts.get(name)
        if address is None or qtype != 1:
            rcode = 0 if address else 3  # a known name has no other record types; else NXDOMAIN
            return struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, 0, 0, 0) + question
        record = struct.pack("!HHHLH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(address)
        return struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + record

    def close(self):
        self.sock.close()


# ---- the emulated board


class PicoW:
    """One emulated Pico W running `uf2` with a littlefs holding `files` ({name: bytes})."""

    def __init__(self, uf2, files, router, workdir, on_udp_reply=None):
        flash = uf2_flash(uf2)
        fs_start, fs_size = filesystem_region(flash)
        self.layout = FlashLayout(fs_start=fs_start, fs_blockcount=fs_size // FS_BLOCK_SIZE, fs_blocksize=FS_BLOCK_SIZE)
        fs_path = pathlib.Path(workdir, "littlefs.img")
        littlefs_image(fs_path, files, self.layout.fs_blockcount)
        self.chip = None

        def wifi_chip():
            self.chip = IsolatedCyw43439(router, on_udp_reply)
            return self.chip

        spec = BoardSpec(
            extras=(BootselButton, wifi_chip),
            layout=self.layout,
            image=str(uf2),
        )
        self.device = MicroPythonDevice(board=spec, filesystem=fs_path)
        self.mcu = self.device.mcu
        self.sim = self.device.simulator
        self._output = bytearray()
        self._output_cv = threading.Condition()
        self._input = collections.deque()
        self._input_lock = threading.Lock()
        self.device.cdc.on_serial_data = self._on_output
        self._feeder = self.sim.clock.create_alarm(self._feed_input)
        self.resets = 0
        self.enumerations = 0
        self.mcu.watchdog.on_watchdog_trigger = self._on_watchdog
        # _tinyctrl's last kick from Python (ports/rp2/cmodule/watchdog.c), for the reset's log
        self._kick_ms_addr = guest_symbols(uf2, ("wdt_kick_ms",)).get("wdt_kick_ms")
        self._pty = None  # master fd while the console is also served on a pty
        self.trace = []  # (emulated s, gpio, GPIOPinState) for the pins given to trace_pins()
        self._traced = ()

    def trace_pins(self, pins):
        """Record every change of each pin's state (driven LOW/HIGH, or an input and its pull)
        from the first instruction on: call before start(). A watchdog reset puts the pads back
        to their reset state without an edge, so the states after one are recorded too."""
        self._traced = tuple(pins)
        for gpio in self._traced:
            pin = self.mcu.gpio[gpio]
            self.trace.append((self.emulated_s(), gpio, pin.value))
            pin.add_listener(lambda value, _last, gpio=gpio: self.trace.append((self.emulated_s(), gpio, value)))

    # -- life cycle

    def start(self, timeout=120):
        """Boot; returns once the USB console has enumerated."""
        self.device.start_async(timeout).result(timeout + 5)
        self.enumerations = 1
        self.device.cdc.on_device_connected = self._on_enumerated
        self.sim.call(self._arm_feeder())

    def _on_enumerated(self):
        self.enumerations += 1

    def wait_reboot(self, timeout):
        """After a reset: wait (emulated `timeout`) until the console is back on USB."""
        expected = self.resets + 1
        self.wait_until(lambda: self.enumerations >= expected, timeout, "USB console back after the reset")

    async def _arm_feeder(self):
        self._feeder.schedule(1_000_000)

    def stop(self):
        self.device.stop()

    def _on_watchdog(self):
        self.resets += 1
        log("watchdog reset #%d at %.1f s emulated (%s); the console before it:\n%s"
            % (self.resets, self.emulated_s(), self._reset_state(), self.output[-1500:]))
        self.device._on_watchdog_trigger()
        for gpio in self._traced:
            self.trace.append((self.emulated_s(), gpio, self.mcu.gpio[gpio].value))

    def _reset_state(self):
        """Where the reset found the guest: why the watchdog fired, what the core ran, and when
        Python last kicked _tinyctrl's watchdog: a stuck handler or a dead C feeder shows here
        as a kick that is recent, a stalled asyncio loop as one watchdog_s old."""
        read, core = self.mcu.read_uint32, self.mcu.core
        reason = read(WATCHDOG_REASON)
        state = ["timer ran out" if reason & 1 else "forced" if reason & 2 else "reason %d" % reason,
                 "exception %d" % core.ipsr if core.ipsr else "thread mode",
                 "pc %08x" % core.pc, "interrupts masked" if core.pm else "interrupts enabled"]
        if self._kick_ms_addr is not None:
            now_ms = ((read(TIMER_TIMERAWH) << 32 | read(TIMER_TIMERAWL)) // 1000) & 0xFFFFFFFF
            age = (now_ms - read(self._kick_ms_addr)) & 0xFFFFFFFF
            state.append("Python last kicked the watchdog %.1f s before" % (age / 1000))
        return ", ".join(state)

    def emulated_s(self):
        return self.sim.clock.nanos / 1e9

    # -- console

    def _on_output(self, data):
        with self._output_cv:
            self._output += data
            self._output_cv.notify_all()
        if self._pty is not None:
            try:
                os.write(self._pty, data)
            except OSError:
                pass  # no one reading and the pty is full: dropped, as a UART would drop it

    def serve_console_pty(self):
        """Serve the USB console on a pseudo-terminal as well, as rp2040py's own `--pty` does,
        for programs that open a serial port (mpremote). Returns the pty's path. (rp2040py's
        PtyInteractiveRepl installs a SIGTERM handler, which only works on the main thread.)"""
        master, slave = pty.openpty()
        tty.setraw(slave)  # a byte pipe, as a USB CDC port is
        os.set_blocking(master, False)
        self._pty = master
        threading.Thread(target=self._pty_input, args=(master,), daemon=True).start()
        return os.ttyname(slave)

    def _pty_input(self, master):
        while True:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    self.write(os.read(master, 4096))
                except OSError:
                    pass

    def _feed_input(self):
        """Every emulated millisecond: move queued input into the CDC FIFO as far as it has room."""
        fifo = self.device.cdc.tx_fifo
        with self._input_lock:
            while self._input and not fifo.full:
                self.device.cdc.send_serial_byte(self._input.popleft())
        self._feeder.schedule(1_000_000)

    def write(self, data):
        if isinstance(data, str):
            data = data.encode()
        with self._input_lock:
            self._input.extend(data)

    def interrupt(self):
        """Ctrl-C."""
        self.write(b"\x03")

    @property
    def output(self):
        """Everything the console printed so far, decoded."""
        with self._output_cv:
            return self._output.decode("utf-8", "replace")

    def mark(self):
        """A position in the console output, for `wait_for(..., since=mark)`."""
        with self._output_cv:
            return len(self._output)

    def wait_until(self, condition, timeout, what):
        """Poll `condition()` until it is true or `timeout` seconds of *emulated* time pass (the
        emulator runs many times slower than real time, and unevenly: wall-clock timeouts would
        be either flaky or needlessly long). Returns the emulated seconds it took."""
        start = self.emulated_s()
        wall_limit = time.monotonic() + WALL_PER_EMULATED_S * timeout + 60
        while not condition():
            if self.sim.engine_room_error:
                raise RuntimeError("the emulator crashed") from self.sim.engine_room_error
            if self.emulated_s() - start > timeout or time.monotonic() > wall_limit:
                raise TimeoutError("%s: not within %.1f s emulated" % (what, timeout))
            with self._output_cv:
                self._output_cv.wait(0.02)
        return self.emulated_s() - start

    def wait_for(self, text, timeout, since=0):
        """Wait (emulated `timeout` seconds) until the console shows `text` after position `since`;
        return the output from `since` to the end of the match."""
        needle = text.encode() if isinstance(text, str) else text
        found = []

        def seen():
            with self._output_cv:
                at = self._output.find(needle, since)
                if at >= 0:
                    found.append(self._output[since : at + len(needle)].decode("utf-8", "replace"))
            return bool(found)

        try:
            self.wait_until(seen, timeout, "console output %r" % text)
        except TimeoutError as e:
            raise TimeoutError("%s; console since then:\n%s" % (e, self.output[since:][-1500:])) from None
        return found[0]

    def repl(self, line, timeout=5):
        """Wait for an idle friendly REPL, type `line`; return what it printed before the next prompt."""
        self.wait_until(lambda: self.output.endswith(">>> "), timeout, "an idle REPL prompt")
        line = line.rstrip("\r\n")
        start = self.mark()
        self.write(line + "\r")
        # The answer follows the echo of the line (an earlier prompt may still be on its way).
        echo = self.wait_for(line + "\r\n", timeout, since=start)
        answer = self.wait_for("\n>>> ", timeout, since=start + len(echo.encode()) - 1)
        return answer[1 : -len(">>> ")].replace("\r", "").rstrip("\n")

    def exec_start(self, code, timeout=5):
        """Interrupt whatever runs, and start `code` through the raw REPL (as mpremote does)
        without waiting for it to finish; returns the console position where its output starts."""
        start = self.mark()
        self.write(b"\r\x03\x03\x01")
        self.wait_for("raw REPL; CTRL-B to exit\r\n>", timeout, since=start)
        start = self.mark()
        self.write(code.encode() + b"\x04")
        self.wait_for("OK", timeout, since=start)
        return start + 2

    def exec(self, code, timeout=30):
        """Run `code` through the raw REPL; return its stdout. Raises RuntimeError with the
        device's traceback if the code raised."""
        start = self.exec_start(code)
        reply = self.wait_for("\x04>", timeout, since=start)
        self.write(b"\x02")  # back to the friendly REPL
        stdout, stderr = reply[:-2].split("\x04", 1)
        if stderr:
            raise RuntimeError("device raised:\n" + stderr)
        return stdout.replace("\r", "")

    def idle(self, seconds):
        """Let `seconds` of emulated time pass."""
        end = self.emulated_s() + seconds
        self.wait_until(lambda: self.emulated_s() >= end, seconds + 1, "idling")

    # -- network faults (AccessPointBus, IsolatedNatBridge)

    def set_ap(self, ap):
        """The access point is "up", "gone" (router off) or de-authenticating us ("deauth")."""
        async def change():
            self.chip.bus.set_ap(ap)

        self.sim.call(change())

    def set_firewall(self, drop):
        """Drop (True) or pass (False) all traffic between the board and the services."""
        async def change():
            self.chip.bus.nat_bridge.set_firewall(drop)

        self.sim.call(change())

    # -- pins

    def level(self, gpio):
        """The level the board drives on `gpio`: 0, 1, or None if it is not an output."""
        state = self.mcu.gpio[gpio].value
        return {GPIOPinState.LOW: 0, GPIOPinState.HIGH: 1}.get(state)

    def drive(self, gpio, level):
        """Drive input `gpio` from outside: 0 (pulled to ground, e.g. a closed contact) or 1."""

        async def set_level():
            self.mcu.gpio[gpio].set_input_value(bool(level))

        self.sim.call(set_level())

    def wait_level(self, gpio, level, timeout):
        """Wait until the board drives `gpio` to `level`; return the emulated seconds it took."""
        return self.wait_until(lambda: self.level(gpio) == level, timeout, "GP%d to level %d" % (gpio, level))


# ---- the lab: services, routes, boots


@dataclasses.dataclass
class NtpFix:
    """When the guest last got an NTP answer: host time and emulated time at that moment."""

    host_time: float
    emulated_s: float


class EmulatedClock:
    """Unix time that runs with the board's emulated seconds, for the lab's NTP server (opt-in:
    Lab.use_emulated_clock()). Host time, which the server gives by default, runs about 30 times
    faster than the guest: a 30 s TOTP step passes in about one emulated second, so a code used
    before a reboot is stale long before the board is back, and no replay test could fail.

    The base is fixed at the first answer: `lead_s` before the start of a TOTP step, so the
    guest's first sync and the steps after it fall where a scenario can count on them."""

    def __init__(self, emulated_s, lead_s, step_s=30):
        self._emulated_s = emulated_s
        self.lead_s = lead_s
        self.step_s = step_s
        self.base = None
        self.served = []  # unix time of every NTP answer, in order
        self._lock = threading.Lock()

    def answer(self):
        """The NtpServer's clock: the time to serve now, remembered."""
        with self._lock:
            if self.base is None:
                next_step = (int(time.time()) // self.step_s + 1) * self.step_s
                self.base = next_step - self.lead_s - self._emulated_s()
            now = self.base + self._emulated_s()
            self.served.append(now)
        return now

    def now(self):
        """What the guest's synced clock reads now (give or take the answer's way to it)."""
        if self.base is None:
            raise RuntimeError("the guest has not had an NTP answer yet")
        return self.base + self._emulated_s()


class Lab:
    """The services a scenario needs, the routes to them, and emulated boards."""

    def __init__(self, uf2, workdir):
        from faults import persistent_broker
        from services import NtpServer, PublicIpServer

        assert_isolated()
        self.uf2 = pathlib.Path(uf2)
        self.workdir = pathlib.Path(workdir)
        self.broker = persistent_broker().start()  # its sessions survive a kill (outages)
        self.ntp = NtpServer()
        self.public_ip = PublicIpServer()
        self.dns = DnsStub(HOSTS)
        # DHCP hands out the emulated gateway as the DNS server.
        gateway = ".".join(str(b) for b in nat.GATEWAY_IP)
        self.router = Router(
            {
                ("tcp",) + BROKER_ADDR: ("127.0.0.1", self.broker.port),
                ("udp",) + NTP_ADDR: ("127.0.0.1", self.ntp.port),
                ("tcp",) + PUBLIC_IP_ADDR: ("127.0.0.1", self.public_ip.port),
                ("udp", gateway, DNS_PORT): ("127.0.0.1", self.dns.port),
            }
        )
        self.ntp_fix = None
        self.clock = None  # an EmulatedClock once use_emulated_clock() is called
        self.boards = []
        self.tls_broker = None

    def use_emulated_clock(self, lead_s):
        """From now on NTP serves EmulatedClock time (first answer `lead_s` before a TOTP
        step begins) and guest_time() reads it; returns the clock."""
        self.clock = EmulatedClock(lambda: self.boards[-1].emulated_s(), lead_s)
        self.ntp.clock = self.clock.answer
        return self.clock

    def _on_udp_reply(self, src_ip, src_port):
        if (".".join(str(b) for b in src_ip), src_port) == NTP_ADDR:
            self.ntp_fix = NtpFix(time.time(), self.boards[-1].emulated_s())

    def guest_time(self):
        """What the guest's synced clock reads now: the NTP answer's host time plus the emulated
        time since (the emulator runs slower than real time, so the guest lags the host), or
        the EmulatedClock if the lab uses one."""
        if self.clock is not None:
            return self.clock.now()
        if self.ntp_fix is None:
            raise RuntimeError("the guest has not had an NTP answer yet")
        return self.ntp_fix.host_time + self.boards[-1].emulated_s() - self.ntp_fix.emulated_s

    def boot(self, config=None, files=None, timeout=120, trace_pins=()):
        """Boot the UF2 with `config` (a dict, written as JSON, or bytes/str written as is) as
        config.json, plus any other `files`; no config.json when `config` is None. The states
        of `trace_pins` are recorded from the first instruction on (PicoW.trace)."""
        files = dict(files or {})
        if config is not None:
            if isinstance(config, dict):
                config = json.dumps(config)
            files["config.json"] = config.encode() if isinstance(config, str) else config
        workdir = tempfile.mkdtemp(prefix="board-", dir=self.workdir)
        board = PicoW(self.uf2, files, self.router, workdir, self._on_udp_reply)
        self.boards.append(board)
        board.trace_pins(trace_pins)
        board.start(timeout)
        return board

    def start_tls_broker(self):
        """A second mosquitto: TLS with certificates made here (make_certificates()) where the
        guest's broker:TLS_PORT goes, and a plain listener for the test's own client, whose
        port this returns."""
        from services import Mosquitto, free_port

        self.certs = make_certificates(self.workdir)
        plain = free_port()
        self.tls_broker = Mosquitto(
            tls={"certfile": self.certs / "server.pem", "keyfile": self.certs / "server.key"},
            # root keeps root (the key file is root's alone), as faults.persistent_broker() explains
            extra_conf=("user root\n" if os.geteuid() == 0 else "") + "listener %d 127.0.0.1\n" % plain,
        ).start()
        self.router.routes[("tcp", BROKER_ADDR[0], TLS_PORT)] = ("127.0.0.1", self.tls_broker.port)
        return plain

    def tls_files(self):
        """The CA certificates for the board's filesystem: the broker's, and one that signed nothing."""
        return {name: (self.certs / name).read_bytes() for name in ("ca.pem", "other-ca.pem")}

    def close(self):
        for board in self.boards:
            board.stop()
        if self.tls_broker:
            self.tls_broker.close()
        self.broker.close()
        self.ntp.close()
        self.public_ip.close()
        self.dns.close()


def device_config(topic="tinyctrl/emu", **overrides):
    """A config.json for the emulated Pico W: the emulated AP, the local broker by name, and the
    contract's pin layout. `overrides` replace whole top-level sections."""
    cfg = {
        "wifi": {"ssid": bus._FAKE_AP_SSID.decode(), "password": "", "max_retries": 30, "reset_delay_s": 600},
        "mqtt": {
            "server": "broker.tinyctrl.test",
            "port": BROKER_ADDR[1],
            "ssl": False,
            "user": "",
            "password": "",
            "client_id": "tinyctrl-emu",
            "topic": topic,
            # In emulated seconds to the device but real ones to mosquitto, which drops a client
            # silent for 1.5 keepalives: at ~30x slower than real time, 120 would lose the broker
            # after 3 real minutes, before the device's first ping is due.
            "keepalive": 3600,
        },
        "gpio": {
            "prefix": "GP",
            "relay": [16, 17],
            "momentary": {"18": 2, "19": 2},
            "contact": [0, 1, 2, 3],
            "notify": [0, 1, 16, 17],
            "active_low": True,
        },
        "ntp": {"host": "ntp.tinyctrl.test", "interval_s": 86400, "force_wait_s": 180},
        "ip_provider": "http://ip.tinyctrl.test/",
        "timezone": "EST",
    }
    cfg.update(overrides)
    return cfg


def tls_mqtt_config(mqtt):
    """`mqtt` (a config section) for the TLS broker, verifying its certificate and name."""
    return dict(mqtt, server=TLS_NAME, port=TLS_PORT, ssl=True, ca_file="ca.pem")


# ---- verified TLS: certificates, handshakes


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(workdir):
    """In workdir/tls: a CA, a server certificate for TLS_NAME it signed (RSA 2048, as most
    brokers' are), and a second CA that signed nothing the broker has. Returns the directory."""
    d = pathlib.Path(workdir, "tls")
    d.mkdir()
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-keyout", ca + ".key",
                 "-out", ca + ".pem", "-subj", "/CN=tinyctrl test " + ca, cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=" + TLS_NAME, cwd=d)
    (d / "san.ext").write_text("subjectAltName=DNS:%s\n" % TLS_NAME)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "30", "-extfile", "san.ext", "-out", "server.pem", cwd=d)
    return d


# Run from the REPL after the controller connected (its Wi-Fi and NTP clock stay): with the
# controller's own TLS parameters, {cycles} blocking handshakes with the heap in use around each.
TLS_HANDSHAKES = """
import gc, socket, ssl, time, tinyctrl.main as m, tinyctrl.net as net
cfg = m.load()
params = net.ssl_params(cfg["mqtt"])
addr = socket.getaddrinfo(cfg["mqtt"]["server"], cfg["mqtt"]["port"])[0][-1]
for n in range({cycles}):
    gc.collect()
    before = gc.mem_alloc()
    s = socket.socket()
    try:
        s.connect(addr)
        t = time.ticks_ms()
        s = ssl.wrap_socket(s, **params)
        ms = time.ticks_diff(time.ticks_ms(), t)
        gc.collect()
        print("cycle", ms, before, gc.mem_alloc(), end=" ")
    except Exception as e:
        print("cycle failed", repr(e), end=" ")
    s.close()
    s = None
    gc.collect()
    print(gc.mem_alloc())
"""
# Then (after TLS_HANDSHAKES, with its cfg) the controller's client against a CA that did not sign
# the broker's certificate and under a name the certificate does not carry: the error it logs.
TLS_REFUSALS = """
import asyncio
for what, key, value in (("bad_ca", "ca_file", "other-ca.pem"), ("bad_name", "server", "alias.tinyctrl.test")):
    cfg["mqtt"][key], old = value, cfg["mqtt"][key]
    client = m.build(cfg).client
    cfg["mqtt"][key] = old
    client._addr = socket.getaddrinfo(client.server, client.port)[0][-1]  # as connect() does
    try:
        asyncio.run(client._connect(True))
        print(what, "connected")
    except Exception as e:
        print(what, "refused" if isinstance(e, OSError) else "failed", repr(e))
    client._close()
"""


def handshake_rows(output):
    """TLS_HANDSHAKES's cycles: dicts (ms, before, during, after heap in use) or, for a failed
    handshake, its line."""
    rows = []
    for line in output.splitlines():
        if line.startswith("cycle failed"):
            rows.append(line)
        elif line.startswith("cycle"):
            ms, before, during, after = map(int, line.split()[1:])
            rows.append({"ms": ms, "before": before, "during": during, "after": after})
    return rows


# ---- running a scenario in its own namespace


def start_isolated(scenario, uf2=DEFAULT_UF2, args=(), **popen):
    """Start `scenario` ("path/to/file.py:function", called with a `Lab` and `args`) in a fresh
    network namespace; returns the Popen. `popen` goes to subprocess.Popen (e.g. stdout=)."""
    cmd = ["unshare", "-n", sys.executable, str(pathlib.Path(__file__).resolve()), "--inside", "--uf2", str(uf2)]
    return subprocess.Popen(cmd + [scenario, *map(str, args)], **popen)


def _load_function(spec):
    path, _, name = spec.rpartition(":")
    module_spec = importlib.util.spec_from_file_location(pathlib.Path(path).stem, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return getattr(module, name)


def _run_inside(uf2, scenario, args):
    netns.enter()
    function = _load_function(scenario)
    with tempfile.TemporaryDirectory(prefix="tinyctrl-emu-") as workdir:
        lab = Lab(uf2, workdir)
        try:
            function(lab, *args)
        finally:
            lab.close()
            if lab.router.refused:
                log("refused guest destinations: %s" % ", ".join(sorted(set(lab.router.refused))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uf2", default=str(DEFAULT_UF2))
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("scenario", help="FILE:FUNCTION, called with the Lab")
    parser.add_argument("args", nargs="*", help="passed to the scenario function")
    opts = parser.parse_args(argv)
    if not pathlib.Path(opts.uf2).is_file():
        sys.exit("pico_emu: %s does not exist: run ./build.sh" % opts.uf2)
    if not opts.inside:
        why = unshare_available()
        if why:
            sys.exit("pico_emu: " + why)
        sys.exit(start_isolated(opts.scenario, opts.uf2, opts.args).wait())
    try:
        _run_inside(opts.uf2, opts.scenario, opts.args)
    except Exception:
        traceback.print_exc()
        sys.exit(1)


if __name__ == "__main__":
    main()
