# SPDX-License-Identifier: MIT
# Peter Hinch's mqtt_as, hardened for a shared broker and message floods.
import asyncio
import gc
import socket
import struct
from random import getrandbits
from time import ticks_diff, ticks_ms

import mqtt_as
from mqtt_as import MQTTClient

from . import log, mqtt5

MAX_INBOUND = 1024  # payloads above this are drained, never buffered
_DRAIN_CHUNK = 256
JOIN_TIMEOUT_MS = 20000  # a join the driver neither completes nor fails by then is abandoned
JOIN_POLL_MS = 100
STABLE_S = 2  # the link must stay up this long after a join before MQTT is tried
# Messages read back to back before the device counts itself behind: below mosquitto's default
# in-flight window (max_inflight_messages 20), past which a broker queues for the device and,
# once its queue is full, drops messages the device never sees. Back to back: the device was
# idle less than BACKLOG_IDLE_MS before each (a broker sending one at a time, after each
# PUBACK, leaves it idle for a round trip).
BACKLOG = 16
BACKLOG_IDLE_MS = 20
# An idle connection's socket is waited on (asyncio's poller), not read every few ms: a request
# is read as it arrives. The wait ends after this long anyway, to see the connection is up.
IDLE_WAIT_MS = 100
# mqtt_as collects the heap every second while connected (_keep_connected): 6.5 ms on the
# emulated board, and a request that comes meanwhile waits for it. The device collects once it
# has read COLLECT_READS times (about a dozen commands with their echoes in the bench) and then
# heard nothing for QUIET_MS instead: between requests, rarely. MicroPython still collects by
# itself when an allocation finds no room.
COLLECT_READS = 120
QUIET_MS = 20
# A PUBLISH whose payload is at most this long goes out in one socket write (_publish).
ONE_WRITE_MAX = 512
# While the publisher waits for a PUBACK, the connection is looked at this often (the PUBACK
# itself wakes it: kill_pid).
PUBACK_CHECK_MS = 100
# A session the broker closes this soon after the CONNECT, SHORT_IN_A_ROW times in a row, is
# taken to be taken over: another client with the device's client id, each taking the session
# from the other. Brokers that say so (DISCONNECT 0x8E) are believed at once; mosquitto 2.0.11
# only closes the old connection.
SHORT_SESSION_MS = 30000
SHORT_IN_A_ROW = 3
# Before a broker attempt that follows a failed one or a lost connection, a random wait up to
# a bound that doubles with each failure, capped: a fleet whose broker restarts does not come
# back in the same second. The cap keeps the outage bound (back within 10 s of the network:
# 4 s of Wi-Fi rejoin, this wait, the CONNECT). A reason code's hold-off comes on top.
BACKOFF_FIRST_MS = 2000
BACKOFF_MAX_MS = 4000


class _NoTimedCollect:
    """Stands in for `gc` in mqtt_as (see COLLECT_READS)."""

    collect = staticmethod(lambda: None)
    mem_free = staticmethod(gc.mem_free)
    mem_alloc = staticmethod(gc.mem_alloc)


mqtt_as.gc = _NoTimedCollect


def _decode_properties(props, n):
    # A property block drained as oversize (MAX_INBOUND) or one upstream cannot parse (an
    # unknown identifier, bad UTF-8) is read as none: a hostile publish must not cost a
    # reconnect.
    from mqtt_as.mqtt_v5_properties import decode_properties

    if len(props) < n:
        return {}
    try:
        return decode_properties(props, n)
    except Exception:
        return {}


