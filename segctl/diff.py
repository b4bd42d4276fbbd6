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
from segctl.state import SNAPSHOT_TABLE, StateStore
from segctl.state.queries import (
    definitions_changed,
    evaluated_segments,
    forgotten_sql,
    net_transitions,
)
from segctl.tempnames import (
    CHANGED_TABLE,
    MEMBERS_VIEW,
    RESULT_TABLE,
    RUN_ENTERED_VIEW,
    RUN_EXITED_VIEW,
    RUN_MOVES_TABLE,
)

__all__ = [
    "Change",
    "SegmentDiff",
    "between",
    "compute",
    "literal",
    "members_view",
    "memberships_query",
    "quote",
    "result_columns",
    "result_members_query",
    "result_size_query",
]


@dataclass(frozen=True)
class Change:
    """Size and transitions of one segment in one evaluation."""

    segment: str
    size: int
    entered: int
    exited: int
    first_run: bool  # the segment has never been committed before


def compute(
    con: duckdb.DuckDBPyConnection,
    store: StateStore | None,
    segments: list[str],
    result_table: str,
    persons: str | None = None,
    committed: dict[str, int] | None = None,
) -> dict[str, Change]:
    """Sizes and entered/exited counts of ``result_table`` (packed in the layout
    ``segments``) against the last committed snapshot (without a store, no state yet, every
    member has entered).

    ``persons`` (an incremental run: a table of ``person_id``, the set D) says that
    ``result_table`` holds only their rows and that everyone else's memberships are the
    snapshot's, unchanged (its layout is ``segments``): only their rows are compared, and a
    segment's size is its committed members (``committed``, segment -> members, when it
    holds every segment; else counted in the snapshot) plus those who entered less those who
    exited.

    Leaves the persons whose memberships changed in the temp table ``changed`` (``n{j}`` and
    ``o{j}``: their new and old words), and the transitions as (segment, person_id) rows in
    the temp views ``run_entered``/``run_exited``, which a commit copies into the history and
    the outbox queries.
    """
    if store is not None:
        # Forgotten persons (segctl forget) never come back, whatever the data says.
        con.execute(
            f"DELETE FROM {quote(result_table)} WHERE sha256(person_id) IN ({forgotten_sql()})"
        )
    columns = packed.words(len(segments))
    layout = store.snapshot_segments() if store else []
    known = store.known_segments() if store else set()
    snapshot = SNAPSHOT_TABLE if store else "(SELECT NULL::VARCHAR AS person_id WHERE false)"
    if store is not None and persons is not None:
        if layout[: len(segments)] != segments:  # then removed segments, kept (a commit's)
            raise ValueError("an incremental diff needs the snapshot in the run's layout")
        snapshot = (
            f"(SELECT * FROM {SNAPSHOT_TABLE} "
            f"WHERE person_id IN (SELECT person_id FROM {quote(persons)}))"
        )
    new = [f"coalesce(r.{w}, 0)" for w in columns]
    old = packed.convert(layout, segments, "s")
    pairs = [f"{v} AS n{j}" for j, v in enumerate(new)] + [
        f"{v} AS o{j}" for j, v in enumerate(old)
    ]
    # (0, n0, n1...) <> (0, o0, o1...): one row comparison, and false when there are no words.
    news = ", ".join(["0", *(f"n{j}" for j in range(len(columns)))])
    olds = ", ".join(["0", *(f"o{j}" for j in range(len(columns)))])
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {CHANGED_TABLE} AS SELECT * FROM (
                SELECT coalesce(r.person_id, s.person_id) AS person_id
                       {"".join(", " + p for p in pairs)}
                FROM {quote(result_table)} AS r FULL JOIN {snapshot} AS s
                ON r.person_id = s.person_id
            ) WHERE ({news}) <> ({olds})"""
    )
    enters = [f"n{j} & ~o{j}" for j in range(len(columns))]
    exits = [f"o{j} & ~n{j}" for j in range(len(columns))]
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {RUN_MOVES_TABLE} AS
            SELECT idx, person_id, 'e' AS kind FROM ({packed.set_bits(CHANGED_TABLE, enters)})
            UNION ALL
            SELECT idx, person_id, 'x' AS kind FROM ({packed.set_bits(CHANGED_TABLE, exits)})"""
        if segments
        else f"CREATE OR REPLACE TEMP TABLE {RUN_MOVES_TABLE} "
        "(idx BIGINT, person_id VARCHAR, kind VARCHAR)"
    )
    for view, kind in ((RUN_ENTERED_VIEW, "e"), (RUN_EXITED_VIEW, "x")):
        con.execute(
            f"""CREATE OR REPLACE TEMP VIEW {view} AS
                SELECT names.segment, m.person_id FROM {RUN_MOVES_TABLE} AS m
                JOIN {packed.names_table(segments or [""])} ON names.idx = m.idx
                WHERE m.kind = '{kind}'"""
        )
    if not segments:
        return {}
    moves = {
        (idx, kind): n
        for idx, kind, n in con.execute(
            f"SELECT idx, kind, count(*) FROM {RUN_MOVES_TABLE} GROUP BY ALL"
        ).fetchall()
    }
    if store is not None and persons is not None:
        # Everyone outside D keeps their row: sizes move by the transitions alone.
        if committed is not None and committed.keys() >= set(segments):
            sizes = {i: committed[name] for i, name in enumerate(segments)}
        else:
            sizes = dict(con.execute(packed.counts(SNAPSHOT_TABLE, len(segments))).fetchall())
        for i in range(len(segments)):
            sizes[i] = sizes.get(i, 0) + moves.get((i, "e"), 0) - moves.get((i, "x"), 0)
    else:
        sizes = dict(con.execute(packed.counts(quote(result_table), len(segments))).fetchall())
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
    names = segments or evaluated_segments(store, from_run, to_run)
    changed = definitions_changed(store, from_run, to_run)
    out = {n: SegmentDiff(n, [], [], n in changed) for n in names}
    backwards = from_run > to_run
    for segment, person_id, kind in net_transitions(store, low, high, names):
        entered = (kind == "enter") != backwards
        (out[segment].entered if entered else out[segment].exited).append(person_id)
    return list(out.values())


