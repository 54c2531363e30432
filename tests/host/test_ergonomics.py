# SPDX-License-Identifier: MIT
"""What `tinyctrl` shares across its commands: one rule for the config file (-c/--config,
$TINYCTRL_CONFIG, ./config.json), exit statuses scripts can tell apart, --json, --timeout,
examples in every --help, and colour on a terminal unless NO_COLOR is set."""

import json

import pytest
from hostcli import Terminal, one_line_error, run
from services import Mosquitto, free_port

INIT = [
    "--ssid",
    "w",
    "--wifi-password",
    "pw-pw-pw",
    "--server",
    "127.0.0.1",
    "--topic",
    "t/e",
    "--relay",
    "16,17",
    "--mfa",
    "17",
]


def init(path, *extra):
    done = run("config", "init", "-c", path, *INIT, *extra)
    assert done.returncode == 0, done.stderr
    return path


def test_one_rule_for_the_config_file(tmp_path, monkeypatch):
    init(tmp_path / "config.json")
    assert "valid" in run("config", "check", cwd=tmp_path).stdout  # ./config.json
    assert run("key", "list", cwd=tmp_path).returncode == 0
    other = init(tmp_path / "other.json", "--port", "1")
    monkeypatch.setenv("TINYCTRL_CONFIG", str(other))
    done = run("config", "check", "--json", cwd=tmp_path)
    assert json.loads(done.stdout)["file"] == str(other)
    done = run("config", "check", "-c", tmp_path / "config.json", "--json", cwd=tmp_path)
    assert json.loads(done.stdout)["file"] == str(tmp_path / "config.json")


def test_exit_statuses(tmp_path):
    assert one_line_error(run("config", "check", "-c", tmp_path / "none.json"))
    assert run("config", "check", "-c", tmp_path / "none.json").returncode == 2
    path = init(tmp_path / "config.json", "--port", str(free_port()))
    raw = json.loads(path.read_text())
    raw["gpio"]["relay"] = [16, 40]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw))
    assert run("config", "check", "-c", bad).returncode == 1  # the device would refuse it
    assert run("send", "-c", bad, "--pin", "16", "--on").returncode == 2  # so it is bad input
    assert run("send", "-c", path, "--pin", "16", "--on").returncode == 4  # no broker
    assert run("send", "-c", path, "--bogus").returncode == 2
    with Mosquitto() as broker:
        raw = json.loads(path.read_text())
        raw["mqtt"]["port"] = broker.port
        path.write_text(json.dumps(raw))
        done = run("send", "-c", path, "--cmd", "stats", "--timeout", "1")
        assert done.returncode == 3 and "no answer" in one_line_error(done)  # no device


def test_timeouts_are_whole_seconds_from_one(tmp_path):
    path = init(tmp_path / "config.json")
    for command in (["send", "--cmd", "stats"], ["watch"], ["provision"]):
        done = run(*command, "-c", path, "--timeout", "0")
        assert done.returncode == 2 and "whole number of seconds >= 1" in done.stderr


def test_json_for_scripts(tmp_path):
    path = init(tmp_path / "config.json")
    done = run("config", "check", "-c", path, "--json")
    assert json.loads(done.stdout) == {"file": str(path), "valid": True, "problems": []}
    codes = json.loads(run("key", "code", "-c", path, "--json").stdout)
    assert [(c["pin"], c["key"], len(c["code"])) for c in codes] == [(17, 1, 6)]
    assert 1 <= codes[0]["valid_s"] <= 30


def test_every_help_has_an_example_and_the_top_one_the_exit_statuses():
    top = run("--help").stdout
    for status in ("0  done", "1  refused", "2  bad input", "3  no answer", "4  the broker"):
        assert status in top
    assert "TINYCTRL_CONFIG" in top and "NO_COLOR" in top
    for command in (
        ["config", "init"],
        ["config", "check"],
        ["config", "import"],
        ["key", "new"],
        ["key", "show"],
        ["key", "list"],
        ["key", "remove"],
        ["key", "code"],
        ["send"],
        ["watch"],
        ["status"],
        ["provision"],
        ["flash"],
        ["update"],
    ):
        done = run(*command, "--help")
        assert done.returncode == 0 and "example: tinyctrl " in done.stdout, command


@pytest.mark.parametrize("no_color", [False, True])
def test_errors_in_colour_on_a_terminal_unless_no_color(tmp_path, monkeypatch, no_color):
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    term = Terminal("config", "check", "-c", tmp_path / "none.json")
    assert term.finish() == 2
    assert (b"\x1b[31mtinyctrl:" in term.transcript) != no_color, term.transcript


def test_a_wait_longer_than_a_second_shows_it_is_alive_on_a_terminal(tmp_path):
    with Mosquitto() as broker:
        path = init(tmp_path / "config.json", "--port", str(broker.port))
        term = Terminal("send", "-c", path, "--cmd", "stats", "--timeout", "3")
        assert term.finish() == 3
        done = run("send", "-c", path, "--cmd", "stats", "--timeout", "2")  # no terminal
        assert done.returncode == 3 and "waiting" not in done.stderr
    shown = term.transcript.decode(errors="replace")
    assert "waiting for the device's answer (1 s)" in shown and "\r\x1b[K" in shown, shown
    assert shown.rstrip().splitlines()[-1].split("\x1b[K")[-1].startswith("\x1b[31mtinyctrl:")


def bash_complete(script, *words):
    """What bash completes for `tinyctrl WORDS` (the last word the one being typed)."""
    import subprocess

    line = " ".join("'%s'" % w for w in ("tinyctrl",) + words)
    program = script + '\nCOMP_WORDS=(%s); COMP_CWORD=%d; _tinyctrl; echo "${COMPREPLY[*]}"' % (
        line,
        len(words),
    )
    return subprocess.run(
        ["bash", "-c", program], capture_output=True, text=True, check=True
    ).stdout.split()


def test_bash_completion_from_the_parser():
    script = run("completion", "bash").stdout
    assert "complete -o default -F _tinyctrl tinyctrl" in script
    assert sorted(bash_complete(script, "")) == sorted(
        [
            "config",
            "key",
            "send",
            "watch",
            "status",
            "provision",
            "flash",
            "update",
            "completion",
            "--help",
            "--version",
        ]
    )
    assert bash_complete(script, "k") == ["key"]
    assert sorted(bash_complete(script, "key", "")) == sorted(
        ["new", "show", "list", "remove", "revoke", "code", "--help"]
    )
    assert "--png" in bash_complete(script, "key", "new", "--pin", "18", "--")
    assert bash_complete(script, "send", "-c", "x.json", "--j") == ["--json"]
    assert sorted(bash_complete(script, "status", "configs/", "--")) == [
        "--help",
        "--json",
        "--timeout",
    ]
    assert sorted(bash_complete(script, "update", "config.json", "fw.uf2", "--")) == [
        "--help",
        "--timeout",
    ]
