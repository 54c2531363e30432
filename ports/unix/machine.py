# SPDX-License-Identifier: MIT
# Simulated `machine` for the unix port: pins hold electrical levels in memory.
# Shadows the built-in module (still importable as `umachine`) when this folder is early
# on sys.path. mqtt_as needs unique_id(); the port layer needs Pin.
import os

_levels = {}
_irqs = {}
# TINYCTRL_SIM_BOARD_ID (hex): the board id of one simulator of a fleet, so each has its
# own default client id and Home Assistant device; else "tinysim1".
_board_id = os.getenv("TINYCTRL_SIM_BOARD_ID")


def unique_id():
    if _board_id:
        return bytes(int(_board_id[i : i + 2], 16) for i in range(0, len(_board_id), 2))
    return b"\x74\x69\x6e\x79\x73\x69\x6d\x31"


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1
    IRQ_FALLING = 4
    IRQ_RISING = 8

    def __init__(self, id, mode=IN, pull=None, value=None):
        self.id = id
        if value is not None:
            _levels[id] = value
        elif pull == Pin.PULL_UP:
            _levels.setdefault(id, 1)
        else:
            _levels.setdefault(id, 0)

    def value(self, v=None):
        if v is None:
            return _levels[self.id]
        _levels[self.id] = 1 if v else 0

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING):
        _irqs[self.id] = handler


def drive(id, level):
    """Set an input's electrical level from outside, firing its IRQ on an edge."""
    if _levels.get(id) != level:
        _levels[id] = level
        handler = _irqs.get(id)
        if handler:
            handler(Pin(id))


def level(id):
    """An output's electrical level, None if the pin was never set up (reset state: input)."""
    return _levels.get(id)
