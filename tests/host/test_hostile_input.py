# SPDX-License-Identifier: MIT
"""Every `tinyctrl` command given missing, unreadable, hostile or malformed input ends with one
line on standard error and a non-zero exit, never a traceback."""

import json

import pytest
from hostcli import one_line_error, run
from seed_configs import SEED_SET

INIT = [
    "--ssid",
    "MyWifi",
    "--wifi-password",
    "wifi-secret-pw",
    "--server",
    "127.0.0.1",
    "--port",
    "1",
    "--topic",
    "home/garage",
    "--relay",
    "16,17",
    "--momentary",
    "18:2",
]


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "config.json"
    done = run("config", "init", "-c", path, *INIT)
    assert done.returncode == 0, done.stderr
    return path


def tls_config(tmp_path, ca_text):
    """config.json asking for TLS with ca.pem beside it, holding `ca_text` (None: no file)."""
    path = tmp_path / "tls.json"
    assert run("config", "init", "-c", path, *INIT, "--ca-file", "ca.pem").returncode == 0
    if ca_text is not None:
        (tmp_path / "ca.pem").write_bytes(ca_text)
    return path


@pytest.mark.parametrize("where", ["missing/config.json", "a-file/config.json"])
def test_writing_into_a_folder_that_is_not_there(tmp_path, where):
    (tmp_path / "a-file").write_text("not a folder")
    target = tmp_path / where
    assert "cannot write" in one_line_error(run("config", "init", "-c", target, *INIT))
    old = tmp_path / "old.py"
    old.write_text(SEED_SET)
    assert "cannot write" in one_line_error(run("config", "import", old, "-c", target))


@pytest.mark.parametrize("command", ["send", "watch", "provision"])
@pytest.mark.parametrize(
    "ca",
    [
        b"hello, not a certificate\n",
        None,
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ],
)
def test_a_ca_file_that_is_not_a_certificate(tmp_path, command, ca):
    path = tls_config(tmp_path, ca)
    args = [command, "-c", path] + (['{"GP16": 1}'] if command == "send" else [])
    line = one_line_error(run(*args, "--timeout", "2"))
    assert "ca.pem" in line and ("certificate" in line or "not found" in line)


@pytest.mark.parametrize(
    "text",
    [
        b"wifi_ssid = 'x'\x00\n",
        b"mqtt_client_id = b'\\xff\\xfe'\n",
        b"wifi_ssid = {[]: 1}\n",
        b"gpio_pins_for_relay_switch = {16, 'a'}\n",
        b"gpio_pins_for_totp_enabled = {16: 5}\n",
        b"gpio_pins_for_totp_enabled = {16: ['A'], 'x': ['B']}\n",
        b"gpio_pins_for_momentary_relay_switch = {18: 2, 'a': 3}\n",
        b"commands = 5\n",
        b"wifi_ssid = '\xff'\n",
        b"wifi_ssid = " + b"[" * 200 + b"]" * 200 + b"\n",
        b"hardware_modified_cooldown_period_in_seconds = 1e999\n",
    ],
)
def test_hostile_seed_files(tmp_path, text):
    old = tmp_path / "old.py"
    old.write_bytes(SEED_SET.encode() + b"\n" + text)
    out = tmp_path / "out.json"
    one_line_error(run("config", "import", old, "-c", out))
    assert not out.exists()


def test_seed_commands_that_are_not_names_are_noted(tmp_path):
    old = tmp_path / "old.py"
    old.write_text(SEED_SET + "\ncommands = [[1], 2]\n")
    done = run("config", "import", old, "-c", tmp_path / "out.json")
    assert done.returncode == 0, done.stderr
    assert "commands: 2, [1] not available" in done.stdout


COMMANDS = [
    ["config", "check"],
    ["key", "new", "--pin", "16"],
    ["key", "show", "--pin", "16"],
    ["key", "list"],
    ["key", "remove", "--pin", "16", "--index", "1"],
    ["key", "code"],
    ["send", "--pin", "16", "--on"],
    ["watch", "--timeout", "1"],
    ["provision", "--no-wait"],
]
BAD_CONFIGS = {
    "missing": None,
    "a folder": "folder",
    "empty": b"",
    "not JSON": b'{"wifi": ',
    "binary": bytes(range(256)) * 4,
    "not UTF-8": b'{"wifi": {"ssid": "\xff"}}',
    "a list": b"[1, 2, 3]",
    "huge": b" " * (1 << 17),
    "deeply nested": b"[" * 30000 + b"]" * 30000,
    "wrong types": json.dumps(
        {"wifi": 1, "mqtt": {"topic": 5}, "gpio": {"relay": "16"}, "homeassistant": {"prefix": []}}
    ).encode(),
    "escape sequences": json.dumps(
        {
            "wifi": {"ssid": "\x1b[2J"},
            "mqtt": {"server": "\x1b]0;x", "topic": "t"},
            "gpio": {"relay": [16]},
            "\x1b[31m": 1,
        }
    ).encode(),
}


@pytest.mark.parametrize("kind", list(BAD_CONFIGS))
def test_every_command_with_a_bad_config_file(tmp_path, kind):
    path = tmp_path / "config.json"
    content = BAD_CONFIGS[kind]
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    for command in COMMANDS:
        done = run(*command, "-c", path, timeout=60)
        assert "\x1b" not in done.stderr, (command, done.stderr)
        if command[:2] == ["config", "check"]:  # one line per problem, each naming the file
            assert done.returncode in (1, 2) and "Traceback" not in done.stderr, done.stderr
            assert all(
                line.startswith(("tinyctrl: ", str(path))) for line in done.stderr.splitlines()
            ), done.stderr
        else:
            one_line_error(done)
