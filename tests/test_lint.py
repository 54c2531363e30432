# SPDX-License-Identifier: MIT
"""The tree passes ruff with the project's settings (pyproject.toml [tool.ruff]), as CI checks."""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ruff():
    """ruff from the project's virtualenv (beside this Python), else from PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "ruff")
    return beside if os.path.exists(beside) else shutil.which("ruff")


def test_ruff_check():
    exe = ruff()
    if not exe:
        pytest.skip("ruff not installed: pip install -r requirements.txt")
    out = subprocess.run(
        [exe, "check", "--no-cache", "--output-format", "concise", ROOT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_format():
    exe = ruff()
    if not exe:
        pytest.skip("ruff not installed: pip install -r requirements.txt")
    out = subprocess.run(
        [exe, "format", "--check", "--no-cache", ROOT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
