"""Durations, timestamps and comparator literals: from YAML values to typed Python values.

Each function returns the typed value or raises :class:`ValueProblem` with a message that says
what was expected; the parser adds the source position.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from segctl.definitions.model import ColumnType
from segctl.errors import ValueProblem
from segctl.timeutil import parse_timestamp

_DURATION = re.compile(r"^\s*(\d+)\s*([hdwy])\s*$")
_UNITS = {
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
    "y": timedelta(days=365),
}
# Bounds that keep every date segctl computes (as_of - a duration, a day before a bound)
# inside the calendar Python and SQL engines share.
MAX_DURATION = timedelta(days=500 * 365)
# Numbers are 64-bit, like the integer columns of every engine segctl compiles for.
MIN_INT, MAX_INT = -(2**63), 2**63 - 1


def parse_duration(value: Any) -> timedelta:
    """``"30d"`` -> 30 days. Units: h, d, w, y (365 days).

    >>> parse_duration("24h")
    datetime.timedelta(days=1)
    """
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueProblem(f"expected a duration like 30d (units h, d, w, y), got {value!r}")
    unit = _UNITS[match.group(2)]
    if int(match.group(1)) > MAX_DURATION // unit:
        raise ValueProblem(
            f"a duration of at most {format_duration(MAX_DURATION)}, got {value!r} (leave the "
            "window out to take every event)"
        )
    return int(match.group(1)) * unit


def format_duration(delta: timedelta) -> str:
    """The shortest spelling of a duration in the language (``timedelta(days=7)`` -> ``7d``)."""
    hours = int(delta.total_seconds() // 3600)
    for unit, size in (("y", 365 * 24), ("w", 7 * 24), ("d", 24)):
        if hours and hours % size == 0:
            return f"{hours // size}{unit}"
    return f"{hours}h"


def coerce(value: Any, value_type: ColumnType, tz: ZoneInfo) -> Any:
    """A scalar literal typed for a column of ``value_type``."""
    if value is None:
        raise ValueProblem(
            "a value cannot be null here (use is_set: false to test for a missing value)"
        )
    if isinstance(value, (list, dict)):
        raise ValueProblem(
            f"expected a single value, got {'a list' if isinstance(value, list) else 'a mapping'}"
        )
    if value_type is ColumnType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueProblem(f"expected a number, got {_describe(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueProblem(f"expected a finite number, got {value!r}")
        if isinstance(value, int) and not MIN_INT <= value <= MAX_INT:
            raise ValueProblem(
                f"{value} is out of range: whole numbers are 64-bit (at most {MAX_INT})"
            )
        return value
    if value_type is ColumnType.BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueProblem(f"expected true or false, got {_describe(value)}")
    if value_type is ColumnType.TIMESTAMP:
        if isinstance(value, (int, float)):
            raise ValueProblem(f"expected a date or timestamp, got {_describe(value)}")
        return parse_timestamp(value, tz)
    if value_type is ColumnType.STRING:
        if isinstance(value, bool):
            raise ValueProblem(
                f"expected text, got the boolean {str(value).lower()} "
                f"(quote it: '{str(value).lower()}')"
            )
        if isinstance(value, datetime | date):
            return value.isoformat()
        return str(value)
    return value


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    return f"{type(value).__name__} {value!r}"
