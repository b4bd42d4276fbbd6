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

from segctl.cli.output import error, note, print_rows, progress
from segctl.errors import SegctlError, UsageError

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


@contextmanager
def handled(debug: bool = False) -> Iterator[None]:
    """Map errors to exit codes: the one place where that happens."""
    try:
        yield
    except typer.Exit:
        raise
    except SegctlError as exc:
        if debug:
            traceback.print_exc()
        error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        error("interrupted")
        raise typer.Exit(130) from None
    except Exception as exc:
        if debug:
            traceback.print_exc()
        error(
            f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the "
            "traceback, and please report it)"
        )
        raise typer.Exit(70) from None


def load(project: Path | None) -> Project:
    from segctl.project import Project

    return Project.load(project)


def write_frame(frame: Any, out: Path) -> None:
    """Write a polars DataFrame as Parquet or CSV, chosen by the file's extension."""
    suffix = "".join(out.suffixes[-2:]).lower()
    if suffix.endswith(".parquet"):
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(out)
    elif suffix.endswith(".csv"):
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.write_csv(out)
    else:
        raise UsageError(f"--out {out}: use a .parquet or .csv file name")


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
            definitions = load(project).validate(check_data=not no_data)
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
        if fmt is Format.json:
            from segctl.cli.output import print_json

            print_json({"valid": True, "segments": segments, "features": features})
        elif fmt is Format.csv:
            print_rows(
                "csv",
                ["kind", "name"],
                [("segment", s) for s in segments] + [("feature", f) for f in features],
            )
        else:
            print(f"ok: {len(segments)} segments and {len(features)} features are valid")


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
    debug: DebugOpt = False,
) -> None:
    """Compute memberships and show size, entered and exited per segment. Changes no state.

    Examples:\n
      segctl evaluate\n
      segctl evaluate power_users churn_risk --as-of 2026-11-17T00:00:00Z\n
      segctl evaluate --out members.parquet --format json
    """
    with handled(debug):
        proj = load(project)
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
        if out is not None:
            note(f"wrote {sum(r[1] for r in rows)} memberships to {out}")


@app.command()
def preview(
    target: Annotated[str, typer.Argument(help="A segment name, or a segment YAML file.")],
    limit: Annotated[int, typer.Option("--limit", "-n", min=0, help="Members to show.")] = 10,
    as_of: AsOfOpt = None,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    debug: DebugOpt = False,
) -> None:
    """Size and sample members of a segment (or a draft file) without saving anything.

    Examples:\n
      segctl preview power_users\n
      segctl preview drafts/vip.yaml --limit 20
    """
    with handled(debug):
        result = load(project).preview(target, as_of=as_of, limit=limit)
        sample = result.sample
        from segctl.project import iso

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

    The SQL reads tables named events, persons and subscriptions with segctl's canonical
    column names; timestamps are compared as UTC.

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
    as_of: AsOfOpt = None,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    debug: DebugOpt = False,
) -> None:
    """Compute the named features of features.yaml per person.

    Examples:\n
      segctl features --out features.parquet\n
      segctl features ltv active_days_30d --format csv
    """
    with handled(debug):
        frame = load(project).features(names, as_of=as_of)
        if out is not None:
            write_frame(frame, out)
            note(f"wrote {frame.height} rows x {frame.width - 1} features to {out}")
            return
        shown = frame.head(limit) if fmt is Format.table else frame
        print_rows(fmt.value, frame.columns, shown.rows(), document=shown.to_dicts())
        if fmt is Format.table and frame.height > limit:
            note(f"showing {limit} of {frame.height} persons (--out FILE writes all)")


templates_app = typer.Typer(help="The built-in template library.", invoke_without_command=True)
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
    from segctl.definitions.values import ValueProblem

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
      segctl init demo --sample && cd demo && segctl evaluate
    """
    from segctl.scaffold import scaffold

    with handled(debug):
        written = scaffold(directory, sample=sample, force=force)
        for path in written:
            note(f"created {path}", style="green")
        note(f"next: cd {directory} && segctl validate && segctl evaluate")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
