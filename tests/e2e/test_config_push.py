# SPDX-License-Identifier: MIT
"""Sealed config pushes end to end: the `tinyctrl` command (config push, key revoke --push) on
the PC, the simulator, a loopback mosquitto. A push changes pins and keys and the device runs
them; a revoked key's fresh code is refused right after; a replayed, tampered, misdirected or
invalid push is refused with one line and the old config keeps running; a wrong Wi-Fi password
and a wrong broker roll back within the trial bound; a power cut in the middle of a trial
leaves a complete config; no message on the broker holds a secret of any config or the key."""

import base64
import json
import os
import shutil
import tempfile
import time

import leakcheck
import pytest
from hostcli import run
from services import Mosquitto, free_port
from simharness import NAME, TOPIC, Client, Codes, Sim, base_config, state, text, wait_log
from tinyctrl_host import push as host_push

# Not in the quick tier (./build.sh test --quick): pushes that wait out trials and rollbacks.
pytestmark = pytest.mark.slow

DENIED = b"Error: MFA validation failed, GPIO cannot be set"
KEY_PHONE, KEY_TABLET = (base64.b32encode(os.urandom(20)).decode() for _ in range(2))
DEVICE_KEY = os.urandom(32)
WIFI_PW = "wifi-secret-pw"  # base_config's, the simulated access point's too
TRIAL_S = 12  # the bound these tests push with (the PC's default is 120 s)
GARAGE = 18


def first_config(services):
    broker, ntp, ip = services
    return base_config(
        broker.port,
        ntp.port,
        ip.port,
        mqtt={"user": "tinyctrl", "password": "broker-secret-pw"},
        mfa={"pins": {str(GARAGE): [KEY_PHONE, KEY_TABLET]}},
        gpio={"power_on_state": {"16": "restore"}},
    )


@pytest.fixture(scope="module")
def rig(services):
    broker = services[0]
    cfg = first_config(services)
    pc = tempfile.mkdtemp(prefix="tinyctrl-pc-")
    pc_config = os.path.join(pc, "config.json")
    with open(pc_config, "w") as f:
        json.dump(cfg, f)
    with open(host_push.key_path(pc_config), "w") as f:
        f.write(DEVICE_KEY.hex())
    spy = Client(broker.port, topic="#", client_id="spy")  # every message on the broker
    client = Client(broker.port)
    m = client.mark()
    os.environ["TINYCTRL_SIM_WIFI_PASSWORD"] = WIFI_PW
    try:
        sim = Sim(cfg, files={"push.key": DEVICE_KEY.hex().encode()})
    finally:
        del os.environ["TINYCTRL_SIM_WIFI_PASSWORD"]
    client.wait_for(state("GP16", 0), since=m, timeout=40)
    rig = {
        "sim": sim,
        "client": client,
        "spy": spy,
        "pc": pc_config,
        "codes": Codes(),
        "broker": broker.port,
        "configs": [cfg],
        "syncs": 1,
    }
    wait_log(sim, "clock synced")
    rig["codes"].synced()
    yield rig
    client.close()
    spy.close()
    sim.stop()
    shutil.rmtree(pc, ignore_errors=True)


def edit(rig, change):
    """Change the PC's config.json as a user would, and remember it for the secret check."""
    with open(rig["pc"]) as f:
        raw = json.load(f)
    change(raw)
    with open(rig["pc"], "w") as f:
        json.dump(raw, f)
    rig["configs"].append(raw)
    return raw


def booted(rig):
    """The device restarted and synced its clock: codes of the sync's step are refused."""
    rig["syncs"] += 1
    wait_log(rig["sim"], "clock synced", count=rig["syncs"], timeout=40)
    rig["codes"].synced()


def device_config(rig):
    with open(rig["sim"].config_path) as f:
        return json.load(f)


def code_answer(rig, key, pin=GARAGE):
    client = rig["client"]
    m = client.mark()
    client.send({"MFA": rig["codes"].fresh(key), "GP%d" % pin: 1})
    return client.wait_for(lambda p: p == DENIED or state("GP%d" % pin, 1)(p), since=m)


def push_lines(rig, since):
    return [p for _, p in rig["client"].messages[since:] if b"config push" in p]


def sealed_push(rig, raw, **kw):
    """A push made here, to tamper with or misdirect: (seq, chunk messages)."""
    seq = host_push.new_seq()
    args = dict(to=NAME, topic=TOPIC, trial_s=TRIAL_S)
    args.update(kw)
    sealed = host_push.seal_config(
        json.dumps(raw).encode(), args.pop("key", DEVICE_KEY), seq, **args
    )
    return seq, host_push.chunks(sealed, seq)


