"""An exclusive lock on the state folder, naming its holder.

``flock`` is released by the kernel when the holder dies, even by ``kill -9``, so a crashed run
never leaves a stale lock behind; the holder's pid and start time are written into the lock file
only so that a waiting command can say who it waited for.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

from segctl.errors import StateError, StateLockedError

LOCK_FILE = "segctl.lock"


@contextmanager
def state_lock(
    folder: Path, *, wait: float = 0.0, command: str = "", record: bool = True
) -> Iterator[None]:
    """Hold the state folder's lock, waiting up to ``wait`` seconds for another holder;
    ``record``: write who holds it into the lock file (a brief peek at the state, before the
    command has checked its input, leaves the folder as it was)."""
    path = folder / LOCK_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StateError(f"cannot use the state folder {folder}: {exc.strerror or exc}") from None
    try:
        deadline = time.monotonic() + max(wait, 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StateLockedError(_held_message(path, wait)) from None
                time.sleep(0.1)
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command or " ".join(["segctl", *sys.argv[1:2]]),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if record:
            with suppress(OSError):  # who holds it is only news: a full disk must not stop us
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(holder).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _held_message(path: Path, wait: float) -> str:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    who = (
        f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} "
        f"({holder.get('command', 'segctl')}, started {holder.get('started_at', '?')})"
    )
    waited = f"after waiting {wait:g}s" if wait else "(use --wait SECONDS to wait for it)"
    return f"the state folder {path.parent} is locked by {who} {waited}"
