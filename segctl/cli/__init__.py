"""The ``segctl`` command line: a thin shell over :class:`segctl.Project`.

Each command parses its options, calls the library and prints the result; the commands live in
modules by what a user does (:mod:`~segctl.cli.setup`, :mod:`~segctl.cli.evaluate`,
:mod:`~segctl.cli.run`, :mod:`~segctl.cli.state`, ...), the options they share in
:mod:`~segctl.cli.options`, and the mapping of errors to exit codes in :mod:`~segctl.cli.exits`.
Here they are put together, in the order ``segctl --help`` lists them. Heavy modules are
imported inside the commands so that ``segctl --help`` starts fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from segctl.cli import evaluate, explain, ml, realtime, report, run, setup, state
from segctl.cli.exits import EXIT_CODES_HELP
from segctl.cli.helptext import rewrap_help

__all__ = ["app", "main"]

COMMANDS: list[tuple[str, Callable[..., Any]]] = [
    ("validate", setup.validate),
    ("inspect", setup.inspect_data),
    ("evaluate", evaluate.evaluate),
    ("preview", evaluate.preview),
    ("compile", evaluate.compile_),
    ("features", evaluate.features),
    ("run", run.run),
    ("diff", state.diff),
    ("members", state.members),
    ("person", state.person),
    ("history", state.history),
    ("stats", state.stats),
    ("overlap", state.overlap),
    ("backfill", run.backfill),
    ("push", run.push),
    ("sync", run.sync),
    ("status", state.status),
    ("forget", run.forget),
    ("tags", state.tags),
    ("init", setup.init),
    ("explain", explain.explain),
    ("verify", realtime.verify),
    ("watch", realtime.watch),
    ("report", report.report),
    ("discover", ml.discover),
    ("lookalike", ml.lookalike),
]

HELP = (
    "Audience segmentation on analytical files: YAML segments compiled to SQL, evaluated "
    "in DuckDB, diffed and delivered."
)

#: The top-level help's examples: a project's first minutes, then a scheduled job's line.
EXAMPLES = """Examples:\n
  segctl init demo --sample && cd demo\n
  segctl validate\n
  segctl evaluate --format json\n
  segctl run --dry-run\n
  segctl members power_users --format csv > power_users.csv\n
  segctl watch --every 1m
"""

app = typer.Typer(
    name="segctl",
    help=HELP,
    epilog=EXAMPLES + "\n" + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)
for name, command in COMMANDS:
    app.command(name)(command)


def _print_version(value: bool) -> None:
    if value:
        from segctl.version import __version__

        print(f"segctl {__version__}")
        raise typer.Exit


@app.callback(help=HELP, epilog=EXAMPLES + "\n" + EXIT_CODES_HELP)
def _everywhere(
    ctx: typer.Context,
    project: Annotated[
        Path | None,
        typer.Option(
            "--project",
            "-p",
            help="Project folder for the command that follows (as its own --project).",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks on errors (as the command's own).")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print segctl's version."
        ),
    ] = False,
) -> None:
    # The options every command takes, also before its name (segctl --project DIR run):
    # they become the command's defaults, which its own options still override. (A
    # docstring here would replace the app's help.)
    given: dict[str, Any] = {"project": project} if project is not None else {}
    given |= {"debug": True} if debug else {}
    if given:
        ctx.default_map = {name: dict(given) for name, _ in COMMANDS}


app.add_typer(setup.templates_app, name="templates")
rewrap_help(app)  # paragraphs as sentences, not source lines


def main() -> None:
    """Console-script entry point (also ``python -m segctl``: same name, same completion).
    A usage error on a stderr that is not a terminal is click's plain two lines, not rich's
    box (one clear message for a log or a CI job)."""
    import typer.main

    from segctl.cli.output import is_terminal

    command = typer.main.get_command(app)
    if not is_terminal(sys.stderr):
        command.rich_markup_mode = None  # type: ignore[attr-defined]
    command(prog_name="segctl")


if __name__ == "__main__":  # pragma: no cover
    main()
