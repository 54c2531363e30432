# SPDX-License-Identifier: MIT
"""`pip install .` gives the `tinyctrl` command and, beside it, the device's own package,
so the PC checks files with the board's validator. Built offline (no build isolation, no index)
from a copy of what pyproject.toml packages: no network, no file of the worktree touched."""

import os
import shutil
import subprocess
import sys

from deps import ROOT

import tinyctrl


def test_pip_install_gives_the_command_and_the_device_package(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), src / name)
    for folder in ("host", "modules"):
        shutil.copytree(
            os.path.join(ROOT, folder), src / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-build-isolation",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert sorted(p.name for p in (target / "tinyctrl").glob("*.py")) == sorted(
        p for p in os.listdir(os.path.join(ROOT, "modules", "tinyctrl")) if p.endswith(".py")
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    config = tmp_path / "config.json"
    config.write_text(
        '{"wifi": {"ssid": "w"}, "mqtt": {"server": "b", "topic": "t"}, '
        '"gpio": {"relay": [16, 40]}}'
    )
    done = subprocess.run(
        [str(target / "bin" / "tinyctrl"), "config", "check", "-c", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert (
        done.stderr.strip() == "%s: gpio.relay: GP40 does not exist on the Pico W "
        "(GP0-GP22, GP26-GP28)" % config
    )
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import tinyctrl.config, tinyctrl_host.cli; print(tinyctrl.config.__file__)",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    ).stdout
    assert where.startswith(str(target))
    version = subprocess.run(
        [str(target / "bin" / "tinyctrl"), "--version"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
        check=True,
    ).stdout
    assert version.strip() == "tinyctrl " + tinyctrl.__version__
    meta = list(target.glob("tinyctrl-*.dist-info"))
    assert [m.name for m in meta] == ["tinyctrl-%s.dist-info" % tinyctrl.__version__]
