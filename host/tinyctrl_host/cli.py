# SPDX-License-Identifier: MIT
"""The `tinyctrl` command: its parser, one command group per module beside its own sub-parser
(config_cmds, key_cmds, device_cmds, status_cmds, board_cmds, update_cmds). Every error is one
line on standard error and an exit status that says what kind it was (EPILOG)."""

import argparse

from tinyctrl import __version__

from . import NO_ANSWER, NO_BROKER, OK, REFUSED, USAGE, Failure, ui
from . import (
    board_cmds,
    completion,
    config_cmds,
    device_cmds,
    key_cmds,
    status_cmds,
    update_cmds,
)

EPILOG = """exit status:
  %d  done
  %d  refused: by the device, or config check found what it would refuse
  %d  bad input or usage: a missing or invalid file, a wrong flag
  %d  no answer from the device or the board in time
  %d  the broker cannot be reached or refused the connection

Every command reads the config file given with -c/--config, else $TINYCTRL_CONFIG, else
./config.json. NO_COLOR turns colour off.
example: tinyctrl send --pin 16 --on""" % (OK, REFUSED, USAGE, NO_ANSWER, NO_BROKER)


def parser():
    p = argparse.ArgumentParser(
        prog="tinyctrl",
        epilog=EPILOG,
        description="Set up and talk to tinyctrl devices.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version="tinyctrl " + __version__)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (config_cmds, key_cmds, device_cmds, status_cmds, board_cmds, update_cmds):
        group.add_commands(sub)
    completion.add_command(sub, p)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except Failure as e:
        ui.error(str(e))
        return e.status
    except EOFError:
        ui.error("input ended before every answer was given")
        return USAGE
    except KeyboardInterrupt:
        return 130
