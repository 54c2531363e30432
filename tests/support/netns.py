# SPDX-License-Identifier: MIT
"""Private network namespaces for what must never touch a real network: the emulated Pico W,
Home Assistant, mosquitto with a WebSockets listener (Debian's binds every interface), a browser.

A harness re-runs itself as `unshare -n python3 harness.py --inside ...` and calls `enter()`
first: the new namespace holds only `lo`, down until brought up here.
"""
import shutil
import socket
import subprocess


def unshare_available():
    """None if `unshare -n` works here, else why not."""
    if not shutil.which("unshare"):
        return "unshare is not installed (util-linux)"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    if probe.returncode:
        return "unshare -n is not permitted here: %s" % probe.stderr.strip()
    return None


def assert_isolated():
    """Raise unless this process is in a network namespace that has nothing but loopback."""
    names = sorted(name for _, name in socket.if_nameindex())
    if names != ["lo"]:
        raise RuntimeError("not in an isolated network namespace (interfaces: %s)" % names)


def enter(multicast=False):
    """Inside a fresh namespace: bring `lo` up, with a multicast route if asked (zeroconf in
    Home Assistant fails without one), and check that loopback is all there is."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    if multicast:
        subprocess.run(["ip", "route", "add", "224.0.0.0/4", "dev", "lo"], check=True)
    assert_isolated()
