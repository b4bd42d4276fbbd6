"""Snapshots -> who entered and who exited, as set arithmetic in DuckDB.

Evaluation leaves a result table of ``person_id`` plus the memberships packed into words
(:mod:`segctl.packed`); the committed snapshot has the same shape in its own layout. One
FULL JOIN on person_id compares them for every segment at once; only persons whose words
differ are kept, and only the set bits of their differences become (segment, person_id)
rows. No Python loop ever touches a person.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from segctl import packed
from segctl.packed import literal, quote
from segctl.state import S, StateStore

__all__ = ["Change", "SegmentDiff", "between", "compute", "literal", "quote"]


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
    """Sizes and entered/exited counts of ``result_table`` (packed in the layout
    ``segments``) against the last committed snapshot (without a store, no state yet, every
    member has entered).

    Leaves the persons whose memberships changed in the temp table ``changed`` (``n{j}`` and
    ``o{j}``: their new and old words), and the transitions as (segment, person_id) rows in
    the temp views ``run_entered``/``run_exited``, which a commit copies into the history and
    the outbox queries.
    """
    if store is not None:
        # Forgotten persons (segctl forget) never come back, whatever the data says.
        con.execute(
            f"DELETE FROM {quote(result_table)} WHERE sha256(person_id) IN "
            f"(SELECT subject_hash FROM {S}.forgotten)"
        )
    columns = packed.words(len(segments))
    layout = store.snapshot_segments() if store else []
    known = store.known_segments() if store else set()
    snapshot = f"{S}.snapshot" if store else "(SELECT NULL::VARCHAR AS person_id WHERE false)"
    new = [f"coalesce(r.{w}, 0)" for w in columns]
    old = packed.convert(layout, segments, "s")
    pairs = [f"{v} AS n{j}" for j, v in enumerate(new)] + [
        f"{v} AS o{j}" for j, v in enumerate(old)
    ]
    # (0, n0, n1...) <> (0, o0, o1...): one row comparison, and false when there are no words.
    news = ", ".join(["0", *(f"n{j}" for j in range(len(columns)))])
    olds = ", ".join(["0", *(f"o{j}" for j in range(len(columns)))])
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE changed AS SELECT * FROM (
                SELECT coalesce(r.person_id, s.person_id) AS person_id
                       {"".join(", " + p for p in pairs)}
                FROM {quote(result_table)} AS r FULL JOIN {snapshot} AS s
                ON r.person_id = s.person_id
            ) WHERE ({news}) <> ({olds})"""
    )
    enters = [f"n{j} & ~o{j}" for j in range(len(columns))]
    exits = [f"o{j} & ~n{j}" for j in range(len(columns))]
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE run_moves AS
            SELECT idx, person_id, 'e' AS kind FROM ({packed.set_bits("changed", enters)})
            UNION ALL
            SELECT idx, person_id, 'x' AS kind FROM ({packed.set_bits("changed", exits)})"""
        if segments
        else "CREATE OR REPLACE TEMP TABLE run_moves (idx BIGINT, person_id VARCHAR, kind VARCHAR)"
    )
    for view, kind in (("run_entered", "e"), ("run_exited", "x")):
        con.execute(
            f"""CREATE OR REPLACE TEMP VIEW {view} AS
                SELECT names.segment, m.person_id FROM run_moves AS m
                JOIN {packed.names_table(segments or [""])} ON names.idx = m.idx
                WHERE m.kind = '{kind}'"""
        )
    if not segments:
        return {}
    sizes = dict(con.execute(packed.counts(quote(result_table), len(segments))).fetchall())
    moves = {
        (idx, kind): n
        for idx, kind, n in con.execute(
            "SELECT idx, kind, count(*) FROM run_moves GROUP BY ALL"
        ).fetchall()
    }
    return {
        name: Change(
            name,
            int(sizes.get(i, 0)),
            moves.get((i, "e"), 0),
            moves.get((i, "x"), 0),
            name not in known,
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
