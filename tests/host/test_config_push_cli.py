# SPDX-License-Identifier: MIT
"""`tinyctrl config push` and `tinyctrl key revoke` as a user runs them: a file the device would
refuse, a missing device key, a broker that is not there, each one line and exit 1; revoking by
index and by the name `key new --name` gave, never the last key of a pin unless asked; the
device key `provision` makes (0600) and copies over USB; and a device without a push key, which
does not listen for pushes (simulator, loopback mosquitto)."""

import json
import os
import stat

import pytest
from hostcli import one_line_error, run
from services import free_port
from simharness import Client, Sim, base_config, state
from tinyctrl_host import board
from tinyctrl_host import push as host_push

from tinyctrl import config as device_config

# Not in the quick tier (./build.sh test --quick): pushes that wait for a device's answer.
pytestmark = pytest.mark.slow


def write_config(folder, **sections):
    cfg = base_config(free_port(), 123, 80, **sections)
    path = os.path.join(folder, "garage.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path, cfg


def key_file(path):
    with open(host_push.key_path(path), "w") as f:
        f.write(os.urandom(32).hex())


def test_push_refuses_an_invalid_file_without_sending_it(tmp_path):
    path, cfg = write_config(str(tmp_path), gpio={"relay": [16, 99]})
    key_file(path)
    line = one_line_error(run("config", "push", path))
    assert "GP99 does not exist on the Pico W" in line


def test_push_without_a_device_key_says_how_to_get_one(tmp_path):
    path, _ = write_config(str(tmp_path))
    line = one_line_error(run("config", "push", path))
    assert "garage.push.key: no device key" in line and "tinyctrl provision" in line


def test_push_to_a_broker_that_is_not_there(tmp_path):
    path, cfg = write_config(str(tmp_path))
    key_file(path)
    line = one_line_error(run("config", "push", path))
    assert "broker 127.0.0.1:%d: cannot connect" % cfg["mqtt"]["port"] in line


def test_push_key_is_private_and_provision_copies_it_over_usb(tmp_path, monkeypatch):
    path, _ = write_config(str(tmp_path))
    made = host_push.ensure_key(path)
    assert made == str(tmp_path / "garage.push.key")
    assert stat.S_IMODE(os.stat(made).st_mode) == 0o600
    with open(made) as f:
        first = f.read()
    assert len(bytes.fromhex(first.strip())) == 32
    assert host_push.ensure_key(path) == made and open(made).read() == first  # kept
    calls = []
    monkeypatch.setattr(
        board, "mpremote", lambda port, *commands, show=None: calls.append(commands)
    )
    board.copy_config(None, path, None, made)
    assert calls == [(("cp", path, ":config.json"), ("cp", made, ":push.key"), ("reset",))]


def test_key_revoke_by_index_and_by_name(tmp_path):
    path, _ = write_config(str(tmp_path))
    for name in ("phone", "tablet", "watch"):
        done = run("key", "new", "--pin", 18, "--name", name, "--config", path)
        assert done.returncode == 0, done.stderr
    with open(path) as f:
        phone, tablet, watch = json.load(f)["mfa"]["pins"]["18"]
    names = host_push.names_path(path)
    assert stat.S_IMODE(os.stat(names).st_mode) == 0o600
    with open(names) as f:
        kept = f.read()
    assert phone not in kept and tablet not in kept and "phone" in kept
    done = run("key", "revoke", "--pin", 18, "--name", "tablet", "--config", path)
    assert done.returncode == 0, done.stderr
    assert "removed key 2 of GP18 (tablet)" in done.stdout and "config push" in done.stdout
    with open(path) as f:
        raw = json.load(f)
    assert raw["mfa"]["pins"]["18"] == [phone, watch]
    device_config.validate(raw)
    assert "no key named 'tablet'" in one_line_error(
        run("key", "revoke", "--pin", 18, "--name", "tablet", "--config", path)
    )
    assert run("key", "revoke", "--pin", 18, "--index", 2, "--config", path).returncode == 0
    line = one_line_error(run("key", "revoke", "--pin", 18, "--index", 1, "--config", path))
    assert "GP18's only key" in line and "--leave-open" in line
    assert "give --index 1-1" in one_line_error(
        run("key", "revoke", "--pin", 18, "--index", 3, "--config", path)
    )
    done = run("key", "revoke", "--pin", 18, "--index", 1, "--leave-open", "--config", path)
    assert done.returncode == 0, done.stderr
    with open(path) as f:
        assert "18" not in json.load(f)["mfa"]["pins"]
    assert "GP18 has no TOTP key" in one_line_error(
        run("key", "revoke", "--pin", 18, "--index", 1, "--config", path)
    )


def test_a_device_without_a_push_key_is_not_listening(services, tmp_path):
    broker, ntp, ip = services
    cfg = base_config(broker.port, ntp.port, ip.port)
    path = str(tmp_path / "config.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    key_file(path)
    client = Client(broker.port)
    m = client.mark()
    sim = Sim(cfg)  # provisioned before config pushes: no push.key
    try:
        client.wait_for(state("GP16", 0), since=m, timeout=40)
        done = run("config", "push", path, timeout=90)
        assert done.returncode == 3 and "Traceback" not in done.stderr  # no answer
        assert "sending 100%" in done.stderr  # the progress, then the one line
        assert [x for x in done.stderr.splitlines() if not x.startswith("sending ")] == [
            "tinyctrl: no answer from %s within 30 s (is it online, with a push key from "
            "tinyctrl provision?)" % cfg["name"]
        ]
        sim.assert_alive()
    finally:
        client.close()
        sim.stop()
