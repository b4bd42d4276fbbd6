"""``segctl report``: write the HTML report of the committed runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from segctl.cli.exits import handled
from segctl.cli.options import DebugOpt, ProjectOpt, QuietOpt, WaitOpt, load
from segctl.cli.output import note, progress
from segctl.errors import DataError, UsageError


def report(
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="The HTML file to write ('-': standard output)."),
    ] = Path("report.html"),
    days: Annotated[
        int,
        typer.Option(
            "--days", min=1, help="The period: runs of the last N days, growth over N days."
        ),
    ] = 30,
    project: ProjectOpt = None,
    wait: WaitOpt = 10.0,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Write a self-contained HTML report: segment sizes over the committed runs, entered and
    exited per run, growth rates, an overlap heatmap and destination status.

    The file loads nothing from the network; open it in any browser or attach it to a CI job.

    Examples:\n
      segctl report\n
      segctl report --out reports/weekly.html --days 7\n
      segctl report --out - > report.html
    """
    from segctl.report import collect, render

    with handled(debug):
        if str(out) != "-" and out.suffix.lower() not in (".html", ".htm"):
            raise UsageError(f"--out {out}: use a .html file name (or - for standard output)")
        proj = load(project)
        with progress("Building the report…", quiet):
            html = render(collect(proj, days=days, wait=wait))
        if str(out) == "-":
            sys.stdout.write(html)
            return
        from segctl.atomic import replacing

        try:
            with replacing(out) as partial:  # whole or not at all
                partial.write_text(html, encoding="utf-8")
        except OSError as exc:
            raise DataError(f"--out {out}: cannot write the file: {exc.strerror or exc}") from None
        note(f"wrote {out} ({len(html.encode()) / 1024:,.0f} KB)")
