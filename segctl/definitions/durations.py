"""Durations in the language: ``30d``, ``24h``, ``2w``, ``1y`` (SPEC 2.3)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from segctl.errors import ValueProblem

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


def in_hours(value: Any) -> bool:
    """Whether a duration is spelled in hours (``24h``): a calendar window takes whole days
    spelled in d, w or y, whatever the hours add up to (SPEC 2.4b)."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    return match is not None and match.group(2) == "h"


def format_duration(delta: timedelta) -> str:
    """The shortest spelling of a duration in the language (``timedelta(days=7)`` -> ``7d``)."""
    hours = int(delta.total_seconds() // 3600)
    for unit, size in (("y", 365 * 24), ("w", 7 * 24), ("d", 24)):
        if hours and hours % size == 0:
            return f"{hours // size}{unit}"
    return f"{hours}h"
