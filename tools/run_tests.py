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
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# tests/support/deps.py knows the Debian packages the tests (and the bench) need.
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))

import deps  # noqa: E402

QUICK = ["tests/unit", "tests/test_lint.py", "tests/e2e", "tests/host", "-m", "not slow"]
SLOWEST = "--durations=15"


def main(argv):
    deps.ensure_debian_packages("run_tests")
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
