"""The options many commands share, declared once, and :func:`load`, which turns ``--project``,
``--engine`` and ``--spark-master`` into a :class:`~segctl.Project`.

A command names an option by its alias (``project: ProjectOpt = None``); the default stays in
the command's signature, since it differs between commands (``--wait`` is 0 for the commands
that write the state and 10 for those that read it).
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from segctl.project import Project


class Format(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class Engine(enum.StrEnum):
    duckdb = "duckdb"
    spark = "spark"


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
    Format,
    typer.Option("--format", "-f", case_sensitive=False, help="Output format: table, json or csv."),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of", help="Evaluation time, ISO-8601 (e.g. 2026-11-17T00:00:00Z). Default: now (UTC)."
    ),
]
SegmentArg = Annotated[str, typer.Argument(help="Segment name.")]
AsOfRunOpt = Annotated[
    int | None,
    typer.Option(
        "--as-of-run", help="A committed run id (default: the last run).", show_default=False
    ),
]
WaitOpt = Annotated[
    float,
    typer.Option(
        "--wait",
        min=0,
        help="Seconds to wait for another run holding the state before exiting with code 6.",
    ),
]
LimitOpt = Annotated[
    int,
    typer.Option("--limit", "-n", min=0, help="Rows to show in a table (all with json/csv)."),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]
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


def load(
    project: Path | None, engine: Engine | None = None, spark_master: str | None = None
) -> Project:
    """The project of ``--project`` (default: the current folder), on ``--engine``."""
    from segctl.project import Project

    return Project.load(project, engine=engine.value if engine else None, spark_master=spark_master)
