"""Every module of resumer/ has its tests: a unit test file of its name in the folder of
tests/unit/ that mirrors its own (``test_<module>.py``, or ``test_<module>_<aspect>.py``; a
leading underscore of the name dropped), or, as its docstring's last paragraph, the
integration tests that cover it ("Tested by tests/integration/test_x.py and
tests/integration/test_y.py."), each of which must exist. ``__init__.py`` files and the
Alembic migrations are left out."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

import resumer

PACKAGE = Path(resumer.__file__).parent
ROOT = PACKAGE.parent
UNIT = ROOT / "tests" / "unit"
INTEGRATION = ROOT / "tests" / "integration"

TESTED_BY = "Tested by tests/integration/"
_FILE = r"tests/integration/test_\w+\.py"
_SENTENCE = re.compile(rf"Tested by {_FILE}(?:(?:, {_FILE})* and {_FILE})?\.")


def modules(package: Path) -> dict[Path, str]:
    """Each module's path under ``package`` -> its source; no ``__init__.py``, no migrations."""
    return {
        path.relative_to(package): path.read_text(encoding="utf-8")
        for path in sorted(package.rglob("*.py"))
        if path.name != "__init__.py" and "migrations" not in path.relative_to(package).parts
    }


def has_unit_tests(module: Path, unit_files: Iterable[Path]) -> bool:
    """True if ``unit_files`` (paths under tests/unit/) hold ``test_<name>.py`` or
    ``test_<name>_*.py`` in the folder that mirrors ``module``'s (``__main__`` -> ``main``)."""
    name = module.stem.strip("_")
    return any(
        test.parent == module.parent
        and (test.name == f"test_{name}.py" or re.fullmatch(rf"test_{name}_\w+\.py", test.name))
        for test in unit_files
    )


def problems(
    sources: Mapping[Path, str], unit_files: Iterable[Path], integration_files: Iterable[str]
) -> list[str]:
    """What is wrong, a line each: ``sources`` maps modules (paths under resumer/) to their
    text, ``unit_files`` are paths under tests/unit/, ``integration_files`` are the files
    that exist, named as a docstring names them (``tests/integration/test_x.py``)."""
    unit_files, existing = list(unit_files), set(integration_files)
    found: list[str] = []
    for module, source in sorted(sources.items()):
        shown = module.as_posix()
        doc = ast.get_docstring(ast.parse(source)) or ""
        paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", doc.strip()) if p.strip()]
        tested_by = [n for n, p in enumerate(paragraphs) if p.startswith("Tested by")]
        if any(n != len(paragraphs) - 1 for n in tested_by):
            found.append(f'{shown}: its "Tested by" paragraph is not the docstring\'s last')
        named = paragraphs[-1] if paragraphs and paragraphs[-1].startswith(TESTED_BY) else None
        if named is not None and not _SENTENCE.fullmatch(named):
            found.append(f'{shown}: cannot read its "Tested by" paragraph: {named!r}')
        for name in re.findall(_FILE, named or ""):
            if name not in existing:
                found.append(f"{shown}: names {name}, which does not exist")
        if named is None and not has_unit_tests(module, unit_files):
            folder = "" if module.parent == Path() else f"{module.parent.as_posix()}/"
            expected = f"tests/unit/{folder}test_{module.stem.strip('_')}.py"
            found.append(
                f'{shown}: neither {expected} nor a last docstring paragraph "{TESTED_BY}..."'
            )
    return found


def test_every_module_has_unit_tests_or_names_the_integration_tests_that_cover_it() -> None:
    unit_files = [path.relative_to(UNIT) for path in UNIT.rglob("test_*.py")]
    integration = [path.relative_to(ROOT).as_posix() for path in INTEGRATION.glob("test_*.py")]
    assert problems(modules(PACKAGE), unit_files, integration) == []


def test_the_walk_finds_the_modules_and_leaves_out_packages_and_migrations() -> None:
    found = modules(PACKAGE)
    assert {Path("api.py"), Path("__main__.py"), Path("crawler/crawl.py")} <= set(found)
    assert (PACKAGE / "checkpoint" / "migrations" / "env.py").is_file()  # there to leave out
    assert not [p for p in found if p.name == "__init__.py" or "migrations" in p.parts]


