"""The state's copy of the events, clustered by person (state schema v5; docs/realtime.md,
"How it grows").

An incremental run re-evaluates the persons of the set D from their whole history. Reading
their rows from the event files means a scan of every file (their rows are spread over all of
them, a day per file); the copy holds the ``events`` view's rows sorted by person, so that
D's rows are one semi-join on an integer key over a few files, whose other columns DuckDB
decodes only where D's rows are (0.33 to 0.65 s instead of 1.8 to 2.4 s at 50M events).

- Parquet files in ``<state>/events/``, each sorted by ``(h, timestamp)``, ``h`` the engine's
  ``hash(person_id)``: the first run that keeps a copy writes one of every row (so does a
  run after a file it holds changed or vanished, or the data configuration, timezone or
  columns changed), and every other run with new files, full or incremental, one of
  theirs; the small ones are merged once there are :data:`MAX_FILES`, and everything is
  merged once the small ones hold :data:`UNSORTED_SHARE` of the rows.
- ``event_copy``: the files that make up the copy, the run whose input files they hold the
  rows of, and the DuckDB version that computed ``h``.

It is a cache: a run that does not keep it records no files, and it is read only when its
run is the last committed run and its DuckDB version is the engine's, so a copy some other
writer left behind is never read. Files are written under new names before the run commits
and recorded in its transaction; files no committed record names are deleted after it
(:func:`collect`), so ``kill -9`` leaves the old copy with the old run. ``segctl forget``
drops the copy: the next run writes it again without the erased persons.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from segctl.packed import literal, quote
from segctl.state.queries import forgotten_sql
from segctl.state.schema import S

if TYPE_CHECKING:
    import duckdb

    from segctl.state.store import StateStore

#: The copy's folder, inside the state folder.
FOLDER = "events"
#: Parquet 2's encodings: a person's timestamps, sorted, are stored as deltas (at 50M events
#: the copy is 368 MiB instead of 432, and D's rows read in 0.33 s instead of 0.5).
FORMAT = "FORMAT parquet, COMPRESSION zstd, PARQUET_VERSION V2"
#: Incremental runs' files are merged into one when there are this many ...
MAX_FILES = 16
#: ... and into the whole once they hold this share of the rows.
UNSORTED_SHARE = 0.25


def current(store: StateStore, run_id: int, version: str) -> list[Path] | None:
    """The copy's files when it holds the rows of run ``run_id``'s input files (and was
    written by this DuckDB ``version``), else None."""
    rows = store.rows(f"SELECT file, run_id, version FROM {S}.event_copy ORDER BY file")
    if not rows or any(r[1] != run_id or r[2] != version for r in rows):
        return None
    files = [store.folder / FOLDER / str(r[0]) for r in rows]
    return files if all(f.is_file() for f in files) else None


def read(
    con: duckdb.DuckDBPyConnection,
    files: list[Path],
    persons_table: str,
    into: str,
    columns: list[str],
    raw: str | None,
) -> None:
    """Insert into the table ``into`` the copy's rows of the persons in ``persons_table``:
    their ``columns`` of the ``events`` view, by name (``raw``: see :func:`write`)."""
    listed = [
        f"coalesce({quote(c)}, {_same_instant()}) AS {quote(c)}" if c == raw else quote(c)
        for c in columns
    ]
    persons = f"SELECT person_id FROM {quote(persons_table)}"
    # The largest file first: DuckDB estimates a Parquet scan's rows from its first file.
    # A small file first (an incremental run's, by name) made it 2,000 rows instead of 50
    # million, so it built the join's hash table on the copy, not on D, and lost the filter
    # on h that skips the row groups without D's persons: 4.0 s instead of 0.63 s.
    largest = sorted(files, key=lambda f: f.stat().st_size, reverse=True)
    con.execute(
        f"INSERT INTO {quote(into)} BY NAME SELECT {', '.join(listed)} "
        f"FROM {_files(largest)} WHERE h IN (SELECT hash(person_id) FROM ({persons})) "
        f"AND person_id IN ({persons})"
    )


def write(store: StateStore, rows: str, raw: str | None) -> str:
    """Write the rows of the table or view ``rows`` (the ``events`` view's, or some of them)
    to a new file of the copy, sorted, without the erased persons; its name. ``raw``: a
    column of the view holding, as a TIMESTAMPTZ, the instant of ``timestamp`` on (almost)
    every row (the source's own timestamp, for the plans' pushed-down filter): the copy holds
    it only where it differs (an infinite value), NULL elsewhere, which costs nothing."""
    folder = store.folder / FOLDER
    folder.mkdir(exist_ok=True)
    name = f"{uuid.uuid4().hex}.parquet"
    columns = "*"
    if raw is not None:
        same = f"{quote(raw)} IS NOT DISTINCT FROM {_same_instant()}"
        kept = f"CASE WHEN {same} THEN NULL ELSE {quote(raw)} END"
        columns = f"* EXCLUDE ({quote(raw)}), {kept} AS {quote(raw)}"
    erased = ""
    if store.rows(f"SELECT count(*) FROM {S}.forgotten")[0][0]:
        erased = f" WHERE sha256(person_id) NOT IN ({forgotten_sql()})"
    store.con.execute(
        f"COPY (SELECT hash(person_id) AS h, {columns} FROM {quote(rows)}{erased} "
        f'ORDER BY h, "timestamp") TO {literal(str(folder / name))} '
        f"({FORMAT})"
    )
    return name


def merge(store: StateStore, files: list[Path]) -> str:
    """Write the rows of ``files`` of the copy to one new file, sorted; its name."""
    name = f"{uuid.uuid4().hex}.parquet"
    store.con.execute(
        f'COPY (SELECT * FROM {_files(files)} ORDER BY h, "timestamp") '
        f"TO {literal(str(store.folder / FOLDER / name))} ({FORMAT})"
    )
    return name


def grown(store: StateStore, files: list[Path], added: str) -> list[str]:
    """The copy's file names once ``added`` (a new file of the run's new rows) joins
    ``files``: merged when the small files are too many or too large (module docstring)."""
    names = [f.name for f in files]
    if not files:
        return [added]
    sizes = {f.name: f.stat().st_size for f in files}
    base = max(names, key=lambda n: sizes[n])
    small = [*(n for n in names if n != base), added]
    folder = store.folder / FOLDER
    if (folder / added).stat().st_size + sum(sizes[n] for n in small[:-1]) > (
        UNSORTED_SHARE * sizes[base]
    ):
        return [merge(store, [folder / n for n in [base, *small]])]
    if len(small) >= MAX_FILES:
        return [base, merge(store, [folder / n for n in small])]
    return [base, *small]


def record(store: StateStore, run_id: int, version: str, names: list[str]) -> None:
    """Inside the commit's transaction: the copy is ``names``, holding run ``run_id``'s rows
    (none: no copy)."""
    store.con.execute(f"DELETE FROM {S}.event_copy")
    if names:
        store.con.execute(
            f"INSERT INTO {S}.event_copy SELECT unnest(?), ?, ?", [names, run_id, version]
        )


def collect(store: StateStore) -> None:
    """Delete the files of the copy that no committed record names (after the commit)."""
    folder = store.folder / FOLDER
    if not folder.is_dir():
        return
    kept = {str(r[0]) for r in store.rows(f"SELECT file FROM {S}.event_copy")}
    for path in folder.iterdir():
        if path.name not in kept:
            path.unlink(missing_ok=True)


def _files(files: list[Path]) -> str:
    return f"read_parquet([{', '.join(literal(str(f)) for f in files)}])"


def _same_instant() -> str:
    """``timestamp`` (naive UTC) as a TIMESTAMPTZ."""
    return 'make_timestamptz(epoch_us("timestamp"))'
