# SPDX-License-Identifier: MIT
"""The `tinyctrl` command. Every error is one line on standard error and exit status 1."""
import argparse
import getpass
import json
import os
import sys
import time

from . import Failure, board, configfile, keys, mqttio, push, seedimport

DEFAULT_CONFIG = "config.json"
# After the state a pin request produced: how long an error for the same request may follow.
ERROR_GRACE_S = 1.5


def _out(line=""):
    print(line, flush=True)


def _progress(what):
    """A progress display for long steps: a bar on a terminal, else a line per quarter."""
    tty = sys.stderr.isatty()
    shown = [-1]

    def update(done, total):
        pct = done * 100 // total
        if tty:
            bar = "#" * (pct // 4)
            end = "\n" if done >= total else ""
            sys.stderr.write("\r%s [%-25s] %3d%%%s" % (what, bar, pct, end))
        elif pct // 25 > shown[0]:
            shown[0] = pct // 25
            sys.stderr.write("%s %d%%\n" % (what, pct))
        sys.stderr.flush()
    return update


# --- config -------------------------------------------------------------------------------------

def _ask(args, name, prompt, secret=False, required=True):
    value = getattr(args, name)
    if value is not None:
        return value
    if not sys.stdin.isatty():
        if required:
            raise Failure("give --%s (or run this in a terminal to be asked)"
                          % name.replace("_", "-"))
        return ""
    value = (getpass.getpass if secret else input)(prompt)
    if required and not value.strip():
        raise Failure("%s is required" % name.replace("_", " "))
    return value.strip() if not secret else value


def _pin_list(text, what):
    pins = []
    for part in (text or "").replace(",", " ").split():
        if not part.isdigit():
            raise Failure("--%s: %r is not a pin number" % (what, part))
        pins.append(int(part))
    return pins


def _momentary(text):
    out = {}
    for part in (text or "").replace(",", " ").split():
        pin, _, secs = part.partition(":")
        if not pin.isdigit() or (secs and not secs.isdigit()):
            raise Failure("--momentary: %r is not PIN or PIN:SECONDS" % part)
        out[pin] = int(secs) if secs else 2
    return out


def cmd_config_init(args):
    path = args.file
    if os.path.exists(path) and not args.force:
        raise Failure("%s exists; give --force to replace it" % path)
    raw = configfile.defaults()
    raw["wifi"]["ssid"] = _ask(args, "ssid", "Wi-Fi name (SSID): ")
    raw["wifi"]["password"] = _ask(args, "wifi_password", "Wi-Fi password: ", secret=True,
                                   required=False)
    m = raw["mqtt"]
    m["server"] = _ask(args, "server", "MQTT broker host: ")
    m["ssl"] = bool(args.tls or args.ca_file)
    m["port"] = args.port or (8883 if m["ssl"] else 1883)
    m["ca_file"] = args.ca_file or ""
    if args.tls_insecure:
        m["tls_insecure"] = True
    m["user"] = _ask(args, "user", "broker user (empty: none): ", required=False)
    if m["user"]:
        m["password"] = _ask(args, "broker_password", "broker password: ", secret=True,
                             required=False)
    m["topic"] = _ask(args, "topic", "topic for this board, e.g. home/garage: ")
    m["client_id"] = args.client_id or ""
    if not (args.relay or args.momentary or args.contact):
        if not sys.stdin.isatty():
            raise Failure("give at least one of --relay, --momentary, --contact")
        args.relay = input("relay pins, e.g. 16,17: ")
        args.momentary = input("momentary relay pins with seconds, e.g. 18:2 (empty: none): ")
        args.contact = input("contact-switch pins, e.g. 0,1 (empty: none): ")
    g = raw["gpio"]
    g["relay"] = _pin_list(args.relay, "relay")
    g["momentary"] = _momentary(args.momentary)
    g["contact"] = _pin_list(args.contact, "contact")
    g["notify"] = _pin_list(args.notify, "notify")
    g["active_low"] = not args.active_high
    if args.timezone:
        raw["timezone"] = args.timezone
    made = []
    if args.mfa:
        key = keys.new_totp_key()
        raw["mfa"]["pins"] = dict((str(p), [key]) for p in _pin_list(args.mfa, "mfa"))
        made.append("a TOTP key for %s (enrol it: tinyctrl key show --pin %s --config %s)"
                    % (args.mfa, _pin_list(args.mfa, "mfa")[0], path))
    if args.sign:
        raw["sign"]["keys"] = {"script": keys.new_sign_key()}
        raw["sign"]["pins"] = dict((str(p), ["script"]) for p in _pin_list(args.sign, "sign"))
        made.append("a signing key \"script\" for %s (tinyctrl send signs with it)" % args.sign)
    configfile.save(path, raw)
    _out("wrote %s (mode 0600: it holds your passwords and keys)" % path)
    for line in made:
        _out("  generated " + line)
    _out("next: tinyctrl key new --pin N --config %s to protect a relay with your phone, then "
         "tinyctrl provision %s" % (path, path))
    return 0


def cmd_config_check(args):
    raw, cfg, found = configfile.problems(args.file)
    if not found:
        _out("%s: valid" % args.file)
        return 0
    for problem in found:
        print("%s: %s" % (args.file, problem), file=sys.stderr)
    return 1


def cmd_config_import(args):
    seed = seedimport.read(configfile.read_text(args.old), args.old)
    raw, carried, notes = seedimport.convert(seed, args.ca_file)
    if os.path.exists(args.output) and not args.force:
        raise Failure("%s exists; give --force to replace it" % args.output)
    configfile.save(args.output, raw)
    _out("wrote %s from %s" % (args.output, args.old))
    _out("carried over:")
    for line in carried:
        _out("  " + line)
    if notes:
        _out("changed or without an equivalent:")
        for line in notes:
            _out("  " + line)
    return 0


# --- keys ---------------------------------------------------------------------------------------

def _output_pin(cfg, pin):
    g = cfg["gpio"]
    if pin not in g["relay"] and pin not in g["momentary"]:
        raise Failure("%s%d is not a relay or momentary pin in this config" % (g["prefix"], pin))


def _show_key(key, account, args):
    uri = keys.otpauth_uri(key, account)
    _out("Scan this with Google Authenticator (or any TOTP app):")
    keys.qr_terminal(uri, sys.stdout)
    _out(uri if args.show else keys.redacted(uri))
    if args.png:
        keys.qr_png(uri, args.png, configfile.write_private)
        _out("QR code written to %s (mode 0600)" % args.png)


def cmd_key_new(args):
    raw, cfg = configfile.load(args.config)
    _output_pin(cfg, args.pin)
    key = keys.new_totp_key()
    pins = raw.setdefault("mfa", {}).setdefault("pins", {})
    pins.setdefault(str(args.pin), []).append(key)
    configfile.save(args.config, raw)
    prefix = cfg["gpio"]["prefix"]
    _out("added a new 160-bit key for %s%d to %s" % (prefix, args.pin, args.config))
    _show_key(key, "%s %s%d" % (args.name or cfg["mqtt"]["topic"], prefix, args.pin), args)
    push.remember_name(args.config, args.pin, key, args.name)  # for key revoke --name
    if not args.push:
        _out("copy %s to the board (tinyctrl provision, or config push) for the key to take "
             "effect" % args.config)
    return push.after_key_new(args)


def _pin_keys(raw, pin):
    for p, ks in raw.get("mfa", {}).get("pins", {}).items():
        if int(p) == pin:
            return ks
    return []


def cmd_key_show(args):
    raw, cfg = configfile.load(args.config)
    ks = _pin_keys(raw, args.pin)
    if not 1 <= args.index <= len(ks):
        raise Failure("GP%d has %d key(s) in %s" % (args.pin, len(ks), args.config))
    prefix = cfg["gpio"]["prefix"]
    _show_key(ks[args.index - 1], "%s %s%d" % (args.name or cfg["mqtt"]["topic"], prefix,
                                               args.pin), args)
    return 0


def cmd_key_code(args):
    raw, cfg = configfile.load(args.config)
    pins = [args.pin] if args.pin is not None else sorted(cfg["mfa"]["pins"])
    if not pins or not any(_pin_keys(raw, p) for p in pins):
        raise Failure("no TOTP key for %s in %s" % ("GP%d" % args.pin if args.pin is not None
                                                    else "any pin", args.config))
    for p in pins:
        for i, key in enumerate(_pin_keys(raw, p), 1):
            _out("%s%d key %d: %06d" % (cfg["gpio"]["prefix"], p, i, keys.current_code(key)))
    _out("(valid for %d more seconds)" % keys.seconds_left())
    return 0


# --- talking to the device ----------------------------------------------------------------------

def _request_text(args, cfg):
    if args.request and (args.pin is not None or args.cmd):
        raise Failure("give a JSON request or --pin/--cmd, not both")
    if args.request:
        return args.request
    if args.cmd:
        return json.dumps({"CMD": args.cmd})
    if args.pin is None or args.on == args.off:
        raise Failure("give a JSON request such as '{\"GP16\": 1}', or --pin N with --on or --off")
    return json.dumps({"%s%d" % (cfg["gpio"]["prefix"], args.pin): 1 if args.on else 0})


def cmd_send(args):
    raw, cfg = configfile.load(args.config)
    req, obj = mqttio.parse_request(cfg, _request_text(args, cfg))
    topic = mqttio.Topic(cfg, os.path.dirname(os.path.abspath(args.config)))
    try:
        obj = mqttio.authorise(cfg, req, obj, cfg["mqtt"]["topic"], args.code, args.key_file)
        topic.publish(json.dumps(obj))
        deadline = time.monotonic() + args.timeout
        device = cfg["name"]  # "FROM" names the device, never its client id
        while True:
            payload = topic.next(deadline)
            if payload is None:
                raise Failure("no answer from the device within %d s (is it online? tinyctrl "
                              "watch %s)" % (args.timeout, args.config))
            done, refused = mqttio.answer(payload, req, device, cfg["gpio"]["prefix"])
            if done:
                _out(mqttio.describe(payload, cfg["gpio"]["prefix"]))
                if req.pins and not payload.startswith(b"Error:"):
                    # A refusal publishes the true state and then the reason, in one go: a
                    # state that looks right may still come with an error (pin already there).
                    refused = _print_reason(topic, 3 if refused else ERROR_GRACE_S) or refused
                return 1 if refused else 0
    finally:
        topic.close()


def _print_reason(topic, wait_s):
    """Print the device's next error line within `wait_s` seconds; True if there was one."""
    deadline = time.monotonic() + wait_s
    while True:
        payload = topic.next(deadline)
        if payload is None:
            return False
        if payload.startswith(b"Error:"):
            _out(mqttio.describe(payload))
            return True


def cmd_watch(args):
    raw, cfg = configfile.load(args.config)
    topic = mqttio.Topic(cfg, os.path.dirname(os.path.abspath(args.config)))
    prefix = cfg["gpio"]["prefix"]
    _out("watching %s on %s (Ctrl-C stops)" % (cfg["mqtt"]["topic"], topic.where))
    deadline = time.monotonic() + args.timeout if args.timeout else float("inf")
    seen = 0
    try:
        while args.count is None or seen < args.count:
            payload = topic.next(min(deadline, time.monotonic() + 1))
            if payload is None:
                if time.monotonic() >= deadline:
                    break
                continue
            _out("%s %s" % (time.strftime("%H:%M:%S"), mqttio.describe(payload, prefix)))
            seen += 1
    finally:
        topic.close()
    return 0


def cmd_provision(args):
    raw, cfg = configfile.load(args.config)
    config_dir = os.path.dirname(os.path.abspath(args.config))
    ca = None
    name = cfg["mqtt"]["ca_file"]
    if args.ca or name:
        if not name:
            raise Failure("%s: mqtt.ca_file is empty, so the board would not use %s"
                          % (args.config, args.ca))
        path = args.ca or os.path.join(config_dir, name)
        if not os.path.isfile(path):
            raise Failure("%s: CA certificate not found (mqtt.ca_file names it; give it as the "
                          "second argument)" % path)
        ca = (path, name)
    _out("%s: valid" % args.config)
    watcher = None
    if not args.no_wait:
        seen_from_pc = _broker_override(cfg, args.broker)
        try:
            watcher = mqttio.Topic(seen_from_pc, config_dir, timeout=5)
        except Failure as e:
            _out("note: %s; not waiting for the device to come online" % e)
    try:
        _out("copying %s%s and its push key to the board and resetting it (mpremote)..."
             % (args.config, " and " + ca[1] if ca else ""))
        board.copy_config(args.port, args.config, ca, push.ensure_key(args.config))
        _out("board reset")
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
    return dict(cfg, mqtt=mqtt)


def _wait_online(watcher, cfg, timeout):
    device = cfg["name"]  # "FROM" names the device, never its client id
    _out("waiting up to %d s for %s to come online on %s..."
         % (timeout, device or "the device", watcher.where))
    deadline = time.monotonic() + timeout
    while True:
        payload = watcher.next(deadline)
        if payload is None:
            raise Failure("the device did not come online within %d s; its console (mpremote "
                          "connect PORT repl) shows why" % timeout)
        try:
            obj = json.loads(payload) if payload.startswith(b"{") else {}
        except ValueError:
            continue
        if "FROM" in obj and "STATUS" not in obj and (not device or obj["FROM"] == device):
            shown = mqttio.describe(payload, cfg["gpio"]["prefix"])
            _out("%s is online: %s" % (obj["FROM"], shown))
            return 0


def cmd_flash(args):
    target = board.flash(args.firmware, args.drive, _progress("flashing"))
    _out("copied to %s; the Pico W writes it to flash and restarts" % target)
    return 0


def parser():
    p = argparse.ArgumentParser(prog="tinyctrl",
                                description="Set up and talk to tinyctrl devices.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    cfg = sub.add_parser("config", help="write, check or import config.json")
    csub = cfg.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = csub.add_parser("init",
                           help="write a new config.json (asks for what flags do not give)")
    init.add_argument("file", nargs="?", default=DEFAULT_CONFIG)
    init.add_argument("--ssid")
    init.add_argument("--wifi-password")
    init.add_argument("--server", help="MQTT broker host")
    init.add_argument("--port", type=int, help="broker port (default 1883, 8883 with TLS)")
    init.add_argument("--tls", action="store_true", help="connect with TLS")
    init.add_argument("--ca-file", help="CA certificate file name on the board (implies --tls)")
    init.add_argument("--tls-insecure", action="store_true", help="TLS without certificate checks")
    init.add_argument("--user", help="broker user")
    init.add_argument("--broker-password")
    init.add_argument("--topic")
    init.add_argument("--client-id")
    init.add_argument("--relay", help="relay pins, e.g. 16,17")
    init.add_argument("--momentary", help="momentary pins and seconds, e.g. 18:2,19:5")
    init.add_argument("--contact", help="contact-switch pins, e.g. 0,1,2,3")
    init.add_argument("--notify", help="pins that send NOTIFY on a hardware change")
    init.add_argument("--active-high", action="store_true", help="relay board energises on high")
    init.add_argument("--timezone")
    init.add_argument("--mfa", help="pins protected by a new TOTP key, e.g. 18")
    init.add_argument("--sign", help="pins a new signing key may set, e.g. 16")
    init.add_argument("--force", action="store_true", help="replace an existing file")
    init.set_defaults(func=cmd_config_init)
    check = csub.add_parser("check", help="check a config.json as the device would")
    check.add_argument("file")
    check.set_defaults(func=cmd_config_check)
    imp = csub.add_parser("import", help="convert the seed's mqtt_tiny_controller_config.py")
    imp.add_argument("old")
    imp.add_argument("-o", "--output", default=DEFAULT_CONFIG)
    imp.add_argument("--ca-file", default="ca.pem",
                     help="the broker's CA certificate on the board")
    imp.add_argument("--force", action="store_true")
    imp.set_defaults(func=cmd_config_import)

    key = sub.add_parser("key", help="TOTP keys for authenticator apps")
    ksub = key.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, func, text in (("new", cmd_key_new, "add a new key for a pin, show its QR code"),
                             ("show", cmd_key_show, "show the QR code of a pin's key again")):
        k = ksub.add_parser(name, help=text)
        k.add_argument("--pin", type=int, required=True)
        k.add_argument("--name", help="account name shown in the app (default: the topic)")
        k.add_argument("--config", default=DEFAULT_CONFIG)
        k.add_argument("--png", help="also write the QR code to this PNG file")
        k.add_argument("--show", action="store_true", help="print the URI with the secret")
        if name == "show":
            k.add_argument("--index", type=int, default=1, help="which of the pin's keys")
        else:
            k.add_argument("--push", action="store_true", help="push the file to the device")
            push.add_push_options(k, _progress)
        k.set_defaults(func=func)
    push.add_parsers(csub, ksub, _progress)
    code = ksub.add_parser("code", help="print the current code")
    code.add_argument("--pin", type=int)
    code.add_argument("--config", default=DEFAULT_CONFIG)
    code.set_defaults(func=cmd_key_code)

    send = sub.add_parser("send", help="send a request and print the device's answer")
    send.add_argument("config")
    send.add_argument("request", nargs="?", help="JSON, e.g. '{\"GP18\": 1}'")
    send.add_argument("--pin", type=int)
    send.add_argument("--on", action="store_true")
    send.add_argument("--off", action="store_true")
    send.add_argument("--cmd", choices=("stats", "getip", "refresh", "ntp"))
    send.add_argument("--code", type=int, help="a TOTP code from your app instead of the key")
    send.add_argument("--key-file", help="sign with the sign.keys string in this file")
    send.add_argument("--timeout", type=int, default=15, help="seconds to wait for the answer")
    send.set_defaults(func=cmd_send)

    watch = sub.add_parser("watch", help="follow the topic in readable form")
    watch.add_argument("config")
    watch.add_argument("--count", type=int, help="stop after this many messages")
    watch.add_argument("--timeout", type=int, help="stop after this many seconds")
    watch.set_defaults(func=cmd_watch)

    prov = sub.add_parser("provision", help="copy config.json (and the CA) to the board, reset it")
    prov.add_argument("config")
    prov.add_argument("ca", nargs="?", help="the broker's CA certificate (default: mqtt.ca_file)")
    prov.add_argument("--port", help="the board's serial port (default: the first one found)")
    prov.add_argument("--timeout", type=int, default=90, help="seconds to wait for it online")
    prov.add_argument("--no-wait", action="store_true", help="do not wait for it to come online")
    prov.add_argument("--broker", metavar="HOST[:PORT]",
                      help="where this PC reaches the broker, if not as the board does")
    prov.set_defaults(func=cmd_provision)

    fl = sub.add_parser("flash", help="copy the firmware to a Pico W in BOOTSEL mode")
    fl.add_argument("firmware")
    fl.add_argument("--drive", help="the RPI-RP2 drive's folder (default: found by itself)")
    fl.set_defaults(func=cmd_flash)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except Failure as e:
        print("tinyctrl: %s" % e, file=sys.stderr)
        return 1
    except EOFError:
        print("tinyctrl: input ended before every answer was given", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
