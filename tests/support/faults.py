# SPDX-License-Identifier: MIT
"""Fault injection for the end-to-end tests: the outages the seed's author made by hand.

- `DropProxy`: a loopback TCP proxy between the device and the broker. `drop()` stops
  forwarding without closing anything, like a firewall rule that silently discards packets;
  `resume()` lets traffic through again.
- `broker_down(broker)`: the broker process killed (SIGKILL, no clean shutdown) and started
  again on the same port with its persistent sessions (use `persistent_broker()`).
- `wifi_down(sim)`: the simulated Wi-Fi link down, then back.
- `Only311`: a broker that speaks MQTT 3.1.1 only (CONNACK 0x01 to an MQTT 5 CONNECT), in
  front of the real mosquitto.

Everything listens on and connects to 127.0.0.1 only.
"""

import contextlib
import os
import queue
import select
import socket
import threading
import time

from services import Mosquitto

LOOPBACK = "127.0.0.1"
_CHUNK = 65536
_HIGH_WATER = 1 << 20  # stop reading a side while this much waits for the other


class _Link:
    """One proxied connection: the device's socket, the broker's, and bytes owed to each."""

    def __init__(self, client, upstream, held=b""):
        self.client = client
        self.upstream = upstream
        self.owed = {client: bytearray(), upstream: bytearray(held)}
        self.closing = False  # one end closed: flush what the other is owed, then close

    def peer(self, sock):
        return self.upstream if sock is self.client else self.client

    def sockets(self):
        return (self.client, self.upstream)

    def close(self):
        for s in self.sockets():
            s.close()


def _drain(sock, into):
    """Read everything `sock` has without blocking; False if it is closed or broken."""
    while True:
        try:
            data = sock.recv(_CHUNK)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        into += data


class DropProxy:
    """Forwards 127.0.0.1:port to 127.0.0.1:upstream_port, one thread, select()-driven.

    While dropped nothing is read, written, accepted or closed: both ends see silence, as
    behind a firewall that discards packets. On resume, bytes held meanwhile are delivered
    (TCP would have retransmitted them), except on connections an end closed meanwhile:
    those are closed without delivering anything, as a peer answers late segments of a
    connection it has given up on with a reset. If the broker refuses a connection, the
    device's side is closed at once, as a refused connect would be.
    """

    def __init__(self, upstream_port, port=0):
        self.upstream_port = upstream_port
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((LOOPBACK, port))
        self._listener.listen(16)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._commands = queue.Queue()
        self._links = []
        self._forwarding = True
        self._thread = threading.Thread(target=self._run, name="DropProxy", daemon=True)
        self._thread.start()

    # ---- control, from any thread: each call returns once the proxy thread has acted on it

    def drop(self):
        self._command("drop")

    def resume(self):
        self._command("resume")

    def close(self):
        self._command("close")
        self._thread.join(5)

    @contextlib.contextmanager
    def dropped(self):
        """Traffic black-holed inside the block, forwarded again after it."""
        self.drop()
        try:
            yield
        finally:
            self.resume()

    def _command(self, name):
        done = threading.Event()
        self._commands.put((name, done))
        self._wake_w.send(b"x")
        if not done.wait(10):
            raise RuntimeError("proxy thread did not answer %r" % name)

    # ---- the proxy thread

    def _run(self):
        try:
            while self._serve_once():
                pass
        finally:
            for link in self._links:
                link.close()
            self._listener.close()
            self._wake_r.close()
            self._wake_w.close()

    def _serve_once(self):
        readers, writers = [self._wake_r], []
        if self._forwarding:
            readers.append(self._listener)
            for link in self._links:
                for s in link.sockets():
                    if not link.closing and len(link.owed[link.peer(s)]) < _HIGH_WATER:
                        readers.append(s)
                    if link.owed[s]:
                        writers.append(s)
        readable, writable, _ = select.select(readers, writers, [])
        if self._wake_r in readable:
            self._wake_r.recv(64)
            while not self._commands.empty():
                name, done = self._commands.get()
                if name == "close":
                    done.set()
                    return False
                if name == "resume" and not self._forwarding:
                    self._release()
                self._forwarding = name == "resume"
                done.set()
            return True  # the socket lists may be stale after a command
        for s in writable:
            self._write(s)
        for s in readable:
            if s is self._listener:
                self._accept()
            else:
                self._read(s)
        self._links = [link for link in self._links if not self._finished(link)]
        return True

    def _link_of(self, sock):
        for link in self._links:
            if sock in link.sockets():
                return link
        return None

    def _read(self, sock):
        link = self._link_of(sock)
        if link is None or link.closing:
            return
        if not _drain(sock, link.owed[link.peer(sock)]):
            link.closing = True

    def _write(self, sock):
        link = self._link_of(sock)
        if link is None:
            return
        owed = link.owed[sock]
        try:
            sent = sock.send(owed)
        except BlockingIOError:
            return
        except OSError:
            link.closing = True
            owed.clear()
            return
        del owed[:sent]

    def _finished(self, link):
        if link.closing and not any(link.owed.values()):
            link.close()
            return True
        return False

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except BlockingIOError:
                return
            client.setblocking(False)
            held = bytearray()
            if not _drain(client, held):  # the device gave up while it waited to be accepted
                client.close()
                continue
            try:
                upstream = socket.create_connection((LOOPBACK, self.upstream_port), timeout=2)
            except OSError:
                client.close()
                continue
            upstream.setblocking(False)
            self._links.append(_Link(client, upstream, held))

    def _release(self):
        """Resume after a drop: reset connections an end gave up on, keep the rest."""
        alive = []
        for link in self._links:
            ok = _drain(link.client, link.owed[link.upstream]) and _drain(
                link.upstream, link.owed[link.client]
            )
            if ok and not link.closing:
                alive.append(link)
            else:
                link.close()
        self._links = alive
        self._accept()


