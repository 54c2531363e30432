# SPDX-License-Identifier: MIT
"""A real Home Assistant core for the tests, installed once into a cache.

    python tests/support/homeassistant.py --install        install into the cache if missing
    python tests/support/homeassistant.py --inside FILE:FN  (in a namespace) run a scenario

`install()` makes a virtualenv with pyenv's Python 3.13.0 (the newest Python that
homeassistant 2025.4.4 supports is the machine's 3.13.0), installs homeassistant from PyPI, then,
constrained by its own package_constraints.txt, the requirements of every integration it always
loads (bootstrap's core and default integrations and their dependencies) plus mqtt, and of the
login module's MFA (pyotp, PyQRCode, pinned exactly): Home Assistant installs missing requirements
at run time,
which cannot work offline. `HomeAssistant` writes a config dir (configuration.yaml, the MQTT
config entry, a long-lived token in .storage/auth so the REST API works at once), starts
`hass -c DIR` and talks REST on loopback. It must run in a private network namespace
(`start_isolated`): `unshare -n`, `lo` up with a multicast route (zeroconf needs one).
"""

import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import netns

VERSION = "2025.4.4"
PYTHON = os.environ.get(
    "TINYCTRL_HA_PYTHON", os.path.expanduser("~/.pyenv/versions/3.13.0/bin/python3")
)
CACHE = os.path.join(
    os.environ.get("TINYCTRL_DEPS", os.path.expanduser("~/.cache/tinyctrl")),
    "homeassistant-" + VERSION,
)
HASS = os.path.join(CACHE, "bin", "hass")
_DONE = os.path.join(CACHE, ".installed")
# Integrations the test configuration sets up on top of the ones Home Assistant always loads.
CONFIGURED = ["mqtt", "api", "http", "logger"]
# Run with the venv's Python: every requirement of the integrations that will be set up.
_REQUIREMENTS = r"""
import json, os, sys
import homeassistant.bootstrap as b
import homeassistant.components as c
from homeassistant.auth.mfa_modules import notify, totp  # the login module's MFA
todo = set(b.CORE_INTEGRATIONS) | set(b.DEFAULT_INTEGRATIONS) | set(sys.argv[1:])
todo.discard("hassio")  # only under the Supervisor
seen, reqs = set(), set(totp.REQUIREMENTS + notify.REQUIREMENTS)
while todo:
    d = todo.pop()
    if d in seen:
        continue
    seen.add(d)
    path = os.path.join(os.path.dirname(c.__file__), d, "manifest.json")
    if os.path.exists(path):
        m = json.load(open(path))
        reqs.update(m.get("requirements", []))
        todo.update(m.get("dependencies", []))
print("\n".join(sorted(reqs)))
"""


def missing_requirements():
    """Why Home Assistant cannot be installed or run here, or None."""
    # Also with the cache present: its venv runs this very interpreter.
    if not os.path.exists(PYTHON):
        return (
            "Python 3.13.0 for Home Assistant not found at %s (pyenv install 3.13.0, or set "
            "TINYCTRL_HA_PYTHON)" % PYTHON
        )
    for tool in ("unshare", "ip", "mosquitto"):
        if not shutil.which(tool):
            return "%s is not installed" % tool
    return None


