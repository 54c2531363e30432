# SPDX-License-Identifier: MIT
"""One version: the package manifest's metadata (what micropython-lib tools read) and
tinyctrl.__version__ (what {"CMD":"stats"} shows) must agree."""

import ast
import os

import tinyctrl

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def manifest_metadata():
    with open(os.path.join(ROOT, "manifest.py")) as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "metadata":
            return {k.arg: ast.literal_eval(k.value) for k in node.keywords}
    raise AssertionError("manifest.py has no metadata(...)")


def test_manifest_version_is_the_package_version():
    assert manifest_metadata()["version"] == tinyctrl.__version__


def test_version_is_dotted_numbers():
    parts = tinyctrl.__version__.split(".")
    assert len(parts) == 3 and all(p.isdigit() for p in parts), tinyctrl.__version__


def test_what_ships_together_has_one_version():
    """The host tool's package takes its version from tinyctrl.__version__ (pyproject.toml's
    dynamic version), and the phone panel states the same one."""
    import json

    import pytest

    tomllib = pytest.importorskip("tomllib")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "tinyctrl.__version__"}
    with open(os.path.join(ROOT, "panel", "package.json")) as f:
        assert json.load(f)["version"] == tinyctrl.__version__
    with open(os.path.join(ROOT, "panel", "package-lock.json")) as f:
        lock = json.load(f)
    assert lock["version"] == lock["packages"][""]["version"] == tinyctrl.__version__
