# SPDX-License-Identifier: MIT
"""End to end: power-on states across a watchdog-style reset and a power cut, auto-off,
interlocks, and their interplay with the burnout guard, MFA and momentary relays."""

import json
import os
import tempfile
import time

import pytest
from oracle import totp_now
from simharness import KEY_A, Client, Sim, base_config, first_state, state, text, wait_until

GPIO = {
    "relay": [16, 17, 20, 21],
    "momentary": {"18": 1, "19": 2},
    "contact": [0],
    "notify": [],
    "power_on_state": {"16": "restore", "17": "on", "20": "restore"},
    "restore_after_power_cut": "flash",
    "max_on_s": {"17": 3},
    "interlock": [[19, 20, 21]],
}


@pytest.fixture(scope="module")
def rig(services):
    broker, ntp, ip = services
    cfg = base_config(
        broker.port,
        ntp.port,
        ip.port,
        gpio=GPIO,
        mfa={"pins": {"21": [KEY_A]}},
        guard={"cooldown_s": 3},
    )
    client = Client(broker.port)
    m = client.mark()
    sim = Sim(cfg)
    try:
        client.wait_for(first_state, since=m, timeout=40)
        yield sim, client, m
    finally:
        client.close()
        sim.stop()


def changes(sim, pin, since=0):
    return [line for _, line in sim.outputs[since:] if line.startswith("GP%d=" % pin)]


def restart(sim, client, command):
    m, seen = client.mark(), len(sim.outputs)
    sim.send(command)
    client.wait_for(state("GP0", 0), since=m, timeout=40)  # the full list after connecting
    return m, seen


def test_power_on_state_on_and_auto_off(rig):
    sim, client, m = rig
    client.wait_for(text("Info: power-on after power reset: GP17 on (on)"), since=m)
    assert changes(sim, 17)[:1] == ["GP17=1"] and sim.pin(16) == 0 and sim.pin(20) == 0
    # Nobody switches it off: max_on_s does, and says why.
    client.wait_for(text("Info: GP17 switched off after 3s (gpio.max_on_s)"), since=m, timeout=20)
    assert changes(sim, 17) == ["GP17=1", "GP17=0"]
    client.wait_for(state("GP17", 0), since=m)


def test_interlock_refuses_and_an_mfa_code_is_spent_anyway(rig):
    sim, client, _ = rig
    m = client.mark()
    client.send({"GP20": 1, "GP19": 1})  # two of one group at once: refused whole
    client.wait_for(text("Error: GP19 and GP20 are interlocked, never on together"), since=m)
    client.send({"GP20": 1})
    sim.wait_pin(20, 1)
    code = totp_now(KEY_A, offset_steps=1)
    client.send({"MFA": code, "GP21": 1})
    client.wait_for(
        text("Error: GP21 not switched on: interlocked with GP20, which is on"), since=m
    )
    client.send({"GP19": 1})  # a momentary relay in the group is held back too
    client.wait_for(text("Error: GP19 not switched on: interlocked with GP20"), since=m)
    time.sleep(3.2)  # GP20's cooldown
    m = client.mark()
    client.send({"GP20": 0})
    sim.wait_pin(20, 0)
    client.send({"MFA": code, "GP21": 1})  # the refused request spent the code
    client.wait_for(text("Error: MFA validation failed"), since=m)
    client.wait_for(state("GP21", 0), since=m)  # refusals re-publish the true state
    assert sim.pin(21) == 0 and sim.pin(19) == 0 and changes(sim, 21) == []
    sim.assert_alive()


def test_restore_after_a_watchdog_reset_is_no_change_for_the_guard(rig):
    sim, client, _ = rig
    time.sleep(3.2)  # GP20's cooldown
    client.send({"GP16": 1, "GP20": 1})
    sim.wait_pin(16, 1)
    sim.wait_pin(20, 1)
    m, seen = restart(sim, client, "RESET")
    client.wait_for(
        text(
            "Info: power-on after watchdog reset: GP16 on (restore), GP17 on (on), "
            "GP20 on (restore)"
        ),
        since=m,
    )
    # Every relay went off at the reset; the restored ones came back.
    assert changes(sim, 16, seen) == ["GP16=0", "GP16=1"]
    assert changes(sim, 20, seen) == ["GP20=0", "GP20=1"]
    assert changes(sim, 19, seen) == changes(sim, 21, seen) == []
    m = client.mark()
    client.send({"GP16": 0})  # within cooldown_s of the restore: the restore was no change
    sim.wait_pin(16, 0)
    client.wait_for(state("GP16", 0), since=m)
    assert not [p for _, p in client.messages[m:] if p.startswith(b"Error")]