def install(log=sys.stderr):
    """Install homeassistant into CACHE unless it is there; returns the hass command."""
    if os.path.exists(_DONE):
        return HASS
    os.makedirs(os.path.dirname(CACHE), exist_ok=True)
    with open(CACHE + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time
        if os.path.exists(_DONE):
            return HASS
        print("homeassistant: installing %s into %s (minutes, once)" % (VERSION, CACHE), file=log)
        shutil.rmtree(CACHE, ignore_errors=True)  # a half-made one from an interrupted run
        subprocess.check_call([PYTHON, "-m", "venv", CACHE])
        pip = [
            os.path.join(CACHE, "bin", "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
        ]
        subprocess.check_call(pip + ["homeassistant==" + VERSION])
        python = os.path.join(CACHE, "bin", "python")
        site = subprocess.check_output(
            [
                python,
                "-c",
                "import homeassistant, os; print(os.path.dirname(homeassistant.__file__))",
            ],
            text=True,
        )
        constraints = os.path.join(site.strip(), "package_constraints.txt")
        reqs = subprocess.check_output(
            [python, "-c", _REQUIREMENTS] + CONFIGURED, text=True
        ).split()
        subprocess.check_call(pip + ["-c", constraints] + reqs)
        open(_DONE, "w").close()
    return HASS


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(issuer, key, lifetime_s):
    """An HS256 JWT as Home Assistant's auth makes for a refresh token (auth/__init__.py)."""
    now = int(time.time())
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps({"iss": issuer, "iat": now, "exp": now + lifetime_s}).encode())
    sig = hmac.new(key.encode(), ("%s.%s" % (head, body)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (head, body, _b64(sig))


class HomeAssistant:
    """One Home Assistant in `config_dir`, with MQTT on 127.0.0.1:`broker_port`."""

    def __init__(self, config_dir, broker_port, http_port, extra_yaml=""):
        self.dir = config_dir
        self.http_port = http_port
        self.proc = None
        os.makedirs(os.path.join(config_dir, ".storage"), exist_ok=True)
        with open(os.path.join(config_dir, "configuration.yaml"), "w") as f:
            f.write(
                "homeassistant:\n  name: tinyctrl test\n  latitude: 0\n  longitude: 0\n"
                "  elevation: 0\n  unit_system: metric\n  time_zone: UTC\n"
                "  country: US\n  currency: USD\n"
                "http:\n  server_host: 127.0.0.1\n  server_port: %d\n"
                "api:\nlogger:\n  default: warning\n  logs:\n"
                "    homeassistant.components.mqtt.client: info\n" % http_port
            )
            f.write(extra_yaml)
        now = "2025-01-01T00:00:00+00:00"
        self._store(
            "core.config_entries",
            1,
            {
                "entries": [
                    {
                        "entry_id": "01jtinyctrlmqtt00000000000",
                        "version": 1,
                        "minor_version": 2,
                        "domain": "mqtt",
                        "title": "127.0.0.1",
                        "source": "user",
                        "unique_id": None,
                        "data": {"broker": "127.0.0.1", "port": broker_port},
                        "options": {"discovery": True, "discovery_prefix": "homeassistant"},
                        "pref_disable_new_entities": False,
                        "pref_disable_polling": False,
                        "disabled_by": None,
                        "created_at": now,
                        "modified_at": now,
                        "discovery_keys": {},
                        "subentries": [],
                    }
                ]
            },
            minor=5,
        )
        user, token_id, key = secrets.token_hex(16), secrets.token_hex(16), secrets.token_hex(64)
        lifetime = 10 * 365 * 86400
        self._store(
            "auth",
            1,
            {
                "users": [
                    {
                        "id": user,
                        "group_ids": ["system-admin"],
                        "is_owner": True,
                        "is_active": True,
                        "name": "tester",
                        "system_generated": False,
                        "local_only": False,
                    }
                ],
                "groups": [
                    {"id": "system-admin", "name": "Administrators"},
                    {"id": "system-users", "name": "Users"},
                    {"id": "system-read-only", "name": "Read Only"},
                ],
                "credentials": [],
                "refresh_tokens": [
                    {
                        "id": token_id,
                        "user_id": user,
                        "client_id": None,
                        "client_name": "tinyctrl",
                        "client_icon": None,
                        "token_type": "long_lived_access_token",
                        "created_at": now,
                        "access_token_expiration": float(lifetime),
                        "token": secrets.token_hex(64),
                        "jwt_key": key,
                        "last_used_at": None,
                        "last_used_ip": None,
                        "expire_at": None,
                        "credential_id": None,
                        "version": VERSION,
                    }
                ],
            },
            minor=1,
        )
        self.token = _jwt(token_id, key, lifetime)

    def _store(self, key, version, data, minor):
        with open(os.path.join(self.dir, ".storage", key), "w") as f:
            json.dump({"version": version, "minor_version": minor, "key": key, "data": data}, f)

    def start(self, timeout=240):
        """Start hass and wait until it is running with MQTT connected."""
        self.proc = subprocess.Popen(
            [HASS, "-c", self.dir, "--log-file", self.log_path, "--log-no-color"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # not the tests' PYTHONPATH: this file would shadow the homeassistant package
            env=dict((k, v) for k, v in os.environ.items() if k != "PYTHONPATH"),
        )
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    "hass exited (%s):\n%s" % (self.proc.returncode, self.log()[-3000:])
                )
            with contextlib.suppress(OSError, ValueError):
                if (
                    self.api("GET", "config").get("state") == "RUNNING"
                    and "MQTT client initialized, birth message sent" in self.log()
                ):
                    return self
            time.sleep(1)
        raise RuntimeError("hass did not start in %d s:\n%s" % (timeout, self.log()[-3000:]))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    @property
    def log_path(self):
        return os.path.join(self.dir, "home-assistant.log")

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def api(self, method, path, body=None):
        req = urllib.request.Request(
            "http://127.0.0.1:%d/api/%s" % (self.http_port, path),
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": "Bearer " + self.token, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read().decode()
        try:
            return json.loads(text)
        except ValueError:
            return text

    def states(self):
        return dict((s["entity_id"], s) for s in self.api("GET", "states"))

    def state(self, entity_id):
        try:
            return self.api("GET", "states/" + entity_id)["state"]
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def call(self, domain, service, **data):
        return self.api("POST", "services/%s/%s" % (domain, service), data)

    def template(self, text):
        return self.api("POST", "template", {"template": text})

    def wait_state(self, entity_id, wanted, timeout):
        """Seconds until entity_id's state is `wanted` (a value or a predicate)."""
        start = time.monotonic()
        ok = wanted if callable(wanted) else (lambda s: s == wanted)
        seen = None
        while time.monotonic() - start < timeout:
            seen = self.state(entity_id)
            if ok(seen):
                return time.monotonic() - start
            time.sleep(0.2)
        raise AssertionError(
            "%s stayed %r (wanted %r) for %d s" % (entity_id, seen, wanted, timeout)
        )


def start_isolated(scenario, **popen):
    """Run `scenario` ("file.py:function", called with `report`) in a fresh network namespace;
    it reports one JSON line per check on stdout."""
    argv, env = netns.command("homeassistant", [scenario], popen.pop("env", None))
    return subprocess.Popen(argv, env=env, **popen)


def report(name, ok, detail=""):
    print(json.dumps({"check": name, "ok": bool(ok), "detail": str(detail)}), flush=True)


def _inside(scenario):
    netns.enter(multicast=True)
    netns.scenario(scenario)(report)


def main(argv):
    if argv[:1] == ["--install"]:
        print(install())
        return 0
    if argv[:1] == ["--inside"] and len(argv) == 2:
        _inside(argv[1])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
