# SPDX-License-Identifier: MIT
"""The `tinyctrl` commands against the real controller (simulator, MicroPython unix port)
and a real mosquitto on loopback: send (open, TOTP and signed pins, commands, refusals), watch,
a seed config imported and run, and a broker that refuses or is not there."""

import base64
import json
import os
import re
import threading
import time

import pytest
from hostcli import one_line_error, run, start
from services import Mosquitto, free_port
from seed_configs import SEED_SET
from oracle import totp_now
from simharness import NAME, Client, Sim, base_config, device, state

import tinyctrl
from tinyctrl import config as device_config

# Not in the quick tier (./build.sh test --quick): the command against a device, waiting out
# TOTP steps.
pytestmark = pytest.mark.slow

# Keys of this run only, so no other test spends their codes.
KEY = base64.b32encode(os.urandom(20)).decode()
SIGN_KEY = base64.b64encode(os.urandom(24)).decode()
OPEN, TOTP_PIN, SIGNED = 16, 17, 19


def wait_log(sim, fragment, timeout=40):
    end = time.monotonic() + timeout
    while fragment not in sim.log():
        assert time.monotonic() < end, "%r not logged:\n%s" % (fragment, sim.log()[-1500:])
        time.sleep(0.1)


@pytest.fixture(scope="module")
def rig(services):
    broker, ntp, ip = services
    cfg = base_config(
        broker.port,
        ntp.port,
        ip.port,
        mfa={"pins": {str(TOTP_PIN): [KEY]}},
        sign={"keys": {"script": SIGN_KEY}, "pins": {str(SIGNED): ["script"]}},
    )
    with device(cfg, broker.port, clock=True) as (sim, client, _):
        yield sim, client, sim.config_path


def settle():
    time.sleep(0.4)  # the burnout guard's cooldown (0.3 s) between moves of one pin


def test_send_sets_an_open_relay_and_prints_the_answer(rig):
    sim, _, config = rig
    done = run("send", "-c", config, '{"GP16": 1}')
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [NAME, "GP16=1"]
    sim.wait_pin(OPEN, 1)
    settle()
    done = run("send", "-c", config, "--pin", "16", "--off")
    assert done.returncode == 0 and "GP16=0" in done.stdout, done.stderr
    sim.wait_pin(OPEN, 0)


def test_send_adds_the_totp_code_for_a_protected_pin(rig):
    sim, _, config = rig
    settle()
    # The device refuses codes of the 30 s step its clock first synced in (SECURITY.md, "Replay":
    # no replay
    # across a reset); the next step's code is one it takes.
    time.sleep(-time.time() % 30 + 0.5)
    done = run("send", "-c", config, "--pin", TOTP_PIN, "--on")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "GP17=1" in done.stdout
    sim.wait_pin(TOTP_PIN, 1)


def test_send_exits_non_zero_when_the_device_refuses(rig):
    sim, _, config = rig
    settle()
    seen = len(sim.outputs)
    valid = [totp_now(KEY, offset_steps=s) for s in range(-7, 3)]
    wrong = next(c for c in range(123456, 123500) if c not in valid)
    done = run("send", "-c", config, "--pin", TOTP_PIN, "--off", "--code", wrong)
    assert done.returncode == 1
    denied = "ERROR MFA validation failed, GPIO cannot be set"
    assert denied in done.stdout.splitlines(), done.stdout
    assert not [line for _, line in sim.outputs[seen:] if line.startswith("GP17=")]
    done = run("send", "-c", config, '{"GP3": 1}')  # refused here by the device's own parser
    assert "GP3 is a contact switch" in one_line_error(done)


def test_send_twice_on_a_totp_pin_waits_for_the_next_code(rig, tmp_path, monkeypatch):
    """Each code opens the pin once: a second send in the same 30 s step waits for the next
    code instead of sending a used one (a refusal that counts toward the lockout)."""
    sim, _, config = rig
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # where the tool notes the steps sent
    time.sleep(-time.time() % 30 + 0.5)
    done = run("send", "-c", config, "--pin", TOTP_PIN, "--on")
    assert done.returncode == 0, done.stdout + done.stderr
    sim.wait_pin(TOTP_PIN, 1)
    settle()
    started = time.time()
    done = run("send", "-c", config, "--pin", TOTP_PIN, "--off", "--timeout", "60")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "waiting" in done.stderr and "next code" in done.stderr
    assert "GP17=0" in done.stdout and time.time() - started > 20
    sim.wait_pin(TOTP_PIN, 0)


