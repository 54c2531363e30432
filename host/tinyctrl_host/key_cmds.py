# SPDX-License-Identifier: MIT
"""`tinyctrl key`: TOTP keys for authenticator apps in config.json: new (with its QR code),
show, list, revoke (alias remove), and the current code; and `key new --update`, the owner's
firmware update key."""

import os
import sys
import time

from . import Failure, configfile, keys, options, push, ui, update


def _output_pin(cfg, pin):
    g = cfg["gpio"]
    if pin not in g["relay"] and pin not in g["momentary"]:
        raise Failure("%s%d is not a relay or momentary pin in this config" % (g["prefix"], pin))


def _show_key(uri, args):
    """The URI, then the QR code last, so nothing printed after it scrolls it off the top."""
    ui.out(uri if args.show else keys.redacted(uri))
    rows = keys.qr_rows(uri)
    if rows > keys.QR_ROWS:
        ui.out(
            "note: this QR code is %d rows (a long account name): a terminal must show %d "
            "to show it whole; use --png or a shorter --name" % (rows, rows + 2)
        )
    ui.out("Scan this with Google Authenticator (or any TOTP app):")
    keys.qr_terminal(uri, sys.stdout)


def _write_png(uri, args):
    if args.png:
        keys.qr_png(uri, args.png, configfile.write_private)
        ui.out("QR code written to %s (mode 0600)" % args.png)


def _account(args, cfg):
    return "%s %s%d" % (args.name or cfg["mqtt"]["topic"], cfg["gpio"]["prefix"], args.pin)


def cmd_key_new(args):
    if args.update:
        return _new_update_key(args)
    raw, cfg = configfile.load(args.config)
    _output_pin(cfg, args.pin)
    key = keys.new_totp_key()
    uri = keys.otpauth_uri(key, _account(args, cfg))
    had = len(_pin_keys(raw, args.pin))
    _pin_entry(raw, args.pin).append(key)
    # The PNG first: a key that lands in config.json but was never shown would open the pin.
    _write_png(uri, args)
    try:
        configfile.save(args.config, raw)
    except Failure:
        if args.png:
            os.unlink(args.png)
        raise
    prefix = cfg["gpio"]["prefix"]
    ui.out("added a new 160-bit key for %s%d to %s" % (prefix, args.pin, args.config))
    if had:
        ui.out(
            "%s%d already has %d key(s); each one opens it (tinyctrl key list, key revoke)"
            % (prefix, args.pin, had)
        )
    if not args.push:
        ui.out(
            "copy %s to the board (tinyctrl provision, or config push) for the key to take "
            "effect" % args.config
        )
    _show_key(uri, args)
    push.remember_name(args.config, args.pin, key, args.name)  # for key revoke --name
    return push.after_key_new(args)


def _new_update_key(args):
    """The update key pair: the private key beside the config, its public key in update.key.
    Nothing secret is printed."""
    if args.png or args.show or args.name:
        raise Failure("--name, --png and --show are for a pin's TOTP key, not --update")
    raw, cfg = configfile.load(args.config)
    had = cfg["update"]["key"]
    public = update.new_key(args.config)
    raw.setdefault("update", {})["key"] = public
    try:
        configfile.save(args.config, raw)
    except Failure:
        os.unlink(update.key_path(args.config))  # a private key whose public key is nowhere
        raise
    ui.out(
        "wrote a new ECDSA P-256 update key to %s (mode 0600): keep it on this PC, it signs "
        "firmware updates (tinyctrl update)" % update.key_path(args.config)
    )
    ui.out(
        "%s its public key as update.key in %s%s"
        % (
            "replaced" if had else "put",
            args.config,
            ": devices stop taking updates signed by the old key" if had else "",
        )
    )
    if not args.push:
        ui.out(
            "copy %s to the board (tinyctrl provision, or config push) for it to take "
            "updates" % args.config
        )
    return push.after_key_new(args)


def _pin_name(raw, pin):
    """The key under which mfa.pins lists `pin` in the file ("18", or however it was written)."""
    for p in raw.get("mfa", {}).get("pins", {}):
        if int(p) == pin:
            return p
    return str(pin)


def _pin_keys(raw, pin):
    return raw.get("mfa", {}).get("pins", {}).get(_pin_name(raw, pin), [])


