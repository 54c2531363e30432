# SPDX-License-Identifier: MIT
"""`tinyctrl config`: write config.json (flags or questions), check it as the device would,
import the seed's mqtt_tiny_controller_config.py."""

import getpass
import os
import sys

from . import REFUSED, Failure, configfile, keys, options, push, seedimport, ui


def _ask(args, name, prompt, secret=False, required=True, check=None, default=None):
    """The flag's value, else the answer to `prompt` in a terminal. `check(text)` returns the
    value to use or raises Failure: a flag then fails, an answer is asked again."""
    flag = "--" + name.replace("_", "-")
    value = getattr(args, name, None)
    if value is None and not sys.stdin.isatty():
        if required:
            raise Failure("give %s (or run this in a terminal to be asked)" % flag)
        value = default if default is not None else ""
    if value is not None:
        try:
            return check(value) if check else value
        except Failure as e:
            raise Failure("%s: %s" % (flag, e))
    while True:
        value = (getpass.getpass if secret else input)(prompt)
        value = value if secret else value.strip()
        if not value and default is not None:
            value = default
        if required and not value:
            print("  an answer is needed", file=sys.stderr)
            continue
        try:
            return check(value) if check else value
        except Failure as e:
            print("  %s" % e, file=sys.stderr)


def _yes(prompt, default):
    while True:
        answer = input("%s [%s]: " % (prompt, "Y/n" if default else "y/N")).strip().lower()
        if not answer:
            return default
        if answer in ("y", "yes", "n", "no"):
            return answer.startswith("y")
        print("  answer y or n", file=sys.stderr)


def _device_rule(section, key):
    """A check for `_ask` that applies the device's own rule for section.key."""

    def check(value):
        problem = configfile.value_problem(section, key, value)
        if problem:
            raise Failure(problem)
        return value

    return check


def _server(text):
    """The broker's host name: a URL or HOST:PORT would reach no broker on the board."""
    host = text.strip()
    if "://" in host or (host.count(":") == 1) or "/" in host or " " in host:
        raise Failure(
            "%r is a URL or HOST:PORT; give the host name only, e.g. "
            "broker.example (the port and TLS are asked for or given apart: --port, "
            "--tls)" % text
        )
    return _device_rule("mqtt", "server")(host)


def _port(text):
    if isinstance(text, int) or text.isdigit():
        return _device_rule("mqtt", "port")(int(text))
    raise Failure("%r is not a port number" % text)


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


def _tls(args, m):
    """mqtt.ssl, port, ca_file and tls_insecure, from the flags or asked in a terminal."""
    flags = args.tls or args.ca_file or args.tls_insecure or args.port
    ask = sys.stdin.isatty() and not flags
    m["ssl"] = bool(args.tls or args.ca_file or args.tls_insecure)
    if ask:
        m["ssl"] = _yes(
            "connect with TLS (encrypted; cloud brokers such as HiveMQ need it)?", True
        )
    default = 8883 if m["ssl"] else 1883
    m["port"] = (
        _port(args.port or default)
        if not ask
        else _ask(args, "port", "broker port [%d]: " % default, check=_port, default=str(default))
    )
    m["ca_file"] = ""
    if args.tls_insecure:
        m["tls_insecure"] = True
    elif m["ssl"] and (ask or args.ca_file):
        m["ca_file"] = _ask(
            args,
            "ca_file",
            "CA certificate file, saved beside config.json "
            "[ca.pem] ('none': TLS without certificate checks): ",
            default="ca.pem",
            check=_device_rule("mqtt", "ca_file"),
        )
        if m["ca_file"] == "none":
            m["ca_file"], m["tls_insecure"] = "", True
    elif m["ssl"]:
        m["ca_file"] = "ca.pem"  # --tls alone: the name README.md and provision use


def _pins(args, g):
    """The pin groups, from the flags, or asked (again, while the device would refuse them)."""
    asked = not (args.relay or args.momentary or args.contact)
    if asked and not sys.stdin.isatty():
        raise Failure("give at least one of --relay, --momentary, --contact")
    while True:
        if asked:
            args.relay = input("relay pins, e.g. 16,17: ")
            args.momentary = input("momentary relay pins with seconds, e.g. 18:2 (empty: none): ")
            args.contact = input("contact-switch pins, e.g. 0,1 (empty: none): ")
        try:
            g["relay"] = _pin_list(args.relay, "relay")
            g["momentary"] = _momentary(args.momentary)
            g["contact"] = _pin_list(args.contact, "contact")
            g["notify"] = _pin_list(args.notify, "notify")
            problems = configfile.gpio_problems(g)
            if problems:
                raise Failure("; ".join(problems))
            return
        except Failure as e:
            if not asked:
                raise
            print("  %s" % e, file=sys.stderr)


