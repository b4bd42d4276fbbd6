"""Queries over the committed history: membership at a run, intervals, the figures of runs.

The analysis commands (diff, history, stats, overlap, members, person, report) read the state
through these functions; none of them writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from segctl.definitions.source import did_you_mean
from segctl.errors import UsageError
from segctl.state.schema import S
from segctl.state.store import StateStore
from segctl.tempnames import OVERLAP_MEMBERS_TABLE

#: The committed snapshot: person_id plus the memberships packed in words (segctl.packed).
SNAPSHOT_TABLE = f"{S}.snapshot"


def members_at_sql() -> str:
    """SQL selecting (segment, person_id) of the members of some segments as of a committed
    run (its parameters: the run_id, the segments' names as a list): the pairs whose last
    transition at or before that run is an entry."""
    return f"""
        SELECT g.segment, p.person_id FROM (
            SELECT segment_key, person_key FROM {S}.transition_rows
            WHERE run_id <= ? AND segment_key IN (
                SELECT segment_key FROM {S}.segment_keys WHERE list_contains(?, segment))
            GROUP BY segment_key, person_key HAVING arg_max(entered, run_id)
        ) AS t
        JOIN {S}.segment_keys AS g ON g.segment_key = t.segment_key
        JOIN {S}.person_keys AS p ON p.person_key = t.person_key"""


def intervals_sql(where: str = "true") -> str:
    """SQL of membership history as intervals: (segment, person_id, entered_at, exited_at,
    entered_run, exited_run), one row per stay; ``where`` filters transitions first."""
    return f"""
        SELECT t.segment, t.person_id, e.as_of AS entered_at, x.as_of AS exited_at,
               t.run_id AS entered_run, t.next_run AS exited_run
        FROM (
            SELECT segment, person_id, run_id, kind,
                   lead(run_id) OVER (PARTITION BY segment, person_id ORDER BY run_id)
                       AS next_run
            FROM {S}.transitions WHERE {where}
        ) AS t
        JOIN {S}.runs AS e ON e.run_id = t.run_id
        LEFT JOIN {S}.runs AS x ON x.run_id = t.next_run
        WHERE t.kind = 'enter'"""


def forgotten_sql() -> str:
    """SQL selecting the SHA-256 of every forgotten person id (``subject_hash``)."""
    return f"SELECT subject_hash FROM {S}.forgotten"


# ---- runs and their figures -----------------------------------------------------------


def evaluated_segments(store: StateStore, *run_ids: int) -> list[str]:
    """The segments the given committed runs evaluated, sorted."""
    return [
        r[0]
        for r in store.rows(
            f"SELECT DISTINCT segment FROM {S}.run_segments WHERE list_contains(?, run_id) "
            "ORDER BY segment",
            [list(run_ids)],
        )
    ]


def segment_history(store: StateStore, segment: str) -> list[tuple[Any, ...]]:
    """(run_id, as_of, size, entered, exited, definition_changed) of a segment at every
    committed run that evaluated it, in run order."""
    return store.rows(
        f"""SELECT r.run_id, r.as_of, s.size, s.entered, s.exited,
                   coalesce(s.definition_hash <> lag(s.definition_hash)
                            OVER (ORDER BY r.run_id), false)
            FROM {S}.run_segments s JOIN {S}.runs r USING (run_id)
            WHERE s.segment = ? ORDER BY r.run_id""",
        [segment],
    )


class RunSegment(NamedTuple):
    """A segment's figures at one committed run."""

    run_id: int
    segment: str
    size: int
    entered: int
    exited: int
    first_run: bool  # the segment's first committed run: everyone "entered"


def run_segments_since(store: StateStore, run_id: int) -> list[RunSegment]:
    """Every segment's figures at each committed run from ``run_id`` on, by run and segment."""
    rows = store.rows(
        f"""SELECT run_id, segment, size, entered, exited, first_run
            FROM {S}.run_segments WHERE run_id >= ? ORDER BY run_id, segment""",
        [run_id],
    )
    return [RunSegment(*row) for row in rows]


def definitions_changed(store: StateStore, from_run: int, to_run: int) -> set[str]:
    """The segments whose definition differs between two committed runs."""
    rows = store.rows(
        f"""SELECT segment, count(DISTINCT definition_hash) FROM {S}.run_segments
            WHERE run_id IN (?, ?) GROUP BY segment""",
        [from_run, to_run],
    )
    return {segment for segment, n in rows if n > 1}


def recent_runs(store: StateStore, limit: int = 5) -> list[tuple[Any, ...]]:
    """(run_id, kind, as_of, started_at, finished_at) of the last runs, newest first."""
    return store.rows(
        f"""SELECT run_id, kind, as_of, started_at, finished_at
            FROM {S}.runs ORDER BY run_id DESC LIMIT ?""",
        [limit],
    )


def net_transitions(
    store: StateStore, low: int, high: int, segments: list[str]
) -> list[tuple[str, str, str]]:
    """(segment, person_id, kind) of the pairs that entered (kind ``enter``) or exited
    (``exit``) over the runs in (low, high], sorted.

    Entries and exits of a pair alternate, so the pair entered when its first and last
    transitions there are both entries, and exited when both are exits; anything else nets out.
    """
    rows = store.rows(
        f"""SELECT segment, person_id, arg_min(kind, run_id) AS first,
                   arg_max(kind, run_id) AS last
            FROM {S}.transitions
            WHERE run_id > ? AND run_id <= ? AND list_contains(?, segment)
            GROUP BY segment, person_id HAVING first = last
            ORDER BY segment, person_id""",
        [low, high, segments],
    )
    return [(segment, person_id, kind) for segment, person_id, kind, _ in rows]


def stage_members(store: StateStore, run_id: int, segment: str, table: str) -> None:
    """The person ids of ``segment`` at a committed run, into the temp table ``table`` of the
    store's connection (which outlives the attached state)."""
    with store.lock:
        store.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT person_id FROM ({members_at_sql()})",
            [run_id, [segment]],
        )


