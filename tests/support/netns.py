# SPDX-License-Identifier: MIT
"""Private network namespaces for what must never touch a real network: the emulated Pico W,
Home Assistant, mosquitto with a WebSockets listener (Debian's binds every interface), a browser.

A harness re-runs itself in a new namespace with `command()` (`unshare -n python3 -m harness
--inside ...`) and there calls `enter()` first: the new namespace holds only `lo`, down until
brought up here; `scenario()` loads the function it is to run.
"""

import importlib.util
import os
import pathlib
import shutil
import socket
import subprocess
import sys

SUPPORT = os.path.dirname(os.path.abspath(__file__))


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


def command(module, args=(), env=None):
    """The argv and environment that re-run `module` (one under tests/support, e.g.
    "emu.runner") in a fresh network namespace as `python3 -m module --inside ARGS`, with
    tests/support first on its PYTHONPATH (`env`, default this process's, is copied)."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SUPPORT, env.get("PYTHONPATH")]))
    argv = ["unshare", "-n", sys.executable, "-m", module, "--inside"] + [str(a) for a in args]
    return argv, env


def scenario(spec):
    """The function a "path/to/file.py:function" names, its file loaded as a module."""
    path, _, name = spec.rpartition(":")
    module_spec = importlib.util.spec_from_file_location(pathlib.Path(path).stem, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return getattr(module, name)
