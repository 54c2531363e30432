# SPDX-License-Identifier: MIT
"""Scenarios on the emulated Pico W, run by tests/support/emu/runner.py inside a network
namespace.

Each scenario boots the real UF2, checks through the board's pins and the local broker, and
writes one JSON line per check ({"check", "ok", "detail"}) to the results file it is given;
test_pico_w.py turns those lines into test results. A check that fails is recorded and the
scenario goes on where the next check does not depend on it.

Timeouts are in emulated seconds (the emulator runs roughly 30 times slower than real time).
"""

import contextlib
import json
import pathlib
import time
import traceback

import faults
import oracle
from emu import log
from emu.configs import device_config, tls_mqtt_config
from emu.isolation import BROKER_ADDR
from emu.topic_client import TopicClient
from emu.snippets import TLS_HANDSHAKES, TLS_REFUSALS, handshake_rows
from emu.updates import SWAP_JOURNAL, Updater, flag_state, slot_digest, switch_again
from rp2040py.gpio_pin import GPIOPinState

REPO = pathlib.Path(__file__).resolve().parents[2]

TOPIC = "tinyctrl/emu"
MFA_KEY = "JBSWY3DPEHPK3PXP"
MFA_PIN = 17
RELAY = 16
MOMENTARY = 18
MOMENTARY_WAIT_S = 1
CONTACT = 1
WATCHDOG_S = 2
DENIED = "Error: MFA validation failed, GPIO cannot be set"
# Emulated seconds allowed for a request to reach the device and its answer to come back.
ROUND_TRIP_S = 3
BOOT_TO_SUBSCRIBED_S = 40
# A reboot loop would show well within this; each emulated second costs about 30 s of real time.
NO_REBOOT_LOOP_S = 1


class Results:
    """Records checks as JSON lines; `check()` is a context manager around one. A failed check
    logs the console of `lab`'s latest board (what the device said is the first clue)."""

    def __init__(self, path, lab):
        self.path = pathlib.Path(path)
        self.path.write_text("")
        self.lab = lab

    def record(self, name, ok, detail=""):
        with self.path.open("a") as f:
            f.write(json.dumps({"check": name, "ok": ok, "detail": detail}) + "\n")
        log("check %s: %s %s" % (name, "ok" if ok else "FAILED", detail))

    @contextlib.contextmanager
    def check(self, name, fatal=False):
        """Record `name` as passed if the block completes, failed (with the error) if it raises.
        A failed `fatal` check ends the scenario: what follows depends on it."""
        details = []
        try:
            yield details
        except Exception as e:
            self.record(
                name, False, "%s: %s\n%s" % (type(e).__name__, e, traceback.format_exc(limit=4))
            )
            if self.lab.boards:
                console = self.lab.boards[-1].output[-3000:]
                log("the console up to the failure of %s:\n%s" % (name, console))
            if fatal:
                raise
        else:
            self.record(name, True, "; ".join(map(str, details)))


def controller_config(**overrides):
    cfg = device_config(topic=TOPIC)
    cfg["gpio"]["momentary"] = {str(MOMENTARY): MOMENTARY_WAIT_S, "19": 2}
    cfg["mfa"] = {"keyname": "MFA", "max_expired_codes": 5, "pins": {str(MFA_PIN): [MFA_KEY]}}
    # No cooldown between changes of one pin: the checks switch GP16 on and straight off again.
    cfg["guard"] = {"cooldown_s": 0, "max_changes": 20, "window_s": 60}
    cfg.update(overrides)
    return cfg


def energised_level(cfg):
    return 0 if cfg["gpio"]["active_low"] else 1


# Local control (modules/tinyctrl/inputs.py): a wall rocker toggling GP16 (a notify pin) and a
# wall switch GP20 follows, wired between the pin and ground as contacts are.
ROCKER, SWITCH, FOLLOWER = 4, 5, 20
LOCAL = {
    "inputs": {
        str(ROCKER): {"relay": RELAY, "mode": "toggle"},
        str(SWITCH): {"relay": FOLLOWER, "mode": "follow"},
    },
    "debounce_ms": 50,
}
ROCKER_FLIPS = 3  # with the switch's move, the outbox's MAX_REPLIES Info lines while offline


def local_control_config():
    cfg = controller_config(local=LOCAL)
    cfg["gpio"]["relay"] = [RELAY, MFA_PIN, FOLLOWER]
    return cfg


def local_moves(board, on, moves):
    """Drive each (input, closed, relay, energised) of `moves` and wait for the relay; the
    emulated ms from each edge to the relay pin's level."""
    ms = []
    for gpio, closed, relay, energised in moves:
        level = on if energised else 1 - on
        ms.append(board.input_to_output_ms(gpio, 0 if closed else 1, relay, level, 2))
        board.idle(0.1)
    return ms


