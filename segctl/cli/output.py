"""How commands print: rich tables on a terminal, plain text when piped, JSON or CSV on request.

With ``--format json`` or ``csv`` stdout holds only that document; everything else (progress,
warnings, notes) goes to stderr.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from segctl.redact import redact

FORMATS = ("table", "json", "csv")


def is_terminal(stream: Any = None) -> bool:
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(
        stderr=stderr, no_color=bool(os.environ.get("NO_COLOR")), highlight=False, soft_wrap=True
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


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat() + ("Z" if value.tzinfo is None else "")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=json_default, ensure_ascii=False))
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
    """A spinner on a terminal (stderr) while work runs; nothing when piped or quiet."""
    if quiet or not is_terminal(sys.stderr):
        yield
        return
    with _console(stderr=True).status(message):
        yield
