"""Resolve the input files of each table (file, glob, or list; Parquet, CSV, CSV.gz)."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from segctl.errors import DataError

FORMATS = {".parquet": "parquet", ".csv": "csv", ".gz": "csv", ".tsv": "csv"}


@dataclass(frozen=True)
class InputFiles:
    table: str
    files: tuple[str, ...]  # absolute paths
    format: str  # "parquet" or "csv"
    display: str  # what the user wrote, for messages


def file_format(path: str) -> str | None:
    lower = path.lower()
    if lower.endswith(".csv.gz") or lower.endswith(".csv"):
        return "csv"
    if lower.endswith(".parquet") or lower.endswith(".pq"):
        return "parquet"
    return None


def resolve_inputs(table: str, patterns: tuple[str, ...], root: Path) -> list[InputFiles]:
    """The files of one table, grouped by format (usually one group)."""
    by_format: dict[str, list[str]] = {}
    for pattern in patterns:
        full = str(root / pattern)
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(full, recursive=True))
            if not matches:
                raise DataError(f"data.{table}: no files match '{pattern}'")
        else:
            if not Path(full).is_file():
                raise DataError(
                    f"data.{table}: file not found: {pattern} (paths are relative "
                    f"to the project folder {root.resolve()})"
                )
            matches = [full]
        for match in matches:
            fmt = file_format(match)
            if fmt is None:
                raise DataError(
                    f"data.{table}: unsupported file type: {pattern} "
                    "(use .parquet, .csv or .csv.gz)"
                )
            by_format.setdefault(fmt, []).append(str(Path(match).resolve()))
    return [
        InputFiles(table, tuple(files), fmt, ", ".join(patterns))
        for fmt, files in sorted(by_format.items())
    ]
