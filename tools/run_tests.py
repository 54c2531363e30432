# SPDX-License-Identifier: MIT
"""./build.sh test [--quick | --soak] [pytest args]: install what the tests need, then run them.

build.sh runs this from the project's virtual environment (.venv), with requirements.txt in it.

Tiers (README, "Development"):
  --quick  unit tests (CPython and the MicroPython unix port), lint, the simulator end to end
           against a loopback mosquitto and the host tool: a few minutes, before every commit
  (none)   all of it: also the firmware on the emulated Pico W, a real Home Assistant and the
           phone panel in Chromium
  --soak   all of it with the long reliability variants (CI)
Tests whose pinned sources or firmware are absent skip with the reason. Every run ends with
its slowest tests, so the time budget stays visible.
"""

import importlib.util
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = ["tests/unit", "tests/test_lint.py", "tests/e2e", "tests/host", "-m", "not slow"]
SLOWEST = "--durations=15"
APT_COMMANDS = {
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


def ensure_apt_packages():
    missing = sorted(set(p for c, p in APT_COMMANDS.items() if shutil.which(c) is None))
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    if sudo and not shutil.which("sudo"):
        sys.exit(
            "run_tests: missing %s; install them with: apt-get install %s"
            % (missing, " ".join(missing))
        )
    print("run_tests: installing %s" % " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.call(sudo + ["apt-get", "update", "-qq"], env=env) or subprocess.call(
        sudo + ["apt-get", "install", "-y", "-qq"] + missing, env=env
    ):
        sys.exit(
            "run_tests: could not install %s; run: apt-get install %s"
            % (missing, " ".join(missing))
        )


def main(argv):
    ensure_apt_packages()
    if importlib.util.find_spec("pytest") is None:
        sys.exit("run_tests: pytest is not installed here; run the tests with ./build.sh test")
    if "--quick" in argv:
        argv = [a for a in argv if a != "--quick"] + QUICK
    if not any(a.startswith("--durations") for a in argv):
        argv = argv + [SLOWEST]
    args = [sys.executable, "-m", "pytest", "-ra"] + argv  # pyproject.toml: testpaths
    return subprocess.call(args, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
