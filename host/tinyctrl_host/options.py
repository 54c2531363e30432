# SPDX-License-Identifier: MIT
"""Options every command group shares, so each means the same everywhere: the config file,
timeouts, --json."""

import argparse
import os

CONFIG_ENV = "TINYCTRL_CONFIG"
DEFAULT_CONFIG = "config.json"


def add_config(p, what="the config file"):
    """-c/--config: the one rule for naming config.json in every command."""
    p.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        default=os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG,
        help="%s (default: $%s, else ./%s)" % (what, CONFIG_ENV, DEFAULT_CONFIG),
    )


def seconds(text):
    """argparse type: a whole number of seconds, at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError("%r is not a whole number of seconds >= 1" % text)
    return value


def add_timeout(p, default, what):
    p.add_argument(
        "--timeout",
        type=seconds,
        default=default,
        metavar="S",
        help="seconds %s, all told (default: %s)" % (what, default or "none"),
    )


def add_json(p):
    p.add_argument("--json", action="store_true", help="print JSON for scripts")


def add_group(sub, name, help, example, aliases=()):
    """A command group's parser, with an example under its --help."""
    return sub.add_parser(
        name,
        aliases=list(aliases),
        help=help,
        description=help,
        epilog="example: " + example,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
