"""Time helpers: how segctl reads, stores and prints a moment.

Every timestamp segctl keeps is a naive UTC ``datetime`` (the state stores them so; DuckDB's
``TIMESTAMP`` has no zone). Text goes out as ISO-8601 with a ``Z``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from segctl.errors import UsageError, ValueProblem

# Bounds that keep every date segctl computes (as_of - a duration, a day before a bound)
# inside the calendar Python and SQL engines share.
MIN_YEAR, MAX_YEAR = 1000, 8999


def now_utc() -> datetime:
    """The current time as naive UTC (how the state stores every timestamp)."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso(moment: datetime | None = None) -> str:
    """A moment (default: now) as ISO-8601 UTC with a ``Z``: ``2026-03-01T12:00:00Z``."""
    return to_utc_naive(moment or now_utc()).isoformat() + "Z"


def to_utc_naive(value: datetime) -> datetime:
    """Aware -> naive UTC; naive values are already UTC."""
    if value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def parse_timestamp(value: Any, tz: ZoneInfo) -> datetime:
    """A naive-UTC datetime from a YAML date/datetime or an ISO-8601 string.

    A bare date means midnight in the project timezone; a datetime without an offset means UTC.
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                value = date.fromisoformat(text)
            else:
                value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueProblem(
                f"expected a date or timestamp like 2026-01-01 or 2026-01-01T12:00:00Z, "
                f"got {value!r}"
            ) from None
    if isinstance(value, date) and not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueProblem(
            f"expected a date or timestamp from year {MIN_YEAR} to {MAX_YEAR}, got {str(value)!r}"
        )
    if isinstance(value, datetime):
        return to_utc_naive(value)
    if isinstance(value, date):
        local = datetime(value.year, value.month, value.day, tzinfo=tz)
        return local.astimezone(UTC).replace(tzinfo=None)
    raise ValueProblem(f"expected a date or timestamp like 2026-01-01, got {value!r}")


def parse_as_of(
    value: str | datetime | None, tz: ZoneInfo | None = None, option: str = "--as-of"
) -> datetime:
    """An evaluation time as a naive UTC datetime (default: now, to the second).

    ISO-8601 text; values without an offset are UTC; a bare date is midnight in ``tz``
    (the project timezone; UTC when not given). ``option`` names it in the error.
    """
    if value is None:
        return now_utc().replace(microsecond=0)
    try:
        return parse_timestamp(value, tz or ZoneInfo("UTC"))
    except ValueProblem as exc:
        raise UsageError(f"{option}: {exc}") from None
