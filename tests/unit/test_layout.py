"""The package's layout: imports run one way, from the commands down to the plain data.

Each unit is a subpackage (``resumer/crawler/``) or a module directly in ``resumer/``.
``LAYERS`` lists them from the top down; a unit may import its own modules and any
unit of a lower layer, never one beside or above it (so no cycle can form between
units). The imports are read from the source (ast), so a lazy import inside a
function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

import resumer

PACKAGE = Path(resumer.__file__).parent

# From the top down: what each layer may import is everything under it.
LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(layer.split())
    for layer in (
        "__main__",
        "cli",
        "resumer",  # resumer/__init__.py: the public names
        "api",
        "crawler",
        "results",
        "query",
        "http",
        "ops",
        "job",
        "policies checkpoint",
        "fake",
        "errors model _crashpoints",
    )
)


def unit_of(module: str) -> str:
    """``resumer.crawler.runner`` -> ``crawler``; ``resumer.api`` -> ``api``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "resumer"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    return imports_in(
        path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py"
    )


def imports_in(source: str, name: str, is_package: bool = False) -> set[str]:
    """The ``resumer`` modules the module ``name`` imports (``from resumer import x`` names
    module x when x is one)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")[: len(name.split(".")) - node.level + is_package]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [f"{base}.{alias.name}" for alias in node.names]
            submodules = [name for name in names if _exists(name)]
            found.update(submodules)
            if len(submodules) < len(names):  # names defined in the module ``base``
                found.add(base)
    return {
        module
        for module in found
        if module.split(".")[0] == "resumer" and _exists(module) and module != name
    }


def _exists(module: str) -> bool:
    relative = Path(*module.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").is_file() or (
        PACKAGE / relative / "__init__.py"
    ).is_file()


def graph(paths: Iterable[Path]) -> dict[str, set[str]]:
    """Unit -> the units it imports (its own left out)."""
    edges: dict[str, set[str]] = {}
    for path in paths:
        here = unit_of(module_name(path))
        edges.setdefault(here, set()).update(
            there for there in map(unit_of, imports_of(path)) if there != here
        )
    return edges


def wrong_arrows(edges: Mapping[str, set[str]]) -> list[str]:
    """Every arrow that runs up, sideways within a layer, or to a unit no layer names."""
    rank = {unit: depth for depth, layer in enumerate(LAYERS) for unit in layer}
    wrong = []
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            if source not in rank or target not in rank:
                wrong.append(f"{source} -> {target}: a unit missing from LAYERS")
            elif rank[target] <= rank[source]:
                wrong.append(f"{source} -> {target}: runs against the layers")
    return wrong


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def test_every_import_runs_down_the_layers() -> None:
    assert wrong_arrows(graph(SOURCES)) == []


def test_every_unit_is_in_one_layer() -> None:
    units = {unit_of(module_name(path)) for path in SOURCES}
    named = [unit for layer in LAYERS for unit in layer]
    assert sorted(named) == sorted(set(named)), "a unit is named twice"
    assert units == set(named)


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"job": {"crawler"}}, ["job -> crawler: runs against the layers"]),  # up
        ({"policies": {"checkpoint"}}, ["policies -> checkpoint: runs against the layers"]),
        ({"query": {"http"}, "http": {"query"}}, ["http -> query: runs against the layers"]),
        ({"crawler": {"plugins"}}, ["crawler -> plugins: a unit missing from LAYERS"]),
        ({"crawler": {"query", "checkpoint", "errors"}}, []),
    ],
)
def test_the_check_refuses_a_wrong_graph(edges: dict[str, set[str]], expected: list[str]) -> None:
    assert wrong_arrows(edges) == expected


def test_the_reader_sees_every_form_of_import() -> None:
    """Plain, from, relative and lazy (inside a function) imports all count."""
    source = (
        "import resumer.crawler.crawl\n"
        "from resumer.query import client\n"
        "from ..ops import logs\n"
        "from . import keys\n"
        "import json\n"
        "def later():\n    from resumer.cli.app import main\n"
    )
    found = imports_in(source, "resumer.job.settings")
    assert found >= {"resumer.crawler.crawl", "resumer.query.client", "resumer.ops.logs"}
    assert found >= {"resumer.job.keys", "resumer.cli.app"}
    assert not any(module.startswith("json") for module in found)
    assert {unit_of(module) for module in found} == {"crawler", "query", "ops", "job", "cli"}


def test_readme_draws_the_package_as_it_is() -> None:
    """README's "Layout" tree names every subpackage and top-level module, and no other."""
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    tree = section.split("```\nresumer/\n", 1)[1].split("\ntests/", 1)[0]
    drawn = {line.split()[0].rstrip("/") for line in tree.splitlines() if line.strip()}
    drawn.discard("__init__.py")
    actual = {
        path.name.removesuffix(".py")
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" and not path.name.startswith("_"))
        or (path / "__init__.py").is_file()
    }
    assert {name.removesuffix(".py") for name in drawn} == actual
