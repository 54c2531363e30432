# The two small network clients besides MQTT: SNTP and the public-IP lookup.
import asyncio
import json
import socket

from .clock import NTP_REQUEST, ntp_parse

HTTP_LIMIT = 2048  # bytes of an IP lookup reply we read at most


async def ntp_time(host, port, timeout_s=3):
    """Unix time from an SNTP server. getaddrinfo blocks; the watchdog timeout allows for it."""
    addr = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0][-1]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setblocking(False)
        s.sendto(NTP_REQUEST, addr)
        for _ in range(timeout_s * 20):
            await asyncio.sleep_ms(50)
            try:
                data = s.recv(64)
            except OSError:
                continue
            if data:
                return ntp_parse(data)
    finally:
        s.close()
    raise OSError("no NTP reply from %s" % host)


def _split_url(url):
    scheme, _, rest = url.partition("://")
    if scheme not in ("http", "https") or not rest:
        raise ValueError("ip_provider must be an http:// or https:// URL")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    return scheme == "https", host, int(port) if port else (443 if scheme == "https" else 80), "/" + path


def _ip_from(body):
    """The address in a jsonip/ipify style reply ({"ip": "..."}) or a bare one."""
    text = body.decode().strip()
    if text.startswith("{"):
        text = json.loads(text).get("ip", "")
    if not (0 < len(text) <= 45) or any(c not in "0123456789abcdefABCDEF.:" for c in text):
        raise ValueError("no IP address in the reply")
    return text


async def public_ip(url, timeout_s=10):
    tls, host, port, path = _split_url(url)
    ctx = None
    if tls:
        import ssl

        # The answer is informational; certificate checks stay with the MQTT connection.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ctx), timeout_s)
    try:
        writer.write(("GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: tinyctrl\r\n\r\n" % (path, host)).encode())
        await writer.drain()
        body = b""
        while len(body) <= HTTP_LIMIT:
            chunk = await asyncio.wait_for(reader.read(512), timeout_s)
            if not chunk:
                break
            body += chunk
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = body.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or head[9:12] != b"200":
        raise OSError("HTTP status %s" % head[9:12].decode())
    return _ip_from(body)
