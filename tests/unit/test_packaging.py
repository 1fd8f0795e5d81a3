"""The wheel ships every package: a subpackage missing from pyproject.toml only shows
once installed without -e, so it is checked here."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_under_resumer_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "resumer").rglob("__init__.py")
    }
    mapped = {"resumer.migrations", "resumer.migrations.versions"}  # from migrations/
    assert found <= listed
    assert mapped <= listed
    for package in mapped:
        folder = config["tool"]["setuptools"]["package-dir"][package]
        assert (ROOT / folder / "__init__.py").is_file()
