"""A person's history in one segment, as the state records it (``segctl explain``)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from segctl.state.schema import S

if TYPE_CHECKING:
    from segctl.state.store import StateStore


def evaluated_runs(
    store: StateStore, segment: str, moment: datetime
) -> dict[int, tuple[datetime, str, bool]]:
    """The committed runs that evaluated ``segment`` at an as_of at or before ``moment``:
    run_id -> (as_of, the segment's definition hash, whether it was the segment's first
    run), in run order."""
    rows = store.rows(
        f"""SELECT s.run_id, r.as_of, s.definition_hash, s.first_run
            FROM {S}.run_segments s JOIN {S}.runs r USING (run_id)
            WHERE s.segment = ? AND r.as_of <= ? ORDER BY s.run_id""",
        [segment, moment],
    )
    return {int(r[0]): (r[1], str(r[2]), bool(r[3])) for r in rows}


def last_transition(
    store: StateStore, segment: str, person_id: str, run_id: int
) -> tuple[int, str] | None:
    """(run_id, kind: enter / exit) of the person's last transition in ``segment`` at or
    before run ``run_id``; None if they never entered."""
    rows = store.rows(
        f"""SELECT run_id, kind FROM {S}.transitions
            WHERE segment = ? AND person_id = ? AND run_id <= ?
            ORDER BY run_id DESC LIMIT 1""",
        [segment, person_id, run_id],
    )
    return (int(rows[0][0]), str(rows[0][1])) if rows else None
