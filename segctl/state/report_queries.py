"""Queries of the state tables that ``segctl report`` draws from (the rest it reads through
:mod:`segctl.analytics` and :meth:`segctl.Project.status`)."""

from __future__ import annotations

from typing import NamedTuple

from segctl.state.schema import S
from segctl.state.store import StateStore


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