def test_a_refused_code_comes_with_what_the_tool_can_tell(rig):
    _, _, config = rig
    settle()
    valid = [totp_now(KEY, offset_steps=s) for s in range(-7, 3)]
    wrong = next(c for c in range(223456, 223500) if c not in valid)
    done = run("send", "-c", config, "--pin", TOTP_PIN, "--off", "--code", wrong)
    assert done.returncode == 1
    assert "wrong code, or one already used" in done.stdout, done.stdout


def test_send_signs_a_request_for_a_signed_pin(rig, tmp_path):
    sim, _, config = rig
    seen = len(sim.outputs)
    done = run("send", "-c", config, '{"GP19": 1}')
    assert done.returncode == 0, done.stdout + done.stderr
    sim.wait_pin(SIGNED, 0)  # momentary: released after its 2 s
    assert [line for _, line in sim.outputs[seen:] if line.startswith("GP19=")] == [
        "GP19=1",
        "GP19=0",
    ]
    time.sleep(1.1)  # a signed request's TS must be newer than the last one accepted
    wrong = tmp_path / "wrong.key"
    wrong.write_text("not-the-scheduler-key-at-all\n")
    done = run("send", "-c", config, '{"GP19": 1}', "--key-file", wrong)
    assert done.returncode == 1 and "MFA validation failed" in done.stdout
    good = tmp_path / "script.key"
    good.write_text(SIGN_KEY + "\n")
    time.sleep(1.1)
    done = run("send", "-c", config, '{"GP19": 1}', "--key-file", good)
    assert done.returncode == 0 and "GP19=1" in done.stdout, done.stdout + done.stderr


def test_send_a_command(rig):
    done = run("send", "-c", rig[2], "--cmd", "stats")
    assert done.returncode == 0 and done.stdout.startswith("stats Uptime="), done.stdout


def test_watch_shows_the_topic_in_readable_form(rig):
    sim, client, config = rig
    watch = start("watch", "-c", config, "--timeout", "60")
    lines = []
    ready = threading.Event()

    def read():
        for line in watch.stdout:
            lines.append(line.rstrip("\n"))
            ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert ready.wait(15), watch.stderr.read() if watch.poll() is not None else "no output"
    time.sleep(1)  # subscribed before the first message goes out
    settle()
    client.send({"GP16": 1})
    sim.wait_pin(OPEN, 1)
    sim.contact(1, 1)
    client.send({"GP99": 1})
    # what the device coalesces into one message varies with timing; each fact must show
    expect = {
        "the request": lambda line: line.endswith('request        {"GP16": 1}'),
        "the pin table": lambda line: re.search(NAME + r" +GP", line) and "GP16=1" in line,
        "the notification": lambda line: re.search(NAME + r" +NOTIFY ", line) and "GP1=1" in line,
        "the error": lambda line: line.endswith("ERROR GP99 is not configured"),
    }
    end = time.monotonic() + 20
    while not all(any(match(line) for line in lines) for match in expect.values()):
        assert time.monotonic() < end, (
            [k for k, m in expect.items() if not any(m(line) for line in lines)],
            lines,
        )
        time.sleep(0.1)
    watch.terminate()
    watch.wait(10)
    assert lines[0].startswith("watching home/pico on 127.0.0.1:")
    assert all(line[:2].isdigit() and line[2] == ":" for line in lines[1:]), lines  # time stamps
    settle()
    client.send({"GP16": 0})
    sim.contact(1, 0)


