# SPDX-License-Identifier: MIT
# A firmware update's switch and the new image's trial (tinyctrl.image_trial) against a flag
# log held in memory as flash holds it, under CPython and MicroPython: the switch writes
# update.trial and SWAP_WANTED for the larger image's sectors; a new image on trial starts its
# unfed watchdog, commits once subscribed and heard, or says why and resets at its bound; the
# old image, back after a rollback, reports once, writes update.failed and marks the log idle.
import json
import os

from check import Outbox, hexlify, run_async

from tinyctrl import bootflags, image_trial


class FlagLog:
    def __init__(self, data):
        self.data = data

    def read(self):
        return bytes(self.data)

    def program(self, offset, page):
        for i, b in enumerate(page):
            self.data[offset + i] &= b


class Watchdog:
    def __init__(self, hw):
        self.hw = hw

    def start(self, ms):
        self.hw.watchdog.append(ms)

    def stop(self):
        self.hw.watchdog.append(None)


class Hw:
    def __init__(self, state=(bootflags.IDLE, 0)):
        self.log = bytearray(b"\xff" * bootflags.LOG_BYTES)
        FlagLog(self.log).program(*bootflags.append(self.log, *state))
        self.watchdog, self.resets = [], 0
        hw = self
        self.FlagLog = lambda: FlagLog(hw.log)
        self.Watchdog = lambda: Watchdog(hw)

    def image_bytes(self):
        return 800 * 1024

    def reset(self):
        self.resets += 1
        raise SystemExit  # the board is gone


class Manifest:
    version, len = "1.2.0", 840 * 1024


def folder():
    path = "/tmp/tinyctrl-trial-" + hexlify(os.urandom(6)) + "/"
    os.mkdir(path)
    return path


def make(hw, running="1.1.0", watchdog_s=0, where=None):
    where = where or folder()
    return image_trial.ImageTrial(hw, Outbox(), where, watchdog_s, "home/pico", running), where


def read(path):
    with open(path) as f:
        return f.read()


def test_the_switch_asks_for_the_larger_images_sectors():
    hw = Hw()
    it, where = make(hw)
    assert it.can_switch and not it.trying and hw.watchdog == []
    it.switch(42, Manifest())
    assert bootflags.state(hw.log)[:2] == (bootflags.SWAP_WANTED, 210)
    mark = json.loads(read(where + image_trial.MARK))
    assert mark == {"id": 42, "version": "1.2.0", "from": "1.1.0"}
    assert it.outbox.replies == ["Info: update 42: restarting to switch to 1.2.0"]
    try:
        run_async(it.run)
    except SystemExit:
        pass
    assert hw.resets == 1


def trial_boot(watchdog_s=0):
    hw = Hw((bootflags.TRIAL, 210))
    where = folder()
    with open(where + image_trial.MARK, "w") as f:
        f.write(json.dumps({"id": 42, "version": "1.2.0", "from": "1.1.0"}))
    it, _ = make(hw, "1.2.0", watchdog_s, where)
    return hw, it, where


def test_a_new_image_commits_once_subscribed_and_heard():
    hw, it, where = trial_boot()
    assert it.trying and hw.watchdog == [image_trial.TRIAL_WATCHDOG_S * 1000]
    it.outbox.last_sent = b'{"GP16": 0}'
    it.heard(b"home/pico", b'{"GP16": 0}')  # before the subscriptions: not yet
    assert bootflags.state(hw.log)[0] == bootflags.TRIAL
    it.connected()
    assert bootflags.state(hw.log)[0] == bootflags.COMMITTED
    assert it.outbox.replies == ["Info: update 42 confirmed: running 1.2.0"]
    assert hw.watchdog[-1] is None  # watchdog_s 0: the trial's watchdog goes with it
    assert image_trial.MARK not in os.listdir(where)


def test_another_message_confirms_nothing():
    hw, it, _ = trial_boot(watchdog_s=30)
    it.outbox.last_sent = b'{"GP16": 0}'
    it.connected()
    it.heard(b"home/pico", b"somebody else")
    it.heard(b"home/pico/status", b'{"GP16": 0}')
    assert bootflags.state(hw.log)[0] == bootflags.TRIAL and it.trying


def test_a_new_image_that_cannot_confirm_says_why_and_resets():
    hw, it, where = trial_boot()
    it.failure = "connect failed (3): OSError(113)"
    sleeps = []

    async def fast(s):
        sleeps.append(s)

    image_trial.asyncio.sleep, real = fast, image_trial.asyncio.sleep
    try:
        run_async(it.run)
    except SystemExit:
        pass
    finally:
        image_trial.asyncio.sleep = real
    assert hw.resets == 1 and len(sleeps) == image_trial.TRIAL_S
    assert json.loads(read(where + image_trial.MARK))["why"] == it.failure
    assert bootflags.state(hw.log)[0] == bootflags.TRIAL  # the bootloader swaps back


def test_the_old_image_reports_a_rollback_once():
    hw = Hw((bootflags.ROLLED_BACK, 0))
    where = folder()
    with open(where + image_trial.MARK, "w") as f:
        f.write(json.dumps({"id": 42, "version": "1.2.0", "from": "1.1.0", "why": "no Wi-Fi"}))
    it, _ = make(hw, "1.1.0", 0, where)
    assert not it.trying and hw.watchdog == []
    it.connected()
    assert it.outbox.errors == [
        (
            "update",
            "Error: update 42 rolled back to 1.1.0: 1.2.0 did not confirm within 180 s (no Wi-Fi)",
        )
    ]
    assert bootflags.state(hw.log)[0] == bootflags.IDLE
    assert image_trial.last_rollback(where) == ("1.2.0", "no Wi-Fi")
    assert image_trial.MARK not in os.listdir(where)
    it.connected()  # a reconnect says nothing more
    assert len(it.outbox.errors) == 1


def test_a_rollback_without_its_mark_still_reports():
    hw = Hw((bootflags.ROLLED_BACK, 0))
    it, where = make(hw)
    it.connected()
    ((_, line),) = it.outbox.errors
    assert "rolled back to 1.1.0" in line and image_trial.UNCONFIRMED in line


def test_a_port_without_a_flag_log_never_switches():
    class Bare:
        pass

    it, _ = make(Bare())
    assert not it.can_switch and not it.trying
    it.connected()
    assert it.outbox.errors == [] and it.outbox.replies == []
