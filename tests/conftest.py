# SPDX-License-Identifier: MIT
import pytest


def pytest_addoption(parser):
    parser.addoption("--soak", action="store_true", help="run the long reliability variants")


def pytest_configure(config):
    config.addinivalue_line("markers", "soak: long variant, runs only with --soak")
    config.addinivalue_line(
        "markers", "slow: left out of the quick tier (./build.sh test --quick)"
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--soak"):
        return
    skip = pytest.mark.skip(reason="long variant: run with ./build.sh test --soak")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def services():
    """A loopback broker, NTP server and public-IP server for one test module."""
    import simharness
    from services import Mosquitto, NtpServer, PublicIpServer

    why = simharness.missing_requirements()
    if why:
        pytest.skip(why)
    broker = Mosquitto().start()
    ntp = NtpServer()
    ip = PublicIpServer()
    yield broker, ntp, ip
    ip.close()
    ntp.close()
    broker.close()


@pytest.fixture
def report(capsys):
    """Print a measured figure past pytest's capture: the README's reliability section quotes
    them."""

    def emit(line):
        with capsys.disabled():
            print("\n[reliability] " + line, end="")

    return emit


@pytest.fixture(scope="session", autouse=True)
def no_secret_leaks():
    """After the last test: no secret of any simulator config in anything the simulators
    printed or logged or the test clients received (tests/support/leakcheck.py)."""
    yield
    import leakcheck

    leaks = leakcheck.session_leaks()
    assert not leaks, "secrets leaked (where configured, then where found):\n  " + "\n  ".join(
        leaks
    )
