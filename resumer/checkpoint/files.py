"""Writing a file so that it appears whole or not at all.

Owns: the temporary file beside the destination, renamed over it once written
(``os.replace`` within one folder is atomic), removed on any error. Must not:
know what is written (an export, a SQLite backup) or translate errors: callers
say what failed in their own words.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def whole_or_nothing(path: Path, *, mode: int | None = None) -> Iterator[Path]:
    """A new empty file beside ``path`` to write; once the block ends without an error it
    replaces ``path`` (with permissions ``mode``, less the umask, if given); on any error it
    is removed and ``path`` is left as it was.

    >>> with whole_or_nothing(Path(tempfile.mkdtemp()) / "out.txt") as temporary:
    ...     _ = temporary.write_text("all of it")
    """
    fd, name = tempfile.mkstemp(dir=path.absolute().parent, prefix=f".{path.name}.")
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        if mode is not None:
            os.chmod(temporary, mode & ~_umask())  # mkstemp's 0600 is not what `>` gives
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
