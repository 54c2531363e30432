# SPDX-License-Identifier: MIT
"""tinyctrl on the PC: write and check config.json, enrol TOTP keys, flash and provision the
Pico W, send requests and watch the topic. It checks files with the device's own validator
(the `tinyctrl` package), so the PC and the board never disagree about a config."""

# Exit statuses scripts can tell apart; `tinyctrl --help` lists them (cli.EPILOG).
OK = 0
REFUSED = 1  # the device refused the request, or config check found what it would refuse
USAGE = 2  # bad input or usage: a missing or invalid file, a wrong flag (argparse's own 2)
NO_ANSWER = 3  # the device or the board did not answer in time
NO_BROKER = 4  # the broker cannot be reached or refused the connection


class Failure(Exception):
    """What went wrong, in one line for the user; the CLI prints it and exits with `status`."""

    def __init__(self, message, status=USAGE):
        super().__init__(message)
        self.status = status
