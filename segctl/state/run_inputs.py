"""Queries of a committed run for ``segctl verify`` and incremental runs: the input files it
read (``input_files``, written by :meth:`StateStore.commit_run`), the segments it committed, and
its snapshot compared with a fresh evaluation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from segctl import packed
from segctl.packed import quote
from segctl.state.schema import S

if TYPE_CHECKING:
    from segctl.state.store import StateStore

#: One recorded file: (source, path, size, mtime_ns, fingerprint).
FileRow = tuple[str, str, int, int, str]


def recorded(store: StateStore, run_id: int) -> list[FileRow]:
    """The files run ``run_id`` read, by source and path (none for runs committed before
    state schema v3)."""
    return [
        (str(r[0]), str(r[1]), int(r[2]), int(r[3]), str(r[4]))
        for r in store.rows(
            f"SELECT source, path, size, mtime_ns, fingerprint FROM {S}.input_files "
            "WHERE ? BETWEEN from_run AND to_run ORDER BY source, path",
            [run_id],
        )
    ]


def committed_segments(store: StateStore, run_id: int) -> dict[str, str]:
    """The segments run ``run_id`` committed, by name, and the hash of the definition each
    was evaluated with."""
    rows = store.rows(
        f"SELECT segment, definition_hash FROM {S}.run_segments WHERE run_id = ? ORDER BY segment",
        [run_id],
    )
    return {str(segment): str(digest) for segment, digest in rows}


def compare_snapshot(
    store: StateStore, result_table: str, names: list[str]
) -> list[tuple[int, int]]:
    """Per segment of ``names`` (packed in ``result_table`` in that order): (missing, extra),
    the persons the fresh result has and the committed snapshot lacks, and the other way
    round. Persons erased with ``segctl forget`` are left out of the fresh side."""
    if not names:
        return []
    layout = store.snapshot_segments()
    # Whether a person is erased, once per row: as a term of each of a thousand segments'
    # counts, its subquery passed DuckDB's expression depth limit.
    erased = f"coalesce(sha256(person_id) IN (SELECT subject_hash FROM {S}.forgotten), false)"
    terms = []
    for i, name in enumerate(names):
        fresh = f"coalesce({packed.is_set(i, 'r')} AND NOT r.erased, false)"
        held = (
            f"coalesce({packed.is_set(layout.index(name), 's')}, false)"
            if name in layout
            else "false"
        )
        terms.append(f"count(*) FILTER (WHERE {fresh} AND NOT {held})")
        terms.append(f"count(*) FILTER (WHERE {held} AND NOT {fresh})")
    differ = "true"
    if layout == names:
        # The same layout: only the rows whose words differ can count (usually none), found
        # with a comparison per word, not two filtered counts per segment over every row.
        words = packed.words(len(names))
        fresh_words = [f"CASE WHEN r.erased THEN 0 ELSE coalesce(r.{w}, 0) END" for w in words]
        held_words = [f"coalesce(s.{w}, 0)" for w in words]
        differ = f"({', '.join(fresh_words)}) <> ({', '.join(held_words)})"
    [counts] = store.rows(
        f"SELECT {', '.join(terms)} FROM (SELECT *, {erased} AS erased "
        f"FROM {quote(result_table)}) AS r "
        f"FULL JOIN {S}.snapshot AS s ON r.person_id = s.person_id WHERE {differ}"
    )
    return [(int(counts[2 * i]), int(counts[2 * i + 1])) for i in range(len(names))]


def snapshot_size(store: StateStore, segment: str) -> int:
    """The committed snapshot's members of ``segment`` (0 when it was never committed)."""
    test = store.member_test(segment, "s")
    if test is None:
        return 0
    [(count,)] = store.rows(f"SELECT count(*) FROM {S}.snapshot AS s WHERE {test}")
    return int(count)
