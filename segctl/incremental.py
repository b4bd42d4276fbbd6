"""Incremental ``segctl run`` (SPEC 5, docs/realtime.md "Incremental runs").

A run may take a person's memberships from the last committed run unchanged when none of the
person's rows changed and nothing in the rules can flip for that person between the last
``as_of`` and this one. Everything else (the set D) is re-evaluated with the very plan a full
run uses, restricted to D (``PlanContext.persons_filter``), and the snapshot rows of the others
are copied into the result table, so the diff, commit and deliveries are a full run's.

What the state keeps, committed in the run's transaction (state schema v4):

- ``incremental``: the catalogue fingerprint of the run (each definition's hash, the features
  file, timezone, data configuration, list and identities files), keyed by the run it belongs
  to; a run whose last committed run has no such rows evaluates in full.
- ``wakeups``: per person, a lower bound of the first instant at or after the run's ``as_of``
  at which any membership of the person can change without a new row (:func:`wake_sql`).

D = the persons with rows in the new event files (identities resolved as in a full run) and
the persons whose wake-up time is at or before the new ``as_of``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segctl import runfiles
from segctl.definitions.model import ColumnTest, ColumnType, Periods, Window

if TYPE_CHECKING:
    from segctl.definitions.loader import Definitions
    from segctl.project import Project
    from segctl.state import StateStore

#: The engine's temp table holding D (one ``person_id`` per row).
PERSONS_TABLE = "incremental_persons"
#: The engine's temp table of the wake-up times computed by this run.
WAKE_TABLE = "incremental_wake"

#: Calendar measures move at local midnights: a change caused by a value ``v`` and a duration
#: ``d`` happens at the start of a local day at most this long after ``v + d`` (the day after
#: next, plus a daylight-saving hour) ...
CALENDAR_AFTER = timedelta(days=4)
#: ... and no earlier than this before it (the start of ``v + d``'s local day, 25 hours at most).
CALENDAR_BEFORE = timedelta(hours=26)


@dataclass
class Decision:
    """How a run evaluates: in full (with the reason said on stderr, None when asked for) or
    for the persons in :data:`PERSONS_TABLE` only."""

    full: bool
    reason: str | None = None
    new_files: list[str] = field(default_factory=list)
    persons: int = 0  # the size of D for an incremental run


@dataclass(frozen=True)
class Catalogue:
    """What the rules depend on besides the rows: durations, whether local days matter, and
    the fingerprint compared between runs."""

    durations: tuple[timedelta, ...]
    calendar: bool
    unsupported: str | None  # why incremental evaluation cannot be exact for this catalogue


def _objects(value: Any) -> Iterator[Any]:
    """Every object reachable from a definition (dataclasses, tuples, dicts), depth first."""
    stack = [value]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            stack.extend(getattr(item, f.name) for f in dataclasses.fields(item))
        elif isinstance(item, (tuple, list, frozenset, set)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())


def catalogue(definitions: Definitions, timestamp_columns: set[str]) -> Catalogue:
    """Every duration the catalogue uses (each ``within``, ``between`` bound, comparator
    duration, sequence window, active_periods edge ``i * every + offset``), whether it uses
    local days (calendar windows, distinct_days, streak), and whether some comparator compares
    a value the wake-up bound cannot see (a nested timestamp property) with as_of."""
    durations: set[timedelta] = {timedelta(0)}
    calendar = False
    unsupported = None
    for item in _objects([definitions.segments, definitions.features]):
        if isinstance(item, timedelta):
            durations.add(item)
        elif isinstance(item, Periods):
            for i in range(item.of_last + 2):
                durations.add(item.every * i + item.offset)
        elif (isinstance(item, Window) and item.calendar) or getattr(item, "kind", None) in (
            "distinct_days",
            "streak",
            "active_periods",
        ):
            calendar = True
        elif (
            isinstance(item, ColumnTest)
            and item.column not in timestamp_columns
            and any(t.op in ("within", "older_than") for t in item.comparator.tests)
        ):
            unsupported = f"'{item.column}' is compared with as_of (within/older_than)"
    return Catalogue(tuple(sorted(durations)), calendar, unsupported)


def fingerprint(project: Project) -> dict[str, str]:
    """What a run's memberships depend on besides the event, persons and subscriptions files
    (those are compared file by file through ``run_inputs``): key -> hash."""
    from segctl.definitions.model import ListCondition
    from segctl.errors import DataError
    from segctl.sources.inputs import resolve_inputs

    config = project.config
    found = {
        f"segment '{name}'": segment.source_hash
        for name, segment in project.definitions.segments.items()
    }
    features = config.features_file
    found["the features file"] = (
        hashlib.sha256(features.read_bytes()).hexdigest()
        if features is not None and features.is_file()
        else "none"
    )
    found["the timezone"] = config.timezone
    found["the data configuration"] = hashlib.sha256(repr(config.sources).encode()).hexdigest()
    found["the engine"] = config.engine.type
    files: set[str] = set()
    for segment in project.definitions.segments.values():
        for item in _objects(segment):
            if isinstance(item, ListCondition):
                files.add(str((project.root / item.file).resolve()))
    try:
        for group in resolve_inputs(
            "identities", config.inputs.get("identities", ()), project.root
        ):
            files.update(group.files)
    except DataError:
        pass  # no identities: the run itself reports a bad configuration
    for file in sorted(files):
        path = Path(file)
        key = runfiles.stored_path(project.root, file)
        try:
            info = path.stat()
            found[key] = (
                f"{info.st_size}:{info.st_mtime_ns}:{runfiles.fingerprint(path, info.st_size)}"
            )
        except OSError:
            found[key] = "missing"
    return found


def _compare(old: dict[str, str], new: dict[str, str]) -> str | None:
    """The first difference, definitions first (the order :func:`fingerprint` builds)."""
    for key in [*new, *(k for k in old if k not in new)]:
        if key not in old:
            return f"{key} is new"
        if key not in new:
            return f"{key} is gone"
        if old[key] != new[key]:
            return f"{key} changed"
    return None


def decide(project: Project, store: StateStore | None, moment: datetime, full: bool) -> Decision:
    """Full or incremental, and for an incremental run D in the engine's :data:`PERSONS_TABLE`.
    The caller holds the lock; ``store`` is the state opened on the engine's connection."""
    from segctl.state import S

    if full:
        return Decision(True)
    if project.config.engine.type != "duckdb":
        return Decision(True, f"the {project.config.engine.type} engine evaluates in full")
    last = store.last_run() if store is not None else None
    if store is None or last is None:
        return Decision(True, "first run")
    kept = dict(
        store.rows(f"SELECT key, value FROM {S}.incremental WHERE run_id = ?", [last.run_id])
    )
    if not kept:
        return Decision(True, f"run {last.run_id} kept no incremental state")
    schema = project.schema
    stamps = {c for t in schema.values() for c, k in t.items() if k is ColumnType.TIMESTAMP}
    cat = catalogue(project.definitions, stamps)
    if cat.unsupported:
        return Decision(True, cat.unsupported)
    if any(source.latest_by for source in project.config.sources.get("persons", ())):
        return Decision(True, "persons use latest_by")
    reason = _compare(kept, fingerprint(project))
    if reason:
        return Decision(True, reason)
    if store.snapshot_segments() != project.segment_names() and store.snapshot_segments():
        return Decision(True, "the segments' layout changed")
    recorded = runfiles.load(store, last.run_id)
    problems = runfiles.changes(project.root, recorded)
    if problems:
        return Decision(True, problems[0].split(" (")[0].split(": ", 1)[-1])
    before = {(r.source, r.path) for r in recorded}
    now = runfiles.record(project.root, project.engine.driver.inputs)
    added = [r for r in now if (r.source, r.path) not in before]
    other = [r for r in added if r.source != "events"]
    if other:
        return Decision(True, f"{other[0].source}: {other[0].path} is new")
    new_files = [runfiles.absolute(project.root, r.path) for r in added]
    con = project.engine.driver.con
    con.execute(f"CREATE OR REPLACE TEMP TABLE {PERSONS_TABLE} (person_id VARCHAR)")
    if new_files:
        con.execute(
            f"INSERT INTO {PERSONS_TABLE} SELECT person_id FROM new_file_persons"
            if _new_file_persons(project, new_files)
            else "SELECT 1"
        )
    con.execute(
        f"INSERT INTO {PERSONS_TABLE} SELECT person_id FROM {S}.wakeups WHERE wake <= ?",
        [moment],
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {PERSONS_TABLE} AS "
        f"SELECT DISTINCT person_id FROM {PERSONS_TABLE} WHERE person_id IS NOT NULL"
    )
    count = int(con.execute(f"SELECT count(*) FROM {PERSONS_TABLE}").fetchall()[0][0])
    return Decision(False, None, new_files, count)


