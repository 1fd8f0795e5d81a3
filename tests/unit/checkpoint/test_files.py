"""A file written whole or not at all: the temporary file sits beside the destination and
replaces it only once the block ends without an error; on an error it is removed and the
destination is left as it was; a requested mode is applied less the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from resumer.checkpoint.files import whole_or_nothing


@pytest.fixture
def umask_027() -> Iterator[None]:
    previous = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(previous)


def test_the_file_appears_once_written_and_nothing_is_left_beside_it(tmp_path: Path) -> None:
    dest = tmp_path / "out.txt"
    with whole_or_nothing(dest) as temporary:
        assert temporary.parent == tmp_path
        assert temporary.name.startswith(".out.txt.")
        temporary.write_text("all of it", encoding="utf-8")
        assert not dest.exists()  # not before the block ends
    assert dest.read_text(encoding="utf-8") == "all of it"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_an_existing_file_is_replaced(tmp_path: Path) -> None:
    dest = tmp_path / "out.txt"
    dest.write_text("old", encoding="utf-8")
    with whole_or_nothing(dest) as temporary:
        temporary.write_text("new", encoding="utf-8")
    assert dest.read_text(encoding="utf-8") == "new"


def test_an_error_leaves_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    dest = tmp_path / "out.txt"
    dest.write_text("old", encoding="utf-8")
    with pytest.raises(OSError, match="disk full"), whole_or_nothing(dest) as temporary:
        temporary.write_text("half of i", encoding="utf-8")
        raise OSError("disk full")
    assert dest.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_a_keyboard_interrupt_removes_the_temporary_too(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), whole_or_nothing(tmp_path / "out.txt"):
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("umask_027")
def test_a_requested_mode_is_applied_less_the_umask(tmp_path: Path) -> None:
    dest = tmp_path / "out.txt"
    with whole_or_nothing(dest, mode=0o666) as temporary:
        temporary.write_text("x", encoding="utf-8")
    assert stat.S_IMODE(dest.stat().st_mode) == 0o640
