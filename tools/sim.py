# SPDX-License-Identifier: MIT
"""./build.sh sim CONFIG: run the controller on the MicroPython unix port (see
ports/unix/sim.py)."""

import os
import pathlib
import sys

# How the simulator is started is the tests' machinery too (tests/support/deps.py), and tools/
# builds on tests/support, never the other way round (HACKING.md).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "support"))

import deps  # noqa: E402


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip() + "\n\nusage: ./build.sh sim CONFIG [--wifi-down]")
        return 0 if argv else 2
    args, env = deps.simulator_command(argv[0], *argv[1:])
    os.execve(args[0], args, env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
