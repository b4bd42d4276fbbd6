"""Committing runs and delivering: ``run``, ``backfill``, ``push``, ``sync``, ``forget``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from segctl.cli.exits import handled
from segctl.cli.options import (
    AsOfOpt,
    DebugOpt,
    EngineOpt,
    Format,
    FormatOpt,
    ProjectOpt,
    QuietOpt,
    SegmentArg,
    SparkMasterOpt,
    WaitOpt,
    load,
)
from segctl.cli.output import data_warnings, error, note, print_rows, progress
from segctl.timeutil import iso

if TYPE_CHECKING:
    from segctl.delivery.model import Report
    from segctl.delivery.plan import PlanRow
    from segctl.project import Project
    from segctl.results import RunResult


def run(
    as_of: AsOfOpt = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Show the plan (per segment and destination: adds, removes, messages; "
            "'on' tells an on_enter action from an on_exit one; in CSV, beside each "
            "segment's figures); commit and send nothing.",
        ),
    ] = False,
    fire_initial: Annotated[
        bool,
        typer.Option(
            "--fire-initial",
            help="Fire on_enter actions for the members of segments evaluated for the first time.",
        ),
    ] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Evaluate from scratch over every input file (a run otherwise re-evaluates "
            "only the persons whose memberships can have changed; see docs/realtime.md).",
        ),
    ] = False,
    wait: WaitOpt = 0.0,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    quiet: QuietOpt = False,
    engine: EngineOpt = None,
    spark_master: SparkMasterOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Evaluate, diff against the last committed run, commit atomically, then deliver.

    The snapshot, history and queued actions commit in one transaction. Exits 5 when a
    delivery failed or is still pending after retries (segctl push retries). Warns (on
    stderr, and under "warnings" in JSON) when as_of is further than stale_after past the
    newest event.

    Examples:\n
      segctl run\n
      segctl run --dry-run\n
      segctl run --full\n
      segctl run --as-of 2026-11-17T00:00:00Z --format json --wait 60
    """
    with handled(debug):
        proj = load(project, engine, spark_master)
        with progress("Running…", quiet):
            result = proj.run(
                as_of=as_of, dry_run=dry_run, fire_initial=fire_initial, wait=wait, full=full
            )
        if result.again:
            note(
                f"run {result.run_id} is committed as of {iso(result.as_of)}: not evaluated "
                "again (history only moves forward; a later --as-of evaluates changed data or "
                "definitions); what was pending was delivered"
            )
        if result.full_reason:
            note(f"full evaluation: {result.full_reason}")
        document = result.to_dict()
        columns = ["segment", "size", "entered", "exited"]
        rows = [(s["name"], s["size"], s["entered"], s["exited"]) for s in document["segments"]]
        if fmt is Format.csv and result.plan is not None:  # one table: the plan's rows too
            rows, columns = _with_plan(rows, result.plan), [*columns, *PLAN_COLUMNS]
        label = "Plan (dry run, nothing committed)" if dry_run else f"Run {result.run_id}"
        print_rows(
            fmt.value,
            columns,
            rows,
            title=f"{label} as of {document['as_of']}",
            numeric=["size", "entered", "exited"],
            document=document,
        )
        if fmt is Format.table and result.plan:
            columns = ["segment", *PLAN_COLUMNS]
            print_rows(
                "table",
                columns,
                [[getattr(r, c) for c in columns] for r in result.plan],
                title="Deliveries it would make (adds: on enter / audience adds; "
                "removes: on exit / audience removes; messages: what the actions send)",
                numeric=["adds", "removes", "messages"],
            )
        plan = result.plan or []  # a warning of a segment's every action is said once
        for segment, warning in dict.fromkeys((r.segment, w) for r in plan for w in r.warnings):
            note(f"warning: {segment}: {warning}", style="yellow")
        if not dry_run:
            _say_unfired(proj, result, fire_initial)
        data_warnings(result.warnings)
        report = result.report
        if report is not None:
            if fmt is Format.table and (report.sent or report.failed or report.pending):
                note(
                    f"deliveries: {report.sent} sent, {report.failed} failed, "
                    f"{report.pending} pending"
                )
            _say_deliveries(report)


def _say_unfired(proj: Project, result: RunResult, fire_initial: bool) -> None:
    """A segment's first run fires no on_enter actions: said, not silent."""
    from segctl.delivery.plan import initial_unfired

    segments = proj.definitions.segments
    for name, change in result.changes.items():
        if name in segments and (said := initial_unfired(change, segments[name], fire_initial)):
            note(f"{name}: {said}")


def _say_deliveries(report: Report) -> None:
    """A push's messages on stderr; exit 5, saying so, when it is incomplete."""
    for message in report.lines():
        note(message, style="yellow")
    for held in report.held:  # the mass-exit guard: push alone will not send these
        note(held.message, style="yellow")
    if not report.complete:
        held_count = sum(h.exits for h in report.held)
        error(
            f"delivery incomplete: {report.failed} failed, {report.pending} pending"
            + (f" ({held_count} held exits)" if held_count else "")
            + " (see segctl status; segctl push retries what is pending"
            + (", segctl push --retry-failed what failed" if report.failed else "")
            + ")"
        )
        raise typer.Exit(5)


#: A dry run's plan, per segment and destination (SPEC 3).
PLAN_COLUMNS = ["destination", "kind", "on", "adds", "removes", "messages", "held"]


