# SPDX-License-Identifier: MIT
"""`tinyctrl status` against real simulators on a loopback mosquitto: a folder of configs,
one connection per broker, a device that is not running, a cluster config whose first node
is down, a broker that is not there and a broken file: each row says what it found, the exit
status the worst of them."""

import json
import os
import time

import pytest
from hostcli import run
from services import free_port
from simharness import Client, Sim, base_config

import tinyctrl

RUNNING = 3


def device_config(broker, ntp, ip, i, **mqtt):
    cfg = base_config(broker, ntp, ip)
    cfg["mqtt"].update(topic="status/d%d" % i, client_id="status-%d" % i, **mqtt)
    cfg["name"] = "box-%d" % i
    return cfg


def write(folder, name, cfg):
    os.makedirs(os.path.join(folder, name), exist_ok=True)
    path = os.path.join(folder, name, "config.json")
    with open(path, "w") as f:
        f.write(cfg if isinstance(cfg, str) else json.dumps(cfg))
    return path


@pytest.fixture(scope="module")
def fleet(services, tmp_path_factory):
    broker, ntp, ip = services
    folder = str(tmp_path_factory.mktemp("fleet"))
    cfgs = [device_config(broker.port, ntp.port, ip.port, i) for i in range(RUNNING)]
    # The last one is a cluster config whose first node is down: device and tool take the next.
    del cfgs[-1]["mqtt"]["server"], cfgs[-1]["mqtt"]["port"]
    cfgs[-1]["mqtt"]["servers"] = ["127.0.0.1:%d" % free_port(), "127.0.0.1:%d" % broker.port]
    watchers = [
        Client(broker.port, topic=c["mqtt"]["topic"], client_id="w%d" % i)
        for i, c in enumerate(cfgs)
    ]
    sims = [Sim(c, board_id="5ee0%04x" % i) for i, c in enumerate(cfgs)]
    for w in watchers:
        w.wait_for(lambda p: p.startswith(b"{") and b'"FROM"' in p, timeout=40)
    paths = [write(folder, "d%d" % i, c) for i, c in enumerate(cfgs)]
    yield broker, ntp, ip, folder, paths, sims
    for s in sims:
        s.stop()
    for w in watchers:
        w.close()


def rows_of(done):
    return dict((r["name"], r) for r in json.loads(done.stdout))


def test_every_running_device_answers(fleet):
    _, _, _, folder, paths, sims = fleet
    start = time.time()
    done = run("status", folder, "--timeout", "10")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:4] == ["NAME", "ONLINE", "VERSION", "UPTIME"]
    assert len(lines) == 1 + RUNNING
    for i, line in enumerate(lines[1:]):
        cells = line.split()
        assert cells[:3] == ["box-%d" % i, "yes", tinyctrl.__version__], line
        assert cells[-1] == paths[i]
    rows = rows_of(run("status", *paths, "--json"))
    assert sorted(rows) == ["box-%d" % i for i in range(RUNNING)]
    for r in rows.values():
        assert r["online"] and r["error"] is None and r["version"] == tinyctrl.__version__
        assert r["uptime"].endswith("min") and r["last_seen"] >= start
    for s in sims:
        s.assert_alive()


def test_silent_device_unreachable_broker_and_broken_file_each_get_their_row(fleet, tmp_path):
    broker, ntp, ip, folder, paths, _ = fleet
    silent = write(str(tmp_path), "silent", device_config(broker.port, ntp.port, ip.port, 9))
    done = run("status", paths[0], silent, "--timeout", "4", "--json")
    assert done.returncode == 3, done.stderr  # no answer
    rows = rows_of(done)
    assert rows["box-0"]["online"] and not rows["box-9"]["online"]
    assert rows["box-9"]["error"] is None and rows["box-9"]["last_seen"] is None

    nowhere = write(str(tmp_path), "nowhere", device_config(free_port(), ntp.port, ip.port, 8))
    broken = write(str(tmp_path), "broken", '{"wifi": ')
    done = run("status", paths[0], nowhere, broken, "--timeout", "4")
    assert done.returncode == 4, done.stderr  # a broker not reached is the worst
    table = done.stdout.splitlines()
    assert table[1].split()[:2] == ["box-0", "yes"]
    assert table[2].split()[:2] == ["box-8", "error"]
    assert table[3].split()[:2] == ["-", "error"]
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 2 and "Traceback" not in done.stderr
    assert errors[0].startswith("tinyctrl: %s: broker 127.0.0.1:" % nowhere)
    assert "cannot connect" in errors[0]
    assert errors[1].startswith("tinyctrl: %s: " % broken) and "JSON" in errors[1]


def test_a_folder_without_configs_is_bad_input(tmp_path):
    done = run("status", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip() == "tinyctrl: %s: no config files in this folder" % tmp_path


def test_send_each_reaches_every_device_of_a_folder(fleet):
    _, _, _, folder, paths, sims = fleet
    done = run("send", "--each", folder, "--pin", "16", "--on", "--json")
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [a["config"] for a in answers] == paths
    assert all(not a["refused"] and '"GP16": 1' in a["answer"] for a in answers), answers
    for s in sims:
        s.wait_pin(16, 1)
    done = run("send", "--each", paths[0], folder + "/none.json", "--cmd", "stats")
    assert done.returncode == 2  # the missing file: bad input, after the first's answer
    assert done.stdout.splitlines()[0] == paths[0] + ":"
    assert "Uptime=" in done.stdout
    assert done.stderr.strip() == "tinyctrl: %s/none.json: no such file" % folder