def test_watch_shows_a_device_going_offline(services):
    broker, ntp, ip = services
    cfg = base_config(
        broker.port,
        ntp.port,
        ip.port,
        mqtt={"client_id": "pico-gone", "keepalive": 2, "topic": "home/gone"},
    )
    client = Client(broker.port, topic="home/gone", client_id="tester-gone")
    sim = Sim(cfg)
    try:
        client.wait_for(state("GP16", 0), timeout=40)
        watch = start("watch", "-c", sim.config_path, "--count", "1", "--timeout", "60")
        time.sleep(2)
        sim.proc.kill()  # no clean disconnect: the broker sends the device's last will
        out, err = watch.communicate(timeout=60)
        assert watch.returncode == 0, err
        assert re.search(NAME + r" +is OFFLINE$", out.splitlines()[-1]), out
    finally:
        sim.stop()
        client.close()


def test_an_imported_seed_config_runs_in_the_simulator(services, tmp_path):
    broker, ntp, ip = services
    old = tmp_path / "mqtt_tiny_controller_config.py"
    old.write_text(SEED_SET)
    out = tmp_path / "config.json"
    assert run("config", "import", old, "-c", out).returncode == 0
    raw = json.loads(out.read_text())
    # Only the broker and time services are pointed at loopback; the rest is the import's.
    raw["mqtt"].update(server="127.0.0.1", port=broker.port, ssl=False, ca_file="")
    raw["ntp"].update(host="127.0.0.1", port=ntp.port)
    raw["ip_provider"] = "http://127.0.0.1:%d/" % ip.port
    device_config.validate(raw)
    client = Client(broker.port, client_id="tester-seed")
    sim = Sim(raw)
    try:
        # The seed has no device name: "FROM" carries the default, never the client id.
        client.wait_for(lambda p: b'"FROM": "tinyctrl"' in p and b'"GP19": 0' in p, timeout=40)
        time.sleep(0.5)
        m = client.mark()
        client.send({"GP18": 1})  # MFA pin from the seed: refused without a code
        assert (
            client.wait_for(lambda p: p.startswith(b"Error:"), since=m)
            == b"Error: MFA validation failed, GPIO cannot be set"
        )
        sim.assert_alive()
    finally:
        sim.stop()
        client.close()


def test_a_broker_that_refuses_or_is_not_there(tmp_path):
    path = tmp_path / "config.json"
    done = run(
        "config",
        "init",
        "-c",
        path,
        "--ssid",
        "w",
        "--server",
        "127.0.0.1",
        "--topic",
        "t/x",
        "--relay",
        "16",
        "--port",
        free_port(),
    )
    assert done.returncode == 0, done.stderr
    assert "cannot connect" in one_line_error(run("send", "-c", path, '{"GP16": 1}'))
    assert "cannot connect" in one_line_error(run("watch", "-c", path))
    done = run("provision", "-c", path, "--port", tmp_path / "ttyACM9")  # neither broker nor board
    assert "not waiting for the device" in done.stdout and "no board at" in one_line_error(done)
    raw = json.loads(path.read_text())
    raw["mqtt"].update(ssl=True, ca_file="ca.pem")
    path.write_text(json.dumps(raw))
    assert "ca.pem not found" in one_line_error(run("provision", "-c", path, "--no-wait"))
    raw["mqtt"].update(ssl=False, ca_file="")
    path.write_text(json.dumps(raw))
    with Mosquitto(extra_conf="allow_anonymous false\n") as broker:
        raw = json.loads(path.read_text())
        raw["mqtt"]["port"] = broker.port
        path.write_text(json.dumps(raw))
        line = one_line_error(run("send", "-c", path, '{"GP16": 1}'))
        assert "refused the connection (Not authorized)" in line, line


def test_provision_with_no_board_there(rig, tmp_path):
    line = one_line_error(
        run("provision", "-c", rig[2], "--port", tmp_path / "ttyACM9", "--no-wait")
    )
    assert "no board at" in line


