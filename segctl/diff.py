"""Snapshots -> who entered and who exited, as set arithmetic in DuckDB.

Evaluation leaves a wide result table (person_id + one boolean per segment); the committed
snapshot has the same shape. One FULL JOIN on person_id compares them for every segment at
once; only persons whose membership changed are kept and turned into (segment, person_id)
rows. No Python loop ever touches a person.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from segctl.state import S, StateStore


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class Change:
    """Size and transitions of one segment in one evaluation."""

    segment: str
    size: int
    entered: int
    exited: int
    first_run: bool  # the segment has never been committed before


def compute(
    con: duckdb.DuckDBPyConnection, store: StateStore | None, segments: list[str], result_table: str
) -> dict[str, Change]:
    """Stage ``run_entered``/``run_exited`` (segment, person_id) against the last committed
    snapshot and count them. Without a store (no state yet), every member has entered."""
    if store is not None:
        # Forgotten persons (segctl forget) never come back, whatever the data says.
        con.execute(
            f"DELETE FROM {quote(result_table)} WHERE sha256(person_id) IN "
            f"(SELECT subject_hash FROM {S}.forgotten)"
        )
    existing = set(store.snapshot_segments()) if store else set()
    known = store.known_segments() if store else set()
    snapshot = f"{S}.snapshot" if store else "(SELECT NULL::VARCHAR AS person_id WHERE false)"
    flags, any_change = [], []
    for i, name in enumerate(segments):
        new = f"coalesce(r.{quote(name)}, false)"
        old = f"coalesce(s.{quote(name)}, false)" if name in existing else "false"
        flags.append(f"({new} AND NOT {old}) AS e_{i}, ({old} AND NOT {new}) AS x_{i}")
        any_change.append(f"e_{i} OR x_{i}")
    if segments:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE changed AS SELECT * FROM (
                    SELECT coalesce(r.person_id, s.person_id) AS person_id, {", ".join(flags)}
                    FROM {quote(result_table)} AS r FULL JOIN {snapshot} AS s
                    ON r.person_id = s.person_id
                ) WHERE {" OR ".join(any_change)}"""
        )
    for table, prefix in (("run_entered", "e"), ("run_exited", "x")):
        parts = [
            f"SELECT {literal(name)} AS segment, person_id FROM changed WHERE {prefix}_{i}"
            for i, name in enumerate(segments)
        ] or ["SELECT NULL::VARCHAR AS segment, NULL::VARCHAR AS person_id WHERE false"]
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {' UNION ALL '.join(parts)}")
    if not segments:
        return {}
    sizes = con.execute(
        "SELECT "
        + ", ".join(f"count(*) FILTER (WHERE {quote(n)})" for n in segments)
        + f" FROM {quote(result_table)}"
    ).fetchall()[0]
    moves = con.execute(
        "SELECT "
        + ", ".join(
            f"count(*) FILTER (WHERE e_{i}), count(*) FILTER (WHERE x_{i})"
            for i in range(len(segments))
        )
        + " FROM changed"
    ).fetchall()[0]
    return {
        name: Change(
            name, int(sizes[i]), int(moves[2 * i]), int(moves[2 * i + 1]), name not in known
        )
        for i, name in enumerate(segments)
    }


@dataclass(frozen=True)
class SegmentDiff:
    name: str
    entered: list[str]
    exited: list[str]
    definition_changed: bool = False


def between(
    store: StateStore, from_run: int, to_run: int, segments: list[str] | None = None
) -> list[SegmentDiff]:
    """Who entered and exited each segment between two committed runs (sorted ids).

    Entries and exits of a (segment, person) pair alternate, so over the runs in
    (earlier, later] the pair entered when its first and last transitions are both entries,
    and exited when both are exits; anything else nets out.
    """
    low, high = sorted((from_run, to_run))
    names = segments or sorted(
        r[0]
        for r in store.rows(
            f"SELECT DISTINCT segment FROM {S}.run_segments WHERE run_id IN (?, ?)",
            [from_run, to_run],
        )
    )
    rows = store.rows(
        f"""SELECT segment, person_id, arg_min(kind, run_id) AS first,
                   arg_max(kind, run_id) AS last
            FROM {S}.transitions
            WHERE run_id > ? AND run_id <= ? AND list_contains(?, segment)
            GROUP BY segment, person_id HAVING first = last
            ORDER BY segment, person_id""",
        [low, high, names],
    )
    hashes = store.rows(
        f"""SELECT segment, count(DISTINCT definition_hash) FROM {S}.run_segments
            WHERE run_id IN (?, ?) GROUP BY segment""",
        [from_run, to_run],
    )
    changed = {segment for segment, n in hashes if n > 1}
    out = {n: SegmentDiff(n, [], [], n in changed) for n in names}
    backwards = from_run > to_run
    for segment, person_id, kind, _ in rows:
        entered = (kind == "enter") != backwards
        (out[segment].entered if entered else out[segment].exited).append(person_id)
    return list(out.values())
