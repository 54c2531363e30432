# SPDX-License-Identifier: MIT
"""`tinyctrl update CONFIG UF2`: a firmware update over the broker. The UF2's image, signed
with the update key beside the config (update.py), goes in chunks on <mqtt.topic>/update, paced
as a config push's (push.send_chunks); the device's phase lines on its topic are shown as they
come, and the exit status says how it ended: confirmed, refused, rolled back or silence."""

import functools
import os
import re
import time

from tinyctrl import download, image_trial

from . import NO_ANSWER, OK, REFUSED, Failure, configfile, mqttio, options, push, ui, update

# The longest the device may be silent: after "restarting", the swap and the new image's trial;
# if it does not confirm, the swap back, the old image's connect and its report.
TIMEOUT_S = image_trial.TRIAL_S + 60
# The device's lines about update <id> (download.py, image_trial.py), in the order they come.
PHASES = (
    ("accepted", r"Info: update %d to \S+ accepted"),
    ("received", r"Info: update %d received and checked"),
    ("restarting", r"Info: update %d: restarting to switch to "),
    ("confirmed", r"Info: update %d confirmed: running "),
)
ROLLED_BACK = r"Error: update %d rolled back to "
NAMED = re.compile(r"\bupdate (\d+)")  # a refusal that names its update
# What silence after each phase means (None: after chunk 0, before any answer).
SILENCE = {
    None: "no answer from %(name)s within %(s)d s (is it online, with update.key in the "
    "config it runs?)",
    "accepted": "update %(uid)d: no answer from %(name)s within %(s)d s of the last chunk",
    "received": "update %(uid)d: received and checked, but %(name)s did not restart within "
    "%(s)d s",
    "restarting": "update %(uid)d: neither confirmed nor rolled back within %(s)d s",
}


def _said(payload, uid):
    """(phase, text) of the device's line about update `uid`: a phase, "rolled back" or
    "refused"; else None."""
    try:
        text = mqttio.safe(payload.decode())
    except UnicodeDecodeError:
        return None
    if text.startswith(download.REFUSED):
        named = NAMED.search(text, len(download.REFUSED))
        kind = "refused" if not named or int(named.group(1)) == uid else None  # else another's
    else:
        lines = PHASES + (("rolled back", ROLLED_BACK),)
        kind = next((k for k, pattern in lines if re.match(pattern % uid, text)), None)
    return kind and (kind, text.split(": ", 1)[1])


def _next_phase(topic, read, after, timeout, silence):
    """Wait up to `timeout` s for a phase later than `after`, show it and return it; a refusal
    or a rollback is the device's line (REFUSED), silence `silence` (NO_ANSWER)."""
    names = [phase for phase, _ in PHASES]
    later = tuple(names[names.index(after) + 1 :] if after else names)
    with ui.Spinner("waiting for the device") as spinner:
        said = push.wait_for(
            [topic], time.monotonic() + timeout, read, later + ("refused", "rolled back")
        )
        if said is None:
            raise Failure(silence, NO_ANSWER)
        if said[0] not in later:
            raise Failure(said[1], REFUSED)
        spinner.out("device: " + said[1])
    return said[0]


def send(config_path, uf2_path, timeout=TIMEOUT_S):
    """Update the device running `config_path` to the firmware in `uf2_path`; returns the
    update id and the version once the device confirmed it, else raises its one-line reason."""
    _, cfg = configfile.load(config_path)
    key = update.read_key(config_path)
    if update.public_hex(key.public_key()) != cfg["update"]["key"].lower():
        raise Failure(
            "%s: update.key is not the public key of %s, so the device would refuse the "
            "update (tinyctrl key new --update writes both)"
            % (config_path, update.key_path(config_path))
        )
    data, (_, version) = update.stream_from_uf2(key, uf2_path)
    uid = push.new_seq()
    parts = update.chunks(data, uid)
    read = functools.partial(_said, uid=uid)
    to = cfg["mqtt"]["topic"] + "/update"
    words = {"name": cfg["name"], "uid": uid, "s": timeout}
    with ui.Spinner("connecting to the broker"):
        topic = mqttio.Topic(cfg, os.path.dirname(os.path.abspath(config_path)))
    try:
        # Chunk 0 alone: the device checks the head before anything is written, and a refused
        # update costs one message, not a window of them.
        push.send_chunks(topic, to, parts[:1])
        phase = _next_phase(topic, read, None, timeout, SILENCE[None] % words)
        refused = push.send_chunks(
            topic,
            to,
            parts,
            ui.progress("sending %s (%d KB)" % (version, len(data) // 1024)),
            lambda s: push.wait_for([topic], time.monotonic() + s, read, ("refused",)),
            start=1,
        )
        if refused:
            raise Failure(refused[1], REFUSED)
        while phase != "confirmed":
            phase = _next_phase(topic, read, phase, timeout, SILENCE[phase] % words)
    finally:
        topic.close()
    return uid, version


def cmd_update(args):
    uid, version = send(args.config, args.uf2, args.timeout)
    ui.out("update %d: the device runs %s" % (uid, version))
    return OK


def add_commands(sub):
    up = options.add_group(
        sub,
        "update",
        "send a firmware update (a UF2) to the device over the broker, signed",
        "tinyctrl update garage.json build/PICO_W_TINYCTRL/firmware.uf2",
    )
    up.add_argument(
        "config", metavar="CONFIG", help="the device's config file (its update key is beside it)"
    )
    up.add_argument(
        "uf2", metavar="UF2", help="the firmware, e.g. a build's or a release's firmware.uf2"
    )
    up.add_argument(
        "--timeout",
        type=options.seconds,
        default=TIMEOUT_S,
        metavar="S",
        help="seconds to wait for each of the device's answers (default: %d: a new image has "
        "%d s to confirm)" % (TIMEOUT_S, image_trial.TRIAL_S),
    )
    up.set_defaults(func=cmd_update)
