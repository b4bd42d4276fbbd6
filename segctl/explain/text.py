"""Values and comparators as people read them: ``7``, ``"pro"``, ``>= 5 and <= 30``."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from segctl.definitions.model import Comparator
from segctl.timeutil import iso


def plain(value: Any) -> Any:
    """A JSON-ready value: timestamps as ISO-8601, decimals as numbers."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, timedelta):
        return duration(value)
    return value


def show(value: Any, as_of: datetime | None = None) -> str:
    """A measured value for people: ``7``, ``"pro"``, ``2026-11-01T10:00:00Z (15d ago)``."""
    if value is None:
        return "no value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        text = iso(value)
        if as_of is not None and value <= as_of:
            text += f" ({_age(as_of - value)} before as_of)"
        return text
    value = plain(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def duration(delta: timedelta) -> str:
    """``30d``, or ``36h`` for durations that are not whole days (as a user would write it)."""
    hours = int(delta.total_seconds() // 3600)
    return f"{hours // 24}d" if hours and hours % 24 == 0 else f"{hours}h"


def _age(delta: timedelta) -> str:
    days, seconds = delta.days, delta.seconds
    if days >= 1:
        return f"{days}d {seconds // 3600}h" if seconds >= 3600 else f"{days}d"
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 60}m"


def _literal(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return show(value)


_SYMBOLS = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def needs(comparator: Comparator) -> str:
    """A comparator for people: ``>= 5 and <= 30``, ``in ["pro", "premium"]``."""
    parts = []
    for test in comparator.tests:
        op, value = test.op, test.value
        if op in _SYMBOLS:
            parts.append(f"{_SYMBOLS[op]} {_literal(value)}")
        elif op == "between":
            parts.append(f"between {_literal(value[0])} and {_literal(value[1])}")
        elif op in ("in", "not_in"):
            parts.append(f"{op.replace('_', ' ')} {_literal(value)}")
        elif op == "is_set":
            parts.append("is set" if value else "is not set")
        elif op == "within":
            parts.append(f"within the last {duration(value)}")
        elif op == "older_than":
            parts.append(f"older than {duration(value)}")
        elif op == "before":
            parts.append(f"before {iso(value)}")
        elif op == "after":
            parts.append(f"at or after {iso(value)}")
        elif op == "regex":
            parts.append(f"matches /{value}/")
        else:  # contains, starts_with, ends_with
            parts.append(f"{op.replace('_', ' ')} {_literal(value)} (any case)")
    return " and ".join(parts)