def publish(rig, messages):
    for m in messages:
        rig["spy"].mqtt.publish(TOPIC + "/config", m, qos=1).wait_for_publish(10)


def refused_once(rig, messages, why):
    """The device refuses with exactly one line and keeps running its config."""
    before = device_config(rig)
    m = rig["client"].mark()
    publish(rig, messages)
    line = rig["client"].wait_for(text("Error: config push refused: "), since=m)
    time.sleep(1)
    assert push_lines(rig, m) == [line], push_lines(rig, m)
    assert why in line.decode(), line
    assert device_config(rig) == before
    rig["sim"].assert_alive()
    return line


def test_a_push_changes_pins_and_keys_and_the_device_runs_them(rig):
    raw = edit(rig, lambda r: r["gpio"]["relay"].append(20))
    m = rig["client"].mark()
    rig["client"].send({"GP16": 1})  # restored after a reset (gpio.power_on_state)
    rig["sim"].wait_pin(16, 1)
    done = run("config", "push", rig["pc"], "--trial-s", TRIAL_S, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "received, restarting to try it" in done.stdout and "confirmed" in done.stdout
    assert device_config(rig) == raw
    booted(rig)
    rig["client"].send({"GP20": 1})
    rig["client"].wait_for(state("GP20", 1), since=m)
    rig["sim"].wait_pin(20, 1)
    assert rig["sim"].pin(16) == 1 and rig["client"].published_pins(m)[16] == 1
    rig["capture"] = [p for _, p in rig["spy"].messages if b"\n" in p[:24] and p[:1].isdigit()]


def test_a_new_key_pushed_at_once_works_right_after(rig):
    done = run(
        "key",
        "new",
        "--pin",
        GARAGE,
        "--name",
        "watch",
        "--config",
        rig["pc"],
        "--push",
        "--trial-s",
        TRIAL_S,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "confirmed" in done.stdout
    watch = device_config(rig)["mfa"]["pins"][str(GARAGE)][-1]
    assert watch not in (KEY_PHONE, KEY_TABLET)
    rig["configs"].append(device_config(rig))
    booted(rig)
    assert state("GP18", 1)(code_answer(rig, watch))


def test_a_revoked_key_is_refused_right_after_the_push(rig):
    assert state("GP18", 1)(code_answer(rig, KEY_PHONE))  # the phone's key works before
    done = run(
        "key",
        "revoke",
        "--pin",
        GARAGE,
        "--index",
        1,
        "--config",
        rig["pc"],
        "--push",
        "--trial-s",
        TRIAL_S,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "removed key 1 of GP18" in done.stdout and "confirmed" in done.stdout
    rig["configs"].append(device_config(rig))
    assert device_config(rig)["mfa"]["pins"][str(GARAGE)][0] == KEY_TABLET
    assert KEY_PHONE not in device_config(rig)["mfa"]["pins"][str(GARAGE)]
    booted(rig)
    assert code_answer(rig, KEY_PHONE) == DENIED
    assert state("GP18", 1)(code_answer(rig, KEY_TABLET))


def test_a_replayed_push_is_refused(rig):
    refused_once(rig, rig["capture"], "is a replay: this device has accepted push")


def test_a_tampered_push_is_refused(rig):
    _, messages = sealed_push(rig, device_config(rig))
    last = bytearray(messages[-1])
    last[-40] ^= 0x04  # a bit of the ciphertext
    refused_once(rig, messages[:-1] + [bytes(last)], "not sealed with this device's key")


def test_a_push_for_another_device_is_refused(rig):
    _, messages = sealed_push(rig, device_config(rig), to="porch-pico")
    refused_once(rig, messages, "sealed for another device")
    _, messages = sealed_push(rig, device_config(rig), key=os.urandom(32))
    refused_once(rig, messages, "not sealed with this device's key")


def test_an_invalid_file_is_refused_with_the_validators_messages(rig):
    raw = device_config(rig)
    raw["gpio"]["relay"].append(99)
    raw["guard"]["auth_failures"] = 0
    _, messages = sealed_push(rig, raw)
    line = refused_once(rig, messages, "gpio.relay: GP99 does not exist on the Pico W")
    assert line.decode() == (
        "Error: config push refused: gpio.relay: GP99 does not exist on "
        "the Pico W (GP0-GP22, GP26-GP28); guard.auth_failures: must be a "
        "whole number from 1 to 10"
    )


def rolled_back(rig, change, why, report):
    """Push a changed copy of the PC's config (--to: the device runs the PC's config.json)."""
    before = device_config(rig)
    with open(rig["pc"]) as f:
        raw = json.load(f)
    change(raw)
    rig["configs"].append(raw)
    new = os.path.join(os.path.dirname(rig["pc"]), "new.json")
    with open(new, "w") as f:
        json.dump(raw, f)
    m = rig["client"].mark()
    done = run("config", "push", new, "--to", rig["pc"], "--trial-s", TRIAL_S, timeout=120)
    assert done.returncode == 1 and "rolled back" in done.stderr, done.stdout + done.stderr
    assert why in done.stderr, done.stderr
    rig["client"].wait_for(lambda p: b"rolled back" in p, since=m)  # the CLI may see it first
    lines = push_lines(rig, m)
    received = next(t for t, p in rig["client"].messages[m:] if b"received" in p)
    back = next(t for t, p in rig["client"].messages[m:] if b"rolled back" in p)
    # the bound, then the reset and the old config's connect before it can say so
    assert back - received < TRIAL_S + 15, back - received
    report(
        "config push rolled back (%s): %.1f s after 'received' (trial bound %d s, then the "
        "reset and the old config's connect)" % (why, back - received, TRIAL_S)
    )
    assert len(lines) == 2, lines
    assert device_config(rig) == before
    assert sorted(os.listdir(rig["sim"].dir)) == sorted(
        ["config.json", "push.key", "push.seq", "stderr.log"]
    )
    booted(rig)
    rig["client"].send({"CMD": "refresh"})
    rig["client"].wait_for(state("GP20", 0), since=m)  # the pushed pin, off after a reset


def test_a_wrong_wifi_password_rolls_back_within_the_bound(rig, report):
    rolled_back(
        rig,
        lambda r: r["wifi"].update(password="not-the-wifi-pw"),
        "Wi-Fi join failed (status -3)",
        report,
    )


def test_a_wrong_broker_rolls_back_within_the_bound(rig, report):
    rolled_back(rig, lambda r: r["mqtt"].update(port=free_port()), "connect failed", report)


def test_a_power_cut_in_the_trial_leaves_a_complete_config(rig):
    sim = rig["sim"]
    before = device_config(rig)
    raw = edit(rig, lambda r: r["wifi"].update(password="another-wrong-pw"))
    with open(rig["pc"], "w") as f:
        json.dump(before, f)
    tries, fails = sim.log().count("trying pushed config"), sim.log().count("connect failed")
    m = rig["client"].mark()
    seq, messages = sealed_push(rig, raw, trial_s=60)  # the power goes long before the bound
    publish(rig, messages)
    rig["client"].wait_for(text("Info: config push %d received" % seq), since=m)
    wait_log(sim, "trying pushed config", count=tries + 1)
    wait_log(sim, "connect failed", count=fails + 1)
    sim.send("POWERCYCLE")
    line = rig["client"].wait_for(
        text("Error: config push %d rolled back" % seq), since=m, timeout=40
    )
    assert line.endswith(b"the device restarted before it reached the broker"), line
    assert device_config(rig) == before
    assert "config.new" not in os.listdir(sim.dir) and "config.trial" not in os.listdir(sim.dir)
    booted(rig)
    sim.assert_alive()


def test_a_full_size_push_is_read_with_a_bounded_heap(rig, report):
    """64 KB arrive one 512-byte chunk at a time: the heap holds a chunk, never the file."""
    sim = rig["sim"]
    raw = device_config(rig)
    raw["sign"] = {"keys": {}}
    while len(json.dumps(raw)) < 60000:
        raw["sign"]["keys"]["k%d" % len(raw["sign"]["keys"])] = os.urandom(16).hex()
    rig["configs"].append(raw)
    idle = sim.idle_heap()
    _, messages = sealed_push(rig, raw)
    assert len(messages) > 100
    half = len(messages) // 2
    publish(rig, messages[:half])
    time.sleep(1)
    during = min(sim.heap() for _ in range(3))
    assert during - idle < 8 * 1024, (idle, during)
    report(
        "heap halfway through a %d-byte push: %+d bytes over idle (%d chunks)"
        % (len(json.dumps(raw)), during - idle, len(messages))
    )
    last = bytearray(messages[-1])
    last[-1] ^= 0x80  # the tag: nothing of it is run
    refused_once(rig, messages[half:-1] + [bytes(last)], "not sealed with this device's key")


def test_garbage_on_the_push_topic_is_refused_under_the_error_budget(rig):
    m = rig["client"].mark()
    publish(rig, [b"garbage %d" % i for i in range(120)])
    rig["client"].send({"CMD": "stats"})
    rig["client"].wait_for(text("Uptime="), since=m, timeout=30)
    time.sleep(1)
    lines = push_lines(rig, m)
    limit = first_config_budget()
    assert 1 <= len(lines) <= limit + 1, len(lines)
    assert all(p.startswith(b"Error: config push refused: not a push chunk") for p in lines)
    rig["sim"].assert_alive()


def first_config_budget():
    """Error lines of one kind per guard.publish_window_s: publish_max / 4 (outbox.py)."""
    return base_config(1, 1, 1)["guard"]["publish_max"] // 4


def test_a_new_topic_and_name_with_to_the_old_file(rig):
    """Last of the rig's: the device moves to home/pico2 under a new name; the PC sends on the
    old topic (--to) and hears the confirmation on the new one."""
    with open(rig["pc"]) as f:
        raw = json.load(f)
    raw["mqtt"]["topic"], raw["name"] = TOPIC + "2", "garage-pico-2"
    rig["configs"].append(raw)
    new = os.path.join(os.path.dirname(rig["pc"]), "moved.json")
    with open(new, "w") as f:
        json.dump(raw, f)
    moved = Client(rig["broker"], topic=TOPIC + "2", client_id="moved")
    try:
        m = moved.mark()
        done = run("config", "push", new, "--to", rig["pc"], "--trial-s", TRIAL_S, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "confirmed" in done.stdout
        assert os.path.exists(host_push.key_path(new))  # the key now goes with the new file
        moved.send({"GP16": 0})
        said = moved.wait_for(state("GP16", 0), since=m)
        assert b'"garage-pico-2"' in said
    finally:
        moved.close()


def test_no_message_on_the_broker_holds_a_secret(rig):
    secrets = []
    for cfg in rig["configs"]:
        secrets += leakcheck.config_secrets(cfg)
    secrets.append(("the device key", DEVICE_KEY.hex()))
    texts = [("message %d on the broker" % i, p) for i, (_, p) in enumerate(rig["spy"].messages)]
    assert rig["capture"]  # the spy saw the pushes
    assert leakcheck.find_leaks(secrets, texts) == []
    raw = [p for _, p in texts]
    assert not any(DEVICE_KEY in p for p in raw)


def test_a_topic_the_login_may_not_use_rolls_back(services, report):
    """A broker whose ACL lets the device use home/pico and below only: a push moving it to
    another topic reaches the broker, which grants the subscription (mosquitto 2.0) and drops
    what the device publishes; its state never comes back, and the push is rolled back."""
    _, ntp, ip = services
    folder = tempfile.mkdtemp(prefix="tinyctrl-acl-")
    os.chmod(folder, 0o755)  # mosquitto started as root reads it as its own user
    acl = os.path.join(folder, "acl")
    with open(acl, "w") as f:
        f.write("topic readwrite %s\ntopic readwrite %s/#\n" % (TOPIC, TOPIC))
    os.chmod(acl, 0o644)
    broker = Mosquitto(extra_conf="acl_file %s\n" % acl).start()
    cfg = base_config(broker.port, ntp.port, ip.port)
    client = Client(broker.port)
    m = client.mark()
    sim = Sim(cfg, files={"push.key": DEVICE_KEY.hex().encode()})
    try:
        client.wait_for(state("GP16", 0), since=m, timeout=40)
        raw = dict(cfg, mqtt=dict(cfg["mqtt"], topic="elsewhere/pico"))
        seq = host_push.new_seq()
        sealed = host_push.seal_config(
            json.dumps(raw).encode(), DEVICE_KEY, seq, NAME, TOPIC, TRIAL_S
        )
        for chunk in host_push.chunks(sealed, seq):
            client.mqtt.publish(TOPIC + "/config", chunk, qos=1).wait_for_publish(10)
        client.wait_for(text("Info: config push %d received" % seq), since=m)
        start = time.monotonic()
        line = client.wait_for(
            text("Error: config push %d rolled back" % seq), since=m, timeout=TRIAL_S + 30
        )
        report(
            "config push rolled back (topic not allowed): %.1f s after 'received'"
            % (time.monotonic() - start)
        )
        assert line.endswith(
            b"reached the broker, but its messages on mqtt.topic did not come "
            b"back within %d s (may its login use the topic?)" % TRIAL_S
        ), line
        assert device_config_at(sim) == cfg
    finally:
        client.close()
        sim.stop()
        broker.close()
        shutil.rmtree(folder, ignore_errors=True)


def device_config_at(sim):
    with open(sim.config_path) as f:
        return json.load(f)
