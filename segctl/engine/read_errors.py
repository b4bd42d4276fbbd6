"""DuckDB's reader errors as data errors naming the file, the line or row, the column and the
value (SPEC 1: "A bad value in a source ... is a data error naming the file, the line or row,
the column and the value").

DuckDB types a CSV or NDJSON column from a sample of its first rows (20,480). A value past
the sample that the type cannot hold (``"n/a"`` in a column of numbers) fails the query that
reads the column: DuckDB's message gives the CSV's line, column and value, and for NDJSON an
approximate line and the value alone, so the file is read here to find the line and key.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from segctl.errors import DataError

#: Rows DuckDB's readers sample to type a column (their ``sample_size`` default).
SAMPLED_ROWS = 20_480

_MALFORMED_JSON = re.compile(
    r'Malformed JSON in file "(?P<file>[^"]+)", at byte \d+ in line (?P<line>\d+): '
    r"(?P<what>.*)"
)
_CSV_CONVERSION = re.compile(
    r"CSV Error on Line: (?P<line>\d+)\n.*?"
    r'Error when converting column "(?P<column>[^"]*)"\. '
    r"Could not convert string \"(?P<value>.*?)\" to '(?P<type>[^']+)'.*?"
    r"\n\s*file = (?P<file>[^\n]+)",
    re.S,
)
#: DuckDB's CSV sniffer gives up on a small file with a row of more fields than the header.
_SNIFFING = re.compile(r'Error when sniffing file "(?P<file>[^"]+)"')
_JSON_TRANSFORM = re.compile(
    r'JSON transform error in file "(?P<file>[^"]+)", in line (?P<line>\d+): '
    r'(?P<what>[^"\n]*)"(?P<value>[^"\n]*)"'
)

Display = Callable[[Path], str]


def read_error(exc: Exception, where: str, display: Display) -> DataError:
    """A reader's error as a DataError: a malformed JSON line names its file and line, a value
    past the sample that its column's type cannot hold names its file, line or row, column and
    value; anything else is DuckDB's first line under ``where``."""
    text = str(exc)
    malformed = _MALFORMED_JSON.search(first_line(exc))
    if malformed:
        path = Path(malformed.group("file"))
        bad = first_bad_line(path)
        line = bad[0] if bad else int(malformed.group("line"))
        shown = f": {bad[1]}" if bad else ""
        return DataError(
            f"{display(path)}:{line}: malformed JSON line "
            f"({malformed.group('what').rstrip('. ')}){shown}; each line of an NDJSON file "
            "must be one JSON object"
        )
    past = past_the_sample(text, display)
    if past is not None:
        return past
    sniffed = _SNIFFING.search(text)
    if sniffed:
        from segctl.sources.load import ragged_error, ragged_row

        ragged = ragged_row((sniffed.group("file"),))
        if ragged is not None:
            return ragged_error(ragged, display)
    return DataError(f"{where}cannot read input: {first_line(exc)}")


def past_the_sample(text: str, display: Display) -> DataError | None:
    """The DataError for a CSV or NDJSON value that its column's type, sampled from the first
    rows, cannot hold; None when ``text`` is not such an error."""
    csv = _CSV_CONVERSION.search(text)
    if csv:
        kind = _kind(csv.group("type"))
        return DataError(
            f"{display(Path(csv.group('file').strip()))}: row {int(csv.group('line')) - 1}: "
            f"column '{csv.group('column')}' has a value that is not {kind}: "
            f"{csv.group('value')!r} ({_sampled(kind)})"
        )
    transform = _JSON_TRANSFORM.search(text)
    if transform:
        path, value = Path(transform.group("file")), transform.group("value")
        json_kind = _json_kind(transform.group("what"))
        found = _json_line_of(path, value)
        line = found[0] if found else int(transform.group("line"))  # DuckDB's is approximate
        column = f"column '{found[1]}'" if found else "a column"
        wanted = json_kind or "of its column's type"
        return DataError(
            f"{display(path)}: line {line}: {column} has a value that is not {wanted}: "
            f"{value!r} ({_sampled(json_kind)})"
        )
    return None


def _sampled(kind: str | None) -> str:
    if kind is None:
        return f"the column's type is read from its first {SAMPLED_ROWS:,} rows; fix the value"
    plural = f"{kind.removeprefix('a ')}s"
    return (
        f"the column is read as {plural}, as its first {SAMPLED_ROWS:,} rows hold {plural}; "
        "fix the value in the file"
    )


def _json_kind(what: str) -> str | None:
    """What the JSON reader failed to read a value as, from its message."""
    if "timestamp" in what.lower():
        return "a timestamp"
    return "a number" if "numerical" in what.lower() else None


def _kind(duck_type: str) -> str:
    if duck_type.startswith(("TIMESTAMP", "DATE", "TIME")):
        return "a timestamp" if duck_type.startswith("TIMESTAMP") else f"a {duck_type.lower()}"
    if duck_type == "BOOLEAN":
        return "a boolean"
    if re.match(r"^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?|DOUBLE|FLOAT|REAL|DECIMAL.*)$", duck_type):
        return "a number"
    return f"a {duck_type} value"


def _json_line_of(path: Path, value: str) -> tuple[int, str] | None:
    """The first line of an NDJSON file with a top-level key holding ``value`` (as text, or
    as its JSON form), and that key; None when none does (or the file cannot be read)."""
    for number, line in _lines(path):
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if not isinstance(document, dict):
            continue
        for key, held in document.items():
            if held == value or (not isinstance(held, str) and json.dumps(held) == value):
                return number, str(key)
    return None


#: A bad line is shown up to this many characters.
SHOWN = 80


def first_bad_line(path: Path) -> tuple[int, str] | None:
    """The number and text (quoted, cut at :data:`SHOWN` characters) of the first line of an
    NDJSON file that is not a JSON object (malformed, an array or a bare value), None when
    every line is one (or the file cannot be read)."""
    for number, line in _lines(path):
        try:
            value = json.loads(line)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            cut = f"{text[:SHOWN]}..." if len(text) > SHOWN else text
            return number, repr(cut)
    return None


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(number, line) of an NDJSON file's non-blank lines, gzip or not; none when unreadable."""
    opener: Any = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, line
    except OSError:
        return


def first_line(exc: Exception) -> str:
    """The first non-blank line of an exception's message (DuckDB adds hints below it)."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