def _new_file_persons(project: Project, files: list[str]) -> bool:
    """The persons of the rows of ``files`` (identities resolved by a second engine that reads
    only them as events) into the temp table ``new_file_persons`` of the project's engine."""
    from segctl.engine.duckdb import DuckDBEngine, fetch_arrow

    side = DuckDBEngine(project.config)
    side.pinned = {"events": tuple(files)}
    side.schema()
    table = fetch_arrow(side.con.sql("SELECT DISTINCT person_id FROM events"))
    project.engine.driver.con.register("new_file_persons_arrow", table)
    project.engine.driver.con.execute(
        "CREATE OR REPLACE TEMP TABLE new_file_persons AS SELECT * FROM new_file_persons_arrow"
    )
    project.engine.driver.con.unregister("new_file_persons_arrow")
    side.con.close()
    return True


def _ts(moment: datetime) -> str:
    return f"TIMESTAMP '{moment.isoformat(sep=' ')}'"


def _interval(delta: timedelta) -> str:
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return f"INTERVAL ({micros}) MICROSECONDS"


def wake_sql(project: Project, moment: datetime, only: str | None) -> str:
    """SELECT person_id, wake: per person the smallest ``v + d`` at or after ``moment`` over
    every timestamp value ``v`` of the person's rows (events, persons, subscriptions) and every
    duration ``d`` of the catalogue (0 included: a row becoming visible). With local-day
    measures, also ``v + d - 26h`` for every ``v + d`` up to 4 days before ``moment``: the
    local midnight where such a measure moves lies in [v + d - 26h, v + d + 4 days]. A lower
    bound, never later than a real change; persons with no such value never wake."""
    from segctl.engine.duckdb import qident

    schema = project.schema
    stamps = {c for t in schema.values() for c, k in t.items() if k is ColumnType.TIMESTAMP}
    cat = catalogue(project.definitions, stamps)
    parts = []
    for table, columns in schema.items():
        timestamp_columns = [c for c, k in columns.items() if k is ColumnType.TIMESTAMP]
        if not timestamp_columns or "person_id" not in columns:
            continue
        terms = []
        for column in timestamp_columns:
            c = qident(column)
            for d in cat.durations:
                terms.append(f"min({c}) FILTER (WHERE {c} >= {_ts(moment - d)}) + {_interval(d)}")
                if cat.calendar:
                    shift = _interval(d - CALENDAR_BEFORE)
                    low = _ts(moment - d - CALENDAR_AFTER)
                    terms.append(f"min({c}) FILTER (WHERE {c} >= {low}) + {shift}")
        where = f" WHERE person_id IN (SELECT person_id FROM {only})" if only else ""
        parts.append(
            f"SELECT person_id, least({', '.join(terms)}) AS wake FROM {qident(table)}"
            f"{where} GROUP BY person_id"
        )
    if not parts:
        return "SELECT NULL::VARCHAR AS person_id, NULL::TIMESTAMP AS wake WHERE false"
    union = " UNION ALL ".join(parts)
    return (
        f"SELECT person_id, min(wake) AS wake FROM ({union}) "
        "WHERE wake IS NOT NULL AND person_id IS NOT NULL GROUP BY person_id"
    )


