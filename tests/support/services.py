# SPDX-License-Identifier: MIT
"""Local stand-ins for everything the device talks to: an MQTT broker, NTP and a public-IP lookup.

Every service binds to loopback only. Tests, the simulator and the emulator harness use these so
no traffic leaves the machine.
"""

import contextlib
import http.server
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01


def free_port(kind=socket.SOCK_STREAM):
    with contextlib.closing(socket.socket(socket.AF_INET, kind)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.closing(socket.socket()) as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")


class ServerProcess:
    """A server process on loopback (its port `self.port`) that a test stops, or kills, and
    starts again on the same port."""

    proc = None

    def _spawn(self, argv, log_path, cwd=None):
        self.proc = subprocess.Popen(
            argv, cwd=cwd, stdout=open(log_path, "ab"), stderr=subprocess.STDOUT
        )
        wait_port(self.port)
        return self

    def stop(self, kill=False):
        if self.proc and self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


class Mosquitto(ServerProcess):
    """A mosquitto broker on loopback with persistence, restartable on the same port."""

    def __init__(self, port=None, extra_conf="", tls=None):
        if not shutil.which("mosquitto"):
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="tinyctrl-mosq-")
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.dir}/",
            "autosave_interval 1",
            "max_queued_messages 5000",
        ]
        if tls:  # dict with cafile, certfile, keyfile
            lines += [f"{k} {v}" for k, v in tls.items()]
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n" + extra_conf)

    def start(self):
        return self._spawn(["mosquitto", "-c", self.conf], os.path.join(self.dir, "log"))

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


class NtpServer(threading.Thread):
    """Answers SNTP requests with `clock()` (host time unless given) plus `offset` seconds;
    counts requests."""

    def __init__(self, offset=0.0, host="127.0.0.1", port=0, clock=time.time):
        super().__init__(daemon=True)
        self.offset = offset
        self.clock = clock  # unix seconds; emu.clock.EmulatedClock for the emulated board
        self.requests = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]
        self.start()

    def run(self):
        while True:
            try:
                data, addr = self.sock.recvfrom(512)
            except OSError:
                return
            if len(data) < 48:
                continue
            self.requests += 1
            now = self.clock() + self.offset + NTP_EPOCH_OFFSET
            secs, frac = int(now), int((now % 1) * 2**32)
            reply = bytearray(48)
            reply[0] = 0x24  # LI 0, version 4, mode 4 (server)
            reply[1] = 1  # stratum
            reply[24:32] = data[40:48]  # originate = client's transmit
            struct.pack_into("!II", reply, 32, secs, frac)  # receive
            struct.pack_into("!II", reply, 40, secs, frac)  # transmit
            self.sock.sendto(bytes(reply), addr)

    def close(self):
        self.sock.close()


class PublicIpServer:
    """An HTTP server answering any GET with {"ip": "<address>"}, like jsonip.com."""

    def __init__(self, address="203.0.113.7", host="127.0.0.1", port=0):
        self.address = address
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests += 1
                body = ('{"ip": "%s"}' % outer.address).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, port), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Redis:
    """A redis-server on loopback, in memory only: what the cluster's nodes share."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="tinyctrl-redis-")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=open(os.path.join(self.dir, "log"), "ab"),
            stderr=subprocess.STDOUT,
        )
        wait_port(self.port)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class AedesNode(ServerProcess):
    """One node of a broker cluster on loopback: aedes (tests/support/broker_cluster/node.mjs,
    run from `folder`, deps.cluster_broker_dir()) keeping its sessions in `redis` and
    exchanging messages with the other nodes through it. Killable, restartable."""

    def __init__(self, folder, redis, name, port=None):
        self.folder, self.redis, self.name = folder, redis, name
        self.port = port or free_port()
        self.log = os.path.join(redis.dir, "aedes-%s.log" % name)

    def start(self):
        argv = ["node", "node.mjs", str(self.port), str(self.redis.port), self.name]
        return self._spawn(argv, self.log, cwd=self.folder)