def persistent_broker():
    """A loopback mosquitto whose sessions survive a kill. Started as root, mosquitto drops to
    the user `mosquitto`, which cannot write the private directory services.Mosquitto gives it,
    and silently saves nothing; it stays root then."""
    return Mosquitto(extra_conf="user root\n" if os.geteuid() == 0 else "")


@contextlib.contextmanager
def broker_down(broker):
    """The broker killed inside the block and started again on the same port after it.

    SIGKILL, not a clean shutdown: mosquitto keeps sessions only through its autosave
    (every second or two, tests/support/services.py), and a crash loses what changed since. That is
    the broker's durability, not the device's, so the kill waits for the next autosave: the
    sessions as they are when this is called survive."""
    saved = os.path.join(broker.dir, "mosquitto.db")
    called = time.time()
    end = time.monotonic() + 10
    while not (os.path.exists(saved) and os.stat(saved).st_mtime > called):
        if time.monotonic() > end:
            raise RuntimeError(
                "the broker saves no sessions (%s is not written): a restart would lose them"
                % saved
            )
        time.sleep(0.05)
    broker.stop(kill=True)
    try:
        yield
    finally:
        broker.start()


@contextlib.contextmanager
def wifi_down(sim):
    """The simulator's Wi-Fi link down inside the block (the station disassociates), up after."""
    sim.wifi(0)
    try:
        yield
    finally:
        sim.wifi(1)


class Only311:
    """A broker front that answers an MQTT 5 CONNECT as a 3.1.1-only broker does (CONNACK
    0x01, MQTT 3.1.1 3.1.2.2) and passes anything else to the real mosquitto behind it."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.levels = []  # the protocol level of every CONNECT seen
        self.sock = socket.create_server((LOOPBACK, 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        c.settimeout(10)
        try:
            head = self._connect_packet(c)
        except (OSError, ValueError):
            return c.close()
        level = head[-1]
        self.levels.append(level)
        if level == 5:
            # As a broker does: the whole CONNECT read, then the CONNACK, then the close. A
            # close with unread data would reset the connection and lose the CONNACK.
            c.sendall(b"\x20\x02\x00\x01")
            c.shutdown(socket.SHUT_WR)
            try:
                while c.recv(4096):
                    pass
            except OSError:
                pass
            return c.close()
        u = socket.create_connection((LOOPBACK, self.upstream))
        u.sendall(head)
        for a, b in ((c, u), (u, c)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _connect_packet(c):
        """The client's CONNECT packet up to its protocol level byte, and the rest of the
        packet read too when the level is 5 (returned with the level last)."""

        def read(n):
            out = b""
            while len(out) < n:
                chunk = c.recv(n - len(out))
                if not chunk:
                    raise ValueError("closed")
                out += chunk
            return out

        head = read(1)
        size = shift = 0
        while True:  # the remaining length, a variable byte integer
            b = read(1)
            head += b
            size |= (b[0] & 0x7F) << shift
            shift += 7
            if not b[0] & 0x80:
                break
        head += read(7)  # "\0\4MQTT" and the level
        if head[-1] == 5:
            read(size - 7)
        return head

    def _pipe(self, a, b):
        try:
            while True:
                data = a.recv(4096)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.sock.close()
