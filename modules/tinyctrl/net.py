# SPDX-License-Identifier: MIT
# The network code besides MQTT itself: TLS set-up for the broker connection and the
# public-IP lookup. (NTP is in ntp.py.)
import asyncio
import binascii
import json

from . import log

HTTP_LIMIT = 2048  # bytes of an IP lookup reply we read at most
PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"
PEM_END = b"-----END CERTIFICATE-----"


def der_certificate(data):
    """The first certificate of a PEM file as DER; DER is returned as it is. MicroPython's
    mbedtls is built without PEM parsing, so PEM cadata would fail as "invalid cert"."""
    begin = data.find(PEM_BEGIN)
    if begin < 0:
        return data
    end = data.find(PEM_END, begin)
    if end < 0:
        raise OSError("mqtt.ca_file: PEM certificate has no END line")
    try:
        return binascii.a2b_base64(data[begin + len(PEM_BEGIN) : end])
    except ValueError:
        raise OSError("mqtt.ca_file: the PEM certificate is not valid Base64")


def ssl_params(m):
    """mqtt_as's ssl_params for the `mqtt` config section."""
    import ssl

    params = {"server_hostname": m["server"]}  # SNI, and the name the certificate must carry
    if m["ca_file"]:
        try:
            with open(m["ca_file"], "rb") as f:
                data = f.read()
        except OSError:
            raise OSError(
                "mqtt.ca_file: cannot read %s; copy the CA certificate beside"
                " config.json" % m["ca_file"]
            )
        params["cadata"] = der_certificate(data)
        params["cert_reqs"] = ssl.CERT_REQUIRED
    else:
        log(
            "TLS without certificate verification (mqtt.tls_insecure):"
            " the broker is not authenticated"
        )
    return params


def _split_url(url):
    scheme, _, rest = url.partition("://")
    if scheme not in ("http", "https") or not rest:
        raise ValueError("ip_provider must be an http:// or https:// URL")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    return (
        scheme == "https",
        host,
        int(port) if port else (443 if scheme == "https" else 80),
        "/" + path,
    )


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
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=ctx), timeout_s
    )
    try:
        writer.write(
            ("GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: tinyctrl\r\n\r\n" % (path, host)).encode()
        )
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