def press_figure(ms):
    s = sorted(ms)
    p99 = s[max(0, -(-99 * len(s) // 100) - 1)]  # nearest rank, as tools/bench.py's
    return (
        "input edge -> relay pin p50 %.1f ms, p99 %.1f ms emulated (%d moves, debounce %d ms)"
        % (
            s[(len(s) - 1) // 2],
            p99,
            len(s),
            LOCAL["debounce_ms"],
        )
    )


def controller(lab, results_path):
    """One boot: relays, momentary release, contacts and NOTIFY, MFA deny and allow; local
    control with the access point gone, published once it is back."""
    results = Results(results_path, lab)
    cfg = local_control_config()
    on, off = energised_level(cfg), 1 - energised_level(cfg)
    with results.check("boots_and_subscribes", fatal=True) as notes:
        board = lab.boot(cfg)
        board.wait_for("tinyctrl: subscribed to " + TOPIC, BOOT_TO_SUBSCRIBED_S)
        notes.append("subscribed %.1f s emulated after reset" % board.emulated_s())
    mqtt = TopicClient(lab.broker.port, board, TOPIC)
    try:
        with results.check("relays_start_de_energised"):
            for pin in cfg["gpio"]["relay"] + [int(p) for p in cfg["gpio"]["momentary"]]:
                assert board.level(pin) == off, "GP%d level %s, de-energised is %d" % (
                    pin,
                    board.level(pin),
                    off,
                )

        with results.check("relay_on"):
            since = mqtt.mark()
            mqtt.send({"GP%d" % RELAY: 1})
            board.wait_level(RELAY, on, ROUND_TRIP_S)
            mqtt.wait_pin(RELAY, 1, ROUND_TRIP_S, since)
            mqtt.wait_notify(RELAY, 1, ROUND_TRIP_S, since)

        with results.check("relay_off"):
            since = mqtt.mark()
            mqtt.send({"GP%d" % RELAY: 0})
            board.wait_level(RELAY, off, ROUND_TRIP_S)
            mqtt.wait_pin(RELAY, 0, ROUND_TRIP_S, since)

        with results.check("malformed_request_refused"):
            # The board's json.loads takes this for {"GP16": 1}; its strict check must not.
            since = mqtt.mark()
            mqtt.send_text('{"GP%d" 1}' % RELAY)
            mqtt.wait(
                lambda text, _o: text.startswith("Error: request is not valid JSON"),
                ROUND_TRIP_S,
                since,
                "the invalid JSON error",
            )
            assert board.level(RELAY) == off, "GP%d moved on malformed JSON" % RELAY

        with results.check("momentary_released_after_its_wait") as notes:
            since = mqtt.mark()
            mqtt.send({"GP%d" % MOMENTARY: 1})
            board.wait_level(MOMENTARY, on, ROUND_TRIP_S)
            held = board.wait_level(MOMENTARY, off, MOMENTARY_WAIT_S + ROUND_TRIP_S)
            notes.append("held %.2f s emulated (wait %d s)" % (held, MOMENTARY_WAIT_S))
            assert MOMENTARY_WAIT_S - 0.05 <= held <= MOMENTARY_WAIT_S + 0.5, "held %.2f s" % held
            mqtt.wait_pin(MOMENTARY, 0, ROUND_TRIP_S, since)

        with results.check("contact_closed_publishes_and_notifies"):
            since = mqtt.mark()
            board.drive(CONTACT, 0)  # closed contact pulls the pin low: logical 1
            mqtt.wait_pin(CONTACT, 1, ROUND_TRIP_S, since)
            mqtt.wait_notify(CONTACT, 1, ROUND_TRIP_S, since)

        with results.check("contact_opened_publishes"):
            since = mqtt.mark()
            board.drive(CONTACT, 1)
            mqtt.wait_pin(CONTACT, 0, ROUND_TRIP_S, since)

        with results.check("mfa_denied_without_code"):
            since = mqtt.mark()
            mqtt.send({"GP%d" % MFA_PIN: 1})
            mqtt.wait(
                lambda text, _o: text.startswith(DENIED),
                ROUND_TRIP_S,
                since,
                "the MFA failure text",
            )
            assert board.level(MFA_PIN) == off, "GP%d moved without a code" % MFA_PIN

        with results.check("mfa_allowed_with_code"):
            since = mqtt.mark()
            now = lab.guest_time()
            # One step ahead: codes of the step of the clock's first sync are refused (SECURITY.md,
            # "Replay").
            mqtt.send({"MFA": oracle.totp(MFA_KEY, now + 30)})
            try:
                mqtt.wait(
                    lambda text, _o: text.startswith("Info: MFA code accepted"),
                    ROUND_TRIP_S,
                    since,
                    "code accepted",
                )
            except TimeoutError as refused:
                # Say whose clock is off: read the one the controller uses (this stops it).
                device = float(board.exec("import time; print(time.time())"))
                expected = lab.guest_time()
                raise AssertionError(
                    "%s; the device clock reads %.0f but NTP gave it %.0f plus the emulated time "
                    "since (%+.0f s)" % (refused, device, expected, device - expected)
                ) from None
            mqtt.send({"GP%d" % MFA_PIN: 1})
            board.wait_level(MFA_PIN, on, ROUND_TRIP_S)
            mqtt.wait_pin(MFA_PIN, 1, ROUND_TRIP_S, since)

        with results.check("local_control_moves_relays_without_wifi") as notes:
            out, since = board.mark(), mqtt.mark()
            board.set_ap("gone")
            board.wait_for("tinyctrl: connection lost", NOTICE_S, since=out)
            moves = [(SWITCH, True, FOLLOWER, 1)]
            moves += [(ROCKER, n % 2 == 0, RELAY, n % 2 == 0) for n in range(ROCKER_FLIPS)]
            ms = local_moves(board, on, moves)
            notes.append(press_figure(ms))
            board.idle(0.5)
            assert (board.level(RELAY), board.level(FOLLOWER)) == (on, on), "relays moved back"
            # The broker publishes the device's will (STATUS offline) when it drops it.
            got = [text for _, text in mqtt.messages[since:] if '"STATUS"' not in text]
            assert not got, "published with the access point gone: %s" % got

        with results.check("local_control_published_when_back") as notes:
            board.set_ap("up")
            back = board.emulated_s()
            bound = RECONNECT_BOUND_S + ROUND_TRIP_S
            for pin in (RELAY, FOLLOWER):
                mqtt.wait_pin(pin, 1, bound, since)
            for line in ("Info: GP20 on (local, GP5)", "Info: GP16 on (local, GP4)"):
                mqtt.wait(lambda t, _o, line=line: t.startswith(line), bound, since, line)
            at, _ = mqtt.wait_notify(RELAY, 1, bound, since)
            notes.append(
                "NOTIFY GP16=1 %.1f s emulated after the access point returned" % (at - back)
            )
            assert board.level(MFA_PIN) == on, "GP17 (MFA) moved"

        with results.check("no_unplanned_reset"):
            assert board.resets == 0, "%d watchdog resets" % board.resets
    finally:
        mqtt.close()


# Runs from the REPL against the firmware's own modules: the controller's watchdog feeder keeps
# the board alive while the asyncio loop runs, then one task blocks and the loop stalls.
STALL_SCRIPT = """
import asyncio, time, port, tinyctrl.main as m
c = m.build(m.load())
async def stall():
    wdt = port.Watchdog()
    wdt.start(c.cfg["watchdog_s"] * 1000)
    asyncio.create_task(c._feed_watchdog(wdt))
    await asyncio.sleep({fed_s})
    print("loop stalls now")
    time.sleep(3600)
asyncio.run(stall())
"""


def boot_failures(lab, results_path):
    """Boots that must not become a reboot loop: bad or missing config.json, and a stalled loop
    that the watchdog has to reset."""
    results = Results(results_path, lab)
    cases = {  # name: (config.json, what the message must name)
        "config_not_json": (b'{"wifi": {"ssid": "x"', "JSON"),
        "config_invalid": (
            json.dumps(controller_config(gpio={"relay": [16], "contact": [16]})),
            "GP16",
        ),
        "config_missing": (None, "not found"),
    }
    for name, (config, named) in cases.items():
        with results.check(name) as notes:
            board = lab.boot(config)
            shown = board.wait_for("reset the board", 5)
            assert named in shown, "the message does not name %r: %s" % (named, shown)
            notes.append(shown.strip().replace("\r", "")[-300:])
            answer = board.repl("print(6 * 7)")
            assert answer == "42", "REPL answered %r" % answer
            board.idle(NO_REBOOT_LOOP_S)
            assert board.resets == 0 and board.enumerations == 1, "the board restarted"
            board.stop()

    with results.check("watchdog_resets_stalled_loop") as notes:
        board = lab.boot(controller_config(watchdog_s=WATCHDOG_S))
        fed_s = WATCHDOG_S + 1  # longer than the timeout: feeding must work
        # Interrupts the frozen controller; the REPL drives it from here.
        start = board.exec_start(STALL_SCRIPT.format(fed_s=fed_s))
        shown = board.wait_for("loop stalls now", fed_s + 3, since=start)
        # When the guest printed it: by the time this thread sees the line the emulator may
        # have run on, even into the reset.
        stalled_at = board.printed_at(start + len(shown.encode()) - 1)
        early = [at for at in board.reset_times if at < stalled_at]
        assert not early, "reset while the loop was feeding the watchdog, at %s s" % early
        # _tinyctrl feeds the hardware watchdog until watchdog_s pass without a kick; then the
        # hardware counter, set to min(watchdog_s, 8 s), runs out.
        limit = WATCHDOG_S + min(WATCHDOG_S, 8) + 0.5
        board.wait_until(lambda: board.resets == 1, limit, "a watchdog reset")
        took = board.reset_times[0] - stalled_at
        assert took <= limit, "reset %.2f s emulated after the stall" % took
        notes.append("reset %.2f s emulated after the stall (watchdog_s %d)" % (took, WATCHDOG_S))
        board.wait_reboot(2)
        record = board.exec("import port; print(port.boot_record())")
        notes.append("boot record after reset: " + record.strip())
        assert "'cause': 'watchdog'" in record, record


# ---- relay levels from reset until the controller runs, and across a watchdog reset

TRACED = (16, 17, 18, 20)  # 16 restore, 17 on, 18 momentary, 20 off
# Arms the watchdog and stalls, with GP16 switched on by the controller's own code (the frozen
# controller was interrupted, so the REPL drives it); RelayMemory keeps GP16 in scratch.
RELAY_ON_THEN_STALL = """
import time, port, tinyctrl.main as m
c = m.build(m.load())
c.relays.apply({16: 1})
port.Watchdog().start(1000)
print("stalling with GP16 on")
time.sleep(3600)
"""


def boot_levels_config(active_low):
    cfg = controller_config(watchdog_s=WATCHDOG_S)
    # Not our network. rp2040py's CYW43 model joins whatever SSID it is given, so this does not
    # keep Wi-Fi down here; the levels traced are set before the controller awaits any join
    # (main.load, Controller.run), and tests/e2e/test_relay_options.py boots with Wi-Fi down.
    cfg["wifi"]["ssid"] = "tinyctrl-no-such-network"
    cfg["gpio"].update(
        relay=[16, 17, 20],
        momentary={"18": 1},
        contact=[CONTACT],
        notify=[],
        active_low=active_low,
        power_on_state={"16": "restore", "17": "on"},
    )
    cfg["mfa"] = {}
    return cfg


def energised_at(board, pins, level):
    """[(emulated s, gpio)] where one of `pins` was driven to `level` in the board's trace."""
    state = GPIOPinState.LOW if level == 0 else GPIOPinState.HIGH
    return [(round(t, 4), gpio) for t, gpio, s in board.trace if gpio in pins and s == state]


def first_driven(board, gpio, levels=(0, 1)):
    """Emulated seconds from reset until `gpio` was first driven to one of `levels`."""
    states = [(GPIOPinState.LOW, GPIOPinState.HIGH)[v] for v in levels]
    return next((t for t, g, s in board.trace if g == gpio and s in states), None)


def boot_levels(lab, results_path):
    """Every relay GPIO's state sampled from the first instruction after reset (rp2040py pin
    listeners): a relay whose power-on state is off is never energised, for active-low and
    active-high boards, across a watchdog reset, and with no config.json."""
    results = Results(results_path, lab)
    for active_low in (True, False):
        name = "active_low" if active_low else "active_high"
        on = 0 if active_low else 1
        with results.check("boot_levels_" + name) as notes:
            board = lab.boot(boot_levels_config(active_low), trace_pins=TRACED)
            board.wait_level(17, on, 10)  # power_on_state "on": the controller is running
            board.idle(0.5)
            bad = energised_at(board, (16, 18, 20), on)
            assert not bad, "energised at boot: %s" % bad
            assert [board.level(p) for p in TRACED] == [1 - on, on, 1 - on, 1 - on], board.trace
            notes.append(
                "relay pins driven off %.3f s emulated after reset, GP17 on at %.3f s"
                % (
                    max(first_driven(board, p) for p in (16, 18, 20)),
                    first_driven(board, 17, (on,)),
                )
            )
        if not active_low:
            board.stop()
            continue
        with results.check("boot_levels_watchdog_reset_restores") as notes:
            start = board.exec_start(RELAY_ON_THEN_STALL)
            board.wait_for("stalling with GP16 on", 5, since=start)
            assert board.level(16) == on, "GP16 level %s" % board.level(16)
            reset_at, seen = board.emulated_s(), len(board.trace)
            board.wait_until(lambda: board.resets == 1, 3, "a watchdog reset")
            board.wait_until(
                lambda: board.level(16) == on and board.level(17) == on,
                10,
                "GP16 restored and GP17 on after the reset",
            )
            board.idle(0.5)
            after = board.trace[seen:]
            bad = [
                (round(t, 4), g) for t, g, s in after if g in (18, 20) and s == GPIOPinState.LOW
            ]
            assert not bad, "energised after the watchdog reset: %s" % bad
            assert (board.level(18), board.level(20)) == (1, 1)
            notes.append(
                "states right after the reset: %s"
                % [(g, s.name) for t, g, s in after[: len(TRACED)]]
            )
            notes.append(
                "GP16 back on %.3f s emulated after the stall began"
                % (board.emulated_s() - reset_at)
            )
            board.stop()
    with results.check("boot_levels_no_config") as notes:
        board = lab.boot(None, trace_pins=TRACED)
        board.wait_for("reset the board", 5)
        board.idle(0.5)
        driven = [
            (round(t, 4), g, s.name)
            for t, g, s in board.trace
            if s in (GPIOPinState.LOW, GPIOPinState.HIGH)
        ]
        assert not driven, "driven without a config: %s" % driven
        notes.append("states seen: %s" % sorted(set(s.name for _, _, s in board.trace)))
        board.stop()


# ---- SECURITY.md, finding 2.9: a replay across a watchdog reset. The lab's NTP clock runs on
# emulated
# time (emu.clock.EmulatedClock): on host time the recorded code's step would be long past when
# the board is back, and the replay refused whatever the device did.

SIGNED = RELAY  # GP16 takes a signature, GP17 (MFA_PIN) a TOTP code
SIGN_NAME, SIGN_KEY = "replay-test", "q7Vx2LmN9pRt4WzK8cYb"
STALL_SIGNAL = 22  # a free pin: driven low, the controller's loop stalls
# The guest's first NTP answer comes this long before a TOTP step begins: the codes and time
# stamps a phone and a scheduler make right after it are newer than the sync, and the reset and
# reboot that follow (about 9 s emulated) cannot end before their step has begun.
SYNC_LEAD_S = 1
# The controller as main.py runs it, plus a task that stalls the loop when the test says so:
# its watchdog feeder stops, the watchdog resets the board, and main.py boots it again.
RUN_UNTIL_STALLED = """
import asyncio, machine, time, tinyctrl.main as m
c = m.build(m.load())
signal = machine.Pin({pin}, machine.Pin.IN, machine.Pin.PULL_UP)
async def stall_when_signalled():
    while signal.value():
        await asyncio.sleep_ms(50)
    print("loop stalls now")
    time.sleep(3600)
async def main():
    asyncio.create_task(stall_when_signalled())
    await c.run()
asyncio.run(main())
"""


def step(unix_time):
    return int(unix_time) // 30


def synced_second(served):
    """The device's first_sync for an NTP answer of `served` (ntp.parse rounds the fraction)."""
    return int(served + 0.5)


def replay_config():
    cfg = controller_config(watchdog_s=WATCHDOG_S)
    cfg["sign"] = {"keys": {SIGN_NAME: SIGN_KEY}, "pins": {str(SIGNED): [SIGN_NAME]}}
    return cfg


def accepted(board, mqtt, request, pin, on):
    since = mqtt.mark()
    mqtt.send(request)
    board.wait_level(pin, on, ROUND_TRIP_S)
    mqtt.wait_pin(pin, 1, ROUND_TRIP_S, since)


def refused(board, mqtt, request, pin, off):
    since = mqtt.mark()
    mqtt.send(request)
    mqtt.wait(
        lambda text, _o: text.startswith(DENIED), ROUND_TRIP_S, since, "the MFA failure text"
    )
    mqtt.wait_pin(pin, 0, ROUND_TRIP_S, since)  # the pin's true state follows the refusal
    assert board.level(pin) == off, "GP%d moved" % pin


def replay(lab, results_path):
    """An attacker who reads the topic records an accepted TOTP request and an accepted signed
    request, forces a watchdog reset and replays both once the board is back: refused, relays
    unmoved; then fresh ones work (the rule refuses only what predates the boot)."""
    results = Results(results_path, lab)
    clock = lab.use_emulated_clock(SYNC_LEAD_S)
    cfg = replay_config()
    on, off = energised_level(cfg), 1 - energised_level(cfg)
    with results.check("replay_boots_and_subscribes", fatal=True) as notes:
        board = lab.boot(cfg)
        start = board.exec_start(RUN_UNTIL_STALLED.format(pin=STALL_SIGNAL))
        board.wait_for("tinyctrl: subscribed to " + TOPIC, BOOT_TO_SUBSCRIBED_S, since=start)
        board.wait_for("tinyctrl: clock synced", ROUND_TRIP_S, since=start)
        notes.append(
            "subscribed and clock synced %.1f s emulated after reset" % board.emulated_s()
        )
    mqtt = TopicClient(lab.broker.port, board, TOPIC)
    try:
        with results.check("replay_code_and_signature_accepted", fatal=True) as notes:
            first_sync = clock.served[0]
            # As a phone and a scheduler with synced clocks make them: the current step's code,
            # now's time stamp (not ahead: that gap is in SECURITY.md), after the sync's step.
            board.wait_until(
                lambda: step(lab.guest_time()) > step(first_sync),
                SYNC_LEAD_S + 1,
                "the step after the first sync's",
            )
            now = lab.guest_time()
            used_code = {"MFA": oracle.totp(MFA_KEY, now), "GP%d" % MFA_PIN: 1}
            used_sig = oracle.signed(SIGN_KEY, TOPIC, {SIGNED: 1}, int(now))
            accepted(board, mqtt, used_code, MFA_PIN, on)
            accepted(board, mqtt, used_sig, SIGNED, on)
            notes.append(
                "code of step %d, TS %d; first sync %.1f (step %d)"
                % (step(now), int(now), first_sync, step(first_sync))
            )

        with results.check("replay_watchdog_reset", fatal=True) as notes:
            stalled = board.mark()
            board.drive(STALL_SIGNAL, 0)
            board.wait_for("loop stalls now", ROUND_TRIP_S, since=stalled)
            stalled_at = board.emulated_s()
            board.wait_until(
                lambda: board.resets == 1,
                WATCHDOG_S + min(WATCHDOG_S, 8) + 0.5,
                "a watchdog reset",
            )
            reset_at = board.emulated_s()
            board.wait_for("tinyctrl: subscribed to " + TOPIC, BOOT_TO_SUBSCRIBED_S, since=stalled)
            board.wait_for("tinyctrl: clock synced", ROUND_TRIP_S, since=stalled)
            resync = clock.served[-1]
            notes.append(
                "reset %.2f s emulated after the stall; clock synced again %.1f s after "
                "the reset" % (reset_at - stalled_at, board.emulated_s() - reset_at)
            )
            assert len(clock.served) == 2, "NTP answers: %s" % clock.served
            # Otherwise the replay would be of a step or time ahead of the boot's first sync:
            # the one gap SECURITY.md admits, not what this scenario tests.
            assert step(now) <= step(resync) and int(now) <= synced_second(resync), (
                "re-synced at %.1f, before the step of %.1f ended" % (resync, now)
            )
            since = mqtt.mark()
            mqtt.send({"CMD": "stats"})
            _, text = mqtt.wait(
                lambda t, _o: "Resets=" in t, ROUND_TRIP_S, since, "the stats reply"
            )
            assert "(last: watchdog)" in text, text
            assert (board.level(MFA_PIN), board.level(SIGNED)) == (off, off), "relays not off"

        with results.check("replay_code_refused_after_watchdog_reset"):
            refused(board, mqtt, used_code, MFA_PIN, off)
        with results.check("replay_signature_refused_after_watchdog_reset"):
            refused(board, mqtt, used_sig, SIGNED, off)

        with results.check("replay_fresh_code_accepted") as notes:
            # The step after the re-sync's: one ahead at once (SECURITY.md), current soon after.
            code = oracle.totp(MFA_KEY, (step(resync) + 1) * 30)
            accepted(board, mqtt, {"MFA": code, "GP%d" % MFA_PIN: 1}, MFA_PIN, on)
            notes.append(
                "code of step %d; re-synced in step %d" % (step(resync) + 1, step(resync))
            )
        with results.check("replay_fresh_signature_accepted"):
            # Time stamps up to the re-sync's second are refused; a scheduler's next one is not.
            board.wait_until(
                lambda: int(lab.guest_time()) > synced_second(resync),
                2,
                "a second after the re-sync",
            )
            fresh = oracle.signed(SIGN_KEY, TOPIC, {SIGNED: 1}, int(lab.guest_time()))
            accepted(board, mqtt, fresh, SIGNED, on)
            assert board.resets == 1, "%d watchdog resets" % board.resets
    finally:
        mqtt.close()


# ---- outages on the board, each fault as a real network does it (emu/cyw43.py's
# AccessPointBus sends the CYW43439's own async events, IsolatedNatBridge drops traffic).

OUTAGE_FAULTS = ("ap_gone", "deauth", "firewall", "broker_restart")
# Emulated seconds each fault lasts after the device noticed it (the firewall: after it began).
# Long enough that the device's joins fail while it lasts: the access point's absence is
# reported after a join scan (emu.cyw43.NO_AP_SCAN_S), a de-auth at once, a refused CONNECT
# after the 1 s pause, the join and the 2 s link check (modules/tinyctrl/mqtt.py).
OUTAGE_HOLD_S = {"ap_gone": 3.5, "deauth": 2.5, "firewall": 2, "broker_restart": 4}
RECONNECT_BOUND_S = 10  # back within 10 s of the network, the simulator's bound too
NOTICE_S = 3  # a lost link or a closed connection is seen within mqtt_as's 1 s link poll
HEAP_DRIFT_MAX = 1024
OUTAGE_PINS = (0, 1, 2, 3, 16, 17, 18, 19)


def full_state(obj):
    return isinstance(obj, dict) and all("GP%d" % p in obj for p in OUTAGE_PINS)


class PulseCounter:
    """Counts the times the board energises `gpio`: one per momentary command applied."""

    def __init__(self, board, gpio, on):
        self.count = 0

        def listener(new, old):
            if new != old and board.level(gpio) == on:
                self.count += 1

        board.mcu.gpio[gpio].add_listener(listener)


def outage_cycle(lab, board, mqtt, fault, target, pulses, on):
    """One outage of kind `fault` with two QoS 1 commands sent while the device is away (for a
    killed broker: queued as soon as it is back, before the device is). Checks that both are
    applied once and the published state matches the pins; returns (the TopicClient, emulated
    seconds from the network's return to the command's state published, to the full state)."""
    commands = [{"GP%d" % RELAY: target}, {"GP%d" % MOMENTARY: 1}]
    pulses_before = pulses.count
    out = board.mark()
    if fault == "broker_restart":
        mqtt.close()  # its own session goes with the broker; a new client follows
        blackout = faults.broker_down(lab.broker)
    elif fault == "firewall":
        blackout = firewall(board)
    else:
        blackout = access_point(board, "gone" if fault == "ap_gone" else "deauth")
    with blackout:
        if fault != "firewall":  # a firewall drop is silent until the broker's keepalive
            board.wait_for("tinyctrl: connection lost", NOTICE_S, since=out)
        if fault != "broker_restart":
            for c in commands:
                mqtt.send(c)
        board.idle(OUTAGE_HOLD_S[fault])
        since = mqtt.mark()
    ended = board.emulated_s()
    if fault == "broker_restart":
        mqtt = TopicClient(lab.broker.port, board, TOPIC)
        since = 0
        for c in commands:
            mqtt.send(c)
    key = "GP%d" % RELAY
    bound = RECONNECT_BOUND_S + ROUND_TRIP_S
    applied, _ = mqtt.wait(
        lambda _t, o: isinstance(o, dict) and o.get(key) == target,
        bound,
        since,
        "%s: %s=%d published" % (fault, key, target),
    )
    back = applied
    if fault != "firewall":  # the others reconnect: the full state follows (Action F)
        full, _ = mqtt.wait(
            lambda _t, o: full_state(o), bound, since, "%s: the full state" % fault
        )
        back = max(applied, full)
    board.wait_until(
        lambda: pulses.count > pulses_before, ROUND_TRIP_S, "%s: the momentary press" % fault
    )
    board.wait_level(MOMENTARY, 1 - on, MOMENTARY_WAIT_S + ROUND_TRIP_S)
    board.idle(0.5)  # a duplicate would come with the backlog
    assert pulses.count == pulses_before + 1, "%s: the press was applied %d times" % (
        fault,
        pulses.count - pulses_before,
    )
    assert board.level(RELAY) == (on if target else 1 - on), "%s: GP%d not %d" % (
        fault,
        RELAY,
        target,
    )
    published = {}  # the state as the device's publishes since the outage tell it, latest last
    for _, text in mqtt.messages[since:]:
        try:
            obj = json.loads(text)
        except ValueError:
            continue
        if isinstance(obj, dict):
            published.update((k, v) for k, v in obj.items() if k.startswith("GP"))
    for pin in (RELAY, MFA_PIN, MOMENTARY):
        level = 1 if board.level(pin) == on else 0
        assert published.get("GP%d" % pin) in (level, None if fault == "firewall" else level), (
            "%s: published GP%d=%s, the pin is %d"
            % (fault, pin, published.get("GP%d" % pin), level)
        )
    return mqtt, applied - ended, back - ended


@contextlib.contextmanager
def access_point(board, ap):
    board.set_ap(ap)
    try:
        yield
    finally:
        board.set_ap("up")


@contextlib.contextmanager
def firewall(board):
    board.set_firewall(True)
    try:
        yield
    finally:
        board.set_firewall(False)


def outages(lab, results_path, rounds, *only):
    """Outages on the emulated board: `rounds` cycles of each fault (or of those named), one
    boot."""
    results = Results(results_path, lab)
    rounds = int(rounds)
    kinds = only or OUTAGE_FAULTS
    cfg = controller_config()
    on = energised_level(cfg)
    with results.check("outage_boots_and_subscribes", fatal=True):
        board = lab.boot(cfg)
        board.wait_for("tinyctrl: subscribed to " + TOPIC, BOOT_TO_SUBSCRIBED_S)
    mqtt = TopicClient(lab.broker.port, board, TOPIC)
    pulses = PulseCounter(board, MOMENTARY, on)
    shares, times = [mqtt.heap_share(ROUND_TRIP_S)], {f: [] for f in OUTAGE_FAULTS}
    try:
        for n in range(rounds):
            for fault in kinds:
                with results.check("outage_%s_%d" % (fault, n + 1)) as notes:
                    mqtt, applied, back = outage_cycle(
                        lab, board, mqtt, fault, (n + 1) % 2, pulses, on
                    )
                    times[fault].append(back)
                    notes.append(
                        "command applied %.1f s, back (state published) %.1f s emulated after "
                        "the network returned" % (applied, back)
                    )
                    assert back <= RECONNECT_BOUND_S, "%s: back %.1f s after the network" % (
                        fault,
                        back,
                    )
                    shares.append(mqtt.heap_share(ROUND_TRIP_S))
        with results.check("outage_no_unplanned_reset") as notes:
            notes.append(
                "back after (s emulated, max per fault): %s"
                % ", ".join("%s %.1f" % (f, max(t)) for f, t in times.items() if t)
            )
            assert board.resets == 0, "%d watchdog resets" % board.resets
    finally:
        mqtt.close()
    with results.check("outage_heap_flat") as notes:
        # Mem= is a share of the heap; its size from the REPL (this stops the controller).
        total = int(board.exec("import gc; print(gc.mem_free() + gc.mem_alloc())"))
        heaps = [total * s // 1000 for s in shares]
        drift = heaps[-1] - heaps[1]  # from after the first outage: buffers it allocated stay
        notes.append(
            "heap %d bytes; in use after each outage %s; drift %+d" % (total, heaps, drift)
        )
        assert abs(drift) < HEAP_DRIFT_MAX, "heap drifted %+d bytes" % drift


# ---- verified TLS on the board: emu.lab.Lab.start_tls_broker() makes the CA and
# certificates; the controller sets its clock from NTP before the handshake.

BAD_CA = "The certificate is not correctly signed by the trusted CA"
BAD_NAME = "The certificate Common Name (CN) does not match with the expected CN"
TLS_FAILURES = ("X509_ALLOC_FAILED", "ENOMEM", "MemoryError")


def tls(lab, results_path, cycles):
    """The controller on a verified TLS listener; then handshake cycles and refusals."""
    results = Results(results_path, lab)
    plain = lab.start_tls_broker()
    cfg = controller_config(mqtt=tls_mqtt_config(controller_config()["mqtt"]))
    on = energised_level(cfg)
    with results.check("tls_verified_connect", fatal=True) as notes:
        board = lab.boot(cfg, lab.tls_files())
        board.wait_for("tinyctrl: subscribed to " + TOPIC, BOOT_TO_SUBSCRIBED_S)
        assert lab.ntp_fix is not None, (
            "subscribed without an NTP answer: the certificate dates were not checked"
        )
        notes.append(
            "subscribed over verified TLS %.1f s emulated after reset" % board.emulated_s()
        )
    mqtt = TopicClient(plain, board, TOPIC)
    try:
        with results.check("tls_relay_command"):
            since = mqtt.mark()
            mqtt.send({"GP%d" % RELAY: 1})
            board.wait_level(RELAY, on, ROUND_TRIP_S)
            mqtt.wait_pin(RELAY, 1, ROUND_TRIP_S, since)
    finally:
        mqtt.close()
    cycles = int(cycles)
    script = TLS_HANDSHAKES.format(cycles=cycles) + TLS_REFUSALS
    out = board.exec(script, timeout=60 * cycles + 60)
    lines = out.splitlines()
    with results.check("tls_reconnect_cycles") as notes:
        rows = handshake_rows(out)
        assert len(rows) == cycles, out
        failed = [r for r in rows if isinstance(r, str)]
        assert not failed, "handshakes failed: %s" % failed
        ms = sorted(r["ms"] for r in rows)
        before, after = rows[0]["before"], rows[-1]["after"]
        during = max(r["during"] for r in rows)
        drift = after - rows[0]["after"]  # from after the first: what it allocates for good stays
        notes.append(
            "handshake min/median/max %d/%d/%d ms emulated; heap in use before %d, with the "
            "session open %d (+%d), after the first %d, after the last %d; drift %+d over %d "
            "cycles"
            % (
                ms[0],
                ms[len(ms) // 2],
                ms[-1],
                before,
                during,
                during - before,
                rows[0]["after"],
                after,
                drift,
                cycles,
            )
        )
        assert abs(drift) < HEAP_DRIFT_MAX, "heap drifted %+d bytes" % drift
    with results.check("tls_no_alloc_failures"):
        bad = [line for line in lines if any(f in line for f in TLS_FAILURES)]
        assert not bad, bad
    for what, expected in (("bad_ca", BAD_CA), ("bad_name", BAD_NAME)):
        with results.check("tls_refuses_" + what) as notes:
            line = next((x for x in lines if x.startswith(what)), "no answer: " + out[-500:])
            notes.append(line)
            assert line.startswith(what + " refused") and expected in line, line
    with results.check("tls_no_unplanned_reset"):
        assert board.resets == 0, "%d watchdog resets" % board.resets


# ---- sealed config pushes on the board (modules/tinyctrl/push.py, trial.py): the PC's sealing
# (host/tinyctrl_host/push.py), chunks published here as `tinyctrl config push` sends them.

PUSH_KEY = bytes(range(32))  # push.key, as `tinyctrl provision` copies it
WIFI_PW = "emu-wifi-secret"  # the emulated access point's passphrase
PUSH_TRIAL_S = 10  # the least a push may ask (push.TRIAL_S); the PC's default is 120
PUSH_INDENT = 6  # whitespace JSON allows: the pushed file spans a dozen chunks
# The bound (trial_s), then the reset and the old config's connect before it can say so.
ROLLBACK_BOUND_S = PUSH_TRIAL_S + BOOT_TO_SUBSCRIBED_S


def push_config(**overrides):
    cfg = controller_config(**overrides)
    cfg["wifi"]["password"] = WIFI_PW
    return cfg


class Pusher:
    """Seals configs for the board with the PC's code and publishes their chunks."""

    def __init__(self, mqtt):
        import sys

        for path in (REPO / "host", REPO / "modules"):
            if str(path) not in sys.path:
                sys.path.append(str(path))
        from tinyctrl_host import push

        self.push, self.mqtt, self.seq = push, mqtt, push.new_seq()

    def chunks(self, cfg, trial_s=PUSH_TRIAL_S):
        self.seq += 1
        text = json.dumps(cfg, indent=PUSH_INDENT).encode()
        sealed = self.push.seal_config(text, PUSH_KEY, self.seq, "tinyctrl", TOPIC, trial_s)
        return self.seq, self.push.chunks(sealed, self.seq)

    def publish(self, messages):
        for m in messages:
            self.mqtt.client.publish(TOPIC + "/config", m, qos=1).wait_for_publish(10)


def push_lines(mqtt, since):
    return [t for _, t in mqtt.messages[since:] if "config push" in t]


def wait_push_line(mqtt, text, timeout, since):
    return mqtt.wait(lambda t, _o: t.startswith(text), timeout, since, repr(text))


def back_online(board, mqtt, out, since):
    """After a reset: subscribed again and its full state published (Action F)."""
    board.wait_for("tinyctrl: subscribed to " + TOPIC, BOOT_TO_SUBSCRIBED_S, since=out)
    mqtt.wait(lambda _t, o: full_state(o), ROUND_TRIP_S, since, "the full state")


def power_cut_after_received(results, board, mqtt, pusher, new):
    """A power cut right after `received`, before the device's own reset: the new config boots
    on trial and is confirmed. Returns what config.json then holds (the old one if it failed)."""
    with results.check("push_power_cut_after_received_boots_the_new") as notes:
        seq, messages = pusher.chunks(new)
        since = mqtt.mark()
        pusher.publish(messages)
        wait_push_line(mqtt, "Info: config push %d received" % seq, ROUND_TRIP_S, since)
        out = board.mark()
        files = board.power_cut()  # before the device's own reset (trial.RESTART_WAIT_MS)
        cut_at = board.emulated_s()
        assert {"config.new", "config.trial", "push.seq"} <= set(files), sorted(files)
        back_online(board, mqtt, out, since)
        at, _ = wait_push_line(mqtt, "Info: config push %d confirmed" % seq, ROUND_TRIP_S, since)
        files = board.files()
        assert json.loads(files["config.json"]) == new, "the pushed config is not config.json"
        assert not {"config.new", "config.trial"} & set(files), sorted(files)
        notes.append("confirmed %.1f s emulated after the power came back" % (at - cut_at))
    return json.loads(board.files()["config.json"])


def config_push(lab, results_path, soak):
    """One boot, pushes: a power cut while config.part is written (the old config boots); with
    `soak` (1) a power cut once the push is received (the new one boots and is confirmed);
    a wrong Wi-Fi password (the access point refuses it; rolled back at the trial's bound)."""
    results = Results(results_path, lab)
    old = push_config()
    running = old  # what config.json holds
    with results.check("push_boots_and_subscribes", fatal=True):
        board = lab.boot(old, {"push.key": PUSH_KEY.hex().encode()}, ap_passphrase=WIFI_PW)
        board.wait_for("tinyctrl: subscribed to " + TOPIC, BOOT_TO_SUBSCRIBED_S)
    mqtt = TopicClient(lab.broker.port, board, TOPIC)
    pusher = Pusher(mqtt)
    shares = {}
    try:
        with results.check("push_power_cut_while_writing_boots_the_old") as notes:
            new = push_config(gpio=dict(old["gpio"], momentary={str(MOMENTARY): 3, "19": 2}))
            seq, messages = pusher.chunks(new)
            shares["idle"] = mqtt.heap_share(ROUND_TRIP_S)
            half = len(messages) // 2
            pusher.publish(messages[:half])
            board.idle(1)
            shares["during"] = mqtt.heap_share(ROUND_TRIP_S)  # chunks are written as they come
            out, since = board.mark(), mqtt.mark()
            files = board.power_cut()
            notes.append(
                "cut after chunk %d of %d; config.part on flash: %s"
                % (
                    half,
                    len(messages),
                    len(files["config.part"]) if "config.part" in files else "-",
                )
            )
            assert "config.part" in files, "no push under way at the cut: %s" % sorted(files)
            assert "config.new" not in files and "config.trial" not in files, sorted(files)
            back_online(board, mqtt, out, since)
            files = board.files()
            assert json.loads(files["config.json"]) == old, "config.json changed"
            assert not {"config.part", "config.new", "config.trial", "push.seq"} & set(files), (
                sorted(files)
            )
            assert not push_lines(mqtt, since), push_lines(mqtt, since)

        if int(soak):
            running = power_cut_after_received(results, board, mqtt, pusher, new)

        with results.check("push_wrong_wifi_password_rolls_back") as notes:
            wrong = dict(running, wifi=dict(running["wifi"], password="not-the-wifi-pw"))
            seq, messages = pusher.chunks(wrong)
            since, resets, refused = mqtt.mark(), board.resets, board.chip.bus.refused_joins
            pusher.publish(messages)
            received, _ = wait_push_line(
                mqtt, "Info: config push %d received" % seq, ROUND_TRIP_S, since
            )
            back, line = wait_push_line(
                mqtt, "Error: config push %d rolled back" % seq, ROLLBACK_BOUND_S, since
            )
            notes.append(line)
            notes.append(
                "rolled back %.1f s emulated after 'received' (trial bound %d s); %d joins "
                "refused by the access point"
                % (back - received, PUSH_TRIAL_S, board.chip.bus.refused_joins - refused)
            )
            assert "status -3" in line, line  # STAT_WRONG_PASSWORD, the driver's BADAUTH
            assert board.chip.bus.refused_joins > refused, "the access point refused no join"
            assert board.resets == resets + 2, "resets: %d" % (board.resets - resets)
            mqtt.wait(lambda _t, o: full_state(o), ROUND_TRIP_S, since, "the full state")
            files = board.files()
            assert json.loads(files["config.json"]) == running, "config.json is not the old one"
            assert not {"config.new", "config.trial"} & set(files), sorted(files)
            assert len(push_lines(mqtt, since)) == 2, push_lines(mqtt, since)
    finally:
        mqtt.close()
    with results.check("push_heap_during_a_push") as notes:
        total = int(board.exec("import gc; print(gc.mem_free() + gc.mem_alloc())"))
        idle, during = (total * shares[k] // 1000 for k in ("idle", "during"))
        notes.append(
            "heap %d bytes; in use idle %d, halfway through a %d-byte push %d (%+d)"
            % (total, idle, len(json.dumps(new, indent=PUSH_INDENT)), during, during - idle)
        )
        assert during - idle < 8 * 1024, "a push holds %+d bytes" % (during - idle)


# ---- firmware updates (HACKING.md, "Life of a firmware update")

UPDATE_RELAYS = (16, 17)
SWAP_TO_CONFIRMED_S = 60
UPDATE_ROLLBACK_S = 60
TRIAL_GIVE_UP_S = 20  # wifi.reset_delay_s of the board whose B cannot reach the broker
WATCHDOG_DEFAULT_S = 30  # watchdog_s when config.json does not set it


def first_chunk_refused(board, mqtt, updater):
    """The refusal of B's update, sent again: chunk 0 alone, as `tinyctrl update` sends it."""
    since = mqtt.mark()
    _, messages = updater.chunks()
    updater.send(messages[:1], board)
    return mqtt.said("Error: update refused: ", ROUND_TRIP_S * 2, since)[1]


def stats_version(mqtt):
    since = mqtt.mark()
    mqtt.send({"CMD": "stats"})
    _, text = mqtt.wait(lambda t, _o: "Version=" in t, ROUND_TRIP_S, since, "the stats reply")
    return text.split("Version=", 1)[1].split(",", 1)[0]


def swap_steps(updater):
    """The steps of a swap between A and `updater`'s image, three per sector of the larger (A
    is about the size of B: built from the same tree)."""
    return 3 * ((max(len(updater.image), 840 * 1024) + 4095) // 4096)


def energised_between(board, cfg, start_s, end_s):
    """(time, gpio) of every relay pin driven to its energised level in [start_s, end_s)."""
    level = GPIOPinState.LOW if energised_level(cfg) == 0 else GPIOPinState.HIGH
    return [
        (at, gpio)
        for at, gpio, state in board.trace
        if start_s <= at < end_s and gpio in UPDATE_RELAYS and state == level
    ]


def firmware_update(lab, results_path, soak):
    """A to B (./build.sh next) on one board: refusals that write nothing, a power cut
    mid-download (A stays), the whole update with a power cut in the swap (it resumes; B
    confirms; the relay levels through it); on a second board, a power cut during B's trial
    (the bootloader swaps A back and A says why), then a B that cannot reach the broker (and
    a power cut in that swap back) and one that stalls into the watchdog. With `soak`, cuts
    at more points of the swap."""
    results = Results(results_path, lab)
    soak = int(soak)
    cfg = controller_config()
    cfg["gpio"]["power_on_state"] = {"16": "restore"}
    cfg["guard"]["publish_max"] = 40  # an error budget of 10 lines a window: 6 refusals
    updater = Updater(TOPIC)
    cfg["update"] = {"key": updater.public_hex()}
    with results.check("update_boots_and_subscribes", fatal=True):
        board = lab.boot(cfg, trace_pins=UPDATE_RELAYS)
        board.wait_for("tinyctrl: subscribed to " + TOPIC, BOOT_TO_SUBSCRIBED_S)
        assert flag_state(board)[0] == 1, flag_state(board)  # IDLE: as a first install leaves it
    updater.mqtt = mqtt = TopicClient(lab.broker.port, board, TOPIC)
    try:
        update_refusals(results, board, mqtt, updater)
        update_cut_mid_download(results, board, mqtt, updater)
        update_with_cut_in_swap(results, lab, board, mqtt, updater, cfg, soak)
    finally:
        mqtt.close()
    board.stop()  # its client id is the next board's: one at a time on the broker
    lab.boards.remove(board)
    update_cut_in_trial(results, lab, cfg, updater)


def update_refusals(results, board, mqtt, updater):
    with results.check("update_refused_without_writing") as notes:
        from cryptography.hazmat.primitives.asymmetric import ec

        before, log_before = slot_digest(board), flag_state(board)
        running = stats_version(mqtt)
        small = updater.image[: 16 * 1024]
        cases = [
            ("a wrong key", dict(key=ec.generate_private_key(ec.SECP256R1())), "signature"),
            ("an equal version", dict(version=running), "not newer than the running"),
            ("an older version", dict(version="1.0.0"), "not newer than the running"),
            ("another board", dict(board="RPI_PICO2_W"), "image is for RPI_PICO2_W"),
        ]
        for what, kw, expect in cases:
            since = mqtt.mark()
            uid, messages = updater.chunks(**kw)
            updater.send(messages[:2], board)  # the first chunk is refused; the second ignored
            _, line = mqtt.said("Error: update refused: ", ROUND_TRIP_S * 2, since)
            assert expect in line, "%s: %s" % (what, line)
            notes.append("%s: %s" % (what, line))
        assert slot_digest(board) == before, "a refused head wrote the download slot"
        assert flag_state(board) == log_before, "a refused head wrote the flag log"
        # Refused after it is written: a changed byte, and an image cut short.
        since = mqtt.mark()
        uid, messages = updater.chunks(image=small, flip=3000)  # in the image's 4th chunk
        updater.send(messages, board)
        _, line = mqtt.said("Error: update refused: ", ROUND_TRIP_S * 4, since)
        assert "SHA-256" in line, line
        notes.append("a changed byte: " + line)
        since = mqtt.mark()
        uid, messages = updater.chunks(image=small)
        head = messages[0].split(b"\n", 1)[0].decode()
        cut = [m.replace(b"/%d\n" % len(messages), b"/5\n", 1) for m in messages[:5]]
        assert head.endswith("/%d" % len(messages)), head
        updater.send(cut, board)
        _, line = mqtt.said("Error: update refused: ", ROUND_TRIP_S * 4, since)
        assert "bytes came" in line, line
        notes.append("an image cut short: " + line)
        assert flag_state(board) == log_before, "a refused update wrote the flag log"
        assert stats_version(mqtt) == running
        notes.append("download slot and flag log unchanged by the refusals of the first chunk")


def update_cut_mid_download(results, board, mqtt, updater):
    with results.check("update_power_cut_mid_download_keeps_the_old") as notes:
        running = stats_version(mqtt)
        uid, messages = updater.chunks()
        since = mqtt.mark()
        quarter = len(messages) // 4
        updater.send(messages[:quarter], board)
        mqtt.said("Info: update %d to " % uid, ROUND_TRIP_S * 4, since)
        board.idle(1)
        out, since = board.mark(), mqtt.mark()
        board.power_cut()
        notes.append("cut after chunk %d of %d" % (quarter, len(messages)))
        back_online(board, mqtt, out, since)
        assert stats_version(mqtt) == running
        assert flag_state(board)[0] == 1, flag_state(board)
        assert "restarting" not in board.output[out:]


def update_with_cut_in_swap(results, lab, board, mqtt, updater, cfg, soak):
    """The whole update, with the power cut at a step of the swap (more with `soak`)."""
    with results.check("update_to_the_next_version", fatal=True) as notes:
        running = stats_version(mqtt)
        since = mqtt.mark()
        mqtt.send({"GP16": 1})
        mqtt.wait_pin(16, 1, ROUND_TRIP_S, since)
        uid, messages = updater.chunks()
        idle_share = mqtt.heap_share(ROUND_TRIP_S)
        since = mqtt.mark()
        started, t0 = board.emulated_s(), time.time()
        half = len(messages) // 2
        updater.send(messages[:half], board)
        during_share = mqtt.heap_share(ROUND_TRIP_S)
        # The relays and MFA work while it downloads: a code made now is taken.
        mid = mqtt.mark()
        mqtt.send({"GP16": 0})
        mqtt.wait_pin(16, 0, ROUND_TRIP_S, mid)
        # The backlog the transfer caused raised the device's floor (auth.py): codes up to one
        # step past it are refused. Once a new step has begun, the next step's code is past it.
        boundary = (int(lab.guest_time()) // 30 + 1) * 30
        board.wait_until(lambda: lab.guest_time() >= boundary + 1, 35, "the next TOTP step")
        mqtt.send({"MFA": oracle.totp(MFA_KEY, lab.guest_time() + 30), "GP%d" % MFA_PIN: 1})
        mqtt.wait_pin(MFA_PIN, 1, ROUND_TRIP_S, mid)
        mqtt.send({"GP16": 1})
        mqtt.wait_pin(16, 1, ROUND_TRIP_S, mid)
        updater.send(messages[half:], board)
        at_received, _ = mqtt.said("Info: update %d received and checked" % uid, 120, since)
        rate = len(updater.image) / 1024 / (at_received - started)
        behind = [t for _at, t in mqtt.messages[since:] if "arriving faster" in t]
        # The swap's journal: one program per step; the cuts land at steps across it.
        steps = swap_steps(updater)
        cut_steps = [steps // 3] + ([steps // 8, 2 * steps // 3] if soak else [])
        programs = [0]

        def journal_step(kind, offset):
            if kind == "program" and SWAP_JOURNAL <= offset < SWAP_JOURNAL + 4096:
                programs[0] += 1
                return programs[0] in cut_steps
            return False

        cuts = [board.cut_power_at_flash_write(journal_step) for _ in cut_steps[:1]]
        at_restart, _ = mqtt.said("restarting to switch to " + updater.version, 30, since)
        at_restart_mark = mqtt.mark()
        last_old = max(at for at, _t in mqtt.messages[since:])
        out = board.mark()
        board.wait_until(lambda: all(c.is_set() for c in cuts), 60, "the cut in the swap")
        for _ in cut_steps[1:]:
            cut = board.cut_power_at_flash_write(journal_step)
            board.wait_until(cut.is_set, 60, "a further cut in the swap")
        board.wait_for("tinyctrl: firmware %s on trial" % updater.version, 60, since=out)
        at_confirmed, _ = mqtt.said(
            "Info: update %d confirmed: running %s" % (uid, updater.version),
            SWAP_TO_CONFIRMED_S,
            since,
        )
        first_new = min(at for at, _t in mqtt.messages[since:] if at > at_restart)
        # GP16 was on; after the power cut in the swap, "restore" without
        # restore_after_power_cut "flash" knows nothing: B starts it off, as the user set.
        mqtt.wait(
            lambda _t, o: full_state(o) and o["GP16"] == 0 and o["GP17"] == 0,
            ROUND_TRIP_S,
            at_restart_mark,
            "B's full state, GP16 and GP17 off",
        )
        assert stats_version(mqtt) == updater.version
        assert flag_state(board)[0] == 5, flag_state(board)  # COMMITTED
        files = board.files()
        assert "update.trial" not in files, sorted(files)
        energised = energised_between(board, cfg, at_restart, first_new)
        notes.append(
            "%d KB in %.1f s emulated (%.1f KB/s emulated; %.0f s wall), %d chunks; cut at "
            "journal step(s) %s of %d; restart to confirmed %.1f s emulated; downtime (last "
            "message of %s to first of %s) %.1f s emulated; heap in use idle %.1f%%, "
            "halfway through the transfer %.1f%%; an MFA code and relay commands taken "
            "halfway; backlog notices during the transfer: %d; relay levels energised during "
            "the switch: %s"
            % (
                len(updater.image) // 1024,
                at_received - started,
                rate,
                time.time() - t0,
                len(messages),
                ", ".join(map(str, cut_steps)),
                steps,
                at_confirmed - at_restart,
                running,
                updater.version,
                first_new - last_old,
                idle_share / 10,
                during_share / 10,
                len(behind),
                energised or "none",
            )
        )
        # Nothing energised from the reset to B's first message: the pins stay inputs through
        # the bootloader and the swap, and B drives them off before its controller starts.
        assert not energised, energised
    with results.check("update_replay_refused") as notes:
        line = first_chunk_refused(board, mqtt, updater)
        assert "not newer than the running" in line, line
        notes.append(line)


def update_cut_in_trial(results, lab, cfg, updater):
    """A second board on A: the whole update, then a power cut while B is on trial, before it
    confirms: the bootloader swaps A back, and A reports it. Then B, left in the download slot
    by the rollback, is tried twice more: without the broker, and stalled into the watchdog."""
    cfg = json.loads(json.dumps(cfg))
    cfg["wifi"].update(max_retries=3, reset_delay_s=TRIAL_GIVE_UP_S)
    mqtt = None
    try:
        with results.check("update_unconfirmed_rolls_back", fatal=True) as notes:
            board = lab.boot(cfg, trace_pins=UPDATE_RELAYS)
            board.wait_for("tinyctrl: subscribed to " + TOPIC, BOOT_TO_SUBSCRIBED_S)
            mqtt = updater.mqtt = TopicClient(lab.broker.port, board, TOPIC)
            running = stats_version(mqtt)
            uid, messages = updater.chunks()
            since = mqtt.mark()
            updater.send(messages, board)
            mqtt.said("restarting to switch to " + updater.version, 120, since)
            out = board.mark()
            board.wait_for("tinyctrl: firmware %s on trial" % updater.version, 60, since=out)
            at_cut = board.emulated_s()
            board.power_cut()
            line = rolled_back(board, mqtt, uid, running, since)
            assert "reset before it confirmed" in line, line
            files = board.files()
            assert "update.failed" in files and "update.trial" not in files, sorted(files)
            notes.append(line)
            notes.append(
                "back on %s %.1f s emulated after the cut" % (running, board.emulated_s() - at_cut)
            )
            line = first_chunk_refused(board, mqtt, updater)
            assert "rolled back on this device" in line, line
            notes.append(line)
        update_without_broker(results, lab, board, mqtt, updater, running)
        update_stalled(results, lab, board, mqtt, updater, running)
    finally:
        if mqtt:
            mqtt.close()


def rolled_back(board, mqtt, uid, running, since):
    """A's report of update `uid`'s rollback, once it is back; the board left as it must be."""
    _, line = mqtt.said(
        "Error: update %d rolled back to %s" % (uid, running), UPDATE_ROLLBACK_S, since
    )
    assert stats_version(mqtt) == running
    assert flag_state(board)[0] == 1, flag_state(board)  # IDLE once reported
    return line


@contextlib.contextmanager
def broker_refused(lab):
    """The broker refuses the board's connections (its route taken away) until the block ends."""
    route = ("tcp",) + BROKER_ADDR
    target = lab.router.routes.pop(route)
    try:
        yield
    finally:
        lab.router.routes[route] = target


def update_without_broker(results, lab, board, mqtt, updater, running):
    """B cannot reach the broker: it gives up (wifi.max_retries, wifi.reset_delay_s), says why
    in update.trial and resets; the bootloader swaps A back, the power cut halfway through that
    swap (it resumes), and A reports B's reason."""
    with results.check("update_without_broker_rolls_back") as notes:
        since = mqtt.mark()
        with broker_refused(lab):
            uid, out = switch_again(board, updater, running)
            board.wait_for("tinyctrl: firmware %s on trial" % updater.version, 60, since=out)
            on_trial = board.emulated_s()
            # The swap back erases the journal first; the cut lands halfway through its steps.
            halfway = swap_steps(updater) // 2
            journal = [False, 0]  # erased, steps since

            def swap_back_step(kind, offset):
                if SWAP_JOURNAL <= offset < SWAP_JOURNAL + 4096:
                    if kind == "erase":
                        journal[0] = True
                    elif journal[0]:
                        journal[1] += 1
                        return journal[1] == halfway
                return False

            cut = board.cut_power_at_flash_write(swap_back_step)
            board.wait_for("no connection; resetting", TRIAL_GIVE_UP_S + 30, since=out)
            gave_up = board.emulated_s()
            board.wait_until(cut.is_set, 60, "the cut in the swap back")
        line = rolled_back(board, mqtt, uid, running, since)
        assert "connect failed" in line, line
        notes.append(line)
        notes.append(
            "B gave up %.1f s emulated into its trial; power cut at step %d of the swap back; "
            "A reported %.1f s after B gave up"
            % (gave_up - on_trial, halfway, board.emulated_s() - gave_up)
        )


# B's loop stops for good before it confirms, as a hang would. The interrupt that gives the
# REPL the board stopped the controller's watchdog (main.py, for a user at the REPL): it runs
# again as the controller ran it, with watchdog_s, and nothing feeds it.
STALL_ON_TRIAL = """
import time, port, tinyctrl.main as m
port.Watchdog().start(m.load()["watchdog_s"] * 1000)
print("B stalls now")
time.sleep(3600)
"""


def update_stalled(results, lab, board, mqtt, updater, running):
    """B's loop stalls before it confirms (the broker kept from it, so it cannot confirm
    first): the controller's watchdog (watchdog_s) resets it, and the bootloader swaps A back."""
    with results.check("update_stalled_rolls_back") as notes:
        since = mqtt.mark()
        with broker_refused(lab):
            uid, out = switch_again(board, updater, running)
            board.wait_for("tinyctrl: firmware %s on trial" % updater.version, 60, since=out)
            # Its controller runs (its watchdog started) once it tries the broker.
            board.wait_for("connect failed (1)", 30, since=out)
            resets = board.resets
            start = board.exec_start(STALL_ON_TRIAL)
            shown = board.wait_for("B stalls now", 10, since=start)
            stalled_at = board.printed_at(start + len(shown.encode()) - 1)
            limit = WATCHDOG_DEFAULT_S + 8 + 1  # then the hardware counter: min(watchdog_s, 8 s)
            board.wait_until(lambda: board.resets > resets, limit, "the watchdog reset")
        took = board.reset_times[resets] - stalled_at
        assert WATCHDOG_DEFAULT_S - 1 <= took <= limit, "reset %.1f s after the stall" % took
        line = rolled_back(board, mqtt, uid, running, since)
        assert "reset before it confirmed" in line, line
        notes.append(line)
        notes.append("the watchdog reset B %.1f s emulated after it stalled" % took)
