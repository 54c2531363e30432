# SPDX-License-Identifier: MIT
"""The emulated boards take longer than the rest of the suite together: start them as soon as
the session knows it will run them, and run their tests last, when most of the work is done."""

import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
SCENARIO_TESTS = HERE / "test_pico_w.py"


def _is_scenario_test(item):
    return pathlib.Path(str(item.fspath)) == SCENARIO_TESTS


def pytest_collection_modifyitems(config, items):
    items.sort(key=_is_scenario_test)  # stable: the rest keeps its order


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    if any(_is_scenario_test(item) for item in session.items):
        import test_pico_w

        test_pico_w.start_lanes(session)


def pytest_sessionfinish(session):
    lanes = getattr(sys.modules.get("test_pico_w"), "LANES", None)
    if lanes is not None:
        lanes.stop()
