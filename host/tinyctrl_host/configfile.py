# SPDX-License-Identifier: MIT
"""config.json on the PC: read it, check it with the device's own validator, write it (mode 0600,
it holds the Wi-Fi password and the keys)."""

import json
import os
import ssl
import tempfile

from tinyctrl import config as device_config
from tinyctrl import net

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
        raise Failure(
            "%s: larger than %d bytes, the device would refuse it"
            % (path, device_config.MAX_PAYLOAD)
        )
    return text


def problems(path):
    """(raw dict or None, validated config or None, list of the validator's messages)."""
    text = read_text(path)
    try:
        raw = json.loads(text)
    except ValueError as e:
        return None, None, ["invalid JSON (%s)" % e]
    except RecursionError:
        return None, None, ["invalid JSON (nested too deeply)"]
    try:
        return raw, device_config.validate(raw), []
    except device_config.ConfigError as e:
        return raw, None, e.problems


def load(path):
    """(raw dict, validated config); a Failure naming the first problem if it is not valid."""
    raw, cfg, found = problems(path)
    if found:
        more = (
            " (and %d more; run: tinyctrl config check %s)" % (len(found) - 1, path)
            if len(found) > 1
            else ""
        )
        raise Failure("%s is not valid: %s%s" % (path, found[0], more))
    return raw, cfg


def ca_path(mqtt, config_dir):
    """The CA certificate the board reads for this `mqtt` section, as this PC finds it, or None
    (no TLS, or TLS without checks). Like the board (main.load): beside config.json unless the
    name is absolute."""
    if mqtt["ssl"] is not True or not mqtt["ca_file"]:
        return None
    return os.path.join(config_dir, mqtt["ca_file"])


def ca_problem(path):
    """Why the board could not use `path` as its CA certificate, or None: it must be a PEM
    certificate (the board turns it into DER itself, net.der_certificate)."""
    try:
        with open(path, "rb") as f:
            data = f.read(device_config.MAX_PAYLOAD + 1)
    except FileNotFoundError:
        return "mqtt.ca_file: %s not found; save the broker's CA certificate there" % path
    except OSError as e:
        return "mqtt.ca_file: cannot read %s (%s)" % (path, e.strerror or e)
    if net.PEM_BEGIN not in data:
        return "mqtt.ca_file: %s is not a PEM certificate (no %s line)" % (
            path,
            net.PEM_BEGIN.decode(),
        )
    try:
        ssl.create_default_context().load_verify_locations(cadata=net.der_certificate(data))
    except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
        return "mqtt.ca_file: %s is not a valid certificate (%s)" % (
            path,
            getattr(e, "reason", None) or e,
        )
    return None


def dumps(raw):
    """JSON with one key per line inside each section and short values kept on one line."""
    lines = []
    for name, value in raw.items():
        if isinstance(value, dict) and value:
            inner = ",\n".join("    %s: %s" % (json.dumps(k), _json(v)) for k, v in value.items())
            lines.append("  %s: {\n%s\n  }" % (json.dumps(name), inner))
        else:
            lines.append("  %s: %s" % (json.dumps(name), _json(value)))
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _json(value):
    return json.dumps(value, allow_nan=False)


def write_private(path, data):
    """Replace `path` atomically with `data` (str or bytes), readable by its owner only."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tinyctrl-", dir=folder)  # mkstemp creates it 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise Failure("%s: cannot write it (%s)" % (path, e.strerror or e))
    finally:
        if tmp:
            os.unlink(tmp)


def save(path, raw):
    """Write `raw` after the device's validator accepted it; never writes an invalid file."""
    try:
        device_config.validate(raw)
    except device_config.ConfigError as e:
        raise Failure("not written, the device would refuse it: " + "; ".join(e.problems))
    try:
        text = dumps(raw)
    except ValueError as e:  # e.g. 1e999 from a seed file: JSON has no infinity
        raise Failure("not written, a value is not valid JSON (%s)" % e)
    write_private(path, text)


def value_problem(section, key, value):
    """The device's message for `value` as section.key on its own, or None."""
    row = device_config._schema()[section][key]  # (default, checker, its bounds...)
    problems = []
    row[1](value, "%s.%s" % (section, key), problems, *row[2:])
    return problems[0] if problems else None


def gpio_problems(gpio):
    """The device's messages about a gpio section and how its pins fit together."""
    raw = {"wifi": {"ssid": "-"}, "mqtt": {"server": "-", "topic": "-"}, "gpio": gpio}
    try:
        device_config.validate(raw)
    except device_config.ConfigError as e:
        return [p for p in e.problems if p.startswith("gpio")]
    return []


def defaults():
    """Every optional key with the device's default, section by section: the example part of a
    new config.json. Taken from the validator's own schema, so the two cannot drift."""
    out = device_config.defaults()
    out["mqtt"].pop("tls_insecure")  # only ever written when the user asks for it
    return out
