"""``import resumer``: exactly the names CONTRACT.md gives, typed, and cheap to import.

``__all__`` is the one list of the public API: these tests hold it to what the
package really exports, so a name added to one and not the other, or a subpackage
whose name shadows a public function (``resumer.run`` the crawl, not a folder), fails.
"""

from __future__ import annotations
import __future__

import importlib
import inspect
import pkgutil
import subprocess
import sys

import resumer

CONTRACT = {  # CONTRACT.md, "Python API"
    "load_job",
    "job_from_dict",
    "run",
    "resume",
    "export",
    "status",
    "Job",
    "Node",
    "JobStatus",
    "Outcome",
    "ResumerError",
    "diff",  # "Recurring crawls": resumer.diff(old, new, ...)
    "Change",  # the typed, frozen changes it yields
}
HEAVY = ("httpx", "httpcore", "rich", "typer", "tenacity", "prometheus_client")


def _every_module_imported() -> None:
    """Import every module of the package, as a long-running program may have."""
    for info in pkgutil.walk_packages(resumer.__path__, "resumer."):
        if ".migrations" not in info.name and info.name != "resumer.__main__":
            importlib.import_module(info.name)


def public_names() -> set[str]:
    """What ``resumer`` exports: its attributes that are neither private nor modules
    (nor the ``from __future__`` feature a module's first lines import)."""
    return {
        name
        for name, value in vars(resumer).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and not isinstance(value, __future__._Feature)
    }


def test_all_is_what_the_package_exports_once_every_module_is_loaded() -> None:
    _every_module_imported()
    assert set(resumer.__all__) == public_names() | {"__version__"}
    assert len(resumer.__all__) == len(set(resumer.__all__))


def test_the_exports_are_the_contracts_names_and_no_other() -> None:
    assert set(resumer.__all__) - {"__version__"} == CONTRACT


def test_every_export_is_defined_in_the_package_and_not_a_module() -> None:
    _every_module_imported()
    for name in CONTRACT:
        value = getattr(resumer, name)
        assert not inspect.ismodule(value), f"resumer.{name} is a module"
        assert value.__module__.startswith("resumer."), name


def test_the_check_sees_a_name_missing_from_all() -> None:
    """The comparison above can fail: a public attribute not in ``__all__`` shows."""
    resumer.extra_name = object()  # type: ignore[attr-defined]
    try:
        assert "extra_name" in public_names() - set(resumer.__all__)
    finally:
        del resumer.extra_name  # type: ignore[attr-defined]


def test_importing_the_api_loads_no_http_or_terminal_library() -> None:
    code = (
        "import sys, resumer, resumer.api\n"
        f"print(','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert loaded == ""
