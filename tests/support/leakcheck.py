# SPDX-License-Identifier: MIT
"""The suite-wide secret check: no secret of any simulator's config.json (Wi-Fi and
broker passwords, TOTP and signing keys) in anything a simulator printed or logged, or in any
message a test client received. conftest.py runs it once, after the last test; the Sims and
Clients register themselves in simharness.SIMS / simharness.CLIENTS."""

import base64
import json

import simharness

MIN_LEN = 8  # a shorter test value could turn up by accident
MISPLACED_LEN = 16  # the shortest key config.py accepts; names and hosts are shorter


def config_secrets(cfg):
    """(where, secret) for each secret in a config dict or its JSON text, valid or not."""
    if isinstance(cfg, str):
        try:
            cfg = json.loads(cfg)
        except ValueError:
            return []
    if not isinstance(cfg, dict):
        return []

    def items(section, key):
        value = cfg.get(section, {}).get(key) if isinstance(cfg.get(section), dict) else None
        return value.items() if isinstance(value, dict) else ()

    found = []
    for section in ("wifi", "mqtt"):
        password = (
            cfg.get(section, {}).get("password") if isinstance(cfg.get(section), dict) else None
        )
        found.append(("%s.password" % section, password))
    for pin, keys in items("mfa", "pins"):
        for key in keys if isinstance(keys, list) else ():
            found.append(("mfa.pins.%s" % pin, key))
    for name, key in items("sign", "keys"):
        found.append(("sign.keys.%s" % name, key))
    # A key put in the wrong place by mistake (SECURITY.md, finding 2.4): any key-sized text in the
    # sections that hold keys, as a name or a value, at any depth.
    for section in ("mfa", "sign"):
        for text in _texts(cfg.get(section)):
            if len(text) >= MISPLACED_LEN and not any(text == s for _, s in found):
                found.append(("text in %s" % section, text))
    return [(where, s) for where, s in found if isinstance(s, str) and len(s) >= MIN_LEN]


def _texts(node):
    """Every string in a JSON value, dict keys included."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [t for k, v in node.items() for t in [k] + _texts(v)]
    if isinstance(node, list):
        return [t for v in node for t in _texts(v)]
    return []


def forms(secret):
    """Byte strings that would give `secret` away: as written, as hex and, for a Base32 TOTP
    key, normalised, decoded, and decoded as hex or Python repr."""
    out = [secret.encode(), secret.encode().hex().encode()]
    b32 = "".join(c for c in secret.upper() if c not in " =-")
    try:
        raw = base64.b32decode(b32 + "=" * (-len(b32) % 8))
    except ValueError:
        raw = None
    if raw:
        out += [b32.encode(), raw, raw.hex().encode(), repr(raw)[2:-1].encode()]
    return [f for f in out if len(f) >= MIN_LEN]


def find_leaks(secrets, texts):
    """'<where> in <source>' for every (where, secret) with a form inside a (source, bytes)
    text."""
    leaks = set()
    for where, secret in secrets:
        for form in forms(secret):
            for source, data in texts:
                if form in data:
                    leaks.add("%s in %s" % (where, source))
    return sorted(leaks)


def session_texts():
    """(source, bytes) for everything the session's simulators said and its clients received."""
    texts = []
    for sim in simharness.SIMS:
        with open(sim.log_path, "rb") as f:
            texts.append(("the log of the simulator in %s" % sim.dir, f.read()))
        stdout = "\n".join(line for _, line in sim.outputs)
        texts.append(("the output of the simulator in %s" % sim.dir, stdout.encode()))
    for i, client in enumerate(simharness.CLIENTS):
        for n, (_, payload) in enumerate(client.messages):
            texts.append(
                ("message %d received by test client %d on %s" % (n, i, client.topic), payload)
            )
    return texts


def session_leaks():
    secrets = []
    for sim in simharness.SIMS:
        secrets += config_secrets(sim.cfg)
    return find_leaks(secrets, session_texts())