def test_watch_defuses_other_clients_and_says_when_its_connection_drops(tmp_path):
    import paho.mqtt.client as mqtt

    broker = Mosquitto().start()
    path = tmp_path / "config.json"
    assert (
        run(
            "config",
            "init",
            "-c",
            path,
            "--ssid",
            "w",
            "--server",
            "127.0.0.1",
            "--port",
            broker.port,
            "--topic",
            "t/w",
            "--relay",
            "16",
        ).returncode
        == 0
    )
    watch = start("watch", "-c", path, "--timeout", "60")
    lines = []

    def read():
        for line in watch.stdout:
            lines.append(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()

    def wait_line(fragment, timeout=20):
        end = time.monotonic() + timeout
        while not any(fragment in line for line in lines):
            assert time.monotonic() < end, (fragment, lines)
            time.sleep(0.1)

    other = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="hostile")
    try:
        wait_line("watching t/w")
        time.sleep(1)  # subscribed
        other.connect("127.0.0.1", broker.port)
        other.loop_start()
        for payload in (
            b'{"FROM": "tinyctrl", "GP16": 1}',
            b'{"FROM": "evil", "GP16": 0}',
            b"\x1b[2J\x1b[31mgarage-pico is OFFLINE",
            b'{"GP16": "\x1b]0;x\x07"}',
            "Error: \u202efake\u2028line".encode(),
        ):
            other.publish("t/w", payload, qos=1).wait_for_publish(5)
        wait_line("fake")
        assert not [line for line in lines if any(c < " " for c in line)], lines
        assert "\\x1b[2J" in "\n".join(lines) and "\\u202e" in "\n".join(lines)
        genuine = [line for line in lines if "GP16=1" in line]
        assert genuine and "not tinyctrl" not in genuine[0]
        assert "not tinyctrl" in [line for line in lines if "evil" in line][0]
        broker.stop()
        wait_line("lost the connection")
        broker.start()
        wait_line("connected again", timeout=30)
    finally:
        other.loop_stop()
        watch.terminate()
        watch.wait(10)
        broker.close()


def test_the_board_says_what_it_starts_and_what_it_is_doing(rig):
    sim, _, _ = rig
    log = sim.log()
    line = [s for s in log.splitlines() if "starting" in s][0]
    assert line == (
        "tinyctrl: tinyctrl %s %s starting: relays GP16 GP17, momentary GP18 GP19 "
        "GP26 GP27, contacts GP0 GP1 GP2 GP3" % (tinyctrl.__version__, NAME)
    ), line
    joining = log.index("joining Wi-Fi 'sim', then the broker 127.0.0.1:")
    assert log.index(line) < joining < log.index("subscribed to")


def test_send_with_the_device_offline_says_the_request_may_still_switch(tmp_path):
    with Mosquitto() as broker:
        path = tmp_path / "config.json"
        assert (
            run(
                "config",
                "init",
                "-c",
                path,
                "--ssid",
                "w",
                "--server",
                "127.0.0.1",
                "--port",
                broker.port,
                "--topic",
                "t/off",
                "--relay",
                "16",
            ).returncode
            == 0
        )
        line = one_line_error(run("send", "-c", path, "--pin", "16", "--on", "--timeout", "1"))
        assert "no answer from the device within 1 s" in line
        assert "queued at the broker" in line and "GP16" in line
        line = one_line_error(run("send", "-c", path, "--cmd", "stats", "--timeout", "1"))
        assert "no answer" in line and "queued" not in line


def test_send_and_watch_speak_json_for_scripts(rig):
    sim, client, config = rig
    settle()
    watch = start("watch", "-c", config, "--json", "--count", "2", "--timeout", "30")
    time.sleep(2)  # subscribed
    done = run("send", "-c", config, "--pin", "16", "--on", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["refused"] is False and result["reason"] is None
    assert json.loads(result["answer"])["GP16"] == 1
    out, err = watch.communicate(timeout=40)
    records = [json.loads(line) for line in out.splitlines()]
    assert records[0]["text"] == '{"GP16": 1}' and "from" not in records[0]  # the request
    assert records[1]["from"] == NAME and records[1]["from_device"] is True
    sim.wait_pin(OPEN, 1)
    settle()
    done = run("send", "-c", config, "--pin", "16", "--off", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["refused"] is False
    valid = [totp_now(KEY, offset_steps=s) for s in range(-7, 3)]
    wrong = next(c for c in range(323456, 323500) if c not in valid)
    done = run("send", "-c", config, "--pin", TOTP_PIN, "--on", "--code", wrong, "--json")
    result = json.loads(done.stdout)
    assert done.returncode == 1 and result["refused"] is True
    assert result["reason"].startswith("Error: MFA validation failed") and result["why"]
