"""The ``segctl`` command line: a thin shell over :class:`segctl.Project`.

Each command parses its options, calls the library and prints the result. Errors are mapped to
exit codes in one place (:func:`handled`); heavy modules are imported inside the commands so
that ``segctl --help`` starts fast.
"""

from __future__ import annotations

import enum
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from segctl.cli.output import error, note, percent, print_rows, progress
from segctl.errors import DataError, SegctlError, UsageError
from segctl.timeutil import iso

if TYPE_CHECKING:
    from segctl.project import Project

EXIT_CODES_HELP = """\
Exit codes: 0 ok; 1 changes found (with --exit-code); 2 usage error; 3 definition or config
error; 4 data error; 5 delivery incomplete; 6 state locked; 70 internal error."""

app = typer.Typer(
    name="segctl",
    help="Audience segmentation on analytical files: YAML segments compiled to SQL, evaluated "
    "in DuckDB, diffed and delivered.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


class Format(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


ProjectOpt = Annotated[
    Path | None,
    typer.Option(
        "--project",
        "-p",
        envvar="SEGCTL_PROJECT",
        show_envvar=True,
        help="Project folder (the one holding segctl.yaml). Default: current folder.",
    ),
]
FormatOpt = Annotated[
    Format, typer.Option("--format", "-f", help="Output format: table, json or csv.")
]
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of", help="Evaluation time, ISO-8601 (e.g. 2026-11-17T00:00:00Z). Default: now (UTC)."
    ),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]


class Engine(enum.StrEnum):
    duckdb = "duckdb"
    spark = "spark"


EngineOpt = Annotated[
    Engine | None,
    typer.Option(
        "--engine",
        help="Where the plan runs: duckdb (this machine) or spark (Apache Spark; needs "
        "pip install 'segctl\\[spark]'). Default: engine.type in segctl.yaml, else duckdb.",
        show_default=False,
    ),
]
SparkMasterOpt = Annotated[
    str | None,
    typer.Option(
        "--spark-master",
        metavar="URL",
        help="With --engine spark: local[*] (default), spark://host:7077, yarn, k8s://...",
        show_default=False,
    ),
]


@contextmanager
def handled(debug: bool = False) -> Iterator[None]:
    """Map errors to exit codes: the one place where that happens."""
    try:
        yield
    except typer.Exit:
        raise
    except SegctlError as exc:
        if debug:
            print_traceback()
        error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        error("interrupted")
        raise typer.Exit(130) from None
    except Exception as exc:
        if type(exc).__name__ == "OutOfMemoryException":  # DuckDB's, outside a plan
            from segctl.engine.duckdb import memory_error

            if debug:
                print_traceback()
            error(str(memory_error(exc)))
            raise typer.Exit(4) from None
        if debug:
            print_traceback()
        error(
            f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the "
            "traceback, and please report it)"
        )
        raise typer.Exit(70) from None


def print_traceback() -> None:
    """The traceback (with --debug), secrets masked like every other message."""
    from segctl.redact import redact

    sys.stderr.write(redact(traceback.format_exc()))


def load(
    project: Path | None, engine: Engine | None = None, spark_master: str | None = None
) -> Project:
    from segctl.project import Project

    return Project.load(project, engine=engine.value if engine else None, spark_master=spark_master)


def check_out(out: Path | None) -> None:
    """Refuse an --out name we cannot write before doing any work."""
    if out is not None and out.suffix.lower() not in (".parquet", ".csv"):
        raise UsageError(f"--out {out}: use a .parquet or .csv file name")


def write_frame(frame: Any, out: Path) -> None:
    """Write a polars DataFrame as Parquet or CSV, chosen by the file's extension; whole or not
    at all (a write cut short leaves the previous file as it was)."""
    from segctl.atomic import replacing

    check_out(out)
    try:
        with replacing(out) as partial:
            if out.suffix.lower() == ".parquet":
                frame.write_parquet(partial)
            else:
                frame.write_csv(partial)
    except Exception as exc:  # polars reports I/O failures in several exception types
        raise DataError(f"--out {out}: cannot write the file: {exc}") from None


