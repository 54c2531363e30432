# SPDX-License-Identifier: MIT
"""Runs the `tinyctrl` host command as a user would, in its own process, for tests/host/.

The package is run from the worktree (host/ and modules/ on PYTHONPATH), so the tests need no
`pip install`; tests/host/test_package.py checks that `pip install .` gives the same command."""
import os
import subprocess
import sys

import deps

HOST = os.path.join(deps.ROOT, "host")
MODULES = os.path.join(deps.ROOT, "modules")


def env():
    out = dict(os.environ, PYTHONPATH=os.pathsep.join([HOST, MODULES]), PYTHONUNBUFFERED="1")
    out.pop("PYTHONSTARTUP", None)
    return out


def argv(*args):
    return [sys.executable, "-m", "tinyctrl_host"] + [str(a) for a in args]


def run(*args, input=None, timeout=120, cwd=None):
    """CompletedProcess of `tinyctrl ARGS` (text, stdout and stderr captured)."""
    stdin = None if input is not None else subprocess.DEVNULL
    return subprocess.run(argv(*args), input=input, capture_output=True, text=True, env=env(),
                          timeout=timeout, cwd=cwd, stdin=stdin)


def start(*args, cwd=None):
    """A running `tinyctrl ARGS` (e.g. watch), stdout and stderr piped as text."""
    return subprocess.Popen(argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env(), cwd=cwd, stdin=subprocess.DEVNULL)


def one_line_error(done):
    """Asserts the run failed with exactly one line on stderr, no traceback; returns the line."""
    assert done.returncode != 0, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinyctrl: "), done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return lines[0]
