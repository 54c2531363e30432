# SPDX-License-Identifier: MIT
"""The phone panel's test lab: mosquitto with logins and a WebSockets listener, the
simulator, the built page (build/panel) on a loopback web server, and Debian's headless Chromium
driven by Playwright.

Debian's mosquitto binds a WebSockets listener to every interface whatever address it is given,
so the whole scenario runs in a network namespace holding only `lo`:

    python3 tests/support/panel_lab.py [pytest args]

re-runs itself under `unshare -n`, brings `lo` up and runs tests/panel/panel_checks.py with
pytest (tests/panel/test_panel.py does this under the heavy lock). Nothing here can reach
beyond loopback: `Lab` refuses to start outside such a namespace.
"""

import base64
import functools
import http.server
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import netns

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGE_DIR = ROOT / "build" / "panel"
CHECKS = ROOT / "tests" / "panel" / "panel_checks.py"
CHROMIUM = "/usr/bin/chromium"
# Each part of the scenario logs in with its own user, so no password can leak from one to another.
USERS = {"pico": "device-broker-pw-1", "phone": "phone-broker-pw-2", "spy": "spy-broker-pw-3"}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def missing_requirements():
    """Why the browser scenario cannot run here, or None."""
    import simharness

    why = simharness.missing_requirements()
    if why:
        return why
    if not os.access(CHROMIUM, os.X_OK):
        return "chromium not installed: apt-get install chromium"
    for tool in ("unshare", "ip", "mosquitto_passwd"):
        if not shutil.which(tool):
            return "%s not installed (see requirements-apt.txt)" % tool
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (requirements.txt)"
    if not (PAGE_DIR / "panel.js").is_file():
        return "the panel is not built: ./build.sh panel"
    why = netns.unshare_available()
    if why:
        return why
    return None


def broker():
    """A started services.Mosquitto that wants a login, with a WebSockets listener; its
    `.ws_port` is where the page connects."""
    from services import Mosquitto, free_port

    ws_port = free_port()
    mosq = Mosquitto(extra_conf="listener %d 127.0.0.1\nprotocol websockets\n" % ws_port)
    # mosquitto reads the password file after dropping root for its own user: not in mosq.dir.
    passwords = os.path.join(tempfile.mkdtemp(prefix="tinyctrl-passwd-"), "passwd")
    os.chmod(os.path.dirname(passwords), 0o755)
    for i, (user, password) in enumerate(USERS.items()):
        create = ["-c"] if i == 0 else []
        subprocess.run(
            ["mosquitto_passwd", "-b"] + create + [passwords, user, password],
            check=True,
            capture_output=True,
        )
    os.chmod(passwords, 0o644)
    with open(mosq.conf) as f:
        conf = f.read().replace("allow_anonymous true", "allow_anonymous false")
    with open(mosq.conf, "w") as f:
        f.write(conf + "password_file %s\n" % passwords)
    mosq.ws_port = ws_port
    return mosq.start()


class WebServer:
    """build/panel over HTTP on loopback: localhost is a secure context, so WebCrypto works."""

    def __init__(self, directory=PAGE_DIR):
        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

        handler = functools.partial(Quiet, directory=str(directory))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = "http://localhost:%d/" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Spy:
    """A paho client on '#': every message anyone publishes on the broker, in order. Registers in
    simharness.CLIENTS, so the suite's leak check (leakcheck.py) reads these too."""

    def __init__(self, port):
        import paho.mqtt.client as mqtt
        import simharness

        self.topic = "#"
        self.messages = []
        self._cond = threading.Condition()
        self.mqtt = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="spy")
        self.mqtt.username_pw_set("spy", USERS["spy"])
        self.mqtt.on_message = self._on_message
        subscribed = threading.Event()
        self.mqtt.on_subscribe = lambda *a: subscribed.set()
        self.mqtt.connect("127.0.0.1", port, keepalive=30)
        self.mqtt.subscribe("#", qos=1)
        self.mqtt.loop_start()
        if not subscribed.wait(10):
            raise RuntimeError("the spy could not subscribe")
        simharness.CLIENTS.append(self)

    def _on_message(self, client, userdata, msg):
        with self._cond:
            self.messages.append((time.monotonic(), msg.payload))
            self._cond.notify_all()

    def mark(self):
        with self._cond:
            return len(self.messages)

    def requests(self, since=0):
        """The JSON objects published since `since` that are not the device's output."""
        out = []
        with self._cond:
            payloads = [p for _, p in self.messages[since:]]
        for p in payloads:
            try:
                obj = json.loads(p)
            except ValueError:
                continue
            if isinstance(obj, dict) and "FROM" not in obj:
                out.append(obj)
        return out

    def _wait_first(self, seen, match, timeout, what):
        """The first of `seen()` that `match` accepts, waiting up to `timeout` for it."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = [x for x in seen() if match(x)]
            if found:
                return found[0]
            with self._cond:
                self._cond.wait(0.2)
        raise AssertionError("no such %s; seen: %s" % (what, seen()))

    def wait_request(self, match, since=0, timeout=20):
        return self._wait_first(lambda: self.requests(since), match, timeout, "request")

    def wait_payload(self, match, since=0, timeout=20):
        """The first payload published since `since` that `match` accepts."""
        return self._wait_first(lambda: self.payloads()[since:], match, timeout, "payload")

    def payloads(self):
        with self._cond:
            return [p for _, p in self.messages]

    def close(self):
        self.mqtt.loop_stop()
        self.mqtt.disconnect()


def secret_forms(secret):
    """Byte strings that would give `secret` away: leakcheck.forms() (as written, hex, Base32
    decoded, ...) plus the raw key in base64, how a web page would most likely store bytes."""
    import leakcheck

    out = list(leakcheck.forms(secret))
    b32 = "".join(c for c in secret.upper() if c not in " =-")
    try:
        raw = base64.b32decode(b32 + "=" * (-len(b32) % 8))
    except ValueError:
        raw = secret.encode()
    for form in (base64.b64encode(raw), base64.b64encode(secret.encode())):
        out += [form, form.rstrip(b"=")]
    return out


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)


def run_inside(pytest_args):
    netns.enter()
    import pytest

    return pytest.main([str(CHECKS), "-p", "no:cacheprovider"] + pytest_args)


def run_isolated(pytest_args=(), **run):
    """Run the checks in a fresh network namespace; returns the CompletedProcess."""
    argv, env = netns.command("panel_lab", pytest_args, run.pop("env", None))
    return subprocess.run(argv, cwd=ROOT, env=env, **run)


def main(argv):
    if argv[:1] == ["--inside"]:
        return run_inside(argv[1:])
    return run_isolated(argv).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
