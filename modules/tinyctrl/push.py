# SPDX-License-Identifier: MIT
# Receiving a pushed config (`tinyctrl config push`) on <mqtt.topic>/config.
#
# A chunk is one MQTT message: the line "<push id> <index>/<count>\n", then up to CHUNK bytes
# of the sealed config (seal.py). Chunks are decrypted into config.part as they come, so the
# heap holds one chunk. After the last: the tag is checked, then the device's own validator
# (config.parse, as at boot) reads the file; only then push.seq is raised to the push's
# sequence number, config.part becomes config.new and the marker config.trial is written, and
# the device resets to try it (trial.py). Refusals are error lines of their own kind ("push"),
# under the outbox's error budget; nothing changes on a refusal.
import asyncio
import binascii
import os

from . import board_name, chunks, config, log, seal, trial
from .chunks import ABANDON_MS, Refused

CHUNK = 512  # sealed bytes per message: the message stays under mqtt.MAX_INBOUND
KEY_FILE = "push.key"  # 64 hex digits, copied over USB by `tinyctrl provision`
SEQ_FILE = "push.seq"  # the sequence number of the last push accepted
TRIAL_S = (10, 600)  # the trial bound the sealed header may ask for (the PC's default: 120)
REFUSED = "Error: config push refused: "


class _Push(chunks.Transfer):
    def __init__(self, pid, count, opener, now_ms):
        super().__init__("push", pid, count, now_ms)
        self.opener = opener
        self.file = None
        self.header = None


