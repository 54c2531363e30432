# SPDX-License-Identifier: MIT
"""`tinyctrl status`: many devices at once. Reads each config, connects once to each broker
(configs that share a broker share the connection), asks every device for its stats line
({"CMD":"stats"}) and prints one row per config: name, online, version, uptime, last seen."""

import glob
import os
import queue
import time

from . import NO_ANSWER, USAGE, Failure, configfile, mqttio, options, ui

STATS = '{"CMD": "stats"}'
KEYS_SUFFIX = ".keys.json"  # key fingerprints beside a config (key_cmds.py), not a config


def config_files(targets):
    """The config files named, and in each folder named its *.json (but key fingerprint
    files) and */config.json, in order, each once."""
    out = []
    for target in targets:
        if os.path.isdir(target):
            found = sorted(glob.glob(os.path.join(target, "*.json")))
            found = [f for f in found if not f.endswith(KEYS_SUFFIX)]
            found += sorted(glob.glob(os.path.join(target, "*", "config.json")))
            if not found:
                raise Failure("%s: no config files in this folder" % target)
        else:
            found = [target]
        out += [f for f in found if f not in out]
    return out


def _broker_key(cfg, path):
    m = cfg["mqtt"]
    tls = (m["ssl"], configfile.ca_path(m, os.path.dirname(os.path.abspath(path))))
    return (tuple(m["servers"]), m["user"], m["password"]) + (tls if m["ssl"] else ())


def _row(path):
    return {
        "config": path,
        "name": None,
        "topic": None,
        "online": False,
        "version": None,
        "uptime": None,
        "last_seen": None,
        "error": None,
    }


def _stats_fields(line):
    fields = dict(part.partition("=")[::2] for part in line.split(", "))
    return mqttio.safe(fields.get("Uptime", "")), mqttio.safe(fields.get("Version", "?"))


def _heard(row, payload):
    """Whether `payload` on the row's topic is its device speaking: its stats line, or its
    own marked output (FROM its name)."""
    if payload.startswith(b"Uptime="):
        row["online"] = True
        row["uptime"], row["version"] = _stats_fields(payload.decode(errors="replace"))
    elif mqttio.sender(payload) != row["name"]:
        return
    row["last_seen"] = round(time.time(), 3)


def ask(rows, timeout):
    """Fills in each row (a loaded config's) from one connection per broker, within
    `timeout` seconds all told."""
    deadline = time.monotonic() + timeout
    answers = queue.Queue()
    groups = {}
    for row in rows:
        if not row["error"]:
            groups.setdefault(_broker_key(row["cfg"], row["config"]), []).append(row)
    links, waiting = [], set()
    try:
        for group in groups.values():
            cfg, path = group[0]["cfg"], group[0]["config"]
            topics = sorted(set(r["topic"] for r in group))
            try:
                link = mqttio.Topic(
                    cfg,
                    os.path.dirname(os.path.abspath(path)),
                    timeout=max(1, int(deadline - time.monotonic())),
                    topics=topics,
                    into=answers,
                )
            except Failure as e:
                for r in group:
                    r["error"], r["status"] = str(e), e.status
                continue
            links.append(link)
            link.rows = group
            for t in topics:
                link.publish(STATS, expire_s=max(1, int(timeout)), topic=t)
                waiting.add((link, t))
        while waiting:
            try:
                item = answers.get(timeout=max(0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if isinstance(item, mqttio.Event):  # a link dropped or came back: paho retries
                continue
            link, t, payload = item
            for r in link.rows:
                if r["topic"] == t:
                    _heard(r, payload)
                    if r["online"]:
                        waiting.discard((link, t))
    finally:
        for link in links:
            link.close()


def cmd_status(args):
    rows = []
    for path in config_files(args.configs or [options.default_config()]):
        row = _row(path)
        try:
            _, cfg = configfile.load(path)
            row.update(cfg=cfg, name=cfg["name"], topic=cfg["mqtt"]["topic"])
        except Failure as e:
            row["error"], row["status"] = str(e), USAGE
        rows.append(row)
    if any(not r["error"] for r in rows):
        with ui.Spinner("asking %d devices" % sum(1 for r in rows if not r["error"])):
            ask(rows, args.timeout)
    for r in rows:
        r.pop("cfg", None)
    # The highest row's: a broker not reached (4) over a silent device (3) over a bad file (2)
    status = max([r.pop("status", 0) for r in rows] + [NO_ANSWER * (not all_online(rows))])
    if args.json:
        ui.out_json(rows)
    else:
        _table(rows)
        for r in rows:
            if r["error"]:
                ui.error("%s: %s" % (r["config"], r["error"]))
    return status


def all_online(rows):
    return all(r["online"] for r in rows if not r["error"])


def _table(rows):
    head = ("NAME", "ONLINE", "VERSION", "UPTIME", "LAST SEEN", "CONFIG")
    lines = [head]
    for r in rows:
        seen = r["last_seen"] and time.strftime("%H:%M:%S", time.localtime(r["last_seen"]))
        online = "error" if r["error"] else ("yes" if r["online"] else "no")
        lines.append(
            (r["name"] or "-", online, r["version"] or "-", r["uptime"] or "-", seen or "-")
            + (r["config"],)
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    for line in lines:
        ui.out("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())


def add_commands(sub):
    status = options.add_group(
        sub,
        "status",
        "ask many devices at once: name, online, version, uptime, last seen",
        "tinyctrl status configs/   (or a.json b.json; --json)",
    )
    status.add_argument(
        "configs",
        nargs="*",
        metavar="DIR-or-CONFIG",
        help="config files, or folders of them (*.json, */config.json); default: $%s, "
        "else ./%s" % (options.CONFIG_ENV, options.DEFAULT_CONFIG),
    )
    options.add_timeout(status, 10, "to connect and wait for the answers")
    options.add_json(status)
    status.set_defaults(func=cmd_status)
