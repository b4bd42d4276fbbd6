"""Numbers as people read them in messages and tables (one percentage formatter), and values as
JSON writes them (one conversion for the CLI's documents and the webhooks' bodies).

>>> percent(0.913462), percent(12, 3843, places=0, hedge=False)
('91.3%', '0%')
"""

from __future__ import annotations

import json
import math
import uuid
from decimal import Decimal
from typing import Any


def percent(
    part: float | None,
    whole: float = 1,
    *,
    signed: bool = False,
    places: int = 1,
    hedge: bool = True,
) -> str:
    """``part`` of ``whole`` (default: ``part`` is a ratio) as a percentage: ``0.913462`` ->
    ``91.3%``; nothing for ``None``, ``0%`` of a ``whole`` of zero.

    Exactly 0 and 1 stay ``0%`` and ``100%``. With ``hedge`` (tables), a share that is neither
    but would round to them says so (``<0.1%``, ``>99.9%``) instead of claiming none or all;
    without it (a message that names the counts beside the share) it is rounded like any other.

    >>> [percent(x) for x in (0.913462, 0.0492958, 0.0, 1.0, 0.0004, 0.9999)]
    ['91.3%', '4.9%', '0%', '100%', '<0.1%', '>99.9%']
    >>> percent(1.02815, signed=True), percent(-0.5, signed=True), percent(None)
    ('+102.8%', '-50.0%', '')
    >>> percent(21, 100, places=0, hedge=False), percent(4, 19, places=0, hedge=False)
    ('21%', '21%')
    """
    if part is None:
        return ""
    if not whole:
        return "0%"
    ratio = part / whole
    sign = "+" if signed and ratio > 0 else "-" if ratio < 0 else ""
    value = abs(100 * part / whole)
    if value == 0 or value == 100:
        return f"{sign}{value:.0f}%"
    if hedge:
        smallest = 10.0**-places
        if value < smallest:
            return f"{sign}<{smallest:.{places}f}%"
        if 100 - smallest < value < 100:
            return f"{sign}>{100 - smallest:.{places}f}%"
    return f"{sign}{value:.{places}f}%"


def json_value(value: Any) -> Any:
    """A value JSON cannot hold as it is, as JSON holds it: a timestamp or date as ISO 8601
    (a naive timestamp is UTC: ``Z``), a DECIMAL as a number (an integer when it is whole),
    a UUID as text. For ``json.dumps(default=...)``: anything else is a TypeError.

    >>> from datetime import datetime, date
    >>> json_value(datetime(2026, 1, 2, 3, 4)), json_value(date(2026, 1, 2))
    ('2026-01-02T03:04:00Z', '2026-01-02')
    >>> json_value(Decimal("12.50")), json_value(Decimal("1200")), json_value(Decimal("1E+3"))
    (12.5, 1200, 1000)
    """
    if isinstance(value, Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return int(value)
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "isoformat"):  # datetime, date, time
        text = str(value.isoformat())
        naive = "T" in text and getattr(value, "tzinfo", "") is None
        return text + "Z" if naive else text
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_text(document: Any, **options: Any) -> str:
    """``document`` as strict JSON (``json.dumps`` with :func:`json_value`): a number that is
    not finite (a NaN or an infinity in a data column), which Python would write as ``NaN``
    and every other JSON parser refuses, is ``null``, the value JSON has for none.

    >>> json_text({"score": float("nan"), "n": [1.5, float("inf")]})
    '{"score": null, "n": [1.5, null]}'
    """
    try:
        return json.dumps(document, default=json_value, allow_nan=False, **options)
    except ValueError:  # a float that is not finite, somewhere: written as null
        return json.dumps(_finite(document), default=json_value, allow_nan=False, **options)


def _finite(value: Any) -> Any:
    if isinstance(value, float | Decimal):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
