# SPDX-License-Identifier: MIT
"""Where guest traffic may go: the guest's few destinations, the one routing decision, the
network bridge that enforces it, and the DNS stub that names the destinations."""

import asyncio
import ipaddress
import socket
import struct
import threading

from emu import log
from rp2040py.external.cyw43 import nat, net

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
            try:
                self._tcp.maybe_handle(eth, ip)
            except OSError:
                # The far side is gone (a killed broker): the reflector's write_eof on its socket
                # raises ENOTCONN, which would crash the emulator from inside the Wi-Fi model's
                # bus. Its reader sees the reset and closes the flow toward the guest itself.
                pass
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


class DnsStub(threading.Thread):
    """Answers DNS A queries for `hosts` ({name: ipv4}) on 127.0.0.1; NXDOMAIN for anything
    else."""

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
