"""The one error tree: every error class resumer defines is a ResumerError, and the tree
drawn in ``errors.py``'s docstring is the tree the classes really make."""

from __future__ import annotations

import importlib
import pkgutil
import re
from typing import NamedTuple

import pytest

import resumer
from resumer import errors
from resumer.errors import ResumerError, describe

SKIPPED_MODULES = (
    "resumer.__main__",
    "resumer.checkpoint.migrations",
)  # runs the CLI; Alembic's env
BRANCH = re.compile(r"^(?P<indent>[\s│]*)(?:[├└]── )?(?P<name>[A-Z]\w+)\b\s*(?P<rest>.*)$")
DEFINED_IN = re.compile(r"^\((?P<file>[\w/]+\.py)\)")


def error_classes() -> dict[str, type[BaseException]]:
    """Every public exception class defined in the resumer package, by name."""
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.walk_packages(resumer.__path__, "resumer."):
        if module_info.name.startswith(SKIPPED_MODULES):
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__  # defined here, not imported
                and not name.startswith("_")
            ):
                found[name] = value
    return found


class Drawn(NamedTuple):
    name: str
    parent: str | None
    module: str  # where the tree says the class is defined


def drawn_tree() -> list[Drawn]:
    """The classes of the tree in ``errors.py``'s docstring, each with its drawn parent."""
    doc = errors.__doc__ or ""
    lines = doc.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "ResumerError")
    root_column = lines[start].index("ResumerError")
    tree: list[Drawn] = []
    parents: list[str] = []  # the path from the root to the last class drawn
    for line in lines[start:]:
        if not line.strip():
            break
        match = BRANCH.match(line)
        assert match, f"a line of the tree is not a branch: {line!r}"
        depth = (match.start("name") - root_column) // 4
        assert depth <= len(parents), f"a branch with no parent: {line!r}"
        del parents[depth:]
        where = DEFINED_IN.match(match["rest"])
        module = "errors" if where is None else where["file"].removesuffix(".py")
        tree.append(Drawn(match["name"], parents[-1] if parents else None, module))
        parents.append(match["name"])
    return tree


CLASSES = error_classes()
TREE = drawn_tree()


def test_the_tree_is_found_and_covers_the_documented_hierarchy() -> None:
    names = [drawn.name for drawn in TREE]
    assert names[0] == "ResumerError" and TREE[0].parent is None
    assert {"ConfigError", "CheckpointError", "QueryError", "RunError"} <= set(names)
    assert len(names) == len(set(names)), "a class is drawn twice"


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_every_public_error_class_is_a_resumer_error(name: str) -> None:
    assert issubclass(CLASSES[name], ResumerError), (
        f"{CLASSES[name].__module__}.{name} is not a ResumerError: put it in errors.py's tree"
    )


def test_the_tree_in_the_docstring_names_every_error_class_and_no_other() -> None:
    drawn = {entry.name for entry in TREE}
    assert set(CLASSES) - drawn == set(), "classes missing from errors.py's docstring tree"
    assert drawn - set(CLASSES) == set(), "the tree names classes that do not exist"


@pytest.mark.parametrize("entry", TREE[1:], ids=lambda entry: entry.name)
def test_each_class_is_drawn_under_its_own_base(entry: Drawn) -> None:
    cls = CLASSES[entry.name]
    bases = [base.__name__ for base in cls.__bases__ if issubclass(base, ResumerError)]
    assert bases == [entry.parent], f"{entry.name} derives from {bases}"


@pytest.mark.parametrize("entry", TREE, ids=lambda entry: entry.name)
def test_the_tree_says_where_each_class_is_defined(entry: Drawn) -> None:
    module = "resumer." + entry.module.replace("/", ".")
    assert CLASSES[entry.name].__module__ == module


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_every_error_class_says_what_it_means(name: str) -> None:
    doc = CLASSES[name].__doc__  # a class's own: docstrings are not inherited
    assert doc and len(doc.split()) >= 5


def test_moved_classes_are_still_importable_from_where_they_were() -> None:
    from resumer.job.template import TemplateError as from_template
    from resumer.policies.retry import Stopped as from_policies
    from resumer.policies.retry import Stopped as from_retry

    assert from_policies is from_retry is errors.Stopped
    assert from_template is errors.TemplateError


def test_a_template_error_is_still_a_value_error_and_is_raised_by_compile() -> None:
    from resumer.job.template import Template

    with pytest.raises(ValueError, match="unknown placeholder") as raised:
        Template.compile("/children/{nope}")
    assert isinstance(raised.value, ResumerError)


def test_stopped_raised_bare_still_says_what_happened() -> None:
    assert str(errors.Stopped()) == "a stop was requested while a query waited"


def test_describe_puts_any_error_on_one_line_and_never_raises() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert describe(ZeroDivisionError("division\nby zero")) == "ZeroDivisionError: division by zero"
    assert describe(KeyboardInterrupt()) == "KeyboardInterrupt"
    assert describe(Unprintable()) == "Unprintable (its message could not be read)"