def test_restore_after_a_power_cut_from_flash(rig):
    sim, client, _ = rig
    state_file = os.path.join(sim.dir, "relay_state")
    # Written when a restored relay changed, at most every 10 s: GP20 on, GP16 off.
    wait_until(lambda: open(state_file).read() == str(1 << 20), 15, "relay_state is written")
    m, seen = restart(sim, client, "POWERCYCLE")
    client.wait_for(
        text("Info: power-on after power reset: GP17 on (on), GP20 on (restore)"), since=m
    )
    assert changes(sim, 20, seen) == ["GP20=0", "GP20=1"] and sim.pin(16) == 0
    client.send({"CMD": "stats"})
    assert b"(last: power)" in client.wait_for(text("Uptime="), since=m)
    sim.assert_alive()


def test_interlock_switch_mode_with_dead_time(services):
    broker, ntp, ip = services
    gpio = dict(
        GPIO,
        interlock=[[20, 21]],
        interlock_mode="switch",
        interlock_dead_ms=800,
        power_on_state={},
        max_on_s={},
    )
    client = Client(broker.port, client_id="tester-switch")
    m = client.mark()
    sim = Sim(base_config(broker.port, ntp.port, ip.port, gpio=gpio))
    try:
        client.wait_for(state("GP0", 0), since=m, timeout=40)
        client.send({"GP20": 1})
        sim.wait_pin(20, 1)
        m, seen = client.mark(), len(sim.outputs)
        client.send({"GP21": 1})
        client.wait_for(
            text(
                "Info: GP20 switched off first: interlocked with GP21; GP21 on in "
                "800 ms (gpio.interlock_dead_ms)"
            ),
            since=m,
        )
        sim.wait_pin(21, 1)
        lines = [(t, line) for t, line in sim.outputs[seen:] if line[:4] in ("GP20", "GP21")]
        assert [line for _, line in lines] == ["GP20=0", "GP21=1"]
        # Never both on, and the motor stopped first; the times are when this process read the
        # lines, so allow 0.1 s for a late read of the first on a loaded machine.
        assert lines[1][0] - lines[0][0] >= 0.7
        client.wait_for(state("GP21", 1), since=m)
        sim.assert_alive()
    finally:
        client.close()
        sim.stop()


def test_power_on_states_with_wifi_down(services):
    """Before any connection: the power-on states apply, the other relays never move, and
    max_on_s runs without a broker (the lost-client case)."""
    broker, ntp, ip = services
    sim = Sim(base_config(broker.port, ntp.port, ip.port, gpio=GPIO), "--wifi-down")
    try:
        sim.wait_pin(17, 1)
        sim.wait_pin(17, 0, timeout=15)  # max_on_s 3
        assert [line for _, line in sim.outputs if line.startswith("GP")] == ["GP17=1", "GP17=0"]
        assert "subscribed" not in sim.log()
        sim.assert_alive()
    finally:
        sim.stop()


def test_simulated_boards_keep_their_files_beside_their_config(services):
    """relay_state goes beside the config the simulator was started with, not into the
    current folder; RESET reads config.json again and reports a watchdog reset, as a board."""
    broker, ntp, ip = services
    gpio = {
        "relay": [16, 17],
        "momentary": {},
        "contact": [0],
        "notify": [],
        "power_on_state": {"16": "restore"},
        "restore_after_power_cut": "flash",
    }
    elsewhere = tempfile.mkdtemp(prefix="tinyctrl-cwd-")
    client = Client(broker.port, topic="home/files", client_id="tester-files")
    m = client.mark()
    mqtt = {"topic": "home/files", "client_id": "pico-files"}  # beside the module's rig
    sim = Sim(base_config(broker.port, ntp.port, ip.port, gpio=gpio, mqtt=mqtt), cwd=elsewhere)
    try:
        client.wait_for(state("GP0", 0), since=m, timeout=40)
        client.send({"GP16": 1})
        sim.wait_pin(16, 1)
        state_file = os.path.join(sim.dir, "relay_state")
        wait_until(
            lambda: os.path.exists(state_file) and open(state_file).read() == str(1 << 16),
            15,
            "relay_state is written beside config.json",
        )
        assert os.listdir(elsewhere) == []
        # A changed config.json counts from the next reset on, as on a board.
        cfg = json.load(open(sim.config_path))
        cfg["gpio"]["power_on_state"] = {"16": "restore", "17": "on"}
        with open(sim.config_path, "w") as f:
            json.dump(cfg, f)
        m, _ = restart(sim, client, "RESET")
        client.wait_for(
            text("Info: power-on after watchdog reset: GP16 on (restore), GP17 on (on)"), since=m
        )
        client.send({"CMD": "stats"})
        assert b"Resets=1 (last: watchdog)" in client.wait_for(text("Uptime="), since=m)
        sim.assert_alive()
    finally:
        client.close()
        sim.stop()


