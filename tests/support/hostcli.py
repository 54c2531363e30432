# SPDX-License-Identifier: MIT
"""Runs the `tinyctrl` host command as a user would, in its own process, for tests/host/.

The package is run from the worktree (host/ and modules/ on PYTHONPATH), so the tests need no
`pip install`; tests/host/test_package.py checks that `pip install .` gives the same command."""

import os
import select
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
    return subprocess.run(
        argv(*args),
        input=input,
        capture_output=True,
        text=True,
        env=env(),
        timeout=timeout,
        cwd=cwd,
        stdin=stdin,
    )


def start(*args, cwd=None):
    """A running `tinyctrl ARGS` (e.g. watch), stdout and stderr piped as text."""
    return subprocess.Popen(
        argv(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def one_line_error(done):
    """Asserts the run failed with exactly one line on stderr, no traceback; returns the line."""
    assert done.returncode != 0, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinyctrl: "), done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return lines[0]


class Terminal:
    """`tinyctrl ARGS` on a pty that is its controlling terminal, as in a real session."""

    def __init__(self, *args):
        import fcntl
        import pty
        import termios

        def own_terminal():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            argv(*args),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env(),
            preexec_fn=own_terminal,
        )
        os.close(slave)
        self.transcript = bytearray()  # everything the terminal showed
        self.shown = 0  # how much of it the prompts so far have used

    def read(self):
        try:
            self.transcript.extend(os.read(self.master, 1024))
        except OSError:  # the command ended and closed the terminal
            return False
        return True

    def answer(self, prompt, text):
        while self.transcript.find(prompt.encode(), self.shown) < 0:
            assert select.select([self.master], [], [], 30)[0], "no prompt %r: %r" % (
                prompt,
                self.transcript,
            )
            assert self.read(), "ended before %r: %r" % (prompt, self.transcript)
        self.shown = self.transcript.find(prompt.encode(), self.shown) + len(prompt)
        os.write(self.master, text.encode() + b"\n")

    def finish(self):
        code = self.proc.wait(30)
        while select.select([self.master], [], [], 0.5)[0] and self.read():
            pass
        os.close(self.master)
        return code
