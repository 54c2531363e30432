# SPDX-License-Identifier: MIT
# The switch to a received firmware update, and the new image's trial (HACKING.md, "Life of a
# firmware update"). The switch: update.trial ({"id", "version", "from"}) is written, then
# SWAP_WANTED into the bootloader's flag log (bootflags.py), then the board resets and the
# bootloader swaps the slots and gives the new image one boot (TRIAL). The new image commits
# (COMMITTED) once it is subscribed and hears its own message back, within TRIAL_S; else it
# writes why into update.trial and resets. Any reset before the commit (that one, a crash,
# the watchdog, a power cut) makes the bootloader swap the old image back (ROLLED_BACK); the
# old image says so once it is connected, writes update.failed (that version is never taken
# again) and marks the log IDLE.
import asyncio
import json

from . import __version__, bootflags, log, trial

TRIAL_S = 180  # the new image's time to reach the broker and hear itself
# The trial's watchdog: a new image that hangs before its controller runs, or stops feeding,
# is reset (and so rolled back) even if its own check never runs; later than that check.
TRIAL_WATCHDOG_S = TRIAL_S + 30
MARK = "update.trial"
FAILED = "update.failed"  # the version that rolled back, and why
UNCONFIRMED = "it was reset before it confirmed (a crash, the watchdog or a power cut)"


def last_rollback(folder):
    """(version, why) of the last update that rolled back here, or None."""
    try:
        with open(folder + FAILED) as f:
            version = f.readline().strip()
            return version, f.readline().strip()
    except OSError:
        return None


class ImageTrial:
    """This boot's part in an update: switch to one, try the new image, or report a rollback.
    Only on a port with the bootloader's flag log (`hw.FlagLog`)."""

    def __init__(self, hw, outbox, folder, watchdog_s, main_topic, running=__version__):
        self.hw = hw
        self.outbox = outbox
        self.folder = folder
        self.running = running
        self.main_topic = main_topic.encode()
        self.flags = hw.FlagLog() if hasattr(hw, "FlagLog") else None
        self.kind = bootflags.state(self.flags.read())[0] if self.flags else bootflags.IDLE
        self.mark = trial.read_json(folder + MARK) or {}
        self.trying = self.kind == bootflags.TRIAL
        self.failure = None  # why the new image could not confirm, as the controller saw it
        self._keep_watchdog = watchdog_s > 0  # the controller feeds its own (watchdog_s)
        self._subscribed = self._echo = False
        self._restart = False
        if self.trying:
            hw.Watchdog().start(TRIAL_WATCHDOG_S * 1000)  # never fed: the trial's bound
            log("firmware", running, "on trial for", TRIAL_S, "s")

    @property
    def can_switch(self):
        return self.flags is not None

    def _append(self, kind, arg=0):
        self.flags.program(*bootflags.append(self.flags.read(), kind, arg))
        self.kind = kind

    # ---- the switch

    def switch(self, uid, m):
        """Ask the bootloader for update `uid` (its checked Manifest `m`), then reset."""
        mark = {"id": uid, "version": m.version, "from": self.running}
        trial.write_atomic(self.folder + MARK, json.dumps(mark))
        self._append(bootflags.SWAP_WANTED, bootflags.sectors(m.len, self.hw.image_bytes()))
        log("update", uid, "switching to", m.version)
        self.outbox.reply("Info: update %d: restarting to switch to %s" % (uid, m.version))
        self._restart = True

    # ---- once connected

    def connected(self):
        """Subscribed: confirm a new image whose echo came, or report a rollback."""
        self._subscribed = True
        if self.trying and self._echo:
            self._commit()
        elif self.kind == bootflags.ROLLED_BACK:
            self._report_rollback()

    def heard(self, topic, msg):
        """Its own last message back on mqtt.topic: the new image can publish and receive, as
        a config on trial must (push.Receiver.heard)."""
        if self.trying and msg and topic == self.main_topic and msg == self.outbox.last_sent:
            self._echo = True
            if self._subscribed:
                self._commit()

    def _commit(self):
        self.trying = False
        self._append(bootflags.COMMITTED)
        trial.remove(self.folder + MARK)
        if not self._keep_watchdog:
            self.hw.Watchdog().stop()
        log("firmware", self.running, "confirmed")
        self.outbox.reply(
            "Info: update %s confirmed: running %s" % (self.mark.get("id", "?"), self.running)
        )

    def _report_rollback(self):
        version = self.mark.get("version", "the new image")
        why = self.mark.get("why") or UNCONFIRMED
        trial.write_atomic(self.folder + FAILED, "%s\n%s\n" % (version, why))
        self.outbox.error(
            "Error: update %s rolled back to %s: %s did not confirm within %d s (%s)"
            % (self.mark.get("id", "?"), self.running, version, TRIAL_S, why),
            "update",
        )
        self._append(bootflags.IDLE)
        trial.remove(self.folder + MARK)

    def giving_up(self, why):
        """The controller resets for want of a connection: a new image on trial says why."""
        if self.trying:
            self.mark["why"] = why
            trial.write_atomic(self.folder + MARK, json.dumps(self.mark))

    # ---- life cycle

    async def run(self):
        """The trial's bound, and the reset after a switch was asked for."""
        waited = 0
        while not self._restart:
            await asyncio.sleep(1)
            waited += 1
            if self.trying and waited >= TRIAL_S:
                self.mark["why"] = self.failure or (
                    "reached the broker, but its messages on mqtt.topic did not come back"
                    if self._subscribed
                    else "no connection to the broker"
                )
                self.giving_up(self.mark["why"])
                log("firmware", self.running, "did not confirm:", self.mark["why"])
                self.hw.reset()
        await trial.reset_when_sent(self.outbox, self.hw)