class Receiver:
    def __init__(self, cfg, hw, outbox, mono_ms, boot=None, ecb=seal.board_ecb):
        self.hw = hw
        self.ecb = ecb  # AES-256-ECB: cryptolib on the board and the simulator
        self.outbox = outbox
        self.mono_ms = mono_ms
        # this boot's files (main.load); without a load, no trial to finish
        self.boot = boot or trial.current or trial.Boot(hw.CONFIG_PATH)
        self.name = cfg["name"]
        self.device_topic = cfg["mqtt"]["topic"]
        self.topic = self.device_topic + "/config"
        self.topic_b = self.topic.encode()
        self._main = self.device_topic.encode()
        self._subscribed = False  # to every topic, with this config
        self._echo = False  # its own message came back on mqtt.topic
        self.board_id = board_name(hw.unique_id())
        self.key = self._read_key()
        self.failure = None  # the last connect failure the controller logged
        self._push = None
        self._pid = None  # the push of the chunk being read
        self._dead = None  # the last push refused
        self._restart = False  # a push was accepted: reset to try it

    def file(self, name):
        return self.boot.file(name)

    def _read_key(self):
        try:
            with open(self.file(KEY_FILE)) as f:
                key = binascii.unhexlify(f.read(2 * seal.KEY_LEN + 2).strip())
        except (OSError, ValueError):
            return None
        return key if len(key) == seal.KEY_LEN else None

    def last_seq(self):
        try:
            with open(self.file(SEQ_FILE)) as f:
                return int(f.read(24))
        except (OSError, ValueError):
            return -1

    # ---- chunks in

    def message(self, msg, oversize):
        """One message on <mqtt.topic>/config."""
        if self._restart:
            return  # one push at a time: this one resets the device in a moment
        try:
            if oversize:
                raise Refused("message too large (%d bytes)" % oversize)
            self._chunk(msg)
        except (Refused, seal.SealError) as e:
            self._refuse(str(e))
        except OSError as e:
            self._refuse("cannot write it (%s)" % e)

    def _refuse(self, why):
        """One line per push: the rest of a refused push's chunks are ignored."""
        self._drop()
        self._dead = self._pid
        self.outbox.error(REFUSED + why, "push")

    def _chunk(self, msg):
        self._pid = None
        pid, index, count, data = chunks.split(msg, "push")
        if pid == self._dead:
            return
        self._pid = pid
        most = (config.MAX_PAYLOAD + seal.MAX_HEADER + seal.TAG_LEN) // CHUNK + 1
        chunks.bound("push", index, count, data, most, CHUNK)
        p = self._push
        if index == 0:
            self._drop()  # a new push replaces one cut short
            p = self._push = _Push(pid, count, seal.Opener(self.key, self.ecb), self.mono_ms())
        elif p is None:
            raise chunks.no_start("push", index, pid)
        if not p.take(pid, index, count, self.mono_ms()):
            return
        if p.header is None:
            seen = p.opener.header_seen(data)
            if seen is None:
                return self._last(p)
            p.header, data = seen
            self._check_header(p)
            p.file = open(self.file(trial.PART), "wb")
        plain = p.opener.feed(data)
        if plain:
            p.file.write(plain)
        self._last(p)

    def _check_header(self, p):
        """Before the tag is checked these only spare the flash; after it they hold."""
        h = p.header
        if h["seq"] != p.id:
            raise Refused("not a push chunk")
        if h["to"] != self.name or h["topic"] != self.device_topic:
            raise Refused("push %d is sealed for another device" % p.id)
        if h["seq"] <= self.last_seq():
            raise Refused(
                "push %d is a replay: this device has accepted push %d" % (p.id, self.last_seq())
            )
        if h["len"] > config.MAX_PAYLOAD:
            raise Refused("larger than %d bytes" % config.MAX_PAYLOAD)
        if not TRIAL_S[0] <= h["trial_s"] <= TRIAL_S[1]:
            raise Refused("trial of %d s asked; %d-%d s" % ((h["trial_s"],) + TRIAL_S))

    def _last(self, p):
        if not p.complete():
            return
        if p.header is None:
            raise Refused("not a sealed config")
        p.opener.finish()  # the tag: nothing is trusted before
        p.file.close()
        p.file = None
        self._validate()
        self._accept(p)

    def _validate(self):
        with open(self.file(trial.PART)) as f:
            text = f.read()
        try:
            cfg = config.parse(text, self.boot.dir[:-1] or None, self.board_id)
        except config.ConfigError as e:
            raise Refused("; ".join(e.problems))
        ca = cfg["mqtt"]["ca_file"]
        if ca and not trial.exists(ca):
            raise Refused("mqtt.ca_file: %s is not on the device" % ca.rsplit("/", 1)[-1])

    def _accept(self, p):
        # push.seq first: a replay of this push is refused even if its trial fails
        trial.write_atomic(self.file(SEQ_FILE), str(p.id))
        os.rename(self.file(trial.PART), self.file(trial.NEW))
        trial.write_atomic(
            self.file(trial.MARK),
            '{"id": %d, "attempts": 0, "trial_s": %d}' % (p.id, p.header["trial_s"]),
        )
        self._push = None
        log("config push", p.id, "received")
        self.outbox.reply("Info: config push %d received, restarting to try it" % p.id)
        self._restart = True

    def _drop(self):
        p, self._push = self._push, None
        if p and p.file:
            p.file.close()
        if p and p.header is not None:
            trial.remove(self.file(trial.PART))

    # ---- life cycle

    async def subscribe(self, client):
        """Subscribed to the device's topic: listen for pushes, then confirm a config on trial.
        Only with a push key: a device provisioned before pushes asks nothing new of the
        broker's ACL (mqtt_as reconnects, over and over, after a refused subscription)."""
        if self.key:
            await client.subscribe(self.topic, 1)
        self.connected()

    def connected(self):
        """Subscribed: report how the last trial ended, or confirm a config on trial whose
        echo came (heard)."""
        self._subscribed = True
        if not self.boot.trying or self._echo:
            self._report(self.boot.connected())

    def heard(self, topic, msg):
        """A message on the device's topics. Its own last message back on mqtt.topic shows a
        config on trial can publish and receive there: a broker may grant a subscription its
        ACL then starves (mosquitto 2.0 does), and only then is the config confirmed. The echo
        may come before the last subscription is granted."""
        if self.boot.trying and msg and topic == self._main and msg == self.outbox.last_sent:
            self._echo = True
            if self._subscribed:
                self._report(self.boot.connected())

    def _report(self, line):
        if line and line.startswith("Error:"):
            self.outbox.error(line, "push")
        elif line:
            self.outbox.reply(line)

    async def _watch_trial(self):
        bound = self.boot.trial_ms()
        if bound is None:
            return
        await asyncio.sleep_ms(bound)
        if self.boot.trying:
            why = self.failure or (
                "reached the broker, but its messages on mqtt.topic did not "
                "come back within %d s (may its login use the topic?)" % (bound // 1000)
            )
            self.boot.fail(self.boot.trying, why)
            self.hw.reset()

    async def run(self):
        """Abandoned pushes, the trial's bound, and the reset after a push is accepted."""
        asyncio.create_task(self._watch_trial())
        while not self._restart:
            await asyncio.sleep(1)
            self.tick()
        await trial.reset_when_sent(self.outbox, self.hw)

    def tick(self):
        """Once a second: drop a push abandoned by its sender."""
        p = self._push
        if p and p.abandoned(self.mono_ms()):
            self._drop()
            self.outbox.error(
                REFUSED + "push %d abandoned: no chunk for %d s" % (p.id, ABANDON_MS // 1000),
                "push",
            )
