# SPDX-License-Identifier: MIT
"""Config pushes over the broker (`tinyctrl config push`, `tinyctrl key revoke`): the device key
kept beside the config, sealing (AES-256-CTR and HMAC-SHA256, the device's tinyctrl.seal
format), chunks on <mqtt.topic>/config, and the device's answers on its topic. What firmware
updates (update_cmds) share with them is here too: the chunks, sent in paced windows, and the
wait for the device's lines."""

import functools
import hashlib
import hmac
import json
import os
import secrets
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tinyctrl import push as device_push
from tinyctrl import seal

from . import NO_ANSWER, NO_BROKER, REFUSED, Failure, configfile, mqttio, options, ui

TRIAL_S = 120  # how long the device tries a pushed config before it goes back on its own
RECEIVED_WAIT_S = 30  # from the last chunk to the device's "received" (or its refusal)
CONFIRM_SLACK_S = 60  # past the trial bound: the reset, the old config's connect and its report
# The device takes 16 messages read back to back, each after less than 20 ms idle, for a
# broker's backlog and then refuses MFA codes made before it ends (tinyctrl.mqtt's BACKLOG and
# BACKLOG_IDLE_MS; that module needs mqtt_as, so they are not imported here). Chunks go in
# windows of fewer, each followed by the board's time to write them and a quiet gap longer
# than 20 ms. The board writes a chunk in 7 ms on average, more where a flash sector is erased.
WINDOW = 10
CHUNK_WRITE_S = 0.012
QUIET_S = 0.03


def stem(config_path):
    base = os.path.abspath(config_path)
    return base[:-5] if base.endswith(".json") else base


def key_path(config_path):
    """The device key beside its config: config.json -> config.push.key (mode 0600)."""
    return stem(config_path) + ".push.key"


def names_path(config_path):
    """Names given to TOTP keys (`key new --name`): config.json -> config.keys.json."""
    return stem(config_path) + ".keys.json"


def ensure_key(config_path):
    """The path of the device key for this config, made (32 random bytes, hex) if absent."""
    path = key_path(config_path)
    if not os.path.exists(path):
        configfile.write_private(path, secrets.token_bytes(seal.KEY_LEN).hex() + "\n")
    return path


def read_key(config_path):
    path = key_path(config_path)
    try:
        with open(path) as f:
            key = bytes.fromhex(f.read().strip())
    except FileNotFoundError:
        raise Failure(
            "%s: no device key; the device gets one over USB with tinyctrl provision "
            "%s" % (path, config_path)
        )
    except (OSError, ValueError) as e:
        raise Failure("%s: not a device key (%s)" % (path, getattr(e, "strerror", None) or e))
    if len(key) != seal.KEY_LEN:
        raise Failure("%s: not a device key (%d bytes, not %d)" % (path, len(key), seal.KEY_LEN))
    return key


