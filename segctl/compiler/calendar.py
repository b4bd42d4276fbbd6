"""Calendar windows and activity periods as instants, for one as_of (SPEC 2.4b).

A calendar window counts local days in the project timezone: ``within: 7d`` starts at the local
midnight that opens the day 7 days before as_of's local day, whatever the daylight-saving
changes in between (a 7-day span may last 167 or 169 hours). Each bound is a local midnight
turned into a naive UTC instant here, in Python with zoneinfo, so that the compiled SQL
compares timestamps with literals like every other window and stays one aggregate in the
fused plan, on every dialect.

>>> from datetime import datetime
>>> resolve(Window(within=timedelta(days=7), calendar=True), datetime(2026, 3, 30, 12),
...         "Europe/Berlin")
Window(within=None, between=None, start=datetime.datetime(2026, 3, 22, 23, 0), end=None, calendar=False)
"""  # noqa: E501

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlglot import exp

from segctl.compiler.sql import DATE
from segctl.definitions.model import EventMeasure, Window

DAY = timedelta(days=1)


def local_day(moment: datetime, timezone: str) -> date:
    """The local calendar day of a naive-UTC instant."""
    return moment.replace(tzinfo=UTC).astimezone(ZoneInfo(timezone)).date()


def local_day_of(value: exp.Expr, timezone: str) -> exp.Expr:
    """SQL: the calendar day of a naive-UTC timestamp in ``timezone``."""
    if timezone == "UTC":
        return exp.cast(value, DATE)
    utc, local = exp.Literal.string("UTC"), exp.Literal.string(timezone)
    return exp.cast(exp.ConvertTimezone(source_tz=utc, target_tz=local, timestamp=value), DATE)


def day_start(day: date, timezone: str) -> datetime:
    """The first instant of a local day, as naive UTC. Where a DST change skips midnight,
    zoneinfo reads the missing midnight with the offset before the change, which is the
    instant of the change: the first instant the day has."""
    local = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone))
    return local.astimezone(UTC).replace(tzinfo=None)


def resolve(window: Window, as_of: datetime, timezone: str) -> Window:
    """A calendar window as the absolute window (start <= ts < end, ts <= as_of) it is at
    ``as_of``; other windows unchanged.

    ``within: Nd`` -> start of (D - N) <= ts <= as_of; ``between: [F, N]`` -> start of (D - F)
    <= ts < start of (D - N), where D is as_of's local day.
    """
    if not window.calendar:
        return window
    today = local_day(as_of, timezone)
    if window.within is not None:
        return Window(start=day_start(today - window.within, timezone))
    if window.between is not None:
        far, near = window.between
        return Window(
            start=day_start(today - far, timezone),
            end=day_start(today - near, timezone),
        )
    raise ValueError("a calendar window has within or between")  # the parser ensures it


def period_windows(measure: EventMeasure) -> list[Window]:
    """The windows of an ``active_periods`` measure, period 0 (the most recent) first.

    Rolling: period i is (as_of - offset - (i+1)*every, as_of - offset - i*every]. Calendar
    (``every`` E and ``offset`` K in days): period i is the local days D-K-(i+1)E+1 ..
    D-K-iE, period 0 ending at as_of when K is 0.
    """
    periods = measure.measure.periods
    assert periods is not None
    every, offset = periods.every, periods.offset
    windows: list[Window] = []
    for i in range(periods.of_last):
        if measure.window.calendar:
            e, k = _days(every), _days(offset)
            if i == 0 and k == 0:
                windows.append(Window(within=(e - 1) * DAY, calendar=True))
            else:
                # between: [F, N] is start of (D - F) <= ts < start of (D - N).
                far, near = k + (i + 1) * e - 1, k + i * e - 1
                windows.append(Window(between=(far * DAY, near * DAY), calendar=True))
        elif i == 0 and offset == timedelta(0):
            windows.append(Window(within=every))
        else:
            windows.append(Window(between=(offset + (i + 1) * every, offset + i * every)))
    return windows


def scope(measure: EventMeasure, as_of: datetime, timezone: str) -> Window:
    """The smallest plain window holding every event the measure reads (for the pushed-down
    filter of the scan)."""
    if measure.measure.periods is not None:
        starts = [
            resolve(w, as_of, timezone).start or as_of - (w.lookback() or timedelta(0))
            for w in period_windows(measure)
        ]
        return Window(start=min(starts))
    return resolve(measure.window, as_of, timezone)


def _days(delta: timedelta) -> int:
    return delta // DAY
