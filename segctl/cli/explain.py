"""``segctl explain``: why a person is (or is not) in a segment. A thin shell over
:meth:`segctl.Project.explain`; heavy modules are imported inside the command."""

from __future__ import annotations

from typing import Annotated

import typer

from segctl.cli.exits import handled
from segctl.cli.options import (
    AsOfOpt,
    DebugOpt,
    Format,
    FormatOpt,
    ProjectOpt,
    SegmentArg,
    WaitOpt,
    load,
)
from segctl.cli.output import is_terminal, print_rows


def explain(
    segment: SegmentArg,
    person_id: Annotated[str, typer.Argument(help="The person's id (as in the persons data).")],
    as_of: AsOfOpt = None,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    wait: WaitOpt = 10.0,
    debug: DebugOpt = False,
) -> None:
    """Why a person is or is not in a segment: each condition, its measured value and verdict.

    Every condition of the rule, its exclusions and the segments it references is shown with
    the value measured for the person, computed by the same plan as evaluate. With a state
    folder, the last entry or exit is explained too: the conditions whose verdict changed
    between the run that recorded it and the run before, and since the last run. With
    --format csv, one row per condition (its part: rule or exclude) and a last row with the
    verdict (part: member). Exits 2 for an unknown segment and 4 for a person who is not in
    the persons data.

    Examples:\n
      segctl explain power_users u00042 --as-of 2026-11-17T00:00:00Z\n
      segctl explain churn_risk u00042 --format json
    """
    with handled(debug):
        explanation = load(project).explain(segment, person_id, as_of=as_of, wait=wait)
        if fmt is Format.json:
            from segctl.cli.output import print_json

            print_json(explanation.to_dict())
        elif fmt is Format.csv:
            columns = [
                *("segment", "depth", "condition", "value", "needs", "verdict", "location"),
                "part",  # rule, exclude, or the verdict's own row: member
            ]
            print_rows("csv", columns, explanation.rows())
        elif is_terminal():
            _print_rich(explanation.render())
        else:
            print(explanation.render())


def _print_rich(text: str) -> None:
    """The tree with verdicts in colour (NO_COLOR respected)."""
    import os

    from rich.console import Console
    from rich.text import Text

    console = Console(no_color=bool(os.environ.get("NO_COLOR")), highlight=False)
    for line in text.splitlines():
        styled = Text(line)
        styled.highlight_words(["TRUE", "A MEMBER"], "bold green")
        styled.highlight_words(["FALSE", "NOT A MEMBER", "EXCLUDED"], "bold red")
        console.print(styled, soft_wrap=True)
