# SPDX-License-Identifier: MIT
"""A tinyctrl UF2 on rp2040py's emulated Pico W, with no way out to any real network.

One job per module: `image` (the UF2, its flash and filesystem), `isolation` (where guest
traffic may go), `cyw43` (the Wi-Fi chip), `board` (one emulated Pico W), `clock` (the time
the lab's NTP serves), `lab` (services, routes, boots), `configs` (the board's config.json),
`snippets` (code run on the board's REPL) and `runner` (a scenario in its own namespace:
`python3 -m emu.runner --uf2 UF2 SCENARIO_FILE:FUNCTION`, tests/support on the path).

Network safety, in three layers:
1. Everything that boots the emulator runs in its own network namespace holding only `lo`;
   `Lab` refuses to start anywhere else (`netns.assert_isolated()`).
2. rp2040py's CYW43 model relays guest traffic to the real network by default (`nat.py`: TCP
   via `asyncio.open_connection` to the guest's destination, UDP to the destination or, for
   DNS, to 1.1.1.1). `cyw43.IsolatedCyw43439` swaps that bridge for
   `isolation.IsolatedNatBridge` before the guest runs: ARP and DHCP are answered in-process as
   before, and every TCP connect and UDP datagram goes through `isolation.route()`, which maps
   the few guest destinations there to the services `Lab` started on 127.0.0.1 and refuses
   (and records) everything else.
3. The firmware image is always a local file: nothing here resolves a firmware tag, so
   rp2040py's download path (`utils/firmware_retrieve.py`) is never reached. No GDB or socket
   REPL server (the other places rp2040py opens sockets) is started.
"""

import sys


def log(*args):
    print("emu:", *args, file=sys.stderr, flush=True)