def show_frame(
    frame: Any,
    fmt: Format,
    out: Path | None,
    limit: int | None,
    what: str,
    wrote: str | None = None,
) -> None:
    """Write a DataFrame to --out, or print it (a table shows at most ``limit`` rows)."""
    if out is not None:
        write_frame(frame, out)
        note(f"wrote {wrote or f'{frame.height} {what}'} to {out}")
        return
    shown = frame.head(limit) if fmt is Format.table and limit is not None else frame
    print_rows(fmt.value, frame.columns, shown.rows(), document=shown.to_dicts())
    if shown.height < frame.height:
        note(f"showing {shown.height} of {frame.height} {what} (--out FILE writes all)")


def data_warnings(warnings: list[str]) -> None:
    """What the data views left out (SPEC 1: nothing is dropped silently), on stderr."""
    for warning in warnings:
        note(f"warning: {warning}", style="yellow")


# ---- commands ---------------------------------------------------------------------------


@app.command()
def validate(
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    no_data: Annotated[
        bool, typer.Option("--no-data", help="Check definitions only, not the data's contents.")
    ] = False,
    debug: DebugOpt = False,
) -> None:
    """Check segctl.yaml, segments and features against the data schema, and the data itself.

    Every problem is reported at once, each as file:line:col with a suggested fix.

    Examples:\n
      segctl validate\n
      segctl validate --format json
    """
    from segctl.errors import DefinitionError

    with handled(debug):
        try:
            proj = load(project)
            definitions = proj.validate(check_data=not no_data)
        except DefinitionError as exc:
            if fmt is Format.json:
                from segctl.cli.output import print_json

                print_json(
                    {
                        "valid": False,
                        "problems": [
                            {"file": p.file, "line": p.line, "col": p.col, "message": p.message}
                            for p in exc.problems
                        ],
                    }
                )
            raise
        segments, features = list(definitions.segments), list(definitions.features)
        # Definition warnings (a nested key never seen in the data), legal but unwise
        # destinations (a short webhook key) and what the data views leave out: one list of
        # strings, on stderr and under "warnings" in JSON.
        warnings = [str(w) for w in definitions.warnings]
        warnings += [w for d in proj.config.destinations.values() for w in d.warnings]
        warnings += [] if no_data else proj.data_warnings()
        data_warnings(warnings)
        if fmt is Format.json:
            from segctl.cli.output import print_json

            print_json(
                {"valid": True, "segments": segments, "features": features, "warnings": warnings}
            )
        elif fmt is Format.csv:
            print_rows(
                "csv",
                ["kind", "name"],
                [("segment", s) for s in segments] + [("feature", f) for f in features],
            )
        else:
            print(f"ok: {len(segments)} segments and {len(features)} features are valid")


@app.command(name="inspect")
def inspect_data(
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    debug: DebugOpt = False,
) -> None:
    """What segctl sees in each data source, before you write a segment.

    Per source: files, rows, time range, distinct persons, events with no person (ignored),
    repeated rows removed, and the property keys found with their type and an example
    (keys inside JSON, STRUCT and MAP columns as dotted names, like properties.plan).

    Examples:\n
      segctl inspect\n
      segctl inspect --format json
    """
    with handled(debug):
        proj = load(project)
        reports = proj.inspect()
        data_warnings(proj.data_warnings())
        if fmt is Format.json:
            from segctl.cli.output import print_json

            sources = [r.to_dict() for r in reports]
            print_json({"sources": sources, "warnings": proj.data_warnings()})
            return
        rows = [
            (r.role, r.name, p.name, p.type, "" if p.example is None else str(p.example))
            for r in reports
            for p in r.properties
        ]
        if fmt is Format.csv:
            print_rows("csv", ["role", "source", "property", "type", "example"], rows)
            return
        for r in reports:
            span = f", {r.first} .. {r.last}" if r.first else ""
            extra = ""
            if r.role == "events":
                extra = f", {r.no_person:,} with no person, {r.duplicates:,} repeats removed"
            print(
                f"{r.role}: {r.name} ({len(r.files)} file(s), {r.rows:,} rows{span}, "
                f"{r.persons:,} persons{extra})"
            )
            print_rows(
                "table",
                ["property", "type", "example"],
                [
                    (p.name, p.type, "" if p.example is None else str(p.example)[:60])
                    for p in r.properties
                ],
            )


