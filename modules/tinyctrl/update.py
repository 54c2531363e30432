# SPDX-License-Identifier: MIT
# Firmware updates (`tinyctrl update`): the flash layout they need, the signed manifest, and
# the checks made on it before a byte of the image is written (HACKING.md, "Life of a
# firmware update"). An update is a stream, sent in chunks on <mqtt.topic>/update:
#
#   stream    = manifest line | signature line | image (exactly "len" bytes)
#   manifest  = {"at": .., "board": "..", "len": .., "sha256": "<64 hex>", "v": 1,
#                "version": "1.2.0"} and "\n": compact JSON, keys sorted, as the PC wrote it
#   signature = 128 hex digits and "\n": ECDSA P-256 over the SHA-256 of the manifest line
#               (without its "\n"), r | s, by the owner's update key; config.json's
#               update.key is its public key
#
# The manifest is read from the first chunk; the device checks it (board, slot, size, version
# above the running one and above a version that once rolled back) and its signature before
# it erases or writes anything, so a forged, replayed or older update costs no flash wear.
import binascii
import hashlib
import json

from . import __version__
from .chunks import Refused  # "Error: update refused: " and its text

VERSION = 1  # of this format: the manifest's "v"
# The flash layout (offsets from the start of flash, 0x10000000 in the address map; 2 MB),
# every part whole 4 KB sectors. The bootloader (pico_fota_bootloader: 36 KB, then its 4 KB of
# flags) starts the image in the application slot; an update is written to the download slot;
# the bootloader swaps the two through the scratch sector, one step at a time as its journal
# records, so a power cut at any point resumes the swap, and the old image stays whole in the
# download slot until the new one is confirmed. The filesystem is the rest, at the end of
# flash as MicroPython puts it (MICROPY_HW_FLASH_STORAGE_BYTES).
FLASH_BYTES = 2048 * 1024
BOOTLOADER_BYTES = 40 * 1024  # with its flag sector
APP_START = BOOTLOADER_BYTES  # 0x00A000: where an update's image is linked to run
SLOT_BYTES = 888 * 1024  # each slot: 0x0DE000
DOWNLOAD_START = APP_START + SLOT_BYTES  # 0x0E8000
SWAP_SCRATCH = DOWNLOAD_START + SLOT_BYTES  # 0x1C6000: one sector, the swap's third hand
SWAP_JOURNAL = SWAP_SCRATCH + 4096  # 0x1C7000: one sector, programmed word by word
FS_START = SWAP_JOURNAL + 4096  # 0x1C8000
FS_BYTES = FLASH_BYTES - FS_START  # 224 KB
PAGE = 256  # the flash's program unit: an image is whole pages, as a UF2 carries it
KEY_BYTES = 65  # an uncompressed P-256 point: 04 | X | Y
SIG_BYTES = 64  # r | s
MAX_MANIFEST = 300  # bytes of the manifest line; the whole head fits in the first chunk
MAX_VERSION = 24  # characters of a version string
_KEYS = ("at", "board", "len", "sha256", "v", "version")
# The image's identity line (ports/rp2/cmodule/image_id.c, _tinyctrl.IMAGE_ID), which the PC
# finds in a UF2: "tinyctrl-image board=PICO_W_TINYCTRL version=1.2.0\n".
IMAGE_ID = b"tinyctrl-image "


def version_tuple(text):
    """(1, 2, 0) for "1.2.0": 1-4 whole numbers of at most 5 digits; None if not a version."""
    if not isinstance(text, str) or not 0 < len(text) <= MAX_VERSION:
        return None
    parts = text.split(".")
    if len(parts) > 4 or any(not (p.isdigit() and len(p) <= 5) for p in parts):
        return None
    return tuple(int(p) for p in parts)


def identity(line):
    """(board, version) of an identity line (bytes, from IMAGE_ID up to "\n"), or None."""
    if not line.startswith(IMAGE_ID) or len(line) > 120:
        return None
    fields = {}
    for part in line[len(IMAGE_ID) :].decode().split():
        name, _, value = part.partition("=")
        fields[name] = value
    board, version = fields.get("board", ""), fields.get("version", "")
    if not board or _shown(board) != board or version_tuple(version) is None:
        return None
    return board, version


