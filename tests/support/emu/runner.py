# SPDX-License-Identifier: MIT
"""Run a scenario on the emulated Pico W in its own network namespace:

    PYTHONPATH=tests/support python3 -m emu.runner --uf2 build/PICO_W_TINYCTRL/firmware.uf2 \\
        SCENARIO_FILE:FUNCTION [ARGS]

runs FUNCTION(lab, *ARGS) from SCENARIO_FILE in a fresh network namespace (`unshare -n`, needs
root) with a local broker, NTP server, public-IP server and DNS stub; the process exits 0 when
the scenario returns and 1 when it raises. Tests and benchmarks call `start_isolated()`, which
starts the same process from Python and returns its Popen.
"""

import argparse
import pathlib
import subprocess
import sys
import tempfile
import traceback

import netns
from emu import log
from emu.image import DEFAULT_UF2
from emu.lab import Lab


def start_isolated(scenario, uf2=DEFAULT_UF2, args=(), niceness=0, **popen):
    """Start `scenario` ("path/to/file.py:function", called with a `Lab` and `args`) in a fresh
    network namespace, at `niceness` (nice(1)); returns the Popen. `popen` goes to
    subprocess.Popen (e.g. stdout=)."""
    argv, env = netns.command(
        "emu.runner", ["--uf2", uf2, scenario, *args], popen.pop("env", None)
    )
    if niceness:
        argv = ["nice", "-n", str(niceness)] + argv
    return subprocess.Popen(argv, env=env, **popen)


def _run_inside(uf2, scenario, args):
    netns.enter()
    function = netns.scenario(scenario)
    with tempfile.TemporaryDirectory(prefix="tinyctrl-emu-") as workdir:
        lab = Lab(uf2, workdir)
        try:
            function(lab, *args)
        finally:
            lab.close()
            if lab.router.refused:
                log("refused guest destinations: %s" % ", ".join(sorted(set(lab.router.refused))))


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--uf2", default=str(DEFAULT_UF2))
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("scenario", help="FILE:FUNCTION, called with the Lab")
    parser.add_argument("args", nargs="*", help="passed to the scenario function")
    opts = parser.parse_args(argv)
    if not pathlib.Path(opts.uf2).is_file():
        sys.exit("emu: %s does not exist: run ./build.sh" % opts.uf2)
    if not opts.inside:
        why = netns.unshare_available()
        if why:
            sys.exit("emu: " + why)
        sys.exit(start_isolated(opts.scenario, opts.uf2, opts.args).wait())
    try:
        _run_inside(opts.uf2, opts.scenario, opts.args)
    except Exception:
        traceback.print_exc()
        sys.exit(1)


if __name__ == "__main__":
    main()