def _with_plan(rows: list[tuple[Any, ...]], plan: list[PlanRow]) -> list[tuple[Any, ...]]:
    """A dry run's segments and plan as one CSV table: a row per segment and destination
    (a segment with none keeps one row, its plan columns empty)."""
    by_segment: dict[str, list[PlanRow | None]] = {}
    for planned in plan:
        by_segment.setdefault(planned.segment, []).append(planned)
    empty = (None,) * len(PLAN_COLUMNS)
    return [
        (*row, *(tuple(getattr(p, c) for c in PLAN_COLUMNS) if p else empty))
        for row in rows
        for p in by_segment.get(row[0]) or [None]
    ]


def backfill(
    start: Annotated[str, typer.Option("--from", help="First as_of (ISO-8601).")],
    end: Annotated[str, typer.Option("--to", help="Last as_of (ISO-8601).")],
    every: Annotated[
        str, typer.Option("--every", help="Step: a duration like 1d, 12h, 1w.")
    ] = "1d",
    reset: Annotated[
        bool,
        typer.Option("--reset", help="Delete all committed runs and membership history first."),
    ] = False,
    wait: WaitOpt = 0.0,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Rebuild committed history at past as_of times from the raw events (no deliveries).

    Examples:\n
      segctl backfill --from 2026-01-01 --to 2026-06-30 --every 1d\n
      segctl backfill --from 2026-01-01 --to 2026-06-30 --every 1w --reset
    """
    with handled(debug):
        with progress("Backfilling…", quiet):
            results = load(project).backfill(start, end, every, reset=reset, wait=wait)
        rows = [
            (
                r.run_id,
                r.to_dict()["as_of"],
                sum(c.size for c in r.changes.values()),
                sum(c.entered for c in r.changes.values()),
                sum(c.exited for c in r.changes.values()),
            )
            for r in results
        ]
        print_rows(
            fmt.value,
            ["run_id", "as_of", "memberships", "entered", "exited"],
            rows,
            numeric=["memberships", "entered", "exited"],
            document=[r.to_dict() for r in results],
        )


def push(
    confirm: Annotated[
        list[str] | None,
        typer.Option(
            "--confirm",
            help="Release the held exits of this segment (repeatable).",
            show_default=False,
        ),
    ] = None,
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed",
            help="Try the failed deliveries again too (once what refused them is fixed).",
        ),
    ] = False,
    wait: WaitOpt = 0.0,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    debug: DebugOpt = False,
) -> None:
    """Deliver what is pending: retries of earlier failures, delayed emails, audience syncs.

    A delivery the destination refused for good (a 4xx, a webhook endpoint gone) is failed
    and not tried again, unless --retry-failed asks for it once the cause is fixed. Exits 5
    when something failed or is still pending after retries.

    Examples:\n
      segctl push\n
      segctl push --confirm churn_risk\n
      segctl push --retry-failed
    """
    with handled(debug):
        report = load(project).push(confirm=confirm, wait=wait, retry_failed=retry_failed)
        counts = report.counts()
        print_rows(
            fmt.value,
            ["sent", "failed", "pending", "skipped", "scheduled"],
            [(report.sent, report.failed, report.pending, report.skipped, report.scheduled)],
            document={**counts, "skipped": report.skipped, "scheduled": report.scheduled},
            numeric=["sent", "failed", "pending", "skipped", "scheduled"],
        )
        _say_deliveries(report)


def sync(
    segment: SegmentArg,
    destination: Annotated[str, typer.Argument(help="Destination name (segctl.yaml).")],
    mode: Annotated[str, typer.Option("--mode", help="add, remove or mirror.")] = "mirror",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count, send nothing.")] = False,
    wait: WaitOpt = 0.0,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    debug: DebugOpt = False,
) -> None:
    """Reconcile one segment's audience on one destination now, from the last committed run.

    Examples:\n
      segctl sync power_users meta\n
      segctl sync churn_risk google --mode remove --dry-run
    """
    with handled(debug):
        results = load(project).sync(segment, destination, mode=mode, dry_run=dry_run, wait=wait)
        columns = [
            "destination",
            "audience",
            "added",
            "removed",
            "skipped",
            "invalid",
            "held_removals",
            "error",
        ]
        print_rows(
            fmt.value,
            columns,
            [[getattr(r, c) for c in columns] for r in results],
            numeric=["added", "removed", "skipped", "invalid", "held_removals"],
            title="Would sync (dry run)" if dry_run else None,
        )
        data_warnings([w for r in results for w in r.warnings])
        if any(r.error for r in results):
            raise typer.Exit(5)


def forget(
    person_ids: Annotated[list[str], typer.Argument(help="Person ids to erase.")],
    wait: WaitOpt = 0.0,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    debug: DebugOpt = False,
) -> None:
    """Erasure: remove persons from every audience, drop their data from the state, and keep
    an audit record without PII. They are never added again.

    The state file is rewritten after, so that no byte of their rows is left in the space
    the database freed. What an audience still holds (a removal that failed) keeps the
    hashed identifiers it needs until a push removes it.

    Examples:\n
      segctl forget u00042\n
      segctl forget u00042 u00043 --format json
    """
    with handled(debug):
        result = load(project).forget(person_ids, wait=wait)
        print_rows(
            fmt.value,
            ["forgotten", "audiences", "still_in_audiences"],
            [(result["forgotten"], result["audiences"], result["still_in_audiences"])],
            document=result,
        )
        if result["still_in_audiences"]:
            error("some audience removals failed; segctl push retries them")
            raise typer.Exit(5)
