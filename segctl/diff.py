"""Snapshots -> who entered and who exited, as set arithmetic in DuckDB.

Evaluation leaves a wide result table (person_id + one boolean per segment). It is unpivoted
once into (segment, person_id) pairs; entered = evaluated EXCEPT current, exited = current
EXCEPT evaluated, over every segment at once. No Python loop ever touches a person.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from segctl.state import S, StateStore, members_at_sql


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Change:
    """Size and transitions of one segment in one evaluation."""

    segment: str
    size: int
    entered: int
    exited: int
    first_run: bool  # the segment has never been committed before


def stage_members(con: duckdb.DuckDBPyConnection, result_table: str, segments: list[str]) -> None:
    """``result_members(segment, person_id)`` from the wide result table."""
    if not segments:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE result_members (segment VARCHAR, person_id VARCHAR)"
        )
        return
    columns = ", ".join(_ident(s) for s in segments)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE result_members AS
            SELECT segment, person_id FROM (
                UNPIVOT (SELECT person_id, {columns} FROM {_ident(result_table)})
                ON {columns} INTO NAME segment VALUE is_member
            ) WHERE is_member"""
    )


def compute(
    con: duckdb.DuckDBPyConnection, store: StateStore | None, segments: list[str]
) -> dict[str, Change]:
    """Stage ``run_entered``/``run_exited`` against the last committed snapshot and count.

    Without a store (no state yet), every member has entered.
    """
    if store is None:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE current_members AS SELECT * FROM result_members LIMIT 0"
        )
        known: set[str] = set()
    else:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE current_members AS
                SELECT segment, person_id FROM {S}.membership
                WHERE exited_run IS NULL AND list_contains(?, segment)""",
            [segments],
        )
        known = store.known_segments()
    con.execute("""CREATE OR REPLACE TEMP TABLE run_entered AS
                   SELECT segment, person_id FROM result_members
                   EXCEPT SELECT segment, person_id FROM current_members""")
    con.execute("""CREATE OR REPLACE TEMP TABLE run_exited AS
                   SELECT segment, person_id FROM current_members
                   EXCEPT SELECT segment, person_id FROM result_members""")
    counts: dict[str, list[int]] = {s: [0, 0, 0] for s in segments}
    for index, table in enumerate(("result_members", "run_entered", "run_exited")):
        for segment, n in con.execute(
            f"SELECT segment, count(*) FROM {table} GROUP BY segment"
        ).fetchall():
            counts[segment][index] = int(n)
    return {
        s: Change(s, size, entered, exited, s not in known)
        for s, (size, entered, exited) in counts.items()
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
    """Who entered and exited each segment between two committed runs (sorted ids)."""
    con = store.con
    names = segments or sorted(
        {
            r[0]
            for r in store.rows(
                f"SELECT DISTINCT segment FROM {S}.run_segments WHERE run_id IN (?, ?)",
                [from_run, to_run],
            )
        }
    )
    before, after = members_at_sql("$from"), members_at_sql("$to")
    rows = con.execute(
        f"""WITH a AS ({before}), b AS ({after}),
            entered AS (SELECT * FROM b EXCEPT SELECT * FROM a),
            exited AS (SELECT * FROM a EXCEPT SELECT * FROM b)
            SELECT 'entered', segment, person_id FROM entered WHERE list_contains($names, segment)
            UNION ALL
            SELECT 'exited', segment, person_id FROM exited WHERE list_contains($names, segment)
            ORDER BY 2, 3""",
        {"from": from_run, "to": to_run, "names": names},
    ).fetchall()
    hashes = store.rows(
        f"""SELECT segment, count(DISTINCT definition_hash) FROM {S}.run_segments
            WHERE run_id IN (?, ?) GROUP BY segment""",
        [from_run, to_run],
    )
    changed = {segment for segment, n in hashes if n > 1}
    out = {n: SegmentDiff(n, [], [], n in changed) for n in names}
    for kind, segment, person_id in rows:
        getattr(out[segment], kind).append(person_id)
    return list(out.values())
