"""The state store: an embedded DuckDB database in the state folder (SPEC section 5).

It records runs, per-run segment figures, membership transitions (a row per entry or exit, not
a copy per run, keyed by integers for person and segment; intervals are derived from them),
the last committed snapshot (one row per person), the delivery outbox, synced audiences, tags
and the erasure audit.
The database is ATTACHed to the evaluation connection as ``segctl_state`` so that diffs are set
arithmetic inside one DuckDB. A run's snapshot, history and queued work commit in one
transaction; DuckDB's write-ahead log makes that atomic even under ``kill -9``.

Schema changes are migrations (:mod:`segctl.state.schema`).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from segctl import packed
from segctl.errors import StateError, UsageError
from segctl.faults import crash_point
from segctl.lock import state_lock
from segctl.packed import literal, quote
from segctl.state import compaction
from segctl.state.schema import DB_FILE, MIGRATIONS, SCHEMA_VERSION, S, insert_layout
from segctl.tempnames import CHANGED_TABLE, REPLACED_TABLE, RUN_ENTERED_VIEW, RUN_EXITED_VIEW
from segctl.timeutil import now_utc

#: What a recorded input file is: the same in two runs, it was read as it was.
INPUT_COLUMNS = ("source", "path", "size", "mtime_ns", "fingerprint")
CHECKPOINT_THRESHOLD = "1GB"  # write-ahead log size that makes DuckDB checkpoint mid-command


@dataclass(frozen=True)
class Run:
    run_id: int
    kind: str
    as_of: datetime
    started_at: datetime
    finished_at: datetime


class StateStore:
    """Queries and writes on an attached state database; open with :meth:`open`.

    A DuckDB connection is not thread-safe: code that uses the store from several threads
    (the delivery worker) holds :attr:`lock` around direct ``con`` calls; :meth:`rows`,
    :meth:`executemany` and :meth:`transaction` take it themselves.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, folder: Path) -> None:
        self.con = con
        self.folder = folder
        self.lock = threading.RLock()
        #: Rewrite the file when it is closed, whatever its free space: an erasure's rows
        #: would otherwise linger in the blocks DuckDB freed, readable in the file's bytes.
        self.compact_on_close = False

    @staticmethod
    def exists(folder: Path) -> bool:
        return (folder / DB_FILE).is_file()

    @classmethod
    @contextmanager
    def open(
        cls,
        folder: Path,
        *,
        con: duckdb.DuckDBPyConnection | None = None,
        wait: float = 0.0,
        create: bool = False,
        command: str = "",
        locked: bool = False,
        write: bool = False,
    ) -> Iterator[StateStore]:
        """Lock the folder (unless the caller holds the lock: ``locked``), attach the
        database (and if ``create``, initialise it); read-only unless ``write`` or ``create``,
        which also migrate a database written by an older segctl.

        The database is detached before the lock is released, so the next holder finds it
        closed and checkpointed; after a write, compacted when over a quarter of it is free
        (:mod:`segctl.state.compaction`)."""
        if not create and not cls.exists(folder):
            raise UsageError(f"no state in {folder} yet: run `segctl run` first")
        connection = con or duckdb.connect(":memory:")
        lock = nullcontext() if locked else state_lock(folder, wait=wait, command=command)
        with lock:
            path = folder / DB_FILE
            if create and not path.exists():
                _create(path)
            mode = "" if write or create else " (READ_ONLY)"
            try:
                connection.execute(f"ATTACH {literal(str(path))} AS {S}{mode}")
            except duckdb.Error as exc:
                raise StateError(
                    f"cannot open the state database {path}: {_first_line(exc)}. If it is "
                    "corrupted, restore it from a backup or move the state folder away to "
                    "start afresh (history and the delivery outbox would be lost)"
                ) from None
            if write or create:
                # Every commit is durable in the write-ahead log; DuckDB's default also
                # checkpoints (rewrites the changed tables into the file) whenever the log
                # passes 16 MB, inside a commit, under the store's lock. A push of three
                # 100k-member audiences crossed it every few batches, and under IO contention
                # the syncs queued on it (45 s -> 28 s; the same on a quiet machine). The
                # checkpoint now happens once, at DETACH below.
                connection.execute(f"SET checkpoint_threshold = {literal(CHECKPOINT_THRESHOLD)}")
            store = cls(connection, folder)
            try:
                store._migrate(create or write)
                yield store
            finally:
                sparse = False
                if write or create:
                    with suppress(duckdb.Error):
                        sparse = compaction.sparse(connection)
                with suppress(duckdb.Error):
                    connection.execute(f"DETACH {S}")
                if con is None:
                    connection.close()
                if sparse or store.compact_on_close:
                    compaction.compact(path)

    # ---- schema -----------------------------------------------------------------------

    def _version(self) -> int:
        tables = self.rows("SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [S])
        if not tables:
            return 0
        if ("meta",) not in tables:
            raise StateError(f"{self.folder / DB_FILE} is not a segctl state database")
        row = self.rows(f"SELECT value FROM {S}.meta WHERE key = 'schema_version'")
        return int(row[0][0]) if row else 0

    def _migrate(self, writable: bool) -> None:
        version = self._version()
        if version > SCHEMA_VERSION:
            raise StateError(
                f"the state in {self.folder} was written by a newer segctl (state schema "
                f"v{version}; this segctl knows up to v{SCHEMA_VERSION}): upgrade segctl"
            )
        if version == SCHEMA_VERSION or (version == 0 and not writable):
            return
        if not writable:
            raise StateError(
                f"the state in {self.folder} uses schema v{version} and needs migrating to "
                f"v{SCHEMA_VERSION}: run `segctl run` (or `segctl push`) once to migrate it"
            )
        with self.transaction():
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target]:
                    if isinstance(statement, str):
                        self.con.execute(statement)
                    else:
                        statement(self.con)
            self.con.execute(
                f"INSERT OR REPLACE INTO {S}.meta VALUES ('schema_version', ?)",
                [str(SCHEMA_VERSION)],
            )

    def swap_meta(self, key: str, value: str) -> bool:
        """Set ``meta[key]`` to ``value`` (in the caller's transaction); whether it held
        another value (a key never set holds "")."""
        found = self.rows(f"SELECT value FROM {S}.meta WHERE key = ?", [key])
        self.con.execute(f"INSERT OR REPLACE INTO {S}.meta VALUES (?, ?)", [key, value])
        return (str(found[0][0]) if found else "") != value

    def origin(self) -> str:
        """This state's random id, made the first time it is asked for (a write): the outbox's
        keys start with it, so that two state folders (two projects, or one whose state was
        reset) never send the same webhook-id or Idempotency-Key for different messages."""
        found = self.rows(f"SELECT value FROM {S}.meta WHERE key = 'origin'")
        if found:
            return str(found[0][0])
        origin = uuid.uuid4().hex[:16]
        self.con.execute(f"INSERT INTO {S}.meta VALUES ('origin', ?)", [origin])
        return origin

    # ---- helpers ----------------------------------------------------------------------

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with self.lock:
            return self.con.execute(sql, params or []).fetchall()

    def executemany(self, sql: str, rows: list[list[Any]]) -> None:
        """``executemany`` that accepts an empty list (DuckDB refuses one)."""
        if rows:
            with self.lock:
                self.con.executemany(sql, rows)

    def _insert_columns(
        self, table: str, run_id: int, rows: Sequence[Sequence[Any]], width: int
    ) -> None:
        """Insert ``(run_id, *row)`` for each row of ``width`` values in one statement."""
        if rows:
            columns = [list(column) for column in zip(*rows, strict=True)]
            self.con.execute(
                f"INSERT INTO {S}.{table} SELECT ?, {', '.join(['unnest(?)'] * width)}",
                [run_id, *columns],
            )

    def _record_inputs(self, run_id: int, inputs: Sequence[Sequence[Any]]) -> None:
        """Record the files run ``run_id`` read: a file the run before read as it is now
        extends that run's span (``input_files``), any other starts one."""
        if not inputs:
            return
        columns = [list(column) for column in zip(*inputs, strict=True)]
        read = (
            "(SELECT unnest(?) AS source, unnest(?) AS path, unnest(?) AS size, "
            "unnest(?) AS mtime_ns, unnest(?) AS fingerprint)"
        )
        same = " AND ".join(f"f.{c} = n.{c}" for c in INPUT_COLUMNS)
        self.con.execute(
            f"UPDATE {S}.input_files AS f SET to_run = ? FROM {read} AS n "
            f"WHERE f.to_run = ? AND {same}",
            [run_id, *columns, run_id - 1],
        )
        self.con.execute(
            f"""INSERT INTO {S}.input_files SELECT n.*, ?, ? FROM {read} AS n
                WHERE NOT EXISTS (SELECT 1 FROM {S}.input_files AS f
                                  WHERE f.to_run = ? AND {same})""",
            [run_id, run_id, *columns, run_id],
        )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit: everything inside commits together or not at all (and holds
        :attr:`lock` throughout, so no other thread's statement lands in it)."""
        with self.lock:
            self.con.execute("BEGIN TRANSACTION")
            try:
                yield
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            try:
                self.con.execute("COMMIT")
            except duckdb.Error as exc:  # a full disk, a folder that became read-only
                raise StateError(
                    f"cannot write the state in {self.folder}: {_first_line(exc)} (nothing of "
                    "this step was committed: free some space or make the folder writable, and "
                    "run again)"
                ) from None

    # ---- runs -------------------------------------------------------------------------

    def runs(self) -> list[Run]:
        return [
            Run(*row)
            for row in self.rows(
                f"SELECT run_id, kind, as_of, started_at, finished_at FROM {S}.runs ORDER BY run_id"
            )
        ]

    def last_run(self) -> Run | None:
        runs = self.runs()
        return runs[-1] if runs else None

    def run(self, run_id: int) -> Run:
        for run in self.runs():
            if run.run_id == run_id:
                return run
        known = ", ".join(str(r.run_id) for r in self.runs()[-5:]) or "none yet"
        raise UsageError(f"no committed run {run_id} (latest runs: {known})")

    def known_segments(self) -> set[str]:
        return {r[0] for r in self.rows(f"SELECT DISTINCT segment FROM {S}.run_segments")}

    def snapshot_segments(self) -> list[str]:
        """The committed snapshot's layout (:mod:`segctl.packed`): every segment ever
        committed, by slot."""
        return [r[0] for r in self.rows(f"SELECT segment FROM {S}.snapshot_layout ORDER BY slot")]

    def member_test(self, segment: str, alias: str) -> str | None:
        """SQL true when the snapshot row ``alias`` is a member of ``segment`` (None when the
        segment has never been committed)."""
        layout = self.snapshot_segments()
        return packed.is_set(layout.index(segment), alias) if segment in layout else None

    def commit_run(
        self,
        *,
        kind: str,
        as_of: datetime,
        started_at: datetime,
        figures: list[tuple[str, str, int, int, int, bool]],
        result_table: str,
        queue: Callable[[int], object] | None = None,
        config_hash: str = "",
        inputs: Sequence[tuple[str, str, int, int, str]] = (),
    ) -> int:
        """Commit a run atomically: the run row, its figures, the transitions staged in the
        temp views ``run_entered``/``run_exited``, the new snapshot (from ``result_table``,
        packed in the layout of the segments in ``figures``, and the old one for the others)
        and whatever ``queue(run_id)`` adds.

        ``figures`` holds (segment, definition_hash, size, entered, exited, first_run);
        ``inputs`` the files the run read, (source, path, size, mtime_ns, fingerprint). When
        the snapshot's layout starts with the evaluated segments (the same catalogue as last
        time, and the segments since removed, whose members it keeps), only the rows of the
        persons in the temp table ``changed`` (from :func:`segctl.diff.compute`) are
        replaced; otherwise the snapshot is rewritten whole. An incremental run's
        ``result_table`` holds the rows of its persons alone, so its layout must be such.
        """
        from segctl.version import __version__

        evaluated = [f[0] for f in figures]
        layout = self.snapshot_segments()
        if layout and layout == evaluated:
            words = packed.words(len(layout))
            changed = f"SELECT person_id FROM {CHANGED_TABLE}"
            update = [
                f"DELETE FROM {S}.snapshot WHERE person_id IN ({changed})",
                f"""INSERT INTO {S}.snapshot SELECT person_id, {", ".join(words)}
                    FROM {quote(result_table)}
                    WHERE person_id IN ({changed}) AND {packed.nonzero(words)}""",
            ]
        elif layout and layout[: len(evaluated)] == evaluated:
            update = _replace_changed(evaluated, layout, result_table)
        else:
            update = _rewrite_snapshot(evaluated, layout, result_table)
        with self.transaction():
            run_id = int(self.rows(f"SELECT coalesce(max(run_id), 0) + 1 FROM {S}.runs")[0][0])
            self.con.execute(
                f"INSERT INTO {S}.runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                [run_id, kind, as_of, started_at, now_utc(), __version__, config_hash],
            )
            crash_point("commit:after-run-row")
            # One statement each: executemany costs a millisecond a row (0.37 s for the
            # figures of 1,000 segments).
            self._record_inputs(run_id, inputs)
            self._insert_columns("run_segments", run_id, figures, 6)
            self._insert_transitions(run_id, evaluated, sum(f[3] + f[4] for f in figures))
            crash_point("commit:after-transitions")
            for statement in update:
                self.con.execute(statement)
            if queue is not None:
                queue(run_id)
            crash_point("commit:before-commit")
        crash_point("commit:after-commit")
        return run_id

    def _insert_transitions(self, run_id: int, segments: list[str], expected: int) -> None:
        """Append the ``expected`` transitions staged in ``run_entered``/``run_exited`` (of
        ``segments``, their persons in ``changed``) as keyed rows, sorted by segment and
        person (they bit-pack so), giving a key to each segment and person new to the
        history."""
        moves = f"""SELECT segment, person_id, false AS entered FROM {RUN_EXITED_VIEW}
                    UNION ALL SELECT segment, person_id, true FROM {RUN_ENTERED_VIEW}"""
        self.con.execute(
            f"""INSERT INTO {S}.segment_keys
                SELECT (SELECT coalesce(max(segment_key), -1) FROM {S}.segment_keys)
                       + row_number() OVER (ORDER BY segment), segment
                FROM unnest(?::VARCHAR[]) AS names(segment)
                WHERE segment NOT IN (SELECT segment FROM {S}.segment_keys)""",
            [segments],
        )
        self.con.execute(
            f"""INSERT INTO {S}.person_keys
                SELECT (SELECT coalesce(max(person_key), -1) FROM {S}.person_keys)
                       + row_number() OVER (ORDER BY person_id), person_id
                FROM (SELECT DISTINCT person_id FROM {CHANGED_TABLE}) AS c
                -- an anti-join DuckDB builds on the few changed persons, where NOT IN
                -- hashed every key (0.04 s at a million persons, now 0.013 s)
                WHERE c.person_id IS NOT NULL AND NOT EXISTS (
                    SELECT 1 FROM {S}.person_keys AS k WHERE k.person_id = c.person_id
                )"""
        )
        [(inserted,)] = self.con.execute(
            f"""INSERT INTO {S}.transition_rows
                SELECT ?, g.segment_key, p.person_key, m.entered FROM ({moves}) AS m
                JOIN {S}.segment_keys AS g ON g.segment = m.segment
                JOIN {S}.person_keys AS p ON p.person_id = m.person_id
                ORDER BY g.segment_key, p.person_key""",
            [run_id],
        ).fetchall()
        if inserted != expected:  # a transition without its key: never commit a partial one
            raise StateError(
                f"run {run_id} recorded {inserted:,} of its {expected:,} transitions; "
                "nothing was committed (please report this)"
            )


def _replace_changed(evaluated: list[str], layout: list[str], result_table: str) -> list[str]:
    """Statements replacing the snapshot rows of the persons in ``changed``, in a layout
    that starts with ``evaluated`` and goes on with segments no longer defined: their new
    words from ``result_table``, the removed segments' bits kept from their old row."""
    kept = [None] * len(evaluated) + layout[len(evaluated) :]
    new = packed.convert(evaluated, layout, "r")
    old = packed.convert(kept, layout, "s")
    columns = packed.words(len(layout))
    values = ", ".join(f"{n} | {o} AS {w}" for n, o, w in zip(new, old, columns, strict=True))
    changed = f"SELECT DISTINCT person_id FROM {CHANGED_TABLE}"
    return [
        f"""CREATE OR REPLACE TEMP TABLE {REPLACED_TABLE} AS SELECT * FROM (
                SELECT c.person_id, {values} FROM ({changed}) AS c
                LEFT JOIN {quote(result_table)} AS r ON r.person_id = c.person_id
                LEFT JOIN {S}.snapshot AS s ON s.person_id = c.person_id
            ) WHERE {packed.nonzero(columns)}""",
        f"DELETE FROM {S}.snapshot WHERE person_id IN ({changed})",
        f"INSERT INTO {S}.snapshot SELECT * FROM {REPLACED_TABLE}",
        f"DROP TABLE {REPLACED_TABLE}",
    ]


def _rewrite_snapshot(evaluated: list[str], layout: list[str], result_table: str) -> list[str]:
    """Statements rewriting the snapshot whole in the layout ``evaluated`` + the segments of
    ``layout`` not evaluated (kept as they were). Persons in no segment are dropped to keep
    it compact."""
    target = evaluated + [n for n in layout if n not in evaluated]
    kept = [n if n not in evaluated else None for n in layout]
    new = packed.convert(evaluated, target, "r")
    old = packed.convert(kept, target, "s")
    columns = packed.words(len(target))
    values = ", ".join(f"{n} | {o} AS {w}" for n, o, w in zip(new, old, columns, strict=True))
    return [
        f"""CREATE OR REPLACE TABLE {S}.snapshot AS SELECT * FROM (
                SELECT coalesce(r.person_id, s.person_id) AS person_id, {values}
                FROM {quote(result_table)} AS r FULL JOIN {S}.snapshot AS s
                ON r.person_id = s.person_id
            ) WHERE {packed.nonzero(columns)}""",
        f"DELETE FROM {S}.snapshot_layout",
        insert_layout(target),
    ]


def _create(path: Path) -> None:
    """Create the state database under a temporary name and rename it into place once its
    schema is committed, so that a crash while creating it (even ``kill -9``) never leaves an
    empty database behind (every later command would fail on it)."""
    for stale in path.parent.glob(f"{path.name}.*.tmp*"):  # from a creation killed earlier
        stale.unlink()
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    connection = duckdb.connect(":memory:")
    try:
        connection.execute(f"ATTACH {literal(str(partial))} AS {S}")
        StateStore(connection, path.parent)._migrate(writable=True)
        crash_point("state:before-rename")
        connection.execute(f"DETACH {S}")  # checkpoints: the file alone holds everything
    except duckdb.Error as exc:
        raise StateError(f"cannot create the state database {path}: {_first_line(exc)}") from None
    finally:
        connection.close()
    os.replace(partial, path)


def _first_line(exc: Exception) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
