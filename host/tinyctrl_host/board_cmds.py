# SPDX-License-Identifier: MIT
"""`tinyctrl flash` and `tinyctrl provision`: the Pico W itself, over its BOOTSEL drive and its
serial port."""

import json
import os
import time

from . import NO_ANSWER, Failure, board, configfile, mqttio, options, push, ui


def cmd_provision(args):
    raw, cfg = configfile.load(args.config)
    config_dir = os.path.dirname(os.path.abspath(args.config))
    ca = None
    name = cfg["mqtt"]["ca_file"]
    if args.ca or name:
        if not name:
            raise Failure(
                "%s: mqtt.ca_file is empty, so the board would not use %s" % (args.config, args.ca)
            )
        path = args.ca or os.path.join(config_dir, name)
        problem = configfile.ca_problem(path)
        if problem:
            raise Failure(problem + " (or name the certificate: tinyctrl provision CA_FILE)")
        ca = (path, name)
    ui.out("%s: valid" % args.config)
    watcher = None
    if not args.no_wait:
        seen_from_pc = _broker_override(cfg, args.broker)
        try:
            with ui.Spinner("connecting to the broker"):
                watcher = mqttio.Topic(seen_from_pc, config_dir, timeout=5)
        except Failure as e:
            ui.out("note: %s; not waiting for the device to come online" % e)
    try:
        ui.out(
            "copying %s%s and its push key to the board and resetting it (mpremote)..."
            % (args.config, " and " + ca[1] if ca else "")
        )
        with ui.Spinner("copying to the board (mpremote)") as spinner:
            board.copy_config(
                args.port,
                args.config,
                ca,
                push.ensure_key(args.config),
                show=lambda line: spinner.out("  " + line),
            )
        ui.out("board reset")
        if watcher:
            return _wait_online(watcher, cfg, args.timeout)
        return 0
    finally:
        if watcher:
            watcher.close()


def _broker_override(cfg, broker):
    """The config with the broker as this PC reaches it (--broker HOST[:PORT]), when that differs
    from the board's view, e.g. a name only the board's network resolves."""
    if not broker:
        return cfg
    host, _, port = broker.rpartition(":") if ":" in broker else (broker, "", "")
    if port and not port.isdigit():
        raise Failure("--broker: %r is not HOST or HOST:PORT" % broker)
    mqtt = dict(cfg["mqtt"], server=host or broker)
    if port:
        mqtt["port"] = int(port)
    mqtt["servers"] = [(mqtt["server"], mqtt["port"])]  # that one node, not the board's cluster
    return dict(cfg, mqtt=mqtt)


def _wait_online(watcher, cfg, timeout):
    device = cfg["name"]  # "FROM" names the device, never its client id
    ui.out(
        "waiting up to %d s for %s to come online on %s..."
        % (timeout, device or "the device", watcher.where)
    )
    deadline = time.monotonic() + timeout
    while True:
        with ui.Spinner("waiting for the device"):
            payload = watcher.next(deadline)
        if payload is None:
            raise Failure(
                "the device did not come online within %d s; its console (mpremote "
                "connect PORT repl) shows why" % timeout,
                NO_ANSWER,
            )
        try:
            obj = json.loads(payload) if payload.startswith(b"{") else {}
        except ValueError:
            continue
        if "FROM" in obj and "STATUS" not in obj and (not device or obj["FROM"] == device):
            shown = mqttio.describe(payload, cfg["gpio"]["prefix"])
            ui.out("%s is online: %s" % (obj["FROM"], shown))
            return 0


def cmd_flash(args):
    target = board.flash(args.firmware, args.drive, ui.progress("flashing"))
    ui.out("copied to %s; the Pico W writes it to flash and restarts" % target)
    return 0


def add_commands(sub):
    prov = options.add_group(
        sub,
        "provision",
        "copy config.json (and the CA) to the board, reset it, wait until it is online",
        "tinyctrl provision -c garage.json --port /dev/ttyACM0",
    )
    options.add_config(prov)
    prov.add_argument(
        "ca",
        nargs="?",
        help="the broker's CA certificate (default: mqtt.ca_file beside the config file)",
    )
    prov.add_argument(
        "--port",
        help="the board's serial port, e.g. /dev/ttyACM0, COM3 or "
        "/dev/cu.usbmodem1101 (default: the first one found)",
    )
    options.add_timeout(prov, 90, "to wait for it online")
    prov.add_argument("--no-wait", action="store_true", help="do not wait for it to come online")
    prov.add_argument(
        "--broker",
        metavar="HOST[:PORT]",
        help="where this PC reaches the broker, if not as the board does",
    )
    prov.set_defaults(func=cmd_provision)

    fl = options.add_group(
        sub,
        "flash",
        "copy the firmware to a Pico W in BOOTSEL mode",
        "tinyctrl flash build/PICO_W_TINYCTRL/firmware.uf2",
    )
    fl.add_argument("firmware")
    fl.add_argument("--drive", help="the RPI-RP2 drive's folder (default: found by itself)")
    fl.set_defaults(func=cmd_flash)
