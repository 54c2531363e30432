# SPDX-License-Identifier: MIT
# tinyctrl: MQTT relay/contact controller for the Raspberry Pi Pico W.
import sys

__version__ = "1.1.0"


def log(*args):
    print("tinyctrl:", *args, file=sys.stderr)


def board_name(board_id):
    """`tinyctrl-<board id in hex>`: unique per board and stable across reboots; the default
    MQTT client id (two boards never share a session) and Home Assistant's device id."""
    return "tinyctrl-" + "".join("%02x" % b for b in board_id)
