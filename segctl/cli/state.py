"""Reading the committed state: ``diff``, ``members``, ``person``, ``history``, ``stats``,
``overlap``, ``status``, ``tags``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segctl.cli.exits import handled
from segctl.cli.frames import show_frame, write_frame
from segctl.cli.options import (
    AsOfRunOpt,
    DebugOpt,
    Format,
    FormatOpt,
    LimitOpt,
    ProjectOpt,
    SegmentArg,
    WaitOpt,
    load,
)
from segctl.cli.output import note, print_rows
from segctl.textfmt import percent


def diff(
    segments: Annotated[
        list[str] | None,
        typer.Argument(help="Segments to show (default: all).", show_default=False),
    ] = None,
    from_run: Annotated[
        int | None,
        typer.Option(
            "--from", help="Earlier run id (default: the run before --to).", show_default=False
        ),
    ] = None,
    to_run: Annotated[
        int | None,
        typer.Option("--to", help="Later run id (default: the last run).", show_default=False),
    ] = None,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit with 1 when anyone entered or exited.")
    ] = False,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    wait: WaitOpt = 10.0,
    debug: DebugOpt = False,
) -> None:
    """Who entered and exited between two committed runs (default: the last two).

    Examples:\n
      segctl diff\n
      segctl diff power_users --from 3 --to 7 --format json\n
      segctl diff --exit-code || echo "segments changed"
    """
    with handled(debug):
        result = load(project).diff(segments, from_run, to_run, wait=wait)
        rows = [
            (d.name, transition, person_id)
            for d in result.segments
            for transition, ids in (("entered", d.entered), ("exited", d.exited))
            for person_id in ids
        ]
        if fmt is Format.table:
            summary = [
                (d.name, len(d.entered), len(d.exited), "yes" if d.definition_changed else "")
                for d in result.segments
            ]
            print_rows(
                "table",
                ["segment", "entered", "exited", "definition changed"],
                summary,
                numeric=["entered", "exited"],
                title=(
                    f"Changes from run {result.from_run} to run {result.to_run}"
                    if result.from_run
                    else f"Changes up to run {result.to_run} (from before any run)"
                ),
            )
        else:
            print_rows(
                fmt.value, ["segment", "change", "person_id"], rows, document=result.to_dict()
            )
    if exit_code and result.has_changes:
        raise typer.Exit(1)


def members(
    segment: SegmentArg,
    as_of_run: AsOfRunOpt = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the members to a .parquet or .csv file."),
    ] = None,
    limit: LimitOpt = 50,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    wait: WaitOpt = 10.0,
    debug: DebugOpt = False,
) -> None:
    """Members of a segment at the last (or a given) committed run, with person columns.

    Examples:\n
      segctl members power_users\n
      segctl members churn_risk --as-of-run 12 --out churn.csv\n
      segctl members vip --format json
    """
    with handled(debug):
        frame = load(project).members(segment, as_of_run, wait=wait)
        show_frame(frame, fmt, out, limit, "members")


def person(
    person_id: Annotated[str, typer.Argument(help="The person's id.")],
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    wait: WaitOpt = 10.0,
    debug: DebugOpt = False,
) -> None:
    """A person's segments now, their entered/exited history, and pending deliveries.

    Pending deliveries are the person's actions still to send and, for each audience with a
    sync to come, what it will do for them: add, remove (held while a mass-exit hold is
    open), update (their email or phone changed: sent again) or add skipped (no identifier
    the platform takes).

    Examples:\n
      segctl person u00042\n
      segctl person u00042 --format json
    """
    with handled(debug):
        info = load(project).person(person_id, wait=wait)
        if fmt is not Format.table:
            columns = ["segment", "entered_at", "exited_at", "entered_run", "exited_run"]
            print_rows(
                fmt.value,
                columns,
                [[h[c] for c in columns] for h in info["history"]],
                document=info,
            )
            return
        print(
            f"{person_id}: in {len(info['segments'])} segment(s): "
            + (", ".join(info["segments"]) or "none")
        )
        columns = ["segment", "entered_at", "exited_at", "entered_run", "exited_run"]
        print_rows(
            "table", columns, [[h[c] for c in columns] for h in info["history"]], title="History"
        )
        if info["pending"]:
            keys = ["segment", "kind", "destination", "transition", "status", "attempts"]
            print_rows(
                "table",
                keys,
                [[p[k] for k in keys] for p in info["pending"]],
                title="Pending deliveries",
            )


def history(
    segment: SegmentArg,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    wait: WaitOpt = 10.0,
    debug: DebugOpt = False,
) -> None:
    """Size, entered and exited of a segment at every committed run.

    Examples:\n
      segctl history power_users\n
      segctl history power_users --format csv > power_users.csv
    """
    with handled(debug):
        rows = load(project).history(segment, wait=wait)
        columns = ["run_id", "as_of", "size", "entered", "exited", "definition_changed"]
        print_rows(
            fmt.value,
            columns,
            [[getattr(r, c) for c in columns] for r in rows],
            title=f"{segment}: history",
            numeric=["size", "entered", "exited"],
        )


def stats(
    segment: Annotated[
        str | None, typer.Argument(help="Segment name (default: all).", show_default=False)
    ] = None,
    days: Annotated[int, typer.Option("--days", min=1, help="The period, in days.")] = 30,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    wait: WaitOpt = 10.0,
    debug: DebugOpt = False,
) -> None:
    """Size, entered and exited in the last N days, and growth rate, per segment.

    The table shows the growth rate as a percentage (+2.8%); JSON (exact) and CSV give the
    ratio (0.028169), for scripts. All are measured from one run, "since": the last before
    the period, else the period's first (its members are the start, not entered), so that
    the size then plus entered less exited is the size now.

    Examples:\n
      segctl stats\n
      segctl stats power_users --days 7 --format json
    """
    from segctl import analytics

    with handled(debug):
        rows = load(project).stats(segment, days, wait=wait)
        columns = ["segment", "size", "entered", "exited", "growth_rate", "since"]
        values = [[getattr(r, c) for c in columns] for r in rows]
        if fmt is Format.table:  # for people: a percentage; JSON and CSV keep the ratio
            values = [[*v[:4], percent(v[4], signed=True), *v[5:]] for v in values]
        print_rows(
            fmt.value,
            columns,
            values,
            title=f"Last {days} days",
            numeric=["size", "entered", "exited", "growth_rate"],
            document=analytics.as_dicts(rows),
        )


def overlap(
    segments: Annotated[list[str], typer.Argument(help="Two or more segments.")],
    as_of_run: AsOfRunOpt = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the persons in all to a .parquet or .csv file."),
    ] = None,
    limit: LimitOpt = 20,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    wait: WaitOpt = 10.0,
    debug: DebugOpt = False,
) -> None:
    """Pairwise overlap (counts, percentages, Jaccard) and the persons in all segments.

    The table shows pct_of_a and pct_of_b (the share of a, of b, in both) as percentages and
    Jaccard to three decimals; JSON (exact) and CSV give the ratios (0.913462), for scripts.
    The persons in all are listed after the table (--limit of them), in JSON's in_all, and
    written whole by --out; with CSV, their count is said on stderr.

    Examples:\n
      segctl overlap power_users high_ltv\n
      segctl overlap trial_pricing churn_risk new_users --format json\n
      segctl overlap power_users high_ltv --out both.csv
    """
    from segctl import analytics

    with handled(debug):
        rows, in_all = load(project).overlap(segments, as_of_run, wait=wait)
        columns = ["a", "b", "size_a", "size_b", "both", "pct_of_a", "pct_of_b", "jaccard"]
        document = {
            "pairs": analytics.as_dicts(rows),
            "in_all": {"segments": segments, "count": len(in_all), "person_ids": in_all},
        }
        values = [[getattr(r, c) for c in columns] for r in rows]
        if fmt is Format.table:  # for people: percentages; JSON and CSV keep the ratios
            values = [[*v[:5], percent(v[5]), percent(v[6]), f"{v[7]:.3f}"] for v in values]
        print_rows(fmt.value, columns, values, numeric=columns[2:], document=document)
        if out is not None:
            import polars as pl

            write_frame(pl.DataFrame({"person_id": in_all}, schema={"person_id": pl.String}), out)
            note(f"wrote the {len(in_all)} person(s) in all {len(segments)} to {out}")
        if fmt is Format.table:
            shown = ", ".join(in_all[:limit])
            more = f" ... and {len(in_all) - limit} more" if len(in_all) > limit else ""
            listed = f": {shown}{more}" if in_all and limit else ""
            print(f"in all {len(segments)}: {len(in_all)} person(s){listed}")
        elif fmt is Format.csv and out is None:  # the CSV is the pairs' table: count on stderr
            note(f"in all {len(segments)}: {len(in_all)} person(s) (--out FILE writes them)")


def status(
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    wait: WaitOpt = 10.0,
    debug: DebugOpt = False,
) -> None:
    """Last runs, pending and failed deliveries per destination, and each audience's last
    sync time and platform figures (received, invalid, match rate); held exits. Before the
    first run every list is empty (exit 0).

    Examples:\n
      segctl status\n
      segctl status --format json
    """
    with handled(debug):
        info = load(project).status(wait=wait)
        if not info["runs"]:
            note("no runs yet: `segctl run` commits the first one")
        if fmt is not Format.table:
            columns = ["destination", "kind", "status", "count", "last_error"]
            rows = [[d[k] for k in columns] for d in info["deliveries"]]
            print_rows(fmt.value, columns, rows, document=info)
            if fmt is Format.csv:
                note("the CSV is the deliveries' table; --format json holds the runs, audiences "
                     "and held exits too")  # fmt: skip
            return
        tables = [  # title, the document's key, columns, numeric columns
            ("Last runs", "runs", ["run_id", "kind", "as_of", "finished_at"], []),
            (
                "Deliveries",
                "deliveries",
                ["destination", "kind", "status", "count", "last_error"],
                ["count"],
            ),
            (
                "Audiences",
                "audiences",
                [
                    *("destination", "audience", "last_sync_at", "synced_members"),
                    *("received", "invalid", "match_rate"),
                ],
                ["synced_members", "received", "invalid"],
            ),
        ]
        if info["holds"]:
            hold_cols = ["segment", "run_id", "exits", "reason", "release"]
            tables.append(("Held exits (mass-exit guard)", "holds", hold_cols, ["exits"]))
        for title, key, columns, numeric in tables:
            values = [[item[c] for c in columns] for item in info[key]]
            print_rows("table", columns, values, title=title, numeric=numeric)


def tags(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the tags to a .parquet or .csv file.")
    ] = None,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    wait: WaitOpt = 10.0,
    debug: DebugOpt = False,
) -> None:
    """The person tags set by tag actions.

    Examples:\n
      segctl tags\n
      segctl tags --out tags.csv
    """
    with handled(debug):
        show_frame(load(project).tags(wait=wait), fmt, out, None, "tags")