def _pin_entry(raw, pin):
    pins = raw.setdefault("mfa", {}).setdefault("pins", {})
    return pins.setdefault(_pin_name(raw, pin), [])


def _key_index(raw, args):
    ks = _pin_keys(raw, args.pin)
    if not 1 <= args.index <= len(ks):
        raise Failure("GP%d has %d key(s) in %s" % (args.pin, len(ks), args.config))
    return args.index - 1


def cmd_key_show(args):
    raw, cfg = configfile.load(args.config)
    uri = keys.otpauth_uri(_pin_keys(raw, args.pin)[_key_index(raw, args)], _account(args, cfg))
    _write_png(uri, args)
    _show_key(uri, args)
    return 0


def cmd_key_list(args):
    raw, cfg = configfile.load(args.config)
    pins = sorted(cfg["mfa"]["pins"])
    if not pins:
        raise Failure("no TOTP key for any pin in %s" % args.config)
    names = push.read_names(args.config)
    for p in pins:
        named = {fp: n for n, fp in names.get(str(p), {}).items()}
        for i, key in enumerate(_pin_keys(raw, p), 1):
            name = named.get(push.fingerprint(key))
            ui.out("%s%d key %d%s" % (cfg["gpio"]["prefix"], p, i, " (%s)" % name if name else ""))
    return 0


def cmd_key_code(args):
    raw, cfg = configfile.load(args.config)
    pins = [args.pin] if args.pin is not None else sorted(cfg["mfa"]["pins"])
    if not pins or not any(_pin_keys(raw, p) for p in pins):
        raise Failure(
            "no TOTP key for %s in %s"
            % ("GP%d" % args.pin if args.pin is not None else "any pin", args.config)
        )
    now = time.time()  # one instant for every code and the seconds left
    codes = [
        {
            "pin": p,
            "key": i,
            "code": "%06d" % keys.current_code(key, now),
            "valid_s": keys.seconds_left(now),
        }
        for p in pins
        for i, key in enumerate(_pin_keys(raw, p), 1)
    ]
    if args.json:
        ui.out_json(codes)
        return 0
    for c in codes:
        ui.out("%s%d key %d: %s" % (cfg["gpio"]["prefix"], c["pin"], c["key"], c["code"]))
    ui.out("(valid for %d more seconds)" % keys.seconds_left(now))
    return 0


def add_commands(sub):
    key = options.add_group(
        sub, "key", "TOTP keys for authenticator apps", "tinyctrl key new --pin 18 --name phone"
    )
    ksub = key.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, func, text, example in (
        (
            "new",
            cmd_key_new,
            "add a new TOTP key for a pin and show its QR code, or make the update key pair",
            "tinyctrl key new --pin 18 --name phone --png key.png",
        ),
        (
            "show",
            cmd_key_show,
            "show the QR code of a pin's key again",
            "tinyctrl key show --pin 18 --index 2",
        ),
    ):
        k = options.add_group(ksub, name, text, example)
        if name == "show":
            k.add_argument("--pin", type=int, required=True)
        else:
            what = k.add_mutually_exclusive_group(required=True)
            what.add_argument("--pin", type=int, help="a TOTP key for this relay")
            what.add_argument(
                "--update",
                action="store_true",
                help="the owner's firmware update key pair (the private key stays on this PC)",
            )
        k.add_argument("--name", help="account name shown in the app (default: the topic)")
        options.add_config(k)
        k.add_argument("--png", help="also write the QR code to this PNG file")
        k.add_argument("--show", action="store_true", help="print the URI with the secret")
        if name == "show":
            k.add_argument(
                "--index", type=int, default=1, help="which of the pin's keys (default: 1)"
            )
        else:
            k.add_argument("--push", action="store_true", help="push the file to the device")
            push.add_push_options(k)
        k.set_defaults(func=func)
    ls = options.add_group(
        ksub, "list", "list the pins' keys (never the secrets)", "tinyctrl key list"
    )
    options.add_config(ls)
    ls.set_defaults(func=cmd_key_list)
    push.add_key_revoke(ksub)
    code = options.add_group(
        ksub, "code", "print the current codes", "tinyctrl key code --pin 18 --json"
    )
    code.add_argument("--pin", type=int, help="only this pin's keys")
    options.add_config(code)
    options.add_json(code)
    code.set_defaults(func=cmd_key_code)
