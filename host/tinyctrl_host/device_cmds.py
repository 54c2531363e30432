# SPDX-License-Identifier: MIT
"""`tinyctrl send` and `tinyctrl watch`: the device's topic on its broker, as config.json
names them."""

import argparse
import json
import os
import time

from tinyctrl import auth, protocol

from . import NO_ANSWER, REFUSED, Failure, configfile, mqttio, options, ui

# After the state a pin request produced: how long an error for the same request may follow.
ERROR_GRACE_S = 1.5
EXPIRE_S = 30  # send --expire: how long the broker keeps an unread request (MQTT 5)


def _folder(path):
    return os.path.dirname(os.path.abspath(path))


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


class Result:
    """What send found out: printed line by line, or as one JSON object with --json."""

    def __init__(self, as_json):
        self.as_json = as_json
        self.fields = {"answer": None, "refused": False, "reason": None, "why": None}

    def show(self, key, value, line):
        self.fields[key] = value
        if not self.as_json:
            ui.out(line)

    def done(self, refused, config=None):
        self.fields["refused"] = refused
        if config:  # send --each: which device answered
            self.fields["config"] = config
        if self.as_json:
            ui.out_json(self.fields)
        return REFUSED if refused else 0


def cmd_send_each(args):
    """send --each: the request to every config's device in turn, each with its own
    --timeout; a line (or JSON object) per device, the exit status the worst."""
    from .status_cmds import config_files

    worst = 0
    for path in config_files(args.each):
        one = argparse.Namespace(**vars(args))
        one.config, one.each, one.in_each = path, None, True
        if not args.json:
            ui.out("%s:" % path)
        try:
            status = cmd_send(one)
        except Failure as e:
            ui.error(str(e) if path in str(e) else "%s: %s" % (path, e))  # the file, once
            status = e.status
        worst = max(worst, status)
    return worst


def cmd_send(args):
    if args.each:
        return cmd_send_each(args)
    deadline = time.monotonic() + args.timeout  # connecting and the answer, all told
    raw, cfg = configfile.load(args.config)
    prefix = cfg["gpio"]["prefix"]
    req, obj = mqttio.parse_request(cfg, _request_text(args, cfg))
    with ui.Spinner("connecting to the broker"):
        topic = mqttio.Topic(cfg, _folder(args.config), timeout=args.timeout, answers=True)
    result = Result(args.json)
    expire_s = None if args.queue else args.expire
    try:
        paused = time.monotonic()
        obj = mqttio.authorise(
            cfg, req, obj, cfg["mqtt"]["topic"], args.code, args.key_file, wait=_wait_for_next_code
        )
        deadline += time.monotonic() - paused  # the wait for a fresh code is not the device's
        topic.publish(json.dumps(obj), expire_s, answer=True)
        device = cfg["name"]  # "FROM" names the device, never its client id
        # With MQTT 5 the answer comes on this PC's response topic, with its correlation
        # data; getip's comes later, from a task, on the device's topic only.
        mine = topic.answer_topic and req.cmd != "getip"
        read = topic.answers_next if mine else topic.next
        while True:
            with ui.Spinner("waiting for the device's answer"):
                payload = read(deadline)
            if payload is None and mine:
                payload = _answer_on_topic(topic, req, device, prefix)
                if payload is not None:  # from now on, as without MQTT 5
                    mine, read = False, topic.next
            if payload is None:
                raise Failure(
                    "no answer from the device within %d s%s (is it online? "
                    "tinyctrl watch -c %s)"
                    % (args.timeout, _later(topic, req, prefix, expire_s), args.config),
                    NO_ANSWER,
                )
            done, refused = mqttio.answer(payload, req, device, prefix)
            if not done:
                continue
            result.show(
                "answer", payload.decode(errors="replace"), mqttio.describe(payload, prefix)
            )
            reason = payload if payload.startswith(b"Error:") else None
            if req.pins and not reason:
                # A refusal publishes the true state and then the reason, in one go: a
                # state that looks right may still come with an error (pin already there).
                reason = _next_error(read, 3 if refused else ERROR_GRACE_S)
                if reason:
                    result.show("reason", reason.decode(errors="replace"), mqttio.describe(reason))
            if reason and reason.startswith(auth.DENIED.encode()):
                why = _explain_denial(topic, obj, args, cfg, reason)
                if why:
                    result.show("why", why, "  " + why)
            return result.done(bool(refused or reason), args.in_each and args.config)
    finally:
        topic.close()


def _answer_on_topic(topic, req, device, prefix):
    """After no answer on the response topic: the device's answer on its topic, if it gave
    one there only (firmware before MQTT 5, or mqtt.version 3 on the board), else None."""
    while True:
        payload = topic.next(time.monotonic() + 0.05)  # what has come already
        if payload is None:
            return None
        if mqttio.answer(payload, req, device, prefix)[0]:
            ui.note(
                "the device answered on its topic, not on this PC's response topic: its "
                'firmware predates MQTT 5 or it has mqtt.version 3; set "version": 3 in '
                "the mqtt section of this config to match"
            )
            return payload


def _later(topic, req, prefix, expire_s):
    """What becomes of an unanswered request that moves pins: the device's session is
    persistent, so the broker keeps it while the device is away, unless MQTT 5 expires it."""
    if not req.pins:
        return ""
    pins = ", ".join("%s%d" % (prefix, p) for p in req.pins)
    if not topic.v5:
        return (
            ": with MQTT 3.1.1 a request cannot expire, so it may wait queued at the broker "
            "and switch %s when the device is back, however late" % pins
        )
    if expire_s is None:
        return (
            ": --queue: the request waits queued at the broker and switches %s when the "
            "device is back" % pins
        )
    return (
        ": the broker drops the request %d s after it was sent (--expire), so it switches %s "
        "only if the device is back by then (--queue keeps it queued at the broker)"
        % (expire_s, pins)
    )


