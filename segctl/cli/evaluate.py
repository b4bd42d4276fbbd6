"""Segments without committing anything: ``evaluate``, ``preview``, ``compile``, ``features``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segctl.cli.exits import handled
from segctl.cli.frames import check_out, show_frame, write_frame
from segctl.cli.options import (
    AsOfOpt,
    DebugOpt,
    EngineOpt,
    Format,
    FormatOpt,
    LimitOpt,
    ProjectOpt,
    QuietOpt,
    SparkMasterOpt,
    load,
)
from segctl.cli.output import data_warnings, note, print_rows, progress
from segctl.timeutil import iso


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


def features(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Features to compute (default: all).", show_default=False),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write one row per person to a .parquet or .csv file."),
    ] = None,
    limit: LimitOpt = 20,
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
