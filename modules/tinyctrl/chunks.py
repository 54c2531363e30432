# SPDX-License-Identifier: MIT
# What config pushes (push.py, <mqtt.topic>/config) and firmware updates (download.py,
# <mqtt.topic>/update) share: a transfer is a series of MQTT messages, each the line
# "<transfer id> <index>/<count>\n" then a piece of data; one transfer at a time, its chunks in
# order, each taken once (QoS 1 may deliver one again), a chunk 0 starting afresh, and a
# transfer with no chunk for ABANDON_MS dropped. Refusals are one line each.

ABANDON_MS = 60000  # a transfer with no chunk for this long is dropped


class Refused(Exception):
    """Why a transfer is refused; the text is safe to publish."""


def split(msg, kind):
    """(id, index, count, data) of a `kind` ("push", "update") chunk; else Refused."""
    end = msg.find(b"\n")
    head = bytes(msg[:end]).split() if 0 < end <= 24 else ()
    index, _, count = head[1].partition(b"/") if len(head) == 2 else (b"", b"", b"")
    if not (head and head[0].isdigit() and index.isdigit() and count.isdigit()):
        raise _not_a_chunk(kind)
    return int(head[0]), int(index), int(count), msg[end + 1 :]


def bound(kind, index, count, data, most, size):
    """Refused unless chunk `index` of `count` (at most `most`) holds at most `size` bytes."""
    if not 0 <= index < count <= most or len(data) > size:
        raise _not_a_chunk(kind)


def _not_a_chunk(kind):
    return Refused("not %s %s chunk" % ("an" if kind[0] in "aeiou" else "a", kind))


class Transfer:
    """The transfer under way: its id, how many chunks, the next one due, when one last came."""

    def __init__(self, kind, tid, count, now_ms):
        self.kind = kind
        self.id = tid
        self.count = count
        self.next = 0
        self.last_ms = now_ms

    def take(self, tid, index, count, now_ms):
        """True if chunk `index` of transfer `tid` is the one due (it is then counted), False
        if it came before; Refused if one is missing or the transfer is another."""
        if tid != self.id:
            raise no_start(self.kind, index, tid)
        if index < self.next:
            return False  # delivered again (QoS 1)
        if index > self.next or count != self.count:
            raise Refused(
                "%s %d: chunk %d of %d missing" % (self.kind, self.id, self.next, self.count)
            )
        self.next = index + 1
        self.last_ms = now_ms
        return True

    def complete(self):
        return self.next >= self.count

    def abandoned(self, now_ms):
        return now_ms - self.last_ms >= ABANDON_MS


def no_start(kind, index, tid):
    return Refused("chunk %d of %s %d without its start" % (index, kind, tid))