class TinyMQTTClient(MQTTClient):
    """The callback is on_message(topic, msg, retained, oversize, streak, properties):
    `oversize` is the size of this message's drained payload (0 if it was read), `streak` how
    many messages came just before it back to back (BACKLOG or more: the device is behind the
    broker), `properties` its MQTT 5 properties ({id: value}) or None.

    `version` is mqtt.version: 5, 3 (3.1.1), or "auto": 5 until a broker refuses the protocol
    level, then 3.1.1 until reset."""

    def __init__(self, config, hw, version=3, servers=None):
        super().__init__(config)
        self.hw = hw  # the port: how its Wi-Fi starts and reports a join
        # mqtt.servers: (host, port) of one cluster's nodes, tried in turn; the first is
        # config["server"]. Addresses are resolved once each (a DNS look-up blocks).
        self.servers = servers or [(self.server, self.port)]
        self._node = 0
        self._addrs = {}
        self.failures = 0  # broker attempts failed (or connections lost) since the last success
        self.auto = version == "auto"
        self.refusal = None  # the broker's last refusal or DISCONNECT reason, for stats
        self._hold_s = 0  # before the next CONNECT, as that reason asks
        self._takeovers = 0  # in a row
        self._short = 0  # sessions in a row the broker closed within SHORT_SESSION_MS
        self._up_at = None  # ticks_ms of the last CONNACK
        self._connack = None  # the reason code of the CONNACK being read
        if self.mqttv5:
            mqtt_as.decode_properties = _decode_properties
        self.reads = 0
        self._collected = 0  # self.reads at the last collection
        self._oversize = 0  # size drained from the packet being read, 0 if none
        self._streak = 0
        self._idle_since = None  # ticks_ms of the first poll that found nothing waiting
        self._on_message = self._cb
        self._acked = asyncio.Event()  # a PUBACK came (kill_pid)
        self._cb = self._deliver

    def _deliver(self, topic, msg, retained, properties=None):
        idle = self._idle_since
        if idle is not None and ticks_diff(ticks_ms(), idle) >= BACKLOG_IDLE_MS:
            self._streak = 0
        self._idle_since = None
        self._on_message(topic, msg, retained, self._oversize, self._streak, properties)
        self._streak += 1

    def status(self):
        """The stats line's part: the protocol in use and the broker's last refusal."""
        s = "Mqtt=" + ("5" if self.mqttv5 else "3.1.1")
        return s + " (last: %s)" % self.refusal if self.refusal else s

    def _refused(self, what, code):
        """The broker refused a CONNECT or ended the session with a reason code: one line in
        the log, and the hold-off before the next try (mqtt5.reason)."""
        v5 = self.mqttv5
        text, hold = mqtt5.reason(code, v5)
        if code == mqtt5.TAKEOVER:
            self._takeovers += 1
            hold = mqtt5.takeover_hold_s(self._takeovers)
        else:
            self._takeovers = 0
        if self.auto and v5 and what == "CONNACK" and code in mqtt5.V311_ONLY:
            self.mqttv5 = False
            text += "; using MQTT 3.1.1"
        self.refusal = "%s 0x%02X %s" % (what, code, text)
        self._hold_s = hold
        log("broker:", self.refusal + ("; next try in %d s" % hold if hold else ""))

    def _ended(self, e):
        # mqtt_as reports a reason code as OSError(-1, "DISCONNECT reason code 0x8e") (also
        # CONNACK, PUBACK). Without one, a session the broker closed soon after it began
        # counts toward a suspected takeover: the broker closed the connection (mqtt_as
        # reads end of stream as AssertionError("Empty response") between packets, OSError
        # "Connection closed by host" within one) while the session and the Wi-Fi link were
        # still up (an outage, or the keep-alive giving up, is no takeover).
        why = e and e.args and e.args[-1]
        if isinstance(why, str) and " reason code 0x" in why:
            return self._refused(why.split(" ", 1)[0], int(why.rsplit("0x", 1)[1], 16))
        closed = isinstance(e, AssertionError) or (isinstance(why, str) and "closed by" in why)
        up = self._up_at
        if (
            not closed
            or up is None
            or not (self._isconnected and self._sta_if.isconnected())
            or ticks_diff(ticks_ms(), up) >= SHORT_SESSION_MS
        ):
            self._short = self._takeovers = 0
            return
        self._short += 1
        if self._short >= SHORT_IN_A_ROW:
            self._takeovers += 1
            self._hold_s = mqtt5.takeover_hold_s(self._takeovers)
            self.refusal = (
                "session closed by the broker %d times within %d s of connecting (another "
                "client with this client id?)" % (self._short, SHORT_SESSION_MS // 1000)
            )
            log("broker:", self.refusal + "; next try in %d s" % self._hold_s)

    async def _publish(self, topic, msg, retain, qos, dup, pid, properties=None):
        # Upstream writes a PUBLISH in up to six writes (header, topic length, topic, packet
        # id, properties, payload); with TCP_NODELAY (_connect) each is a TCP segment of its
        # own, and on a Pico W a frame over the CYW43's bus. One write instead, or the head
        # and then a large payload (a discovery announcement is not copied).
        if isinstance(topic, str):
            topic = topic.encode()
        if isinstance(msg, str):
            msg = msg.encode()
        props = mqtt_as.encode_properties(properties) if self.mqttv5 else b""
        large = len(msg) > ONE_WRITE_MAX
        pid_bytes = struct.pack("!H", pid) if qos else b""
        parts = (struct.pack("!H", len(topic)), topic, pid_bytes, props, b"" if large else msg)
        size = 2 + len(topic) + len(pid_bytes) + len(props) + len(msg)
        pkt = bytearray(4 + size - (len(msg) if large else 0))
        pkt[0] = 0x30 | qos << 1 | retain | dup << 3
        n = mqtt_as.vbi(pkt, 1, size)
        for part in parts:
            pkt[n : n + len(part)] = part
            n += len(part)
        await self._as_write(pkt, n)
        if large:
            await self._as_write(msg)

    async def _as_write(self, bytes_wr, length=0, sock=None):
        # Upstream's, but it returns as soon as the socket took it all (see _as_read).
        if sock is None:
            sock = self._sock
        bytes_wr = memoryview(bytes_wr)
        if length:
            bytes_wr = bytes_wr[:length]
        t = ticks_ms()
        while bytes_wr:
            if self._timeout(t) or not self.isconnected():
                raise OSError(-1, "Timeout on socket write")
            try:
                n = sock.write(bytes_wr)
            except OSError as e:
                n = 0
                if e.args[0] not in mqtt_as.BUSY_ERRORS:
                    raise
            if n:
                t = ticks_ms()
                bytes_wr = bytes_wr[n:]
                if not bytes_wr:
                    break
            await asyncio.sleep_ms(0)

    def _readable(self):
        # How asyncio's own streams wait for input (asyncio/stream.py); the queue is looked up
        # each time, as asyncio.new_event_loop() replaces it.
        yield asyncio.core._io_queue.queue_read(self._sock)

    def kill_pid(self, pid, msg):
        super().kill_pid(pid, msg)
        self._acked.set()

    async def _await_pid(self, pid):
        # Upstream looks for the PUBACK every 100 ms, and the one publisher task waits here
        # for each QoS 1 message: that capped the device at ~10 a second, and a message just
        # after another waited up to 100 ms. The PUBACK (kill_pid) wakes it instead; as
        # upstream, the wait ends at response_time or when the connection goes.
        t = ticks_ms()
        while True:
            self._acked.clear()  # no await between this and the check: no PUBACK missed
            if pid not in self.rcv_pids:
                return True
            if self._timeout(t) or not self.isconnected():
                return False
            try:
                await asyncio.wait_for_ms(self._acked.wait(), PUBACK_CHECK_MS)
            except asyncio.TimeoutError:
                pass

    async def _as_read(self, n, sock=None):
        # mqtt_as grows its input buffer to the largest message ever seen; a hostile
        # 64 KB publish would cost 128 KB of heap on a Pico W. Drain it in small reads
        # and hand the callback an empty payload and the size instead.
        if n > MAX_INBOUND:
            self._oversize = n
            left = n
            while left:
                k = min(left, _DRAIN_CHUNK)
                await self._as_read(k, sock)
                left -= k
            return memoryview(b"")
        # Upstream's read from here on, but it returns as soon as the bytes are there: its
        # pause after every read (asyncio.sleep_ms(0), a round of the scheduler) cost ~0.5 ms
        # per field of a message on a Pico W, and a PUBLISH is read in six.
        self.reads += 1
        if sock is None:
            sock = self._sock
        oflow = n - len(self._ibuf)
        if oflow > 0:  # as upstream: grow the buffer, with some room
            self._ibuf.extend(bytearray(oflow + 50))
            self._mvbuf = memoryview(self._ibuf)
        buffer = self._mvbuf
        size = 0
        t = ticks_ms()
        while size < n:
            if self._timeout(t) or not self.isconnected():
                raise OSError(-1, "Timeout on socket read")
            try:
                got = sock.readinto(buffer[size:], n - size)
            except OSError as e:
                got = None
                if e.args[0] not in mqtt_as.BUSY_ERRORS:
                    raise
            if got == 0:
                raise OSError(-1, "Connection closed by host")
            if got is not None:
                size += got
                t = self.last_rx = ticks_ms()
                if size == n:
                    break
            await asyncio.sleep_ms(0)
        if n == 2 and self._in_connect and self._connack is None:
            # The first 2-byte read while connecting is the CONNACK's flags and reason
            # code. Flag bit 0 is Session Present: the broker kept our session, as
            # asked. The pinned mqtt_as rejects any flag ("CONNACK flags not 0"), so
            # without this the device never reconnects; clear the bit.
            buffer[0] &= 0xFE
            self._connack = buffer[1]
        return buffer[:n]

    async def wifi_connect(self, quick=False):
        # mqtt_as's own loop polls a join once a second for up to 60 s and stops early on a
        # failed join only on some platforms; then it checks the link for 5 s. A router that
        # comes back mid-attempt would cost a minute. The CYW43 driver ends a failed join with
        # a status outside _JOINING (STAT_NO_AP_FOUND after its scan, STAT_CONNECT_FAIL,
        # STAT_WRONG_PASSWORD, or STAT_IDLE after a de-auth), so any such status ends the
        # attempt at once and _keep_connected tries again a second later.
        s = self._sta_if
        self.hw.wifi_start(s)
        s.connect(self._ssid, self._wifi_pw)
        waited = 0
        while not s.isconnected():
            status = s.status()
            if status not in self.hw.WIFI_JOINING or waited >= JOIN_TIMEOUT_MS:
                s.disconnect()
                self._short = 0  # an outage, not a fight over the client id
                raise OSError("Wi-Fi join failed (status %d)" % status)
            await asyncio.sleep_ms(JOIN_POLL_MS)
            waited += JOIN_POLL_MS
        if not quick:
            for _ in range(STABLE_S):
                await asyncio.sleep(1)
                if not s.isconnected():
                    raise OSError("Wi-Fi link unstable")

    def backoff_ms(self):
        """The wait before the next broker attempt: 0 after a success, else random up to
        BACKOFF_FIRST_MS doubled per further failure, at most BACKOFF_MAX_MS."""
        if not self.failures:
            return 0
        bound = min(BACKOFF_FIRST_MS << min(self.failures - 1, 8), BACKOFF_MAX_MS)
        return getrandbits(16) * bound >> 16

    def _failed(self):
        # Counted, and the next node of the cluster is tried next (mqtt.servers).
        self.failures += 1
        if len(self.servers) > 1:
            self._node = (self._node + 1) % len(self.servers)
            self.server, self.port = self.servers[self._node]
            self._addr = self._addrs.get(self._node)
            if "server_hostname" in self._ssl_params:
                self._ssl_params["server_hostname"] = self.server  # SNI and the name checked
            log("next broker node %s:%d" % (self.server, self.port))

    async def connect(self, *, quick=False):
        if self._hold_s:  # the broker's last reason code asked for a pause (mqtt5.reason)
            await asyncio.sleep(self._hold_s)
            self._hold_s = 0
        tried, v5 = self.failures, self.mqttv5
        try:
            await super().connect(quick=quick)
        except OSError:
            # At the first connect mqtt_as resolves the node's name before _connect: a name
            # that does not resolve, Wi-Fi being up, is a failed node too (a fallback to 3.1.1
            # is not: that node is tried again).
            if self.failures == tried and self.mqttv5 == v5 and self._sta_if.isconnected():
                self._failed()
            self._short = 0  # in a fight over the client id every CONNECT succeeds
            raise
        self._up_at = ticks_ms()

    def _reconnect(self):
        if self._isconnected:  # the connection is lost: counts as a failure
            self._failed()
        super()._reconnect()

    async def _connect(self, clean):
        await asyncio.sleep_ms(self.backoff_ms())
        self._connack = None
        v5 = self.mqttv5
        try:
            if self._addr is None:  # a node not tried before (mqtt.servers)
                self._addr = socket.getaddrinfo(self.server, self.port)[0][-1]
            self._addrs[self._node] = self._addr
            # mbedtls reports a failed certificate check as ValueError; mqtt_as retries only
            # after OSError, so one bad handshake would end its reconnect loop for good.
            try:
                await super()._connect(clean)
            except ValueError as e:
                raise OSError("TLS: " + "; ".join(x for x in str(e).split("\n") if x))
            except OSError:
                if self._connack:
                    self._refused("CONNACK", self._connack)
                raise
        except Exception:
            if self.mqttv5 == v5:  # a fallback to 3.1.1 tries this node again, not the next
                self._failed()
            raise
        self.failures = 0
        # mqtt_as writes a publish in several small writes; with Nagle's algorithm the second
        # waits for the broker's delayed ACK (40 ms on Linux), so half the answers came 40 ms
        # late. A TLS socket has no setsockopt here and keeps Nagle.
        if hasattr(self._sock, "setsockopt"):
            # The unix port has no constants: Linux's values. lwIP (rp2) has its own.
            level = getattr(socket, "IPPROTO_TCP", 6)
            self._sock.setsockopt(level, getattr(socket, "TCP_NODELAY", 1), 1)

    async def _handle_msg(self):
        # As upstream, but a backlog (e.g. released after an outage) is read without a pause
        # per message, and an idle socket is waited on instead of read every 5 ms, which cost
        # a request up to 5 ms. Any failure, not only OSError (upstream asserts on a closed
        # socket), leads to a reconnect.
        self._streak = 0
        self._idle_since = None
        ended = None
        try:
            while self.isconnected():
                seen = self.reads
                self._oversize = 0  # what a packet drained belongs to that packet only
                async with self.lock:
                    await self.wait_msg()
                if self.reads != seen:
                    await asyncio.sleep_ms(0)
                    continue
                if self._idle_since is None:
                    self._idle_since = ticks_ms()
                due = self.reads - self._collected >= COLLECT_READS
                try:
                    await asyncio.wait_for_ms(self._readable(), QUIET_MS if due else IDLE_WAIT_MS)
                except asyncio.TimeoutError:
                    if due:
                        gc.collect()
                        self._collected = self.reads
        except Exception as e:
            ended = e
        self._ended(ended)
        self._reconnect()
