"""Giving the state database's free space back (docs/realtime.md, "How it grows").

DuckDB keeps the blocks a commit frees inside its file and reuses them for later writes, but
never hands them back: after an incremental run that rewrote much of the snapshot (the
first run of the day at 1,000 segments), a 211 MiB state held 109 MiB of free blocks. When,
after a command that wrote the state, more than :data:`SPARSE_SHARE` of the file and at
least :data:`MIN_FREE` is free, the database is copied into a new file (``COPY FROM
DATABASE``: tables, views, sequences and constraints, 3.0 s for that state) and renamed over
the old one, under the state lock. The copy is written aside and flushed before the rename,
so ``kill -9`` at any point leaves the old file or the new one, whole; an aside file left by
a crash is deleted by the next compaction. A copy that fails leaves the old file.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

import duckdb

from segctl.faults import crash_point
from segctl.packed import literal
from segctl.state.schema import S

#: Compact when more than this share of the file's blocks is free ...
SPARSE_SHARE = 0.25
#: ... and at least this many bytes are.
MIN_FREE = 64 * 1024 * 1024
#: The copy's name beside the database while it is written.
ASIDE = ".compacting"


def sparse(con: duckdb.DuckDBPyConnection) -> bool:
    """Checkpoint the attached state (as detaching it would) and say whether its file is
    sparse enough to compact."""
    con.execute(f"CHECKPOINT {S}")
    [(size, free, total)] = con.execute(
        "SELECT block_size, free_blocks, total_blocks FROM pragma_database_size() "
        "WHERE database_name = ?",
        [S],
    ).fetchall()
    return bool(total) and free > SPARSE_SHARE * total and free * size >= MIN_FREE


def compact(path: Path) -> bool:
    """Rewrite the detached database ``path`` without its free blocks (the caller holds the
    state lock); whether it did. Not when a write-ahead log is left beside it: its changes
    would not be in the copy."""
    aside = path.with_name(path.name + ASIDE)
    for stale in (aside, aside.with_name(aside.name + ".wal")):
        stale.unlink(missing_ok=True)
    if path.with_name(path.name + ".wal").exists():
        return False
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH {literal(str(path))} AS {S}")
        con.execute(f"ATTACH {literal(str(aside))} AS compacted")
        con.execute(f"COPY FROM DATABASE {S} TO compacted")
        con.execute("DETACH compacted")
        con.execute(f"DETACH {S}")
    except duckdb.Error:
        aside.unlink(missing_ok=True)
        return False
    finally:
        con.close()
    if aside.with_name(aside.name + ".wal").exists():
        aside.unlink(missing_ok=True)
        return False
    with aside.open("rb+") as handle:
        os.fsync(handle.fileno())
    crash_point("state:compaction-before-rename")
    os.replace(aside, path)
    with suppress(OSError):  # the rename's directory entry, where the platform allows it
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    return True