# -- the check itself, on made-up modules (nothing is written into resumer/) ---------------

BARE = '"""A made-up module."""\n'
EXISTING = ["tests/integration/test_cli.py", "tests/integration/test_crash.py"]


def check(module: str, source: str = BARE, *unit_files: str) -> list[str]:
    return problems({Path(module): source}, map(Path, unit_files), EXISTING)


def test_a_made_up_module_with_neither_fails_the_check() -> None:
    assert check("crawler/madeup.py", BARE, "crawler/test_runner.py", "test_madeup.py") == [
        "crawler/madeup.py: neither tests/unit/crawler/test_madeup.py nor a last docstring"
        ' paragraph "Tested by tests/integration/..."'
    ]
    assert check("_madeup.py", "x = 1\n") == [  # no docstring at all
        "_madeup.py: neither tests/unit/test_madeup.py nor a last docstring paragraph"
        ' "Tested by tests/integration/..."'
    ]


@pytest.mark.parametrize(
    ("module", "unit_file"),
    [
        ("crawler/madeup.py", "crawler/test_madeup.py"),
        ("crawler/madeup.py", "crawler/test_madeup_fuzz.py"),  # one aspect of it
        ("_madeup.py", "test_madeup.py"),  # a leading underscore dropped
        ("madeup.py", "test_madeup.py"),
    ],
)
def test_a_unit_test_file_of_its_name_in_the_mirrored_folder_passes(
    module: str, unit_file: str
) -> None:
    assert check(module, BARE, unit_file) == []


@pytest.mark.parametrize(
    ("module", "unit_file"),
    [
        ("crawler/madeup.py", "job/test_madeup.py"),  # another folder
        ("crawler/madeup.py", "test_madeup.py"),
        ("crawler/madeup.py", "crawler/test_madeupx.py"),  # another name
        ("crawler/madeup.py", "crawler/test_made.py"),
    ],
)
def test_a_unit_test_file_elsewhere_or_of_another_name_does_not(
    module: str, unit_file: str
) -> None:
    assert len(check(module, BARE, unit_file)) == 1


@pytest.mark.parametrize(
    "paragraph",
    [
        "Tested by tests/integration/test_cli.py.",
        "Tested by tests/integration/test_cli.py and tests/integration/test_crash.py.",
        "Tested by tests/integration/test_cli.py, tests/integration/test_crash.py and\n"
        "tests/integration/test_cli.py.",
    ],
)
def test_a_last_paragraph_naming_existing_integration_tests_passes(paragraph: str) -> None:
    assert check("crawler/madeup.py", f'"""A made-up module.\n\n{paragraph}\n"""\n') == []


def test_a_named_integration_file_must_exist() -> None:
    named = "tests/integration/test_cli.py and tests/integration/test_gone.py"
    source = f'"""Made up.\n\nTested by {named}.\n"""\n'
    assert check("crawler/madeup.py", source, "crawler/test_madeup.py") == [
        "crawler/madeup.py: names tests/integration/test_gone.py, which does not exist"
    ]


def test_the_paragraph_must_be_last_and_in_the_given_form() -> None:
    not_last = '"""Made up.\n\nTested by tests/integration/test_cli.py.\n\nMore.\n"""\n'
    assert check("crawler/madeup.py", not_last) == [
        'crawler/madeup.py: its "Tested by" paragraph is not the docstring\'s last',
        "crawler/madeup.py: neither tests/unit/crawler/test_madeup.py nor a last docstring"
        ' paragraph "Tested by tests/integration/..."',
    ]
    loose = '"""Made up.\n\nTested by tests/integration/test_cli.py, and more.\n"""\n'
    assert check("crawler/madeup.py", loose) == [
        'crawler/madeup.py: cannot read its "Tested by" paragraph: '
        "'Tested by tests/integration/test_cli.py, and more.'"
    ]
