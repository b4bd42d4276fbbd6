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
    """Sizes and entered/exited counts against the last committed snapshot (without a store,
    no state yet, every member has entered). Leaves the changed persons in the temp table
    ``changed`` for :func:`stage`.

    Written for catalogues of a thousand segments: the changed persons are found by comparing
    whole rows (one comparison, not one per segment), and counts use ``count_if``; DuckDB runs
    a thousand ``count(*) FILTER (...)`` aggregates or a thousand-term OR many times slower.
    """
    if store is not None:
        # Forgotten persons (segctl forget) never come back, whatever the data says.
        con.execute(
            f"DELETE FROM {quote(result_table)} WHERE sha256(person_id) IN "
            f"(SELECT subject_hash FROM {S}.forgotten)"
        )
    if not segments:
        return {}
    existing = set(store.snapshot_segments()) if store else set()
    known = store.known_segments() if store else set()
    snapshot = f"{S}.snapshot" if store else "(SELECT NULL::VARCHAR AS person_id WHERE false)"
    new = [f"r.{quote(n)}" for n in segments]
    old = [f"s.{quote(n)}" if n in existing else "false" for n in segments]
    columns = [f"coalesce({v}, false) AS n_{i}" for i, v in enumerate(new)]
    columns += [f"coalesce({v}, false) AS o_{i}" for i, v in enumerate(old)]
    # A superset of the changed persons (a person missing on one side compares as NULLs):
    # the flags below decide.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE changed AS
            SELECT coalesce(r.person_id, s.person_id) AS person_id, {", ".join(columns)}
            FROM {quote(result_table)} AS r FULL JOIN {snapshot} AS s
            ON r.person_id = s.person_id
            WHERE ({", ".join(new)}) IS DISTINCT FROM ({", ".join(old)})"""
    )
    sizes = con.execute(
        f"SELECT {', '.join(f'count_if({quote(n)})' for n in segments)} FROM {quote(result_table)}"
    ).fetchall()[0]
    flags = (
        f"count_if(n_{i} AND NOT o_{i}), count_if(o_{i} AND NOT n_{i})"
        for i in range(len(segments))
    )
    moves = con.execute(f"SELECT {', '.join(flags)} FROM changed").fetchall()[0]
    return {
        name: Change(
            name,
            int(sizes[i] or 0),  # DuckDB's count_if over no rows is NULL, not 0
            int(moves[2 * i] or 0),
            int(moves[2 * i + 1] or 0),
            name not in known,
        )
        for i, name in enumerate(segments)
    }


def stage(con: duckdb.DuckDBPyConnection, segments: list[str]) -> None:
    """Stage the transitions of the last :func:`compute` as (segment, person_id) rows in the
    temp views ``run_entered``/``run_exited``, which a commit copies into the history and the
    outbox queries. One UNPIVOT of the changed persons only, whatever the number of segments."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE run_moves (segment VARCHAR, person_id VARCHAR, kind VARCHAR)"
    )
    if segments:
        pairs = ", ".join(f'(n_{i}, o_{i}) AS "{i}"' for i in range(len(segments)))
        names = ", ".join(f"({i}, {literal(name)})" for i, name in enumerate(segments))
        con.execute(
            f"""INSERT INTO run_moves
                SELECT n.segment, u.person_id, CASE WHEN u.new THEN 'e' ELSE 'x' END
                FROM (UNPIVOT changed ON {pairs} INTO NAME idx VALUE new, old) AS u
                JOIN (VALUES {names}) AS n(idx, segment) ON n.idx = CAST(u.idx AS INTEGER)
                WHERE u.new <> u.old"""
        )
    for view, kind in (("run_entered", "e"), ("run_exited", "x")):
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {view} AS "
            f"SELECT segment, person_id FROM run_moves WHERE kind = '{kind}'"
        )


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