@app.command()
def evaluate(
    segments: Annotated[
        list[str] | None,
        typer.Argument(help="Segments to evaluate (default: all).", show_default=False),
    ] = None,
    as_of: AsOfOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Write (segment, person_id) rows to a .parquet or .csv file."
        ),
    ] = None,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    quiet: QuietOpt = False,
    engine: EngineOpt = None,
    spark_master: SparkMasterOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Compute memberships and show size, entered and exited per segment. Changes no state.

    Warns (on stderr, and under "warnings" in JSON) when as_of is further than stale_after
    (segctl.yaml, default 3d) past the newest event: the data may have stopped.

    Examples:\n
      segctl evaluate\n
      segctl evaluate power_users churn_risk --as-of 2026-11-17T00:00:00Z\n
      segctl evaluate --out members.parquet --format json
    """
    with handled(debug):
        check_out(out)
        proj = load(project, engine, spark_master)
        with progress("Evaluating segments…", quiet):
            result = proj.evaluate(segments, as_of=as_of)
            if out is not None:
                write_frame(result.memberships(), out)
        rows = result.size_rows()
        document = result.to_dict()
        print_rows(
            fmt.value,
            ["segment", "size", "entered", "exited"],
            rows,
            title=f"Segments as of {document['as_of']}",
            numeric=["size", "entered", "exited"],
            document=document,
        )
        data_warnings(result.warnings)
        if out is not None:
            note(f"wrote {sum(r[1] for r in rows)} memberships to {out}")


@app.command()
def preview(
    target: Annotated[str, typer.Argument(help="A segment name, or a segment YAML file.")],
    limit: Annotated[int, typer.Option("--limit", "-n", min=0, help="Members to show.")] = 10,
    as_of: AsOfOpt = None,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    engine: EngineOpt = None,
    spark_master: SparkMasterOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Size and sample members of a segment (or a draft file) without saving anything.

    Examples:\n
      segctl preview power_users\n
      segctl preview drafts/vip.yaml --limit 20
    """
    with handled(debug):
        result = load(project, engine, spark_master).preview(target, as_of=as_of, limit=limit)
        sample = result.sample

        if fmt is Format.json:
            from segctl.cli.output import print_json

            print_json(
                {
                    "name": result.name,
                    "as_of": iso(result.as_of),
                    "size": result.size,
                    "members": sample.to_dicts(),
                }
            )
            return
        print_rows(
            fmt.value,
            sample.columns,
            sample.rows(),
            title=f"{result.name}: {result.size} members as of {iso(result.as_of)}"
            f" (showing {sample.height})",
        )


