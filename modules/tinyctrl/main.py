# SPDX-License-Identifier: MIT
# Entry point: load config.json, then run the controller until reset.
# A bad config stops here with a clear message and returns to the REPL: no reboot loop.
import asyncio
import sys

import port

from . import __version__, board_name, config, log, trial


def load(path=None):
    """The validated config, or None after printing every problem."""
    path = path or port.CONFIG_PATH
    boot = trial.boot(path)  # config.new while a pushed config is on trial
    try:
        cfg = config.load(boot.path, board_name(port.unique_id()))
    except config.ConfigError as e:
        if boot.trying:  # checked when it came, but this boot's validator refuses it
            boot.fail(boot.trying, "it does not load: " + "; ".join(e.problems))
            return load(path)
        print("tinyctrl: %s is not valid, the controller is stopped:" % path)
        for problem in e.problems:
            print("  -", problem)
        print("tinyctrl: fix the file (Thonny or mpremote) and reset the board.")
        port.StatusLed().show("config_error")
        return None
    hold_relays_off(cfg)
    return cfg


def hold_relays_off(cfg):
    """Drive every relay pin to its off level at once (boot safety): until now the
    pins are inputs with the RP2040's reset pull-down (datasheet 2.19.6.3), which an active-low
    board may read as "on". Before the controller's imports and the Wi-Fi chip's start-up, which
    take longer; pins that are not relays stay inputs."""
    g = cfg["gpio"]
    for p in g["relay"] + sorted(g["momentary"]):
        port.RelayPin(p, g["active_low"])


def build(cfg):
    """The Controller, or None if it cannot start (e.g. the CA file is missing)."""
    from .controller import Controller  # after hold_relays_off: mqtt_as, ssl, asyncio are big

    log(started(cfg))
    try:
        return Controller(cfg, port, port.boot_record())
    except OSError as e:
        print("tinyctrl: cannot start: %s" % e)
        port.StatusLed().show("config_error")
        return None


def started(cfg):
    """The console's first line: a user who just copied config.json sees what it set up."""
    g = cfg["gpio"]
    parts = []
    for what, pins in (
        ("relays", g["relay"]),
        ("momentary", sorted(g["momentary"])),
        ("contacts", g["contact"]),
    ):
        if pins:
            parts.append(what + " " + " ".join(g["prefix"] + str(p) for p in pins))
    return "tinyctrl %s %s starting: %s" % (__version__, cfg["name"], ", ".join(parts))


def run(config_path=None):
    cfg = load(config_path)
    controller = cfg and build(cfg)
    if not controller:
        return False
    try:
        asyncio.run(controller.run())
    except KeyboardInterrupt:
        if controller.watchdog:  # the user wants the REPL, not a reset
            controller.watchdog.stop()
        log("stopped")
    except Exception as e:
        # Unexpected: report it; the watchdog, no longer fed by the loop, resets the board.
        sys.print_exception(e)
        controller.led.show("halted")
    finally:
        asyncio.new_event_loop()
    return True
