# Peter Hinch's mqtt_as, hardened for a shared broker and message floods.
import asyncio
import socket

from mqtt_as import MQTTClient

MAX_INBOUND = 1024  # payloads above this are drained, never buffered
_DRAIN_CHUNK = 256


class TinyMQTTClient(MQTTClient):
    def __init__(self, config):
        super().__init__(config)
        self.reads = 0
        self.oversize = 0  # size of the last drained payload, 0 if none

    async def _as_read(self, n, sock=None):
        # mqtt_as grows its input buffer to the largest message ever seen; a hostile
        # 64 KB publish would cost 128 KB of heap on a Pico W. Drain it in small reads
        # and hand the callback an empty payload with .oversize set instead.
        if n <= MAX_INBOUND:
            self.reads += 1
            data = await super()._as_read(n, sock)
            if n == 2 and self._in_connect:
                # The only 2-byte read while connecting is the CONNACK's flags and return
                # code. Flag bit 0 is Session Present: the broker kept our clean=False
                # session, as asked. The pinned mqtt_as rejects any flag ("CONNACK flags
                # not 0"), so without this the device never reconnects; clear the bit.
                data[0] &= 0xFE
            return data
        self.oversize = n
        left = n
        while left:
            k = min(left, _DRAIN_CHUNK)
            await super()._as_read(k, sock)
            left -= k
        return memoryview(b"")

    async def _connect(self, clean):
        # mbedtls reports a failed certificate check as ValueError; mqtt_as retries only
        # after OSError, so one bad handshake would end its reconnect loop for good.
        try:
            await super()._connect(clean)
        except ValueError as e:
            raise OSError("TLS: " + "; ".join(line for line in str(e).split("\n") if line))
        # mqtt_as writes a publish in several small writes; with Nagle's algorithm the second
        # waits for the broker's delayed ACK (40 ms on Linux), so half the answers came 40 ms
        # late (issue 10). A TLS socket has no setsockopt here and keeps Nagle.
        if hasattr(self._sock, "setsockopt"):
            # The unix port has no constants: Linux's values. lwIP (rp2) has its own.
            level = getattr(socket, "IPPROTO_TCP", 6)
            self._sock.setsockopt(level, getattr(socket, "TCP_NODELAY", 1), 1)

    async def _handle_msg(self):
        # As upstream, but a backlog (e.g. released after an outage) is read without
        # the 5 ms pause per message; the pause stays for an idle socket. Any failure,
        # not only OSError (upstream asserts on a closed socket), leads to a reconnect.
        try:
            while self.isconnected():
                seen = self.reads
                async with self.lock:
                    await self.wait_msg()
                await asyncio.sleep_ms(0 if self.reads != seen else 5)
        except Exception:
            pass
        self._reconnect()