@app.command(name="compile")
def compile_(
    segments: Annotated[
        list[str] | None,
        typer.Argument(help="Segments to compile (default: all, as one plan).", show_default=False),
    ] = None,
    dialect: Annotated[
        str,
        typer.Option(
            "--dialect",
            "-d",
            help="SQL dialect: duckdb, spark, postgres, bigquery, snowflake, trino.",
        ),
    ] = "duckdb",
    as_of: AsOfOpt = None,
    project: ProjectOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Print the SQL of one segment (its members) or of several evaluated together.

    The SQL reads tables named events, persons and subscriptions (and one table per list
    file) with segctl's canonical column names; timestamps are compared as UTC. It opens with
    a comment naming each table and column it reads and the CREATE TABLE statements for them
    in the dialect (docs/warehouse.md).

    Examples:\n
      segctl compile power_users\n
      segctl compile --dialect bigquery > segments.sql
    """
    with handled(debug):
        print(load(project).compile(segments, dialect=dialect, as_of=as_of))


@app.command()
def features(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Features to compute (default: all).", show_default=False),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write one row per person to a .parquet or .csv file."),
    ] = None,
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", min=0, help="Rows to show in a table (all with json/csv)."),
    ] = 20,
    behaviour: Annotated[
        bool,
        typer.Option(
            "--behaviour",
            help="The behavioural features discover and lookalike use (event counts, recency, "
            "active days, sums, properties) instead of features.yaml's.",
        ),
    ] = False,
    scaled: Annotated[
        bool, typer.Option("--scaled", help="With --behaviour: robust-scaled, as models see them.")
    ] = False,
    as_of: AsOfOpt = None,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    engine: EngineOpt = None,
    spark_master: SparkMasterOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Compute the named features of features.yaml per person.

    Examples:\n
      segctl features --out features.parquet\n
      segctl features ltv active_days_30d --format csv\n
      segctl features --behaviour --out behaviour.parquet
    """
    with handled(debug):
        if behaviour or scaled:
            from segctl.ml.features import behaviour_frame

            proj = load(project, engine, spark_master)
            frame = behaviour_frame(proj, names, as_of, scaled=scaled)
        else:
            frame = load(project, engine, spark_master).features(names, as_of=as_of)
        show_frame(
            frame,
            fmt,
            out,
            limit,
            "persons",
            wrote=f"{frame.height} rows x {frame.width - 1} features",
        )


WaitOpt = Annotated[
    float,
    typer.Option(
        "--wait",
        min=0,
        help="Seconds to wait for another run holding the state before exiting with code 6.",
    ),
]
RunOpt = Annotated[int | None, typer.Option(help="A committed run id.", show_default=False)]


@app.command()
def run(
    as_of: AsOfOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan; commit and send nothing.")
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
        if result.full_reason:
            note(f"full evaluation: {result.full_reason}")
        document = result.to_dict()
        rows = [(s["name"], s["size"], s["entered"], s["exited"]) for s in document["segments"]]
        label = "Plan (dry run, nothing committed)" if dry_run else f"Run {result.run_id}"
        print_rows(
            fmt.value,
            ["segment", "size", "entered", "exited"],
            rows,
            title=f"{label} as of {document['as_of']}",
            numeric=["size", "entered", "exited"],
            document=document,
        )
        if fmt is Format.table and result.plan:
            columns = ["segment", "destination", "kind", "adds", "removes", "held"]
            print_rows(
                "table",
                columns,
                [[getattr(r, c) for c in columns] for r in result.plan],
                title="Deliveries it would make (adds: on enter / audience adds; "
                "removes: on exit / audience removes)",
                numeric=["adds", "removes"],
            )
        for row in result.plan or []:
            for warning in row.warnings:
                note(f"warning: {row.segment}: {warning}", style="yellow")
        data_warnings(result.warnings)
        report = result.report
        if report is not None:
            for message in report.messages:
                note(message, style="yellow")
            for held in report.held:  # the mass-exit guard: push alone will not send these
                note(held.message, style="yellow")
            if not report.complete:
                held_count = sum(h.exits for h in report.held)
                error(
                    f"delivery incomplete: {report.failed} failed, {report.pending} pending"
                    + (f" ({held_count} held exits)" if held_count else "")
                    + " (see segctl status; segctl push retries)"
                )
                raise typer.Exit(5)


@app.command()
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
                title=f"Changes from run {result.from_run} to run {result.to_run}",
            )
        else:
            print_rows(
                fmt.value, ["segment", "change", "person_id"], rows, document=result.to_dict()
            )
    if exit_code and result.has_changes:
        raise typer.Exit(1)


@app.command()
def members(
    segment: Annotated[str, typer.Argument(help="Segment name.")],
    as_of_run: Annotated[
        int | None,
        typer.Option(
            "--as-of-run", help="A committed run id (default: the last run).", show_default=False
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the members to a .parquet or .csv file."),
    ] = None,
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", min=0, help="Rows to show in a table (all with json/csv)."),
    ] = 50,
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


@app.command()
def person(
    person_id: Annotated[str, typer.Argument(help="The person's id.")],
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    wait: WaitOpt = 10.0,
    debug: DebugOpt = False,
) -> None:
    """A person's segments now, their entered/exited history, and pending deliveries.

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


@app.command()
def history(
    segment: Annotated[str, typer.Argument(help="Segment name.")],
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


@app.command()
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
    ratio (0.028169), for scripts.

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


@app.command()
def overlap(
    segments: Annotated[list[str], typer.Argument(help="Two or more segments.")],
    as_of_run: Annotated[
        int | None,
        typer.Option(
            "--as-of-run", help="A committed run id (default: the last run).", show_default=False
        ),
    ] = None,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    wait: WaitOpt = 10.0,
    debug: DebugOpt = False,
) -> None:
    """Pairwise overlap (counts, percentages, Jaccard) and the persons in all segments.

    The table shows pct_of_a and pct_of_b (the share of a, of b, in both) as percentages and
    Jaccard to three decimals; JSON (exact) and CSV give the ratios (0.913462), for scripts.

    Examples:\n
      segctl overlap power_users high_ltv\n
      segctl overlap trial_pricing churn_risk new_users --format json
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
        if fmt is Format.table:
            print(f"in all {len(segments)}: {len(in_all)} person(s)")


@app.command()
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


@app.command()
def push(
    confirm: Annotated[
        list[str] | None,
        typer.Option(
            "--confirm",
            help="Release the held exits of this segment (repeatable).",
            show_default=False,
        ),
    ] = None,
    wait: WaitOpt = 0.0,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    debug: DebugOpt = False,
) -> None:
    """Deliver what is pending: retries of earlier failures, delayed emails, audience syncs.

    Exits 5 when something failed or is still pending after retries.

    Examples:\n
      segctl push\n
      segctl push --confirm churn_risk
    """
    with handled(debug):
        report = load(project).push(confirm=confirm, wait=wait)
        counts = report.counts()
        print_rows(
            fmt.value,
            ["sent", "failed", "pending", "skipped", "scheduled"],
            [(report.sent, report.failed, report.pending, report.skipped, report.scheduled)],
            document={**counts, "skipped": report.skipped, "scheduled": report.scheduled},
            numeric=["sent", "failed", "pending", "skipped", "scheduled"],
        )
        for message in report.messages:
            note(message, style="yellow")
        for held in report.held:
            note(held.message, style="yellow")
        if not report.complete:
            raise typer.Exit(5)


@app.command()
def sync(
    segment: Annotated[str, typer.Argument(help="Segment name.")],
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
            "held_removals",
            "error",
        ]
        print_rows(
            fmt.value,
            columns,
            [[getattr(r, c) for c in columns] for r in results],
            numeric=["added", "removed", "skipped", "held_removals"],
            title="Would sync (dry run)" if dry_run else None,
        )
        if any(r.error for r in results):
            raise typer.Exit(5)


@app.command()
def status(
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    wait: WaitOpt = 10.0,
    debug: DebugOpt = False,
) -> None:
    """Last runs, pending and failed deliveries per destination, and each audience's last
    sync time and platform figures (received, invalid, match rate); held exits.

    Examples:\n
      segctl status\n
      segctl status --format json
    """
    with handled(debug):
        info = load(project).status(wait=wait)
        if fmt is not Format.table:
            rows = [
                [d[k] for k in ("destination", "kind", "status", "count")]
                for d in info["deliveries"]
            ]
            print_rows(fmt.value, ["destination", "kind", "status", "count"], rows, document=info)
            return
        run_cols = ["run_id", "kind", "as_of", "finished_at"]
        print_rows(
            "table", run_cols, [[r[c] for c in run_cols] for r in info["runs"]], title="Last runs"
        )
        out_cols = ["destination", "kind", "status", "count", "last_error"]
        print_rows(
            "table",
            out_cols,
            [[d[c] for c in out_cols] for d in info["deliveries"]],
            title="Deliveries",
            numeric=["count"],
        )
        aud_cols = [
            "destination",
            "audience",
            "last_sync_at",
            "synced_members",
            "received",
            "invalid",
            "match_rate",
        ]
        print_rows(
            "table",
            aud_cols,
            [[a[c] for c in aud_cols] for a in info["audiences"]],
            title="Audiences",
            numeric=["synced_members", "received", "invalid"],
        )
        for hold in info["holds"]:
            note(
                f"held: {hold['segment']} (run {hold['run_id']}): {hold['exits'] or 0} exits "
                f"held, {hold['reason']}; release with segctl push --confirm {hold['segment']}",
                style="yellow",
            )


@app.command()
def forget(
    person_ids: Annotated[list[str], typer.Argument(help="Person ids to erase.")],
    wait: WaitOpt = 0.0,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    debug: DebugOpt = False,
) -> None:
    """Erasure: remove persons from every audience, drop their data from the state, and keep
    an audit record without PII. They are never added again.

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


@app.command()
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


templates_app = typer.Typer(invoke_without_command=True)
app.add_typer(templates_app, name="templates")


@templates_app.callback()
def templates(ctx: typer.Context, fmt: FormatOpt = Format.table) -> None:
    """List the built-in templates and their parameters.

    Examples:\n
      segctl templates\n
      segctl templates show power_users
    """
    if ctx.invoked_subcommand is not None:
        return
    from segctl.definitions.templates import TEMPLATES

    rows = [(t.name, t.signature(), t.description) for t in TEMPLATES.values()]
    print_rows(fmt.value, ["name", "signature", "description"], rows)


@templates_app.command("show")
def templates_show(
    name: Annotated[str, typer.Argument(help="Template name.")],
    params: Annotated[
        list[str] | None,
        typer.Option("--param", help="A parameter as KEY=VALUE (YAML value).", show_default=False),
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Print a template's expanded rule as YAML (required parameters as placeholders).

    Examples:\n
      segctl templates show churn_risk\n
      segctl templates show power_users --param event=video_rendered --param min_count=5
    """
    import yaml

    from segctl.definitions.source import did_you_mean
    from segctl.definitions.templates import TEMPLATES
    from segctl.errors import ValueProblem

    with handled(debug):
        template = TEMPLATES.get(name)
        if template is None:
            raise UsageError(f"unknown template '{name}'{did_you_mean(name, TEMPLATES)}")
        values: dict[str, Any] = {p.name: f"<{p.name}>" for p in template.params if p.required}
        for item in params or []:
            key, sep, raw = item.partition("=")
            if not sep:
                raise UsageError(f"--param {item!r}: expected KEY=VALUE")
            values[key] = yaml.safe_load(raw)
        try:
            rule = template.expand(values)
        except ValueProblem as exc:
            raise UsageError(str(exc)) from None
        print(f"# {template.signature()}: {template.description}")
        print(yaml.safe_dump({"rule": rule}, sort_keys=False), end="")


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create the project in.")] = Path("."),
    sample: Annotated[
        bool, typer.Option("--sample", help="Also generate sample data (a few thousand persons).")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing segctl.yaml.")
    ] = False,
    debug: DebugOpt = False,
) -> None:
    """Scaffold a project: segctl.yaml, segments from templates, features.yaml.

    Examples:\n
      segctl init demo --sample && cd demo && segctl run --dry-run\n
      segctl init .
    """
    from segctl.scaffold import next_steps, scaffold

    with handled(debug):
        written = scaffold(directory, sample=sample, force=force)
        for path in written:
            note(f"created {path}", style="green")
        note(next_steps(directory, sample=sample))


import segctl.cli.explain  # noqa: E402  (registers `segctl explain`)
import segctl.cli.realtime  # noqa: E402  (registers `segctl verify`, `watch`)
import segctl.cli.report  # noqa: E402, F401  (registers `segctl report`)
from segctl.cli import ml as _ml  # noqa: E402, F401  (registers `segctl discover`, `lookalike`)
from segctl.cli.helptext import rewrap_help  # noqa: E402

rewrap_help(app)  # after every command is registered: paragraphs as sentences, not source lines


def main() -> None:
    """Console-script entry point (also ``python -m segctl``: same name, same completion)."""
    app(prog_name="segctl")


if __name__ == "__main__":  # pragma: no cover
    main()
