# SPDX-License-Identifier: MIT
# Trying a pushed config, and going back on its own if it cannot reach the broker.
#
# Files beside config.json (config.json itself is never opened for writing, only replaced by
# a rename, which littlefs and POSIX do atomically: a power cut leaves the old or the new
# complete file):
#   config.new    the pushed config, validated, waiting for its trial
#   config.trial  the marker: {"id": push id, "attempts": boots on config.new, "trial_s": bound}
#                 and, once the trial failed, "failed": why (reported after the next boot)
#
# At boot (main.load), with a marker:
#   "failed" in it        load config.json; once subscribed, publish the rollback line
#   no config.new         it was renamed over config.json: confirmed; say so once subscribed
#   attempts 0            count the attempt, load config.new
#   attempts 1            a second boot in the same trial: the first crashed, stalled into the
#                         watchdog or lost power; roll back
# Subscribed with config.new and its own first message heard back on mqtt.topic (push.py): rename
# it over config.json, remove the marker, confirm. Not so within trial_s: write why into the
# marker, remove config.new, reset.
import asyncio
import json
import os

from . import log

NEW = "config.new"
MARK = "config.trial"
PART = "config.part"  # a push being received (push.py)

current = None  # this boot's Boot, made by main.load
RESTART_WAIT_MS = 3000  # for the last line before a reset ("received", "restarting") to go


async def reset_when_sent(outbox, hw):
    """Reset once the outbox has sent what it holds (or RESTART_WAIT_MS passed) and the
    broker's PUBACK had time to come: a push's or an update's switch."""
    waited = 0
    while outbox.pending() and waited < RESTART_WAIT_MS:
        await asyncio.sleep_ms(100)
        waited += 100
    await asyncio.sleep_ms(500)
    hw.reset()


def folder_of(config_path):
    """The folder of config.json with its "/" ("" for a bare name): every file lies beside it."""
    return config_path.rsplit("/", 1)[0] + "/" if "/" in config_path else ""


def remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def write_atomic(path, text):
    """Replace `path` by a rename: a power cut leaves the old or the new content."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def read_json(path):
    try:
        with open(path) as f:
            value = json.loads(f.read(512))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


class Boot:
    """What this boot does about a pushed config: the file to load and what to say once
    subscribed (`connected`)."""

    def __init__(self, config_path):
        self.config_path = config_path
        self.dir = folder_of(config_path)
        self.path = config_path  # the config this boot loads
        self.trying = None  # the marker of a config.new on trial now
        self.outcome = None  # the marker of a trial that ended, to report

    def start(self):
        """Read the files and decide; a power cut at any point here is met by the next start."""
        marker = read_json(self.file(MARK))
        remove(self.file(PART))  # a push cut short by a reset is gone; its sender times out
        if marker is None or not isinstance(marker.get("id"), int):
            remove(self.file(NEW))  # a power cut before the marker was written
            remove(self.file(MARK))
            return
        if "failed" in marker:
            remove(self.file(NEW))
            self.outcome = marker
        elif not exists(self.file(NEW)):
            self.outcome = marker  # renamed over config.json: the trial succeeded
        elif marker.get("attempts", 0) >= 1:
            self.fail(marker, "the device restarted before it reached the broker")
        else:
            marker["attempts"] = 1
            write_atomic(self.file(MARK), json.dumps(marker))
            self.trying = marker
            self.path = self.file(NEW)
            log("trying pushed config", marker["id"])

    def file(self, name):
        return self.dir + name

    def fail(self, marker, why):
        """End the trial: say why at the next boot, and go back to config.json."""
        marker["failed"] = why
        write_atomic(self.file(MARK), json.dumps(marker))
        remove(self.file(NEW))
        self.trying = None
        self.outcome = marker
        self.path = self.config_path
        log("pushed config", marker["id"], "rolled back:", why)

    def trial_ms(self):
        return self.trying["trial_s"] * 1000 if self.trying else None

    def connected(self):
        """Subscribed: the line to publish about a pushed config, or None. A config on trial
        becomes config.json here."""
        if self.trying:
            os.rename(self.file(NEW), self.config_path)
            self.outcome, self.trying = self.trying, None
        m = self.outcome
        if m is None:
            return None
        remove(self.file(MARK))
        self.outcome = None
        if "failed" in m:
            return "Error: config push %d rolled back: %s" % (m["id"], m["failed"])
        return "Info: config push %d confirmed" % m["id"]


def boot(config_path):
    """Decide what this boot loads; main.load calls it before reading any config."""
    global current
    current = Boot(config_path)
    try:
        current.start()
    except OSError as e:  # a full or broken filesystem: boot config.json, as without a push
        log("pushed config: cannot read the trial files:", repr(e))
        current = Boot(config_path)
    return current
