"""The wheel ships every package and data file: a folder setuptools does not find, or a
data file it leaves out, only shows once installed without -e, so it is checked here."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_folder_of_python_under_resumer_is_a_package_setuptools_finds() -> None:
    """``packages.find`` takes only folders with an ``__init__.py``: one without it would
    be left out of the wheel (a migration's ``versions/`` folder, say)."""
    assert CONFIG["tool"]["setuptools"]["packages"]["find"]["include"] == ["resumer*"]
    folders = {path.parent for path in (ROOT / "resumer").rglob("*.py")}
    assert all((folder / "__init__.py").is_file() for folder in folders)
    assert (ROOT / "resumer/checkpoint/migrations/versions/__init__.py").is_file()


def test_the_data_files_a_run_needs_are_package_data() -> None:
    data = CONFIG["tool"]["setuptools"]["package-data"]
    assert "py.typed" in data["resumer"]
    assert "script.py.mako" in data["resumer.checkpoint.migrations"]
    for package, names in data.items():
        folder = ROOT.joinpath(*package.split("."))
        assert all((folder / name).is_file() for name in names), package
