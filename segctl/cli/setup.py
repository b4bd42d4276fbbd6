"""Setting up a project and checking it: ``init``, ``templates``, ``validate``, ``inspect``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from segctl.cli.exits import handled
from segctl.cli.options import DebugOpt, Format, FormatOpt, ProjectOpt, load
from segctl.cli.output import data_warnings, note, print_rows
from segctl.errors import UsageError


def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create the project in.")] = Path("."),
    sample: Annotated[
        bool, typer.Option("--sample", help="Also generate sample data (a few thousand persons).")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Overwrite an existing segctl.yaml (segment files and features.yaml that "
            "exist are kept).",
        ),
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
        kept: list[Path] = []
        written = scaffold(directory, sample=sample, force=force, kept=kept)
        for path in written:
            note(f"created {path}", style="green")
        for path in kept:
            note(f"kept {path} (it exists)")
        note(next_steps(directory, sample=sample))


templates_app = typer.Typer(invoke_without_command=True)


@templates_app.callback()
def templates(
    ctx: typer.Context,
    fmt: FormatOpt = Format.table,
    project: ProjectOpt = None,  # the templates are built in: taken as by every command
) -> None:
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
    project: ProjectOpt = None,  # the templates are built in: taken as by every command
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


def validate(
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    no_data: Annotated[
        bool, typer.Option("--no-data", help="Check definitions only, not the data's contents.")
    ] = False,
    debug: DebugOpt = False,
) -> None:
    """Check segctl.yaml, segments and features against the data schema, and the data itself.

    Every problem is reported at once, each as file:line:col with a suggested fix: the
    data's (a file missing, a repeated person id) with the definitions' (the exit code is
    the first's: 4 when the data cannot be read, else 3). With segctl.yaml's problems come
    the segment and feature files' own, read without the data.

    Examples:\n
      segctl validate\n
      segctl validate --format json
    """
    from segctl.errors import ConfigError, DefinitionError
    from segctl.project import Project

    with handled(debug):
        try:
            try:
                proj = load(project)
            except ConfigError as exc:
                raise Project.config_problems(exc) from None
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
