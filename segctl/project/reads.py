"""Reads of a project's committed state that combine several queries: a diff between runs,
the members at a run with their person columns, a person, the tags, the status."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from segctl import diff
from segctl.delivery import queries as delivery
from segctl.errors import UsageError
from segctl.results import DiffResult, polars_frame
from segctl.state import StateStore
from segctl.state import queries as q
from segctl.tempnames import RUN_MEMBERS_TABLE

if TYPE_CHECKING:
    import polars as pl

    from segctl.project import Project


def between(
    store: StateStore, segments: list[str] | None, from_run: int | None, to_run: int | None
) -> DiffResult:
    """Who entered and exited between two committed runs (default: the last two)."""
    runs = [r.run_id for r in store.runs()]
    if not runs:
        raise UsageError("no committed run yet: run `segctl run` first")
    to_id = to_run if to_run is not None else runs[-1]
    store.run(to_id)
    if from_run is None:
        earlier = [r for r in runs if r < to_id]
        from_id = earlier[-1] if earlier else 0
    else:
        from_id = from_run
        store.run(from_id)
    if from_id > to_id:  # git shows such a range reversed; entered would read as exited
        raise UsageError(
            f"--from {from_id} is after --to {to_id}: the earlier run comes first "
            f"(`segctl diff --from {to_id} --to {from_id}`)"
        )
    known = set(q.evaluated_segments(store, to_id))
    known |= set(q.evaluated_segments(store, from_id)) if from_id else set()
    for name in segments or []:
        if name not in known:
            either = f" or run {from_id}" if from_id else ""
            raise q.unknown_segment(name, known, f"was not part of run {to_id}{either}")
    return DiffResult(from_id, to_id, diff.between(store, from_id, to_id, segments))


def members(project: Project, segment: str, as_of_run: int | None, wait: float) -> pl.DataFrame:
    """Members of a segment at the last (or a given) committed run, with person columns."""
    from segctl.compiler.listing import with_persons

    schema = project.schema  # registers the persons view before the state is attached
    engine = project.engine
    with StateStore.open(project.config.state_dir, con=engine.driver.con, wait=wait) as store:
        run = store.run(as_of_run) if as_of_run is not None else store.last_run()
        if run is None:
            raise UsageError("no committed run yet: run `segctl run` first")
        known = q.evaluated_segments(store, run.run_id)
        if segment not in known:
            raise q.unknown_segment(segment, known, f"was not part of run {run.run_id}")
        # A temp table of the connection: it outlives the attached state.
        q.stage_members(store, run.run_id, segment, RUN_MEMBERS_TABLE)
    query = with_persons(RUN_MEMBERS_TABLE, list(schema["persons"]), keep_unknown=True)
    return polars_frame(engine.driver.arrow(query))


def person(store: StateStore, person_id: str) -> dict[str, Any]:
    """A person's segments now, their membership history, and pending deliveries."""
    keys = ("segment", "entered_at", "exited_at", "entered_run", "exited_run")
    intervals = [dict(zip(keys, r, strict=True)) for r in q.person_intervals(store, person_id)]
    return {
        "person_id": person_id,
        "segments": sorted(i["segment"] for i in intervals if i["exited_run"] is None),
        "history": intervals,
        "pending": delivery.pending_for(store, person_id),
    }


def syncs_pending(store: StateStore) -> bool:
    """Whether a push has audiences to sync."""
    return bool(delivery.sync_requests(store))


def tags(store: StateStore) -> pl.DataFrame:
    """Every person tag, sorted."""
    import polars as pl

    columns, rows = q.tags(store)
    return pl.DataFrame(rows, schema=columns, orient="row")


def status(store: StateStore) -> dict[str, Any]:
    """Last runs, deliveries per destination and status, audiences, open holds."""
    run_keys = ("run_id", "kind", "as_of", "started_at", "finished_at")
    return {
        "runs": [dict(zip(run_keys, r, strict=True)) for r in q.recent_runs(store)],
        **delivery.status(store),
    }
