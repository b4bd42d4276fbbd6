"""Is the data current? A warning when as_of is far past the newest event.

An evaluation at "now" over an export that ended weeks ago is a quiet disaster: every "in the
last 30 days" condition sees nobody, and 927 active users become 1. Nothing is wrong with the
definitions or the data, so it is not an error; ``run`` and ``evaluate`` warn on stderr and
list the warning under ``"warnings"`` in their JSON. The threshold is ``stale_after`` in
segctl.yaml (a duration like ``7d``, default 3 days; ``off`` never warns).
"""

from __future__ import annotations

from datetime import datetime, timedelta

#: How far as_of may be past the newest event before run and evaluate warn.
DEFAULT_STALE_AFTER = timedelta(days=3)


def stale_warning(
    newest_event: datetime | None, as_of: datetime, threshold: timedelta | None
) -> str | None:
    """The warning for an evaluation at ``as_of`` over events ending at ``newest_event``
    (naive UTC both), or None when the gap is within ``threshold`` (None: never warn).

    >>> warning = stale_warning(datetime(2026, 11, 17), datetime(2026, 12, 5, 12), timedelta(7))
    >>> warning.split(":")[0] if warning else None
    'as_of 2026-12-05T12'
    >>> "18 days 12 hours past the newest event (2026-11-17T00:00:00Z)" in (warning or "")
    True
    """
    if threshold is None or newest_event is None or as_of - newest_event <= threshold:
        return None
    newest = _iso(newest_event)
    return (
        f"as_of {_iso(as_of)} is {_span(as_of - newest_event)} past the newest event "
        f"({newest}): conditions over recent days see no activity; pass --as-of {newest} "
        "or refresh the data (stale_after in segctl.yaml sets this threshold: "
        f"{_span(threshold, short=True)})"
    )


def _iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat() + "Z"


def _span(delta: timedelta, *, short: bool = False) -> str:
    """``18 days 12 hours`` (or ``7d`` with ``short``): whole days and hours, for people."""
    days, hours = delta.days, delta.seconds // 3600
    if short:
        return f"{days}d" if not hours else f"{days * 24 + hours}h"
    parts = [f"{days} day{'s' if days != 1 else ''}"] if days else []
    if hours or not days:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    return " ".join(parts)
