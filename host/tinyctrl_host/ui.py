# SPDX-License-Identifier: MIT
"""What the user sees: result lines on standard output (or JSON for scripts), errors and
progress on standard error, in colour on a terminal unless NO_COLOR is set (no-color.org)."""

import json
import os
import sys
import threading
import time

RED, RESET = "\x1b[31m", "\x1b[0m"


def out(line=""):
    print(line, flush=True)


def out_json(obj):
    """One JSON document per line, for --json."""
    print(json.dumps(obj), flush=True)


def colour(stream):
    return stream.isatty() and not os.environ.get("NO_COLOR")


def error(message):
    """The one line of a failure: `tinyctrl: message`, the prefix red on a terminal."""
    prefix = RED + "tinyctrl:" + RESET if colour(sys.stderr) else "tinyctrl:"
    print("%s %s" % (prefix, message), file=sys.stderr, flush=True)


def note(line):
    """A line about the run itself (waiting, retrying), kept out of the results."""
    print(line, file=sys.stderr, flush=True)


def progress(what):
    """A progress display for long steps: a bar on a terminal, else a line per quarter.
    `stopped`: the step ends here, short of its total (the bar's line is ended)."""
    tty = sys.stderr.isatty()
    shown = [-1]

    def update(done, total, stopped=False):
        pct = done * 100 // total
        if tty:
            bar = "#" * (pct // 4)
            end = "\n" if done >= total or stopped else ""
            sys.stderr.write("\r%s [%-25s] %3d%%%s" % (what, bar, pct, end))
        elif pct // 25 > shown[0]:
            shown[0] = pct // 25
            sys.stderr.write("%s %d%%\n" % (what, pct))
        sys.stderr.flush()

    return update


class Spinner:
    """`with Spinner("waiting for ..."):` a turning bar and the seconds so far on a terminal's
    standard error while the block runs (every wait longer than a second shows it is alive);
    nothing when standard error is not a terminal."""

    FRAMES = "|/-\\"

    def __init__(self, what):
        self.what = what
        self.stop = threading.Event()
        self.thread = None

    def _run(self):
        started = time.monotonic()
        frame = 0
        while not self.stop.wait(0.2 if frame else 1.0):  # quiet for the first second
            sys.stderr.write(
                "\r%s %s (%d s)" % (self.FRAMES[frame % 4], self.what, time.monotonic() - started)
            )
            sys.stderr.flush()
            frame += 1
        if frame:
            sys.stderr.write("\r\x1b[K")  # the line cleared for what comes next
            sys.stderr.flush()

    def __enter__(self):
        if sys.stderr.isatty():
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.thread:
            self.thread.join()

    def out(self, line):
        """A result line while the spinner turns: over its line, which it draws again below."""
        if self.thread:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
        out(line)