def person_intervals(store: StateStore, person_id: str) -> list[tuple[Any, ...]]:
    """(segment, entered_at, exited_at, entered_run, exited_run) of every stay of a person."""
    return store.rows(
        f"""SELECT segment, entered_at, exited_at, entered_run, exited_run
            FROM ({intervals_sql("person_id = $1")}) ORDER BY entered_run, segment""",
        [person_id],
    )


def tags(store: StateStore) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The column names and the rows of every person tag, sorted."""
    with store.lock:
        cursor = store.con.execute(
            f"SELECT person_id, name, value, set_at, run_id FROM {S}.tags ORDER BY ALL"
        )
        return [d[0] for d in cursor.description], cursor.fetchall()


class Overlap:
    """The counts ``segctl overlap`` shows, over the members of some segments at one run."""

    def __init__(self, store: StateStore, run_id: int, segments: list[str]) -> None:
        store.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {OVERLAP_MEMBERS_TABLE} AS "
            f"SELECT * FROM ({members_at_sql()})",
            [run_id, segments],
        )
        self.store = store
        self.segments = segments

    def sizes(self) -> dict[str, int]:
        """Members per segment."""
        return {
            segment: int(n)
            for segment, n in self.store.rows(
                f"SELECT segment, count(*) FROM {OVERLAP_MEMBERS_TABLE} GROUP BY segment"
            )
        }

    def pairs(self) -> dict[tuple[str, str], int]:
        """Persons in both segments of each pair (a, b) with a < b that shares any."""
        return {
            (a, b): int(n)
            for a, b, n in self.store.rows(
                f"""SELECT x.segment, y.segment, count(*) FROM {OVERLAP_MEMBERS_TABLE} x
                    JOIN {OVERLAP_MEMBERS_TABLE} y
                    ON x.person_id = y.person_id AND x.segment < y.segment
                    GROUP BY 1, 2"""
            )
        }

    def in_all(self) -> list[str]:
        """The persons in every one of the segments, sorted."""
        return [
            r[0]
            for r in self.store.rows(
                f"""SELECT person_id FROM {OVERLAP_MEMBERS_TABLE} GROUP BY person_id
                    HAVING count(DISTINCT segment) = ? ORDER BY person_id""",
                [len(set(self.segments))],
            )
        ]


def unknown_segment(name: str, known: Iterable[str], what: str) -> UsageError:
    """The error for a segment ``name`` that ``what`` lacks (``was not part of run 12``),
    with the closest of the ``known`` ones, else some of them."""
    names = sorted(set(known))
    hint = did_you_mean(name, names) or (f" (segments: {', '.join(names[:12])})" if names else "")
    return UsageError(f"segment '{name}' {what}{hint}")
