"""A run: evaluate every segment, diff against the committed snapshot, commit the snapshot,
history and queued actions in one transaction, then deliver. A backfill commits runs at past
times, without delivering.

:func:`commit` is the run in steps: decide (incremental or full), evaluate, diff, record,
deliver. The caller holds the state lock throughout.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from segctl import diff, incremental, progress
from segctl.errors import NotAfterLastRun, UsageError
from segctl.faults import crash_point
from segctl.lock import state_lock
from segctl.results import RunResult
from segctl.sources import runfiles
from segctl.state import StateStore
from segctl.tempnames import RESULT_TABLE
from segctl.timeutil import iso, now_utc, parse_as_of

if TYPE_CHECKING:
    import httpx

    from segctl.delivery.plan import PlanRow
    from segctl.diff import Change
    from segctl.project import Project
    from segctl.project.figures import Figures
    from segctl.state.store import Run

#: A backfill commits at most this many runs (a larger --every makes fewer).
MAX_BACKFILL_RUNS = 10_000


def run(
    project: Project,
    as_of: str | datetime | None,
    *,
    dry_run: bool,
    fire_initial: bool,
    wait: float,
    client: httpx.Client | None,
    full: bool,
) -> RunResult:
    """Evaluate every segment at ``as_of``, commit and deliver (see :meth:`Project.run`)."""
    moment = parse_as_of(as_of, project.config.tz)
    # The files the last run read unchanged are not checked alone again (runfiles.unchanged).
    project.engine.driver.checked = runfiles.unchanged(project.config)
    with collector_paused():
        names = project.segment_names()
    started = now_utc()
    folder = project.config.state_dir
    # A dry run changes nothing: with no state yet, not even a lock file in a new folder.
    fresh = dry_run and not StateStore.exists(folder)
    with nullcontext() if fresh else state_lock(folder, wait=wait, command="segctl run"):
        result = commit(
            project,
            names,
            moment,
            started,
            kind="run",
            dry_run=dry_run,
            fire_initial=fire_initial,
            client=client,
            full=full,
        )
    result.warnings = project.data_warnings() + project.freshness_warnings(moment)
    return result


@contextmanager
def collector_paused() -> Iterator[Callable[[], None]]:
    """Python's cyclic garbage collector paused while inside (as Mercurial does around its
    parsers), for loading the definitions and evaluating, diffing and recording a run: the
    definitions, the plan's syntax trees and the rows are up to a million objects, which
    each full collection walks again (5% of a run over 1,000 segments). What they leave
    behind is collected once it runs again: ``resume()`` before delivery, whose retries can
    make cyclic garbage (exceptions and their tracebacks) by the million."""
    enabled = gc.isenabled()
    gc.disable()

    def resume() -> None:
        if enabled:
            gc.enable()

    try:
        yield resume
    finally:
        resume()


def backfill(
    project: Project,
    start: str | datetime,
    end: str | datetime,
    every: str,
    *,
    reset: bool,
    wait: float,
) -> list[RunResult]:
    """Commit runs at start, start+every, ... <= end (see :meth:`Project.backfill`)."""
    from segctl.state.erasure import reset_history

    times = backfill_times(
        parse_as_of(start, project.config.tz, "--from"),
        parse_as_of(end, project.config.tz, "--to"),
        every,
    )
    names = project.segment_names()
    folder = project.config.state_dir
    results = []
    with state_lock(folder, wait=wait, command="segctl backfill"):
        if reset and StateStore.exists(folder):
            with StateStore.open(folder, locked=True, write=True) as store:
                reset_history(store)
        advance = progress.task("Backfilling", len(times))
        for moment in times:
            results.append(commit(project, names, moment, now_utc(), kind="backfill"))
            advance(1)
    return results


def backfill_times(first: datetime, last: datetime, every: str) -> list[datetime]:
    """first, first+every, ... up to last (UsageError for a bad step or too many runs)."""
    from segctl.definitions.durations import parse_duration

    try:
        step = parse_duration(every)
    except ValueError as exc:
        raise UsageError(f"--every: {exc}") from None
    if step <= timedelta(0):
        raise UsageError(f"--every must be longer than 0 (like 1d), got {every!r}")
    if last < first:
        raise UsageError("--to must not be before --from")
    count = (last - first) // step + 1  # counted before any is made: a tiny step is refused
    if count > MAX_BACKFILL_RUNS:
        raise UsageError(f"backfill would commit {count:,} runs; use a larger --every")
    return [first + i * step for i in range(count)]


def commit(
    project: Project,
    names: list[str],
    moment: datetime,
    started: datetime,
    *,
    kind: str,
    dry_run: bool = False,
    fire_initial: bool = False,
    client: httpx.Client | None = None,
    full: bool = True,
) -> RunResult:
    """Evaluate at ``moment`` and (unless ``dry_run``) commit it with its queued actions in
    one transaction, then (for kind "run") deliver. The caller holds the lock. A run
    (not ``full``) evaluates incrementally when it can (segctl.incremental)."""
    with collector_paused() as resume:
        return _commit(
            project,
            names,
            moment,
            started,
            resume,
            kind=kind,
            dry_run=dry_run,
            fire_initial=fire_initial,
            client=client,
            full=full,
        )


def _commit(
    project: Project,
    names: list[str],
    moment: datetime,
    started: datetime,
    resume: Callable[[], None],
    *,
    kind: str,
    dry_run: bool,
    fire_initial: bool,
    client: httpx.Client | None,
    full: bool,
) -> RunResult:
    """:func:`commit`, the collector paused until ``resume()``, before delivery."""
    folder = project.config.state_dir
    if StateStore.exists(folder):
        with StateStore.open(folder, locked=True, write=not dry_run) as store:
            again = check_after_last(store, moment, again=kind == "run" and not dry_run)
        if again is not None:
            return _again(project, again, moment, resume, client)
    runner = incremental.Incremental(project.config, project.definitions, project.engine.driver)
    decision = _decide(project, runner, moment, kind=kind, dry_run=dry_run, full=full)
    keep_incremental = kind == "run" and not dry_run and project.config.engine.type == "duckdb"
    # An incremental run evaluates D alone, reading D's rows only: of the events, the
    # columns its queries name.
    persons = None if decision.full else incremental.PERSONS_TABLE
    shadowed = "events" in runner.shadowed(decision)
    query = project._plan(names, moment, persons, shadowed)
    wake = runner.run_wake_sql(moment, decision) if keep_incremental else None
    reads = incremental.named(query, *([wake] if wake else [])) if shadowed else None
    with runner.restricted(decision, reads):
        project._evaluate(names, moment, persons, shadowed, query)
        if wake is not None:
            runner.prepare_wake(wake)
    if keep_incremental:
        runner.prepare_rows(decision)
    if kind == "run":  # privacy settings are checked before anything is committed
        project.reachability.condition()
    crash_point("run:after-evaluate")
    if dry_run and not StateStore.exists(folder):
        changes = diff.compute(project.engine.driver.con, None, names, RESULT_TABLE)
        plan = _plan(project, None, changes, fire_initial)
        return RunResult(None, moment, changes, True, plan=plan)
    with StateStore.open(
        folder, con=project.engine.driver.con, create=not dry_run, locked=True
    ) as store:
        # An incremental run's result table holds D's rows; everyone else keeps theirs.
        sizes = None if decision.full else runner.committed_sizes(store)
        con = project.engine.driver.con
        changes = diff.compute(con, store, names, RESULT_TABLE, persons, sizes)
        # Before this run's record: whether its persons files are those the last run read.
        persons_same = runner.same_files(store, ("persons",))
        figures = _figures(project, store, persons_same, decision) if keep_incremental else None
        if dry_run:
            plan = _plan(project, store, changes, fire_initial)
            return RunResult(None, moment, changes, True, plan=plan)
        run_id = _record(
            project,
            store,
            changes,
            moment,
            started,
            kind=kind,
            runner=runner,
            decision=decision,
            keep_incremental=keep_incremental,
            fire_initial=fire_initial,
            data=figures,
            persons_same=persons_same,
        )
        runner.collect(store)
        result = RunResult(run_id, moment, changes)
        result.full_reason = decision.reason if decision.full else None
        result.incremental = not decision.full
        result.persons_evaluated = _evaluated_count(project, decision)
        resume()
        if kind == "run":
            _deliver(project, store, result, client)
    return result


def check_after_last(store: StateStore, moment: datetime, *, again: bool = False) -> Run | None:
    """History only moves forward: NotAfterLastRun unless ``moment`` is after the last run's.
    With ``again`` (a run), ``moment`` may also be the last run's as_of: that run is returned
    (:func:`_again`); else None."""
    last = store.last_run()
    if again and last is not None and moment == last.as_of:
        return last
    if last is not None and moment <= last.as_of:
        raise NotAfterLastRun(
            f"as_of {iso(moment)} is not after the last committed run's as_of "
            f"{iso(last.as_of)} (run {last.run_id}); history only moves forward (use "
            "`segctl backfill --reset` to rebuild it)",
            last.as_of,
        )
    return None


def _again(
    project: Project,
    last: Run,
    moment: datetime,
    resume: Callable[[], None],
    client: httpx.Client | None,
) -> RunResult:
    """``run`` at the last committed run's as_of, as when a command is run again after a
    crash: that run is not evaluated again (history only moves forward), its figures are
    reported, and what is pending (what the crash left undelivered) is delivered."""
    from segctl.diff import Change
    from segctl.state.queries import run_segments_since

    project.schema  # noqa: B018 - the persons view must exist before the state is attached
    with StateStore.open(
        project.config.state_dir, con=project.engine.driver.con, locked=True, write=True
    ) as store:
        changes = {
            r.segment: Change(r.segment, r.size, r.entered, r.exited, r.first_run)
            for r in run_segments_since(store, last.run_id)
            if r.run_id == last.run_id
        }
        result = RunResult(last.run_id, moment, changes, again=True)
        resume()
        _deliver(project, store, result, client)
    return result


def _decide(
    project: Project,
    runner: incremental.Incremental,
    moment: datetime,
    *,
    kind: str,
    dry_run: bool,
    full: bool,
) -> incremental.Decision:
    """Whether this evaluation is full or incremental, and why full."""
    decision = incremental.Decision(True, None if full else "first run")
    folder = project.config.state_dir
    engine = project.config.engine.type
    if kind == "run" and not full and engine != "duckdb":
        decision.reason = f"the {engine} engine evaluates in full"
    elif kind == "run" and not dry_run and StateStore.exists(folder):
        project.schema  # noqa: B018 - the input views must exist before the state is attached
        with StateStore.open(
            folder, con=project.engine.driver.con, locked=True, write=True
        ) as store:
            decision = runner.decide(store, moment, full)
    elif kind == "run" and dry_run and not full:
        decision.reason = "dry run"
    return decision


def _record(
    project: Project,
    store: StateStore,
    changes: dict[str, Change],
    moment: datetime,
    started: datetime,
    *,
    kind: str,
    runner: incremental.Incremental,
    decision: incremental.Decision,
    keep_incremental: bool,
    fire_initial: bool,
    data: Figures | None,
    persons_same: bool,
) -> int:
    """Commit the run: its figures, transitions, snapshot, files read, queued actions (a
    run's) and incremental state, in one transaction. Returns the run id."""
    from segctl.delivery.outbox import queue_run

    segments = project.definitions.segments
    figures = [
        (n, segments[n].source_hash, c.size, c.entered, c.exited, c.first_run)
        for n, c in changes.items()
    ]
    queue = None
    if kind == "run":
        queue = functools.partial(
            queue_run,
            store,
            as_of=moment,
            changes=changes,
            segments={
                n: (segments[n].on_enter, segments[n].on_exit, segments[n].audiences)
                for n in changes
            },
            fire_initial=fire_initial,
            max_exit_ratio=project.config.max_exit_ratio,
        )
    progress.phase("Committing the run")
    read = runner.records()
    kept = runner.fingerprint() if keep_incremental else None
    if kept is not None and data is not None:
        kept.update(data.encode())

    def queue_and_keep(run_id: int) -> None:
        # The incremental state commits in the run's transaction, like the snapshot.
        if queue is not None:
            queue(run_id, resync=_audiences_may_change(project, store, not persons_same))
        runner.save(store, run_id, kept, decision)

    return store.commit_run(
        inputs=[r.row() for r in read],
        kind=kind,
        as_of=moment,
        started_at=started,
        figures=figures,
        result_table=RESULT_TABLE,
        queue=queue_and_keep,
    )


def _audiences_may_change(project: Project, store: StateStore, persons_changed: bool) -> bool:
    """Whether an audience can differ from its segment's synced members with no membership
    change (SPEC 6: audiences honour consent changes, and self-heal): ``persons_changed``
    (its files: consent, or a member's email or phone), or the suppression file changed.
    The suppression file's fingerprint is kept in the state's ``meta``: call in the run's
    transaction."""
    config = project.config
    path = config.suppression_file
    if path is None:
        return persons_changed
    seen = ""
    if path.is_file():
        size = path.stat().st_size
        seen = f"{size} {runfiles.fingerprint(path, size)}"
    return store.swap_meta("suppression file", seen) or persons_changed


def _figures(
    project: Project, store: StateStore, persons_same: bool, decision: incremental.Decision
) -> Figures:
    """The run's data figures (segctl.project.figures), kept with it; the run's data and
    freshness warnings are said from them."""
    from segctl.project.figures import compute
    from segctl.sources.checks import render

    figures = compute(project, store, decision, persons_same)
    project._data_warnings = render(figures.stats, project.engine.driver.loader.ambiguous)
    if figures.known:
        project._newest_event = (figures.newest,)
    return figures


def _evaluated_count(project: Project, decision: incremental.Decision) -> int:
    """How many persons the run evaluated: D for an incremental run, else all in the
    result table."""
    if not decision.full:
        return int(decision.persons)
    return project._result_size()


def _deliver(
    project: Project, store: StateStore, result: RunResult, client: httpx.Client | None
) -> None:
    """Deliver what the run queued (and anything still pending), into ``result``. With
    nothing due, the report of a push that sends nothing, without loading the senders."""
    from segctl.delivery import queries
    from segctl.delivery.model import Report

    if not queries.anything_due(store, waiting=project.retry_waiting):
        result.report = Report()
        queries.count_left(store, result.report)
        result.deliveries = result.report.counts()
        return
    from segctl.project.deliver import worker

    progress.phase("Delivering")
    result.report = worker(project, store, client).push()
    result.deliveries = result.report.counts()


def _plan(
    project: Project, store: StateStore | None, changes: dict[str, Change], fire_initial: bool
) -> list[PlanRow]:
    """What a dry run would queue and sync (segctl.delivery.plan); nothing is written."""
    from segctl.delivery.plan import plan_run

    return plan_run(
        project.engine.driver.con,
        store,
        changes,
        segments=project.definitions.segments,
        destinations=project.config.destinations,
        reachability=project.reachability,
        max_exit_ratio=project.config.max_exit_ratio,
        fire_initial=fire_initial,
    )
