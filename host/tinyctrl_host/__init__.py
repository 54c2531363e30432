# SPDX-License-Identifier: MIT
"""tinyctrl on the PC: write and check config.json, enrol TOTP keys, flash and provision the
Pico W, send requests and watch the topic. It checks files with the device's own validator
(the `tinyctrl` package), so the PC and the board never disagree about a config."""


class Failure(Exception):
    """What went wrong, in one line for the user; the CLI prints it and exits 1."""