def cmd_config_init(args):
    path = args.config
    if os.path.exists(path) and not args.force:
        raise Failure("%s exists; give --force to replace it" % path)
    raw = configfile.defaults()
    empty = []
    raw["wifi"]["ssid"] = _ask(
        args, "ssid", "Wi-Fi name (SSID): ", check=_device_rule("wifi", "ssid")
    )
    raw["wifi"]["password"] = _ask(
        args,
        "wifi_password",
        "Wi-Fi password (empty: an open network): ",
        secret=True,
        required=False,
    )
    if not raw["wifi"]["password"]:
        empty.append("an empty Wi-Fi password (an open network; --wifi-password sets one)")
    m = raw["mqtt"]
    m["server"] = _ask(args, "server", "MQTT broker host: ", check=_server)
    _tls(args, m)
    m["user"] = _ask(args, "user", "broker user (empty: none): ", required=False)
    if m["user"]:
        m["password"] = _ask(
            args, "broker_password", "broker password: ", secret=True, required=False
        )
        if not m["password"]:
            empty.append(
                "an empty broker password for %s (--broker-password sets one)" % m["user"]
            )
    m["topic"] = _ask(
        args,
        "topic",
        "topic for this board, e.g. home/garage: ",
        check=_device_rule("mqtt", "topic"),
    )
    m["client_id"] = args.client_id or ""
    g = raw["gpio"]
    _pins(args, g)
    g["active_low"] = not args.active_high
    if args.timezone:
        raw["timezone"] = args.timezone
    made = []
    if args.mfa:
        key = keys.new_totp_key()
        raw["mfa"]["pins"] = dict((str(p), [key]) for p in _pin_list(args.mfa, "mfa"))
        made.append(
            "a TOTP key for %s (enrol it: tinyctrl key show --pin %s --config %s)"
            % (args.mfa, _pin_list(args.mfa, "mfa")[0], path)
        )
    if args.sign:
        raw["sign"]["keys"] = {"script": keys.new_sign_key()}
        raw["sign"]["pins"] = dict((str(p), ["script"]) for p in _pin_list(args.sign, "sign"))
        made.append('a signing key "script" for %s (tinyctrl send signs with it)' % args.sign)
    configfile.save(path, raw)
    ui.out("wrote %s (mode 0600: it holds your passwords and keys)" % path)
    for what in empty:
        ui.out("  note: " + what)
    for line in made:
        ui.out("  generated " + line)
    ui.out(
        "next: tinyctrl key new --pin N --config %s to protect a relay with your phone, then "
        "tinyctrl provision -c %s" % (path, path)
    )
    return 0


def cmd_config_check(args):
    raw, cfg, found = configfile.problems(args.config)
    ca = cfg and configfile.ca_path(cfg["mqtt"], os.path.dirname(os.path.abspath(args.config)))
    problem = ca and configfile.ca_problem(ca)
    if problem:  # the board would stop at "cannot start"
        found = [problem]
    if args.json:
        ui.out_json({"file": args.config, "valid": not found, "problems": found})
    elif not found:
        ui.out("%s: valid" % args.config)
    for problem in [] if args.json else found:
        print("%s: %s" % (args.config, problem), file=sys.stderr)
    return REFUSED if found else 0


def cmd_config_import(args):
    seed = seedimport.read(configfile.read_text(args.old), args.old)
    raw, carried, notes = seedimport.convert(seed, args.ca_file)
    if os.path.exists(args.config) and not args.force:
        raise Failure("%s exists; give --force to replace it" % args.config)
    configfile.save(args.config, raw)
    ui.out("wrote %s from %s" % (args.config, args.old))
    ui.out("carried over:")
    for line in carried:
        ui.out("  " + line)
    if notes:
        ui.out("changed or without an equivalent:")
        for line in notes:
            ui.out("  " + line)
    return 0


def add_commands(sub):
    cfg = options.add_group(
        sub, "config", "write, check or import config.json", "tinyctrl config check -c garage.json"
    )
    csub = cfg.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = options.add_group(
        csub,
        "init",
        "write a new config.json (asks for what flags do not give)",
        "tinyctrl config init --ssid MyWifi --server "
        "xxxx.s1.eu.hivemq.cloud --topic home/garage --relay 16,17",
    )
    options.add_config(init, "the file to write")
    init.add_argument("--ssid")
    init.add_argument("--wifi-password")
    init.add_argument("--server", help="MQTT broker host name (no URL, no port)")
    init.add_argument("--port", type=int, help="broker port (default 1883, 8883 with TLS)")
    init.add_argument("--tls", action="store_true", help="connect with TLS (CA file ca.pem)")
    init.add_argument("--ca-file", help="CA certificate file name on the board (implies --tls)")
    init.add_argument(
        "--tls-insecure",
        action="store_true",
        help="TLS without certificate checks (implies --tls)",
    )
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
    check = options.add_group(
        csub,
        "check",
        "check a config.json as the device would, and the CA certificate it names",
        "tinyctrl config check --json",
    )
    options.add_config(check)
    options.add_json(check)
    check.set_defaults(func=cmd_config_check)
    imp = options.add_group(
        csub,
        "import",
        "convert the seed's mqtt_tiny_controller_config.py",
        "tinyctrl config import mqtt_tiny_controller_config.py",
    )
    imp.add_argument("old", metavar="SEED_FILE")
    options.add_config(imp, "the file to write")
    imp.add_argument(
        "--ca-file",
        default="ca.pem",
        help="the broker's CA certificate on the board (default: ca.pem)",
    )
    imp.add_argument("--force", action="store_true", help="replace an existing file")
    imp.set_defaults(func=cmd_config_import)
    push.add_config_push(csub)
