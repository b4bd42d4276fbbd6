"""Resolve the input files of each source (file, glob, or list; Parquet, CSV, NDJSON)."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from segctl.errors import DataError

FORMATS_HINT = ".parquet, .csv, .csv.gz, .json, .jsonl, .ndjson, optionally .gz"
_JSON = (".json", ".jsonl", ".ndjson")


@dataclass(frozen=True)
class InputFiles:
    table: str
    files: tuple[str, ...]  # absolute paths
    format: str  # "parquet", "csv" or "json" (newline-delimited)
    display: str  # what the user wrote, for messages


def file_format(path: str) -> str | None:
    """The reader of a file from its name: parquet, csv or json (NDJSON); None if unknown."""
    lower = path.lower()
    if lower.endswith(".csv.gz") or lower.endswith(".csv") or lower.endswith(".tsv"):
        return "csv"
    if lower.endswith(".parquet") or lower.endswith(".pq"):
        return "parquet"
    stem = lower[:-3] if lower.endswith(".gz") else lower
    if stem.endswith(_JSON):
        return "json"
    return None


def resolve_inputs(
    table: str, patterns: tuple[str, ...], root: Path, where: str | None = None
) -> list[InputFiles]:
    """The files of one source, grouped by format (usually one group). ``where`` names the
    source in messages (default ``data.<table>``)."""
    where = where or f"data.{table}"
    by_format: dict[str, list[str]] = {}
    for pattern in patterns:
        full = str(root / pattern)
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(full, recursive=True))
            if not matches:
                raise DataError(f"{where}: no files match '{pattern}'")
        else:
            if not Path(full).is_file():
                raise DataError(
                    f"{where}: file not found: {pattern} (paths are relative "
                    f"to the project folder {root.resolve()})"
                )
            matches = [full]
        for match in matches:
            fmt = file_format(match)
            if fmt is None:
                raise DataError(
                    f"{where}: unsupported file type: {Path(match).name} in '{pattern}' "
                    f"(use {FORMATS_HINT})"
                )
            resolved = str(Path(match).resolve())
            if resolved not in by_format.setdefault(fmt, []):
                by_format[fmt].append(resolved)
    return [
        InputFiles(table, tuple(files), fmt, ", ".join(patterns))
        for fmt, files in sorted(by_format.items())
    ]
