# SPDX-License-Identifier: MIT
"""config.json on the PC: read it, check it with the device's own validator, write it (mode 0600,
it holds the Wi-Fi password and the keys)."""
import json
import os
import tempfile

from tinyctrl import config as device_config

from . import Failure


def read_text(path):
    """The file's text, or a one-line Failure for a missing, unreadable or oversized file."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(device_config.MAX_PAYLOAD + 1)
    except FileNotFoundError:
        raise Failure("%s: no such file" % path)
    except IsADirectoryError:
        raise Failure("%s: is a directory, not a file" % path)
    except PermissionError:
        raise Failure("%s: cannot read it (permission denied)" % path)
    except UnicodeDecodeError:
        raise Failure("%s: not UTF-8 text" % path)
    except OSError as e:
        raise Failure("%s: cannot read it (%s)" % (path, e.strerror or e))
    if len(text) > device_config.MAX_PAYLOAD:
        raise Failure("%s: larger than %d bytes, the device would refuse it"
                      % (path, device_config.MAX_PAYLOAD))
    return text


def problems(path):
    """(raw dict or None, validated config or None, list of the validator's messages)."""
    text = read_text(path)
    try:
        raw = json.loads(text)
    except ValueError as e:
        return None, None, ["invalid JSON (%s)" % e]
    try:
        return raw, device_config.validate(raw), []
    except device_config.ConfigError as e:
        return raw, None, e.problems


def load(path):
    """(raw dict, validated config); a Failure naming the first problem if it is not valid."""
    raw, cfg, found = problems(path)
    if found:
        more = " (and %d more; run: tinyctrl config check %s)" % (len(found) - 1, path) \
            if len(found) > 1 else ""
        raise Failure("%s is not valid: %s%s" % (path, found[0], more))
    return raw, cfg


def dumps(raw):
    """JSON with one key per line inside each section and short values kept on one line."""
    lines = []
    for name, value in raw.items():
        if isinstance(value, dict) and value:
            inner = ",\n".join("    %s: %s" % (json.dumps(k), json.dumps(v))
                               for k, v in value.items())
            lines.append("  %s: {\n%s\n  }" % (json.dumps(name), inner))
        else:
            lines.append("  %s: %s" % (json.dumps(name), json.dumps(value)))
    return "{\n" + ",\n".join(lines) + "\n}\n"


def write_private(path, data):
    """Replace `path` atomically with `data` (str or bytes), readable by its owner only."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tinyctrl-", dir=folder)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except OSError as e:
        os.unlink(tmp)
        raise Failure("%s: cannot write it (%s)" % (path, e.strerror or e))
    except BaseException:
        os.unlink(tmp)
        raise


def save(path, raw):
    """Write `raw` after the device's validator accepted it; never writes an invalid file."""
    try:
        device_config.validate(raw)
    except device_config.ConfigError as e:
        raise Failure("not written, the device would refuse it: " + "; ".join(e.problems))
    write_private(path, dumps(raw))


def defaults():
    """Every optional key with the device's default, section by section: the example part of a
    new config.json. Taken from the validator's own schema, so the two cannot drift."""
    out = device_config.defaults()
    out["mqtt"].pop("tls_insecure")  # only ever written when the user asks for it
    return out