def public_key(text):
    """update.key's 130 hex digits as the 65-byte key, or None if it is not one (the curve
    check is the verifier's)."""
    if not isinstance(text, str) or len(text) != 2 * KEY_BYTES or not text.startswith("04"):
        return None
    return _hex(text)


class Manifest:
    """A manifest line's fields; `digest` is what the signature signs."""

    def __init__(self, line, fields):
        self.line = line
        self.digest = hashlib.sha256(line).digest()
        self.at = fields["at"]
        self.board = fields["board"]
        self.len = fields["len"]
        self.sha256 = _hex(fields["sha256"])
        self.version = fields["version"]
        self.version_t = version_tuple(self.version)


def _int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def parse(line):
    """The Manifest of a manifest line (bytes, without "\\n"), or Refused."""
    if len(line) > MAX_MANIFEST:
        raise Refused("not an update (manifest larger than %d bytes)" % MAX_MANIFEST)
    try:
        fields = json.loads(line)
    except ValueError:
        raise Refused("not an update (manifest is not JSON)")
    if not isinstance(fields, dict) or sorted(fields) != list(_KEYS):
        raise Refused("not an update (manifest keys are not %s)" % ", ".join(_KEYS))
    if fields["v"] != VERSION:
        raise Refused(
            "manifest format %s; this device reads %d" % (_shown(str(fields["v"])), VERSION)
        )
    sha = fields["sha256"]
    if not isinstance(sha, str) or len(sha) != 64 or _hex(sha) is None:
        raise Refused("manifest sha256 is not 64 hex digits")
    if not (_int(fields["at"]) and _int(fields["len"]) and isinstance(fields["board"], str)):
        raise Refused("not an update (manifest at, len or board of the wrong type)")
    if version_tuple(fields["version"]) is None:
        raise Refused("manifest version is not like 1.2.0")
    return Manifest(line, fields)


def _hex(text):
    """The bytes of hex digits `text` (str or bytes), or None."""
    try:
        return binascii.unhexlify(text)
    except (ValueError, TypeError):
        return None


def split_head(data):
    """(manifest line, signature bytes, the image bytes that follow) from the stream's first
    bytes, or Refused: the head must be whole in the first chunk."""
    end = data.find(b"\n")
    if not 0 < end <= MAX_MANIFEST:
        raise Refused("not an update (no manifest line)")
    sig_end = end + 1 + 2 * SIG_BYTES
    sig = _hex(bytes(data[end + 1 : sig_end]))
    if sig is None or len(sig) != SIG_BYTES or data[sig_end : sig_end + 1] != b"\n":
        raise Refused("not an update (no signature line)")
    return bytes(data[:end]), sig, data[sig_end + 1 :]


def check(m, sig, key, verify, board, running=__version__, failed=None):
    """Refused unless manifest `m` is for this `board`'s application slot, fits it, is newer
    than the `running` version and than `failed` (the last version that rolled back, or
    None), and `sig` is the owner's signature over it under `key` (update.key, 65 bytes).
    `verify(key, digest, sig) -> bool` is the port's ECDSA P-256 check. The cheap checks come
    first: they refuse garbage without the signature's cost, and they change nothing."""
    if key is None:
        raise Refused("this device has no update.key")
    if m.board != board:
        raise Refused("image is for %s, this is %s" % (_shown(m.board), board))
    if m.at != APP_START:
        raise Refused(
            "image is linked for flash offset 0x%x, the update slot is 0x%x" % (m.at, APP_START)
        )
    if not PAGE <= m.len <= SLOT_BYTES or m.len % PAGE:
        raise Refused(
            "image of %d bytes; an update is whole %d-byte pages, at most %d bytes"
            % (m.len, PAGE, SLOT_BYTES)
        )
    now = version_tuple(running)
    if now is not None and m.version_t <= now:
        raise Refused(
            "version %s is not newer than the running %s (replay or downgrade)"
            % (m.version, running)
        )
    if failed is not None and version_tuple(failed) is not None:
        if m.version_t <= version_tuple(failed):
            raise Refused(
                "version %s: %s rolled back on this device; build a newer one"
                % (m.version, failed)
            )
    try:
        good = verify(key, m.digest, sig)
    except ValueError:
        raise Refused("update.key is not a P-256 public key")
    if not good:
        raise Refused("signature does not match update.key")


def _shown(text):
    return (
        text
        if len(text) <= 32 and all(c.isalpha() or c.isdigit() or c in "_-." for c in text)
        else "?"
    )
