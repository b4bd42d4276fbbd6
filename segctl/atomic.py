"""Files written whole or not at all.

A writer killed halfway (a crash, ``kill -9``, a full disk) must not leave half a report where
the previous one was: :func:`replacing` hands out a temporary file next to the target and renames
it over the target only once it is complete (a rename within a folder is atomic on POSIX).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; renamed over ``path`` when the block
    succeeds, removed when it fails.

    >>> with replacing(Path("report.html")) as partial:  # doctest: +SKIP
    ...     partial.write_text(html)
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield partial
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _remove_stale(path: Path) -> None:
    """Temporary files of ``path`` whose writer is gone (it was killed before renaming)."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        pid = stale.name[len(path.name) + 2 : -4]
        if pid.isdigit() and not _alive(int(pid)):
            stale.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True