# ---- the result table -----------------------------------------------------------------
# An evaluation's result table holds person_id plus the memberships packed into words, in
# the layout of the evaluated segments (their order).


def result_columns(segments: list[str]) -> str:
    """The columns of a result table, over a plan with one boolean column per segment."""
    return ", ".join(["person_id", *packed.pack_as([packed.quote(n) for n in segments])])


def members_view(segments: list[str], result_table: str = RESULT_TABLE) -> str:
    """The statement (re)creating the members view over a result table: person_id plus one
    boolean column per segment, for readers of a few segments (DuckDB computes only the
    columns a query reads)."""
    return (
        f"CREATE OR REPLACE TEMP VIEW {MEMBERS_VIEW} AS SELECT "
        f"{', '.join(['person_id', *packed.flags(segments)])} FROM {quote(result_table)}"
    )


def result_members_query(segments: list[str], name: str, result_table: str = RESULT_TABLE) -> str:
    """The sorted person ids of one segment of a result table (``person_id``)."""
    return (
        f"SELECT person_id FROM {quote(result_table)} "
        f"WHERE {packed.is_set(segments.index(name))} ORDER BY person_id"
    )


def memberships_query(segments: list[str], result_table: str = RESULT_TABLE) -> str:
    """Every (segment, person_id) pair of a result table, sorted."""
    words = packed.words(len(segments))
    return (
        f"SELECT names.segment, m.person_id "
        f"FROM ({packed.set_bits(quote(result_table), words)}) AS m "
        f"JOIN {packed.names_table(segments)} ON names.idx = m.idx "
        "ORDER BY names.segment, m.person_id"
    )


def result_size_query(result_table: str = RESULT_TABLE) -> str:
    """The number of persons in a result table (``count``)."""
    return f"SELECT count(*) FROM {quote(result_table)}"
