# SPDX-License-Identifier: MIT
# Receiving a firmware update (`tinyctrl update`) on <mqtt.topic>/update into the download
# slot. Chunks are framed as config pushes are (chunks.py). Chunk 0 holds the head: the
# manifest and its signature are checked (update.check) before the slot is touched; then
# each chunk's image bytes are written through the port's DownloadSlot as they come, so the
# heap holds one chunk. After the last the slot is read back and its SHA-256 compared with the
# manifest's: what is checked is what the bootloader would copy. Refusals are error lines of
# their own kind ("update") under the outbox's error budget, one per update; a refused update
# leaves the slot cleared. A checked update is handed to the image trial (image_trial.py),
# which asks the bootloader to switch to it.
import asyncio
import hashlib

from . import __version__, chunks, image_trial, log, update
from .chunks import Refused

CHUNK = 768  # image bytes per message: three flash pages, under mqtt.MAX_INBOUND
MOST = (update.MAX_MANIFEST + 2 * update.SIG_BYTES + 2 + update.SLOT_BYTES) // CHUNK + 1
READ_BACK = 1024  # bytes per read when the slot is hashed
REFUSED = "Error: update refused: "


class _Download(chunks.Transfer):
    def __init__(self, uid, count, now_ms):
        super().__init__("update", uid, count, now_ms)
        self.manifest = None
        self.written = 0


class Receiver:
    """Firmware updates for one controller; only with update.key and a port with a download
    slot (`hw.DownloadSlot`), else `enabled` is False and nothing is subscribed."""

    def __init__(self, cfg, hw, outbox, mono_ms, image, running=__version__):
        self.hw = hw
        self.image = image  # the ImageTrial that switches to a checked update
        self.outbox = outbox
        self.mono_ms = mono_ms
        self.running = running
        self.key = update.public_key(cfg["update"]["key"])  # None: no updates
        path = hw.CONFIG_PATH
        self.dir = path[: path.rfind("/") + 1]  # the board's files are beside config.json
        self.enabled = self.key is not None and hasattr(hw, "DownloadSlot")
        self.topic = cfg["mqtt"]["topic"] + "/update"
        self.topic_b = self.topic.encode()
        ident = update.identity(hw.IMAGE_ID.encode()) if self.enabled else None
        self.board = ident[0] if ident else None
        self.slot = None  # the port's DownloadSlot, while an update is written
        self._dl = None
        self._uid = None  # the update of the chunk being read
        self._dead = None  # the last update refused
        self.ready = None  # the Manifest of an update received and checked

    def _failed(self):
        last = image_trial.last_rollback(self.dir)
        return last and last[0]

    # ---- chunks in

    def message(self, msg, oversize):
        """One message on <mqtt.topic>/update."""
        if self.ready or not self.enabled:
            return  # one update at a time: this one waits for its switch
        try:
            if oversize:
                raise Refused("message too large (%d bytes)" % oversize)
            self._chunk(msg)
        except Refused as e:
            self._refuse(str(e))
        except OSError as e:
            self._refuse("cannot write it (%s)" % e)

    def _refuse(self, why):
        """One line per update: the rest of a refused update's chunks are ignored."""
        self._drop()
        self._dead = self._uid
        self.outbox.error(REFUSED + why, "update")

    def _chunk(self, msg):
        self._uid = None
        uid, index, count, data = chunks.split(msg, "update")
        if uid == self._dead:
            return
        self._uid = uid
        chunks.bound("update", index, count, data, MOST, CHUNK)
        d = self._dl
        if index == 0:
            self._drop()  # a new update replaces one cut short
            d = _Download(uid, count, self.mono_ms())
        elif d is None:
            raise chunks.no_start("update", index, uid)
        if not d.take(uid, index, count, self.mono_ms()):
            return
        if index == 0:
            data = self._start(d, data)
        m = d.manifest
        if d.written + len(data) > m.len:
            raise Refused("update %d: more than the %d bytes of its manifest" % (uid, m.len))
        if data:
            self.slot.write(d.written, data)
            d.written += len(data)
        if d.complete():
            self._last(d)

    def _start(self, d, data):
        """The head of chunk 0 checked, before the slot is touched; the image bytes after it."""
        line, sig, rest = update.split_head(data)
        m = update.parse(line)
        update.check(
            m, sig, self.key, self.hw.ecdsa_verify, self.board, self.running, self._failed()
        )
        d.manifest = m
        self.slot = self.hw.DownloadSlot(self.dir)
        self._dl = d
        log("update", d.id, "to", m.version, "accepted")
        self.outbox.reply(
            "Info: update %d to %s accepted, downloading %d bytes" % (d.id, m.version, m.len)
        )
        return rest

    def _last(self, d):
        m = d.manifest
        if d.written != m.len:
            raise Refused("update %d: %d of its %d bytes came" % (d.id, d.written, m.len))
        h = hashlib.sha256()
        at = 0
        while at < m.len:
            h.update(self.slot.read(at, min(READ_BACK, m.len - at)))
            at += READ_BACK
        if h.digest() != m.sha256:
            raise Refused("update %d: the image does not match its manifest's SHA-256" % d.id)
        self._dl = None
        self.ready = m
        log("update", d.id, "received")
        self.outbox.reply("Info: update %d received and checked" % d.id)
        if self.image.can_switch:
            self.image.switch(d.id, m)

    def _drop(self):
        d, self._dl = self._dl, None
        slot, self.slot = self.slot, None
        if slot:
            slot.clear()  # nothing half-written stays where a bootloader could take it
        return d

    # ---- life cycle

    async def subscribe(self, client):
        """Listen for updates only with update.key: a device without one asks nothing new of
        the broker's ACL."""
        if self.enabled:
            await client.subscribe(self.topic, 1)

    async def run(self):
        while True:
            await asyncio.sleep(1)
            self.tick()

    def tick(self):
        """Once a second: drop an update abandoned by its sender."""
        d = self._dl
        if d and d.abandoned(self.mono_ms()):
            self._drop()
            self.outbox.error(
                REFUSED
                + "update %d abandoned: no chunk for %d s" % (d.id, chunks.ABANDON_MS // 1000),
                "update",
            )