def test_interlock_dead_time_and_the_running_relay_hold_across_a_reset(services):
    """GP21 (restore) runs at a watchdog reset, GP20's power-on state is on: GP21 keeps
    running and GP20 stays off. With GP21 not restored, GP20 waits out the dead time after the
    reset: the motor stops before it reverses, reset or not."""
    broker, ntp, ip = services
    gpio = {
        "relay": [16, 17, 20, 21],
        "momentary": {},
        "contact": [0],
        "notify": [],
        "interlock": [[20, 21]],
        "interlock_dead_ms": 2000,
        "power_on_state": {"20": "on", "21": "restore"},
    }
    client = Client(broker.port, topic="home/dead", client_id="tester-dead-time")
    m = client.mark()
    mqtt = {"topic": "home/dead", "client_id": "pico-dead"}  # beside the module's rig
    sim = Sim(base_config(broker.port, ntp.port, ip.port, gpio=gpio, mqtt=mqtt))
    try:
        client.wait_for(state("GP0", 0), since=m, timeout=40)
        sim.wait_pin(20, 1, timeout=5)  # power-on: GP20 on, nothing ran before
        client.send({"GP20": 0})
        sim.wait_pin(20, 0)
        time.sleep(2.2)  # the dead time after GP20
        client.send({"GP21": 1})
        sim.wait_pin(21, 1)
        m, seen = restart(sim, client, "RESET")
        client.wait_for(
            text(
                "Info: power-on after watchdog reset: GP20 off (on; interlocked "
                "with GP21, which is on), GP21 on (restore)"
            ),
            since=m,
        )
        assert changes(sim, 21, seen) == ["GP21=0", "GP21=1"] and changes(sim, 20, seen) == []
        cfg = dict(sim.cfg)
        cfg["gpio"] = dict(gpio, power_on_state={"20": "on"})
        with open(sim.config_path, "w") as f:
            json.dump(cfg, f)
        m, seen = restart(sim, client, "RESET")
        client.wait_for(
            text(
                "Info: power-on after watchdog reset: GP20 on in 2000 ms (on; "
                "gpio.interlock_dead_ms)"
            ),
            since=m,
        )
        sim.wait_pin(20, 1, timeout=10)
        lines = [(t, line) for t, line in sim.outputs[seen:] if line[:4] in ("GP20", "GP21")]
        assert [line for _, line in lines] == ["GP21=0", "GP20=1"]
        assert lines[1][0] - lines[0][0] >= 1.9
        sim.assert_alive()
    finally:
        client.close()
        sim.stop()


def test_max_on_s_counts_the_time_on_before_a_reset(services):
    """A restored heater on for 4 of its 6 s at a watchdog reset goes off about 2 s after it:
    the reset does not give it its max_on_s again (a board resetting in a loop would keep it
    on for ever)."""
    broker, ntp, ip = services
    gpio = {
        "relay": [16, 17],
        "momentary": {},
        "contact": [0],
        "notify": [],
        "power_on_state": {"16": "restore"},
        "max_on_s": {"16": 6},
    }
    client = Client(broker.port, topic="home/timed", client_id="tester-timed")
    m = client.mark()
    mqtt = {"topic": "home/timed", "client_id": "pico-timed"}  # beside the module's rig
    sim = Sim(base_config(broker.port, ntp.port, ip.port, gpio=gpio, mqtt=mqtt))
    try:
        client.wait_for(state("GP0", 0), since=m, timeout=40)
        client.send({"GP16": 1})
        sim.wait_pin(16, 1)
        on_at = sim.outputs[-1][0]
        time.sleep(4)
        m, seen = restart(sim, client, "RESET")
        client.wait_for(text("Info: power-on after watchdog reset: GP16 on (restore; "), since=m)
        client.wait_for(text("Info: GP16 switched off after 6s (gpio.max_on_s)"), since=m)
        off_at = [t for t, line in sim.outputs[seen:] if line == "GP16=0"][-1]
        assert changes(sim, 16, seen) == ["GP16=0", "GP16=1", "GP16=0"]
        assert off_at - on_at <= 6.5, "on %.1f s in all" % (off_at - on_at)
        sim.assert_alive()
    finally:
        client.close()
        sim.stop()