def _next_error(read, wait_s):
    """The device's next error line within `wait_s` seconds, or None."""
    deadline = time.monotonic() + wait_s
    while True:
        payload = read(deadline)
        if payload is None or payload.startswith(b"Error:"):
            return payload


def _wait_for_next_code(seconds):
    ui.note(
        "this PC sent the current code already and the device takes each code once: "
        "waiting %d s for the next code" % seconds
    )
    with ui.Spinner("waiting for the next code"):
        time.sleep(seconds)


def _explain_denial(topic, obj, args, cfg, line):
    """The device words every refusal of a code or signature the same (so a guesser learns
    nothing); what this PC can tell about this one, or None."""
    if b"locked for" in line:
        return None  # the device says it
    topic.publish(json.dumps({"CMD": "stats"}))
    deadline = time.monotonic() + 5
    stats = topic.next(deadline)
    while stats is not None and not stats.startswith(b"Uptime="):
        stats = topic.next(deadline)
    if stats and b"Rtc=not synced" in stats:
        why = (
            "the device's clock is not set yet (stats: Rtc=not synced), and until NTP answers "
            "it refuses every code and signature; try: tinyctrl send -c %s --cmd ntp" % args.config
        )
    elif "SIG" in obj:
        why = (
            "the signature was refused: this PC's clock more than %d s (sign.window_s) from "
            "the device's, or a signing key the board does not have (tinyctrl provision)"
            % cfg["sign"]["window_s"]
        )
    elif args.code is not None:
        why = "the code was refused: a wrong code, or one already used (each code works once)"
    else:
        why = (
            "the current code of the key in %s was refused: another client used it first, "
            "the board has other keys (tinyctrl provision), or a clock is off" % args.config
        )
    return why + "; each refusal counts toward a lockout"


def cmd_watch(args):
    raw, cfg = configfile.load(args.config)
    with ui.Spinner("connecting to the broker"):
        topic = mqttio.Topic(cfg, _folder(args.config), timeout=min(args.timeout or 10, 10))
    prefix = cfg["gpio"]["prefix"]
    if not args.json:
        ui.out("watching %s on %s (Ctrl-C stops)" % (cfg["mqtt"]["topic"], topic.where))
    deadline = time.monotonic() + args.timeout if args.timeout else float("inf")
    seen = 0
    try:
        while args.count is None or seen < args.count:
            payload = topic.next(min(deadline, time.monotonic() + 1), events=True)
            if payload is None:
                if time.monotonic() >= deadline:
                    break
                continue
            if isinstance(payload, mqttio.Event):
                if args.json:
                    ui.out_json({"time": round(time.time(), 3), "event": str(payload)})
                else:
                    ui.out("%s (this PC %s)" % (time.strftime("%H:%M:%S"), payload))
                continue
            if args.json:
                ui.out_json(_record(payload, cfg["name"]))
            else:
                ui.out(
                    "%s %s"
                    % (time.strftime("%H:%M:%S"), mqttio.describe(payload, prefix, cfg["name"]))
                )
            seen += 1
    finally:
        topic.close()
    return 0


def _record(payload, device):
    """watch --json: one message, its text as sent (JSON escapes what a terminal would act on)
    and, for the device's own output, who sent it."""
    out = {"time": round(time.time(), 3)}
    try:
        out["text"] = payload.decode()
    except UnicodeDecodeError:
        out["bytes"] = len(payload)
        return out
    sender = mqttio.sender(payload)
    if sender is not None:
        out.update({"from": sender, "from_device": sender == device})
    return out


def add_commands(sub):
    send = options.add_group(
        sub,
        "send",
        "send a request and print the device's answer",
        "tinyctrl send --pin 16 --on   (or '{\"GP16\": 1}', --cmd stats)",
    )
    options.add_config(send)
    send.add_argument("request", nargs="?", help="JSON, e.g. '{\"GP18\": 1}'")
    send.add_argument("--pin", type=int)
    send.add_argument("--on", action="store_true")
    send.add_argument("--off", action="store_true")
    send.add_argument("--cmd", choices=protocol.COMMANDS)
    send.add_argument("--code", type=int, help="a TOTP code from your app instead of the key")
    send.add_argument("--key-file", help="sign with the sign.keys string in this file")
    send.add_argument(
        "--each",
        nargs="+",
        metavar="DIR-or-CONFIG",
        help="send it to each of these configs' devices in turn (folders: *.json, "
        "*/config.json), instead of -c",
    )
    keep = send.add_mutually_exclusive_group()
    keep.add_argument(
        "--expire",
        type=options.seconds,
        default=EXPIRE_S,
        metavar="S",
        help="MQTT 5: the broker drops the request if the device has not read it within S "
        "seconds (default: %d)" % EXPIRE_S,
    )
    keep.add_argument(
        "--queue",
        action="store_true",
        help="MQTT 5: no expiry; the broker keeps the request until the device is back",
    )
    options.add_timeout(send, 15, "to connect and wait for the answer")
    options.add_json(send)
    send.set_defaults(func=cmd_send, in_each=False)

    watch = options.add_group(
        sub, "watch", "follow the topic in readable form", "tinyctrl watch --count 5 --json"
    )
    options.add_config(watch)
    watch.add_argument("--count", type=int, help="stop after this many messages")
    options.add_timeout(watch, None, "until it stops")
    options.add_json(watch)
    watch.set_defaults(func=cmd_watch)