def seal_config(text, device_key, seq, to, topic, trial_s=TRIAL_S, nonce=None):
    """The sealed config (bytes): header line, AES-256-CTR ciphertext, HMAC-SHA256 tag."""
    enc, mac = seal.derive(device_key)
    nonce = nonce or secrets.token_bytes(seal.NONCE_LEN)
    header = (
        json.dumps(
            {
                "len": len(text),
                "nonce": nonce.hex(),
                "seq": seq,
                "to": to,
                "topic": topic,
                "trial_s": trial_s,
                "v": seal.VERSION,
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        + b"\n"
    )
    ctr = Cipher(algorithms.AES(enc), modes.CTR(nonce)).encryptor()
    body = ctr.update(text) + ctr.finalize()
    return header + body + hmac.new(mac, header + body, hashlib.sha256).digest()


def chunks(sealed, seq, size=device_push.CHUNK):
    """The messages of a transfer (tinyctrl.chunks): "<id> <index>/<count>\\n" and a piece
    of `size` bytes each; a config push's for <mqtt.topic>/config by default."""
    count = (len(sealed) + size - 1) // size
    return [
        b"%d %d/%d\n" % (seq, i, count) + sealed[i * size : (i + 1) * size] for i in range(count)
    ]


def new_seq():
    """Push ids grow with time (milliseconds): the device takes only ids above the last one."""
    return time.time_ns() // 1000000


def _line(payload, seq):
    """('refused'|'received'|'confirmed'|'rolled back', text) for the device's push lines."""
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        return None
    if text.startswith(device_push.REFUSED):
        return "refused", text[len("Error: ") :]
    for kind, mark in (
        ("received", "Info: config push %d received" % seq),
        ("confirmed", "Info: config push %d confirmed" % seq),
        ("rolled back", "Error: config push %d rolled back" % seq),
    ):
        if text.startswith(mark):
            return kind, text.split(": ", 1)[1]
    return None


def wait_for(topics, deadline, read, wanted):
    """The first (kind, text) that `read(payload)` makes of a message on `topics` (mqttio.Topic)
    whose kind is in `wanted`, before `deadline` (time.monotonic()); None if none came."""
    while True:
        for topic in topics:
            payload = topic.next(min(deadline, time.monotonic() + 0.1))
            said = payload is not None and read(payload)
            if said and said[0] in wanted:
                return said
        if time.monotonic() >= deadline:
            return None


def send_chunks(topic, to, parts, progress=None, pause=time.sleep, start=0):
    """Publish parts[start:] on `to` with QoS 1 through `topic` (an mqttio.Topic), WINDOW at a
    time. `pause(seconds)` waits after each window but the last; what it returns, if anything
    (a refusal heard meanwhile), ends the sending and is returned. `progress(done, total)`
    counts the parts."""
    for first in range(start, len(parts), WINDOW):
        window = parts[first : first + WINDOW]
        sent = [topic.client.publish(to, part, qos=1) for part in window]
        for i, info in enumerate(sent, first):
            try:
                info.wait_for_publish(10)
                published = info.is_published()
            except (RuntimeError, ValueError):  # paho: the connection is gone, or its queue full
                published = False
            if not published:
                raise Failure("broker %s: chunk %d was not accepted" % (topic.where, i), NO_BROKER)
        done = first + len(window)
        if progress:
            progress(done, len(parts))
        if done < len(parts):
            stop = pause(len(window) * CHUNK_WRITE_S + QUIET_S)
            if stop:
                if progress:
                    progress(done, len(parts), stopped=True)
                return stop
    return None


def send(new_path, old_path=None, trial_s=TRIAL_S, progress=None, out=print):
    """Push the file at `new_path` to the device running `old_path` (the same file by default);
    returns once the device confirmed it, else raises the device's one-line reason."""
    old_path = old_path or new_path
    text = configfile.read_text(new_path).encode()
    _, new_cfg = configfile.load(new_path)
    _, old_cfg = configfile.load(old_path)
    key = read_key(old_path)
    seq = new_seq()
    old_m, new_m = old_cfg["mqtt"], new_cfg["mqtt"]
    sealed = seal_config(text, key, seq, old_cfg["name"], old_m["topic"], trial_s)
    old = mqttio.Topic(old_cfg, os.path.dirname(os.path.abspath(old_path)))
    topics = [old]
    try:
        same = all(old_m[k] == new_m[k] for k in ("server", "port", "topic", "user"))
        if not same:
            try:
                topics.append(mqttio.Topic(new_cfg, os.path.dirname(os.path.abspath(new_path))))
            except Failure as e:
                out("note: %s; the confirmation cannot be watched from here" % e)
        read = functools.partial(_line, seq=seq)
        refused = send_chunks(
            old,
            old_m["topic"] + "/config",
            chunks(sealed, seq),
            progress,
            lambda s: wait_for([old], time.monotonic() + s, read, ("refused",)),
        )
        said = refused or wait_for(
            [old], time.monotonic() + RECEIVED_WAIT_S, read, ("refused", "received")
        )
        if said is None:
            raise Failure(
                "no answer from %s within %d s (is it online, with a push key from "
                "tinyctrl provision?)" % (old_cfg["name"], RECEIVED_WAIT_S),
                NO_ANSWER,
            )
        if said[0] == "refused":
            raise Failure(said[1], REFUSED)
        out("device: " + said[1])
        wait_s = trial_s + CONFIRM_SLACK_S
        said = wait_for(topics, time.monotonic() + wait_s, read, ("confirmed", "rolled back"))
        if said is None:
            raise Failure(
                "config push %d: neither confirmed nor rolled back within %d s" % (seq, wait_s),
                NO_ANSWER,
            )
        if said[0] == "rolled back":
            raise Failure(said[1], REFUSED)
        out("device: " + said[1])
    finally:
        for topic in topics:
            topic.close()
    if old_path != new_path and not os.path.exists(key_path(new_path)):
        configfile.write_private(key_path(new_path), key.hex() + "\n")  # its key from now on
    return seq


# --- names of TOTP keys -----------------------------------------------------------------------


def fingerprint(key):
    """What the names file keeps of a key: 64 bits of its hash, not the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def remember_name(config_path, pin, key, name):
    """`key new --name NAME`: NAME for this key of `pin`, so `key revoke --name` finds it."""
    if not name:
        return
    names = read_names(config_path)
    names.setdefault(str(pin), {})[name] = fingerprint(key)
    configfile.write_private(names_path(config_path), json.dumps(names, indent=1) + "\n")


def read_names(config_path):
    try:
        with open(names_path(config_path)) as f:
            names = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise Failure("%s: unreadable (%s)" % (names_path(config_path), e))
    return names if isinstance(names, dict) else {}


def revoke(config_path, pin, index=None, name=None, leave_open=False):
    """Remove one TOTP key of `pin` from the file; returns what was removed, for the user."""
    raw, cfg = configfile.load(config_path)
    prefix = cfg["gpio"]["prefix"]
    pins = raw.get("mfa", {}).get("pins", {})
    entry = next((p for p in pins if p.isdigit() and int(p) == pin), None)
    ks = pins.get(entry, []) if entry is not None else []
    if not ks:
        raise Failure("%s%d has no TOTP key in %s" % (prefix, pin, config_path))
    names = read_names(config_path)
    if name is not None:
        mark = names.get(str(pin), {}).get(name)
        found = [i for i, k in enumerate(ks) if fingerprint(k) == mark]
        if not found:
            raise Failure(
                "%s%d has no key named %r (names come from key new --name)" % (prefix, pin, name)
            )
        index = found[0] + 1
    if index is None or not 1 <= index <= len(ks):
        raise Failure("give --index 1-%d or --name for %s%d's keys" % (len(ks), prefix, pin))
    if len(ks) == 1 and not leave_open:
        raise Failure(
            "that is %s%d's only key: without it anyone on the topic moves the pin; "
            "add another first (key new) or give --leave-open" % (prefix, pin)
        )
    gone = ks.pop(index - 1)
    if not ks:
        del pins[entry]
    configfile.save(config_path, raw)
    for_pin = names.get(str(pin), {})
    for n in [n for n, fp in for_pin.items() if fp == fingerprint(gone)]:
        del for_pin[n]
    if names:
        configfile.write_private(names_path(config_path), json.dumps(names, indent=1) + "\n")
    return "key %d of %s%d%s" % (index, prefix, pin, " (%s)" % name if name else "")


# --- the commands -----------------------------------------------------------------------------


def cmd_config_push(args):
    seq = send(args.file, args.to, args.trial_s, ui.progress("sending"))
    ui.out("config push %d: the device runs %s" % (seq, args.file))
    return 0


def cmd_key_revoke(args):
    what = revoke(args.config, args.pin, args.index, args.name, args.leave_open)
    ui.out("removed %s from %s" % (what, args.config))
    if args.push:
        return cmd_config_push(_as_push(args))
    ui.out(
        "push it (tinyctrl config push %s) or copy it to the board (tinyctrl provision) for "
        "the device to refuse its codes" % args.config
    )
    return 0


def after_key_new(args):
    """`key new --push`: the new file to the device already in service."""
    return cmd_config_push(_as_push(args)) if args.push else 0


def _as_push(args):
    args.file, args.to = args.config, None
    return args


def add_config_push(config_sub):
    """`config push`, for config_cmds' sub-parser."""
    push = options.add_group(
        config_sub,
        "push",
        "send config.json to its device over the broker, sealed",
        "tinyctrl config push garage.json",
    )
    push.add_argument("file")
    push.add_argument(
        "--to",
        metavar="OLD.json",
        help="the config the device runs now, when topic, broker or name change",
    )
    add_push_options(push)
    push.set_defaults(func=cmd_config_push)


def add_key_revoke(key_sub):
    """`key revoke`, for key_cmds' sub-parser."""
    rev = options.add_group(
        key_sub,
        "revoke",
        "remove a pin's TOTP key (--push: from the device too)",
        "tinyctrl key revoke --pin 18 --name phone --push",
        aliases=["remove"],
    )
    rev.add_argument("--pin", type=int, required=True)
    rev.add_argument("--index", type=int, help="which of the pin's keys (as key list)")
    rev.add_argument("--name", help="the name key new --name gave it")
    options.add_config(rev)
    rev.add_argument(
        "--leave-open",
        action="store_true",
        help="remove the pin's last key: anyone on the topic may then move it",
    )
    rev.add_argument("--push", action="store_true", help="push the file to the device")
    add_push_options(rev)
    rev.set_defaults(func=cmd_key_revoke)


def add_push_options(p):
    p.add_argument(
        "--trial-s",
        type=int,
        default=TRIAL_S,
        help="seconds the device tries it before going back (%d-%d)" % device_push.TRIAL_S,
    )
