# SPDX-License-Identifier: MIT
"""The lab a scenario runs in: the broker, NTP, public-IP and DNS services on loopback, the
routes from the guest's destinations to them, and the boards it boots."""

import json
import os
import pathlib
import tempfile
import time

from certs import make_ca, make_server_cert
from emu.board import PicoW
from emu.clock import EmulatedClock, NtpFix
from emu.isolation import (
    BROKER_ADDR,
    DNS_PORT,
    HOSTS,
    NTP_ADDR,
    PUBLIC_IP_ADDR,
    TLS_NAME,
    TLS_PORT,
    DnsStub,
    Router,
)
from netns import assert_isolated
from rp2040py.external.cyw43 import nat


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

    def boot(
        self, config=None, files=None, timeout=120, trace_pins=(), ap_passphrase=None, left=None
    ):
        """Boot the UF2 with `config` (a dict, written as JSON, or bytes/str written as is) as
        config.json, plus any other `files`; no config.json when `config` is None. The states
        of `trace_pins` are recorded from the first instruction on (PicoW.trace). The access
        point asks for `ap_passphrase` (None: any). `left`, {flash offset: bytes}, is what an
        earlier firmware left in flash, over the UF2 and filesystem (a UF2 writes only its own
        pages)."""
        files = dict(files or {})
        if config is not None:
            if isinstance(config, dict):
                config = json.dumps(config)
            files["config.json"] = config.encode() if isinstance(config, str) else config
        workdir = tempfile.mkdtemp(prefix="board-", dir=self.workdir)
        board = PicoW(self.uf2, files, self.router, workdir, self._on_udp_reply, ap_passphrase)
        self.boards.append(board)
        for offset, data in (left or {}).items():
            board.mcu.flash[offset : offset + len(data)] = data
        board.trace_pins(trace_pins)
        board.start(timeout)
        return board

    def start_tls_broker(self):
        """A second mosquitto: TLS where the guest's broker:TLS_PORT goes, and a plain listener
        for the test's own client, whose port this returns. Its certificates are made here in
        workdir/tls: a CA, a server certificate for TLS_NAME it signed (RSA 2048, as most
        brokers' are), and a second CA that signed nothing the broker has."""
        from services import Mosquitto, free_port

        self.certs = self.workdir / "tls"
        self.certs.mkdir()
        for ca in ("ca", "other-ca"):
            make_ca(self.certs, ca, key="rsa")
        make_server_cert(self.certs, "server", "ca", TLS_NAME, key="rsa")
        plain = free_port()
        self.tls_broker = Mosquitto(
            tls={"certfile": self.certs / "server.pem", "keyfile": self.certs / "server.key"},
            # root keeps root (the key file is root's alone), as faults.persistent_broker()
            # explains
            extra_conf=("user root\n" if os.geteuid() == 0 else "")
            + "listener %d 127.0.0.1\n" % plain,
        ).start()
        self.router.routes[("tcp", BROKER_ADDR[0], TLS_PORT)] = ("127.0.0.1", self.tls_broker.port)
        return plain

    def tls_files(self):
        """The CA certificates for the board's filesystem: the broker's, and one that signed
        nothing."""
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
