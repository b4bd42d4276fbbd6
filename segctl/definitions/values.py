"""Comparator literals: from YAML values to typed Python values (durations are in
:mod:`segctl.definitions.durations`, timestamps in :mod:`segctl.timeutil`).

Each function returns the typed value or raises :class:`ValueProblem` with a message that says
what was expected; the parser adds the source position.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from segctl.definitions.model import ColumnType
from segctl.errors import ValueProblem
from segctl.timeutil import parse_timestamp

# Numbers are 64-bit, like the integer columns of every engine segctl compiles for.
MIN_INT, MAX_INT = -(2**63), 2**63 - 1


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
