"""Resolve the input files of each source (file, glob, or list; Parquet, CSV, NDJSON)."""

from __future__ import annotations

import glob
import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from segctl.definitions.data import FORMATS_HINT
from segctl.errors import DataError, DataProblems

_JSON = (".json", ".jsonl", ".ndjson")
_SNIFFED = 4096  # bytes read to tell a file's format from its content
#: The magic number a Parquet file starts and ends with.
PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True)
class InputFiles:
    table: str
    files: tuple[str, ...]  # absolute paths
    format: str  # "parquet", "csv" or "json" (newline-delimited)
    display: str  # what the user wrote, for messages
    #: Whether the folders' ``key=value`` names are columns (:func:`hive_partitioned`),
    #: decided over the whole group: a read of some of its files (a run's new ones, a file
    #: checked alone) must give the columns the whole group's view has.
    hive: bool = False


def hive_partitioned(files: tuple[str, ...]) -> bool:
    """Whether ``files`` are a hive layout (``events/day=2026-11-02/part.parquet``): every
    file's folders name the same non-empty set of ``key=value`` keys, as DuckDB detects it
    for the whole list (a list mixing files inside and outside such folders has none)."""
    keys = {
        frozenset(part.split("=", 1)[0] for part in Path(f).parent.parts if "=" in part)
        for f in files
    }
    return len(keys) == 1 and bool(next(iter(keys)))


def file_format(path: str) -> str | None:
    """The reader of a file: parquet, csv or json (NDJSON), by its name (``.parquet``,
    ``.csv``/``.tsv``, ``.json``/``.jsonl``/``.ndjson``, the text ones optionally ``.gz``),
    else by its first bytes (:func:`sniffed_format`); None if neither tells."""
    lower = path.lower()
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    stem = lower[:-3] if lower.endswith(".gz") else lower
    if stem.endswith((".csv", ".tsv")):
        return "csv"
    if stem.endswith(_JSON):
        return "json"
    return sniffed_format(path)


def sniffed_format(path: str) -> str | None:
    """The format of a file whose name does not tell it, from its first bytes: Parquet's
    magic number, or JSON (an opening brace or bracket, gzipped or not). Segment's S3
    archive, for one, names its gzipped NDJSON files ``<received>.<id>.gz``. CSV is not
    guessed: any text could be one. None when unreadable or not told."""
    try:
        with open(path, "rb") as file:
            head = file.read(_SNIFFED)
        if head.startswith(PARQUET_MAGIC):
            return "parquet"
        if head.startswith(b"\x1f\x8b"):
            with gzip.open(path, "rb") as file:
                head = file.read(_SNIFFED)
    except (OSError, EOFError, zlib.error):
        return None
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return "json" if text[:1] in (b"{", b"[") else None


def blank(path: str, fmt: str) -> bool:
    """Whether a CSV or NDJSON file holds no text but white space (gzipped or not): an
    export's hour with no events. It holds no rows, so it is left out of its group's read
    (DuckDB refuses an empty NDJSON file in a list, and finds no columns in an empty CSV)."""
    if fmt == "parquet":
        return False
    try:
        size = os.stat(path).st_size
        if size > _SNIFFED:  # read nothing of a real export (blank gzip that large: megabytes)
            return False
        with open(path, "rb") as file:
            head = file.read(_SNIFFED)
        if head.startswith(b"\x1f\x8b"):
            with gzip.open(path, "rb") as file:
                head = file.read(_SNIFFED)
    except (OSError, EOFError, zlib.error):
        return False  # the read says what is wrong with it
    return len(head) < _SNIFFED and not head.strip(b"\xef\xbb\xbf \t\r\n")


def _matches(pattern: str, root: Path, where: str) -> list[str]:
    """The files a path or glob names (DataError when none)."""
    full = str(root / pattern)
    if glob.has_magic(pattern):
        matches = sorted(glob.glob(full, recursive=True))
        if not matches:
            raise DataError(f"{where}: no files match '{pattern}'")
        return matches
    if Path(full).is_dir():
        raise DataError(
            f"{where}: {pattern} is a folder: name its files with a glob, "
            f"e.g. '{pattern.rstrip('/')}/**/*.parquet' (or *.csv, *.jsonl)"
        )
    if not Path(full).is_file():
        raise DataError(
            f"{where}: file not found: {pattern} (paths are relative "
            f"to the project folder {root.resolve()})"
        )
    return [full]


def resolve_inputs(
    table: str, patterns: tuple[str, ...], root: Path, where: str | None = None
) -> list[InputFiles]:
    """The files of one source, grouped by format (usually one group). ``where`` names the
    source in messages (default ``data.<table>``)."""
    where = where or f"data.{table}"
    by_format: dict[str, list[str]] = {}
    written: dict[str, list[str]] = {}  # format -> the patterns that gave its files
    found = DataProblems()  # every missing file of a list at once
    for pattern in patterns:
        matches: list[str] = []
        with found.check():
            matches = _matches(pattern, root, where)
        for match in matches:
            fmt = file_format(match)
            if fmt is None:
                found.errors.append(
                    DataError(
                        f"{where}: unsupported file type: {Path(match).name} in '{pattern}' "
                        f"(use {FORMATS_HINT})"
                    )
                )
                continue
            resolved = str(Path(match).resolve())
            if resolved not in by_format.setdefault(fmt, []):
                by_format[fmt].append(resolved)
            if pattern not in written.setdefault(fmt, []):
                written[fmt].append(pattern)
    found.raise_any()
    every = [f for files in by_format.values() for f in files]
    by_format = {
        fmt: filled
        for fmt, files in by_format.items()
        if (filled := [f for f in files if not blank(f, fmt)])
    }
    if every and not by_format:
        shown = [os.path.relpath(f, root.resolve()) for f in every]
        if len(shown) == 1:
            raise DataError(f"{shown[0]}: the file is empty: no header and no rows ({where})")
        raise DataError(
            f"{where}: every file is empty ({', '.join(shown[:3])}"
            f"{', ...' if len(shown) > 3 else ''}): no header and no rows to read"
        )
    # A group's messages name the patterns of its own files, not the other formats' too.
    return [
        InputFiles(
            table, tuple(files), fmt, ", ".join(written[fmt]), hive_partitioned(tuple(files))
        )
        for fmt, files in sorted(by_format.items())
    ]
