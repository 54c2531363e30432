# SPDX-License-Identifier: MIT
# The simulator's download slot for firmware updates (download.py): a file beside config.json,
# where the board has a region of flash (tinyctrl.update.DOWNLOAD_START).
import os


class DownloadSlot:
    """Made empty (as an erased slot); written and read at offsets; cleared when refused."""

    def __init__(self, folder):
        self.path = folder + "update.slot"
        open(self.path, "wb").close()

    def write(self, offset, data):
        with open(self.path, "r+b") as f:
            f.seek(offset)
            f.write(data)

    def read(self, offset, n):
        with open(self.path, "rb") as f:
            f.seek(offset)
            return f.read(n)

    def clear(self):
        try:
            os.remove(self.path)
        except OSError:
            pass
