"""Every command's --help reads as sentences: lines break only where the terminal is full.

Docstrings are wrapped in the source; before segctl.cli.helptext rewrapped them, --help showed
the source's line breaks ("...with segctl's canonical⏎column names"). For each command, at two
terminal widths, a line of the description may end only where the next word would not fit.
"""

from __future__ import annotations

import itertools

import pytest
import typer.rich_utils
from typer.testing import CliRunner

from segctl.cli import app
from segctl.cli.docgen import commands

WIDTHS = (80, 120)


def description(text: str) -> list[list[str]]:
    """The paragraphs of the help between the usage line and the first panel, as lines."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "Usage:" in line) + 1
    body = []
    for line in lines[start:]:
        if line.lstrip().startswith(("╭", "│", "╰")):
            break
        body.append(line.strip())
    paragraphs: list[list[str]] = [[]]
    for line in body:
        if line:
            paragraphs[-1].append(line)
        elif paragraphs[-1]:
            paragraphs.append([])
    return [p for p in paragraphs if p]


@pytest.mark.parametrize("width", WIDTHS)
def test_help_lines_break_only_where_the_terminal_is_full(
    width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Typer reads the terminal width once at import (TERMINAL_WIDTH): set it for this test.
    monkeypatch.setattr(typer.rich_utils, "MAX_WIDTH", width)
    runner = CliRunner()
    checked = 0
    for path, _, _ in commands():
        args = path.split()[1:]
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0, result.output
        for paragraph in description(result.stdout):
            for line, following in itertools.pairwise(paragraph):
                next_word = following.split()[0]
                # The text area is the width less a space each side.
                assert len(line) + 1 + len(next_word) > width - 2, (
                    f"{path} --help at {width} columns breaks a line early:\n{line}\n{following}"
                )
                checked += 1
    assert checked > 10  # long paragraphs wrapped, so the check had lines to look at


def test_brackets_in_help_are_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(typer.rich_utils, "MAX_WIDTH", 200)
    result = CliRunner().invoke(app, ["discover", "--help"])
    assert "pip install 'segctl[ml]'" in result.stdout
