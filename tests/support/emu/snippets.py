# SPDX-License-Identifier: MIT
"""Code run on the board's REPL, with the readers of what it prints: TLS handshakes with the
controller's own parameters, and its client's refusals of a wrong CA and a wrong name."""

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
for what, key, value in (("bad_ca", "ca_file", "other-ca.pem"),
                         ("bad_name", "server", "alias.tinyctrl.test")):
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