def prepare_wake(project: Project, moment: datetime, decision: Decision) -> None:
    """Compute this run's wake-up times (of D, or of everyone for a full run) into the
    engine's :data:`WAKE_TABLE`, before the commit's transaction."""
    only = PERSONS_TABLE if not decision.full else None
    project.engine.driver.con.execute(
        f"CREATE OR REPLACE TEMP TABLE {WAKE_TABLE} AS {wake_sql(project, moment, only)}"
    )


def merge_snapshot(project: Project, result_table: str, words: list[str]) -> None:
    """Add to ``result_table`` (D's fresh rows) the committed snapshot's rows of everyone else:
    their memberships cannot have changed (module docstring). The state is attached."""
    from segctl.state import S

    columns = ", ".join(["person_id", *words])
    project.engine.driver.con.execute(
        f"INSERT INTO {result_table} SELECT {columns} FROM {S}.snapshot "
        f"WHERE person_id NOT IN (SELECT person_id FROM {PERSONS_TABLE})"
    )


def save(store: StateStore, run_id: int, kept: dict[str, str] | None, full: bool) -> None:
    """Inside the commit's transaction: this run's catalogue fingerprint and wake-up times
    (``kept`` None: keep nothing, so the next run is full)."""
    from segctl.state import S

    store.con.execute(f"DELETE FROM {S}.incremental")
    if kept is None:
        store.con.execute(f"DELETE FROM {S}.wakeups")
        return
    store.executemany(
        f"INSERT INTO {S}.incremental VALUES (?, ?, ?)",
        [[run_id, k, v] for k, v in sorted(kept.items())],
    )
    if full:
        store.con.execute(f"DELETE FROM {S}.wakeups")
    else:
        store.con.execute(
            f"DELETE FROM {S}.wakeups WHERE person_id IN (SELECT person_id FROM {PERSONS_TABLE})"
        )
    store.con.execute(f"INSERT INTO {S}.wakeups SELECT person_id, wake FROM {WAKE_TABLE}")
