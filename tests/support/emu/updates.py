# SPDX-License-Identifier: MIT
"""Firmware updates for the emulated board: the image one version newer (`./build.sh next`),
signed with an owner's key by the PC's own code (tinyctrl_host.update) and sent on
<topic>/update, and the board's flash regions an update touches (tinyctrl.update's layout)."""

import hashlib
import sys

from emu.image import REPO

for _path in (REPO / "host", REPO / "modules"):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

from tinyctrl_host import push, update  # noqa: E402  (after the path it lives on)

from tinyctrl import bootflags  # noqa: E402
from tinyctrl import update as layout  # noqa: E402

NEXT_UF2 = REPO / "build" / "PICO_W_TINYCTRL-next" / "firmware.uf2"
DOWNLOAD_START, SLOT_BYTES, SWAP_JOURNAL = (
    layout.DOWNLOAD_START,
    layout.SLOT_BYTES,
    layout.SWAP_JOURNAL,
)
FLAG_LOG = layout.BOOTLOADER_BYTES - bootflags.LOG_BYTES  # the bootloader's last sector


class Updater:
    """Signs updates for `topic` with a new owner's key and sends them through `mqtt` (a
    TopicClient; set once the board is up)."""

    def __init__(self, topic):
        from cryptography.hazmat.primitives.asymmetric import ec

        self.topic, self.mqtt, self.uid = topic, None, 1_000_000
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.image = update.slot_image(NEXT_UF2)
        self.board, self.version = update.image_identity(self.image)

    def public_hex(self):
        return update.public_hex(self.key.public_key())

    def chunks(self, image=None, version=None, board=None, key=None, flip=None):
        """(update id, messages) of a signed update; `flip`: a byte changed on the way."""
        self.uid += 1
        data = bytearray(
            update.stream(
                key or self.key,
                self.image if image is None else image,
                board or self.board,
                version or self.version,
            )
        )
        if flip is not None:
            data[flip] ^= 0x01
        return self.uid, update.chunks(bytes(data), self.uid)

    def send(self, messages, board):
        """Publish in windows paced as `tinyctrl update` paces them (push.send_chunks), but in
        `board`'s time, which runs many times slower than the PC's."""
        for i in range(0, len(messages), push.WINDOW):
            window = messages[i : i + push.WINDOW]
            sent = [self.mqtt.client.publish(self.topic + "/update", m, qos=1) for m in window]
            for info in sent:
                info.wait_for_publish(30)
            done = board.emulated_s() + len(window) * push.CHUNK_WRITE_S + push.QUIET_S
            board.wait_until(lambda: board.emulated_s() >= done, 30, "the window written")


def flag_state(board):
    """The bootloader's flag log as the board's flash holds it: (kind, arg, words used)."""
    log = bytes(board.mcu.flash[FLAG_LOG : FLAG_LOG + bootflags.LOG_BYTES])
    return bootflags.state(log)


def slot_digest(board):
    return hashlib.sha256(board.mcu.flash[DOWNLOAD_START : DOWNLOAD_START + SLOT_BYTES]).digest()


# The switch as ImageTrial.switch makes it (update.trial, then SWAP_WANTED, then a reset), run
# from the REPL: after a rollback the download slot holds the new image again, so its trial is
# tried once more without a second transfer.
SWITCH_AGAIN = """
import json, machine, port
from tinyctrl import bootflags, image_trial, trial
flags = port.FlagLog()
mark = {{"id": {uid}, "version": "{version}", "from": "{running}"}}
trial.write_atomic("/" + image_trial.MARK, json.dumps(mark))
sectors = bootflags.sectors({length}, port.image_bytes())
flags.program(*bootflags.append(flags.read(), bootflags.SWAP_WANTED, sectors))
print("switching again")
machine.reset()
"""


def switch_again(board, updater, running):
    """Switch `board` (on `running`, after a rollback) to the image in its download slot;
    returns the update id its report names and the console position before the switch."""
    updater.uid += 1
    out = board.mark()
    code = SWITCH_AGAIN.format(
        uid=updater.uid, version=updater.version, running=running, length=len(updater.image)
    )
    board.wait_for("switching again", 10, since=board.exec_start(code))
    return updater.uid, out
