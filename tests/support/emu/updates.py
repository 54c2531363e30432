# SPDX-License-Identifier: MIT
"""Firmware updates for the emulated board: the image one version newer (`./build.sh next`),
signed with an owner's key by the PC's own code (tinyctrl_host.update) and sent on
<topic>/update, and the board's flash regions an update touches (tinyctrl.update's layout)."""

import hashlib

from emu.image import REPO

NEXT_UF2 = REPO / "build" / "PICO_W_TINYCTRL-next" / "firmware.uf2"
DOWNLOAD_START, SLOT_BYTES, FLAG_LOG = 0x0E8000, 888 * 1024, 0x009000
SWAP_JOURNAL = 0x1C7000
# The device reads 16 messages with less than 20 ms between them as a broker backlog
# (mqtt.BACKLOG, QUIET_MS) and then refuses MFA codes made before it ends: the sender leaves it
# a window of chunks and then, in the board's own time, what it needs to write them (7 ms
# each on average, measured, more when a sector is erased) and a quiet gap.
UPDATE_WINDOW = 10
CHUNK_S = 0.012
QUIET_S = 0.03


class Updater:
    """Signs updates for `topic` with a new owner's key and sends them through `mqtt` (a
    TopicClient; set once the board is up)."""

    def __init__(self, topic):
        import sys

        for path in (REPO / "host", REPO / "modules"):
            if str(path) not in sys.path:
                sys.path.append(str(path))
        from cryptography.hazmat.primitives.asymmetric import ec
        from tinyctrl_host import update

        self.update, self.topic, self.mqtt, self.uid = update, topic, None, 1_000_000
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.image = update.slot_image(NEXT_UF2)
        self.board, self.version = update.image_identity(self.image)

    def public_hex(self):
        return self.update.public_hex(self.key.public_key())

    def chunks(self, image=None, version=None, board=None, key=None, flip=None):
        """(update id, messages) of a signed update; `flip`: a byte changed on the way."""
        self.uid += 1
        data = bytearray(
            self.update.stream(
                key or self.key,
                self.image if image is None else image,
                board or self.board,
                version or self.version,
            )
        )
        if flip is not None:
            data[flip] ^= 0x01
        return self.uid, self.update.chunks(bytes(data), self.uid)

    def send(self, messages, board, between=None):
        """Publish in windows paced in `board`'s time; `between(i)` runs after each window."""
        for i in range(0, len(messages), UPDATE_WINDOW):
            window = messages[i : i + UPDATE_WINDOW]
            sent = [self.mqtt.client.publish(self.topic + "/update", m, qos=1) for m in window]
            for info in sent:
                info.wait_for_publish(30)
            done = board.emulated_s() + len(window) * CHUNK_S + QUIET_S
            board.wait_until(lambda: board.emulated_s() >= done, 30, "the window written")
            if between:
                between(i + len(window))


def flag_state(board):
    """The bootloader's flag log as the board's flash holds it: (kind, arg, words used)."""
    from tinyctrl import bootflags

    log = bytes(board.mcu.flash[FLAG_LOG : FLAG_LOG + bootflags.LOG_BYTES])
    return bootflags.state(log)


def slot_digest(board):
    return hashlib.sha256(board.mcu.flash[DOWNLOAD_START : DOWNLOAD_START + SLOT_BYTES]).digest()
