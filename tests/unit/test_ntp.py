# SPDX-License-Identifier: MIT
from check import raises
from tinyctrl import ntp


def test_ntp_reply_parsing():
    reply = bytearray(48)
    reply[0] = 0x24
    reply[1] = 2
    secs = 1700000000 + ntp.DELTA
    reply[40:44] = secs.to_bytes(4, "big")
    reply[44:48] = (2**31 - 1).to_bytes(4, "big")
    assert ntp.parse(bytes(reply)) == 1700000000
    reply[44:48] = (2**31).to_bytes(4, "big")  # half a second and more rounds up
    t = ntp.parse(bytes(reply))
    assert t == 1700000001 and isinstance(t, int)
    raises(ValueError, ntp.parse, bytes(47))
    reply[1] = 0  # stratum 0: kiss-of-death
    raises(ValueError, ntp.parse, bytes(reply))
