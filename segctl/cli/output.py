"""How commands print: rich tables on a terminal, plain text when piped, JSON or CSV on request.

With ``--format json`` or ``csv`` stdout holds only that document; everything else (progress,
warnings, notes) goes to stderr.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from segctl.redact import redact
from segctl.textfmt import json_text

FORMATS = ("table", "json", "csv")


def is_terminal(stream: Any = None) -> bool:
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    # NO_COLOR (no-color.org): no colour and no other styling either (rich's own no_color
    # still writes bold and italic), so the output holds no SGR escape at all.
    plain = bool(os.environ.get("NO_COLOR"))
    return Console(
        stderr=stderr,
        no_color=plain,
        color_system=None if plain else "auto",
        highlight=False,
        soft_wrap=True,
    )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat() + ("Z" if value.tzinfo is None else "")
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def print_json(document: Any) -> None:
    sys.stdout.write(json_text(document, indent=2, ensure_ascii=False))
    sys.stdout.write("\n")


def print_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[_cell(v) for v in row] for row in rows])
    sys.stdout.write(buffer.getvalue())


def print_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    title: str | None = None,
    numeric: Sequence[str] = (),
) -> None:
    """A rich table on a terminal; aligned plain text when piped."""
    cells = [[_cell(v) for v in row] for row in rows]
    if is_terminal():
        from rich.table import Table

        table = Table(title=title, title_justify="left", header_style="bold")
        for column in columns:
            table.add_column(column, justify="right" if column in numeric else "left")
        for row in cells:
            table.add_row(*row)
        _console().print(table)
        return
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if columns[i] in numeric else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    out = [title] if title else []
    out += [line(list(columns)), line(["-" * w for w in widths])]
    out += [line(row) for row in cells]
    sys.stdout.write("\n".join(out) + "\n")


def print_rows(
    fmt: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    title: str | None = None,
    numeric: Sequence[str] = (),
    document: Any = None,
) -> None:
    """Print rows in the chosen format; ``document`` overrides the JSON shape."""
    if fmt == "json":
        print_json(
            document
            if document is not None
            else [dict(zip(columns, row, strict=True)) for row in rows]
        )
    elif fmt == "csv":
        print_csv(columns, rows)
    else:
        print_table(columns, rows, title=title, numeric=numeric)


def note(message: str, *, style: str = "dim") -> None:
    """A message for people, on stderr (never mixed into data on stdout)."""
    message = redact(message)
    if is_terminal(sys.stderr):
        _console(stderr=True).print(message, style=style, markup=False)
    else:
        sys.stderr.write(message + "\n")


def error(message: str) -> None:
    message = redact(message)
    if is_terminal(sys.stderr):
        _console(stderr=True).print(f"error: {message}", style="bold red", markup=False)
    else:
        sys.stderr.write(f"error: {message}\n")


@contextmanager
def progress(message: str, quiet: bool = False) -> Iterator[None]:
    """Show the library's progress reports while the work runs: a spinner with the current
    phase and a bar per counted job (delivery batches, backfill times), on stderr.

    Only on a terminal: nothing when stderr is piped or with ``--quiet``. The display is
    transient (erased when done) and colourless under ``NO_COLOR``.
    """
    if quiet or not is_terminal(sys.stderr):
        yield
        return
    from segctl import progress as reports

    with _progress_display() as display, reports.listening(_Bars(display, message)):
        yield


def _progress_display() -> Any:
    from rich.progress import (
        BarColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    class Count(ProgressColumn):
        def render(self, task: Task) -> Text:
            if task.total is None:
                return Text("")
            return Text(f"{int(task.completed):,}/{int(task.total):,}")

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        Count(),
        TimeElapsedColumn(),
        console=_console(stderr=True),
        transient=True,
    )


class _Bars:
    """A listener for segctl.progress drawing on a rich Progress: the first line shows the
    phase, and each counted job has a bar until it is done."""

    def __init__(self, display: Any, message: str) -> None:
        self.display = display
        self.line = display.add_task(message, total=None)

    def phase(self, description: str) -> None:
        self.display.update(self.line, description=redact(description))

    def task(self, description: str, total: int) -> Callable[[int], None]:
        bar = self.display.add_task(redact(description), total=total)
        done = 0

        def advance(steps: int = 1) -> None:
            nonlocal done
            done += steps
            self.display.advance(bar, steps)
            if done >= total:
                self.display.remove_task(bar)

        return advance


def data_warnings(warnings: list[str]) -> None:
    """What the data views left out (SPEC 1: nothing is dropped silently), on stderr."""
    for warning in warnings:
        note(f"warning: {warning}", style="yellow")
