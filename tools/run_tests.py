# SPDX-License-Identifier: MIT
"""./build.sh test [--soak] [pytest args]: install what the tests need, then run them all.

build.sh runs this from the project's virtual environment (.venv), with requirements.txt in it.

Unit tests run under CPython and the MicroPython unix port; end-to-end tests run the simulator
against a loopback mosquitto; emulator tests boot build/PICO_W_TINYCTRL/firmware.uf2. Tests whose
pinned sources or firmware are absent skip with the reason.
"""
import importlib.util
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APT_COMMANDS = {"mosquitto": "mosquitto", "mosquitto_pub": "mosquitto-clients", "openssl": "openssl",
                "unshare": "util-linux", "ip": "iproute2", "chromium": "chromium", "node": "nodejs",
                "npm": "npm"}


def ensure_apt_packages():
    missing = sorted(set(p for c, p in APT_COMMANDS.items() if shutil.which(c) is None))
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    if sudo and not shutil.which("sudo"):
        sys.exit("run_tests: missing %s; install them with: apt-get install %s" % (missing, " ".join(missing)))
    print("run_tests: installing %s" % " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if (subprocess.call(sudo + ["apt-get", "update", "-qq"], env=env)
            or subprocess.call(sudo + ["apt-get", "install", "-y", "-qq"] + missing, env=env)):
        sys.exit("run_tests: could not install %s; run: apt-get install %s" % (missing, " ".join(missing)))


def main(argv):
    ensure_apt_packages()
    if importlib.util.find_spec("pytest") is None:
        sys.exit("run_tests: pytest is not installed here; run the tests with ./build.sh test")
    args = [sys.executable, "-m", "pytest", "-ra"] + argv  # pyproject.toml: testpaths
    return subprocess.call(args, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
