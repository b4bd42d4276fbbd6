"""``segctl verify`` and ``segctl watch`` (SPEC section 5, incremental runs and watch)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from segctl.cli.exits import handled
from segctl.cli.options import (
    DebugOpt,
    EngineOpt,
    Format,
    FormatOpt,
    ProjectOpt,
    QuietOpt,
    SparkMasterOpt,
    WaitOpt,
    load,
)
from segctl.cli.output import note, print_rows, progress
from segctl.redact import redact
from segctl.textfmt import json_text


def verify(
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    wait: WaitOpt = 10.0,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Re-evaluate the last committed run from scratch and compare it with its snapshot.

    The run is evaluated at its as_of over exactly the input files it read (files that landed
    later are not read; one that changed since is read as it is now, named in a warning; one
    that vanished is named, exit 4), with today's segment definitions. Per segment, missing:
    persons the fresh evaluation has and the snapshot lacks; extra: persons the snapshot holds
    and the fresh evaluation does not.
    Exits 0 when equal, 1 when any segment differs.

    Examples:\n
      segctl verify\n
      segctl verify --format json
    """
    with handled(debug):
        proj = load(project)
        with progress("Verifying the last run…", quiet):
            result = proj.verify(wait=wait)
        for warning in result.warnings:
            note(f"warning: {warning}", style="yellow")
        document = result.to_dict()
        if fmt is Format.table:
            summary = (
                f"run {result.run_id} as of {document['as_of']}: {len(result.segments)} "
                f"segment(s) over {result.files} input file(s)"
            )
            if result.equal:
                print(f"{summary}: equal to a fresh evaluation")
            else:
                differing = result.differing
                print_rows(
                    "table",
                    ["segment", "missing", "extra"],
                    [(s.name, s.missing, s.extra) for s in differing],
                    title=f"{summary}: {len(differing)} differ (missing: in a fresh evaluation, "
                    "not in the snapshot; extra: in the snapshot only)",
                    numeric=["missing", "extra"],
                )
        else:
            print_rows(
                fmt.value,
                ["name", "missing", "extra"],
                [(s.name, s.missing, s.extra) for s in result.segments],
                document=document,
            )
        if not result.equal:
            raise typer.Exit(1)


def watch(
    every: Annotated[
        str,
        typer.Option(
            "--every",
            help="Run at least this often even without new files, so time-based exits happen "
            "on time: a number and s, m or h (30s, 1m, 2h).",
        ),
    ] = "1m",
    poll: Annotated[
        str,
        typer.Option(
            "--poll",
            help="How often to look for new, changed or removed input files (s, m or h). A "
            "file runs once it is the same on two polls in a row (a Parquet file, once its "
            "footer is written).",
        ),
    ] = "1s",
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    wait: WaitOpt = 5.0,
    engine: EngineOpt = None,
    spark_master: SparkMasterOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Keep memberships current: run (and deliver) when input files or definitions land or
    change and at least every --every, until SIGINT or SIGTERM.

    Polls the input files and folders: events, persons, subscriptions, identities, the
    segments' list files and the features file, and the segment files and segctl.yaml (works
    on network and object-store mounts). Holds
    the state lock only while a run is in progress, so `segctl run` and `segctl push` work
    beside an idle watch. Writes one line per run on stdout (--format json: one JSON object
    per line). A failed delivery stays in the outbox and later runs retry it. SIGINT/SIGTERM
    stop it after the run in progress has committed; exit 0.

    Examples:\n
      segctl watch\n
      segctl watch --every 5m --format json
    """
    from segctl.watch import RunLine, Watch, parse_every, serve

    with handled(debug):
        seconds = parse_every(every)
        poll_seconds = parse_every(poll, "--poll")
        if fmt is Format.csv:
            from segctl.errors import UsageError

            raise UsageError("watch writes lines or JSON lines: use --format table or json")

        def emit(line: RunLine) -> None:
            text = json_text(line.to_dict()) if fmt is Format.json else line.text()
            sys.stdout.write(redact(text) + "\n")
            sys.stdout.flush()

        proj = load(project, engine, spark_master)  # a missing project fails here, exit 2-4
        watcher = Watch(
            proj.root,
            every=seconds,
            poll=poll_seconds,
            wait=wait,
            emit=emit,
            engine=engine.value if engine else None,
            spark_master=spark_master,
        )
        note(f"watching {proj.root.resolve()} (every {every}, polling every {poll}); Ctrl-C stops")
        serve(watcher)
        note(f"stopped after {watcher.runs} run(s)")
