"""The wake-up time of an incremental run (docs/realtime.md "The wake-up time, and why it is
exact").

A condition depends on ``as_of`` only through comparisons ``v <op> as_of - d`` of the
timestamp values ``v`` of the rows it reads with its own durations ``d`` (and, for local-day
measures, through the local day of such a comparison). So a person's memberships cannot change
before the smallest ``v + d >= as_of`` over the rows each condition reads and that condition's
durations: :func:`catalogue` attributes durations to rows (:class:`Reads`: a table, event
names, timestamp columns), and :func:`wake_sql` takes that minimum per person in one pass over
each table. What it cannot attribute (a condition kind it does not know) applies every
duration to every row of every table, as the first version of the bound did.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import operator
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlglot import exp

from segctl.compiler.calendar import DAY, day_start, local_day, local_day_of
from segctl.compiler.comparators import compile_comparator
from segctl.compiler.sql import col
from segctl.definitions.model import (
    All,
    AnyOf,
    AtLeast,
    ColumnTest,
    ColumnType,
    Comparator,
    Condition,
    EventCondition,
    EventMatch,
    EventMeasure,
    FeatureCondition,
    ListCondition,
    Not,
    Periods,
    PropertyCondition,
    Schema,
    SegmentCondition,
    SequenceCondition,
    SubscriptionCondition,
    Window,
    segment_conditions,
)
from segctl.engine.duckdb import qident

if TYPE_CHECKING:
    from segctl.definitions.loader import Definitions

#: Calendar measures move at local midnights: a change caused by a value ``v`` and a duration
#: ``d`` happens at the start of a local day at most this long after ``v + d`` (the day after
#: next, plus a daylight-saving hour) ...
CALENDAR_AFTER = timedelta(days=4)
#: ... and no earlier than this before it (the start of ``v + d``'s local day, 25 hours at most).
CALENDAR_BEFORE = timedelta(hours=26)
#: Measures that count local days whatever their window (the catalogue-wide flag, and the
#: fallback's local-midnight term).
LOCAL_DAY_MEASURES = ("distinct_days", "streak", "active_periods")
#: The events' time column (the views' canonical name).
EVENT_TIME = "timestamp"


@dataclass(frozen=True)
class Reads:
    """Rows some condition reads, and the durations it compares their timestamps with
    ``as_of`` by (0 included: a row becoming visible)."""

    table: str | None  # None: every table
    names: frozenset[str] | None  # events: the event names it reads (None: any)
    columns: frozenset[str] | None  # the timestamp columns it compares (None: all)
    durations: frozenset[timedelta]
    calendar: bool  # a local-day measure: also the local-midnight term for these durations
    #: Whether these durations also give the plain ``v + d`` term: not for a calendar
    #: window's own durations, whose edges are local midnights (the local-midnight term).
    rolling: bool = True


@dataclass(frozen=True)
class Edge:
    """A condition whose truth can change with no new row only when a few of its rows cross
    its durations, not any of them: a bound from those rows alone (:func:`_edge`).

    - ``count``: the rows of ``names`` in a rolling window ``within: d`` (no ``where``, no
      ``last``), compared with numbers. As time passes the count only falls, one row at a
      time, the oldest first: from ``c`` to ``j`` when the ``(j + 1)``-th newest row ``v``
      leaves, at ``v + d``. The truth changes only where the count crosses a ``step`` ``j``
      (``truth(j) != truth(j + 1)``), so the first change is when the ``(j + 1)``-th newest
      row leaves, for the largest step ``j < c``; never if there is none.
    - ``distinct_days`` in a rolling window: a local day counts while its newest row is in
      the window, so it is ``count`` over each day's newest row.
    - ``between`` (``count`` in ``between: [far, near]`` whose truth changes only between
      0 and 1): while a row is in the window the count cannot reach 0 before the newest of
      them leaves, at ``v + far``; while none is, it cannot leave 0 before the oldest row
      of the last ``near`` enters, at ``v + near``.
    - ``last_seen``/``first_seen`` over all time (no ``where``, no ``last``), compared by
      its ``durations`` (``within``, ``older_than``): the newest (oldest) row ``v`` is the
      value, which changes only with a new row, and the comparison at ``v + d``.
    - ``periods`` (``active_periods`` with ``min_count: 1``; ``durations``: the periods'
      boundaries ``b0 < b1 < ...``, period i is ``(as_of - b(i+1), as_of - b(i)]``) and
      ``calendar`` (the same over local days: period i is the local days
      ``D - b(i+1) + 1 .. D - b(i)`` of as_of's local day ``D``; also a count in one
      calendar window whose truth changes only between 0 and 1): a period is active while
      it holds a row. An active one cannot change before its newest row leaves (at
      ``v + b(i+1)``), an inactive one before the oldest newer row enters (at ``v + b(i)``);
      with ``c`` periods active, the number can cross a step ``j`` only once ``j + 1 - c``
      (below it) or ``c - j`` (above it) periods have changed: the term is that many-th
      first change. A calendar edge's changes are local midnights: its term is in the
      local-midnight part of the bound.

    Rows after ``moment`` become visible at their own time: the condition's :class:`Reads`
    keep the duration 0 for every row."""

    kind: str  # count, distinct_days, between, periods, calendar, last_seen, first_seen
    names: frozenset[str] | None  # None: any event
    #: The window's (between: far and near; periods, calendar: the boundaries); seen: the
    #: comparator's.
    durations: frozenset[timedelta]
    #: count, periods, calendar: the j with truth(j) != truth(j + 1), ascending.
    steps: tuple[int, ...] = ()
    #: The condition's ``where`` tests: the edge is over the rows that pass them. Kept only
    #: when each tests a plain events column with no duration (:func:`_plain`): whether a
    #: row passes is then a fact of the row, which time passing does not change.
    where: tuple[ColumnTest, ...] = ()


@dataclass(frozen=True)
class Catalogue:
    """What the rules depend on besides the rows: durations (all, and which rows each applies
    to), whether local days matter, and whether the bound cannot be exact."""

    durations: tuple[timedelta, ...]
    calendar: bool
    unsupported: str | None  # why incremental evaluation cannot be exact for this catalogue
    reads: tuple[Reads, ...]
    edges: tuple[Edge, ...] = ()


def objects(value: Any) -> Iterator[Any]:
    """Every object reachable from a definition (dataclasses, tuples, dicts), depth first."""
    stack = [value]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        names = _fields(type(item))
        if names:
            stack.extend(getattr(item, name) for name in names)
        elif isinstance(item, (tuple, list, frozenset, set)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())


#: The field names of each dataclass met (none for another type), looked up once per class:
#: the catalogue's walks visit some 100,000 objects for 1,000 segments.
_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields(kind: type) -> tuple[str, ...]:
    found = _FIELDS.get(kind)
    if found is None:
        dataclass = dataclasses.is_dataclass(kind)
        found = _FIELDS[kind] = tuple(f.name for f in dataclasses.fields(kind)) if dataclass else ()
    return found


def durations(value: Any) -> frozenset[timedelta]:
    """0 and every duration in ``value`` (each ``within``, ``between`` bound, comparator
    duration, sequence window, ``max_gap``/``max_span``, active_periods edge
    ``i * every + offset``): collected by walking it, so a construct added later is covered
    as long as its durations are ``timedelta`` values."""
    found: set[timedelta] = {timedelta(0)}
    for item in objects(value):
        found.update(_own_durations(item))
    return frozenset(found)


def _own_durations(item: Any) -> Iterator[timedelta]:
    if isinstance(item, timedelta):
        yield item
    elif isinstance(item, Periods):
        yield from (item.every * i + item.offset for i in range(item.of_last + 2))


def uses_local_days(value: Any) -> bool:
    """Whether ``value`` holds a calendar window or a measure counting local days."""
    return any(_counts_local_days(item) for item in objects(value))


def _counts_local_days(item: Any) -> bool:
    return (isinstance(item, Window) and item.calendar) or getattr(
        item, "kind", None
    ) in LOCAL_DAY_MEASURES


def moves_at_midnight(value: Any) -> bool:
    """Whether ``value`` depends on ``as_of``'s local day: a calendar window (its edges are
    local midnights) or a streak (it ends on ``as_of``'s local day or the day before).
    ``distinct_days`` and rolling ``active_periods`` count the local days of the events in
    rolling windows: functions of which events are inside, which changes at ``v + d`` alone."""
    return any(
        (isinstance(item, Window) and item.calendar) or getattr(item, "kind", None) == "streak"
        for item in objects(value)
    )


def catalogue(
    definitions: Definitions, timestamp_columns: set[str], event_columns: Iterable[str] = ()
) -> Catalogue:
    """Every duration the catalogue uses, whether it uses local days, which rows each
    condition's durations apply to (:func:`reads`), and whether some comparator compares a
    value the wake-up bound cannot see (a nested timestamp property) with as_of.
    ``event_columns``: the events' own columns, which an edge's ``where`` may test."""
    unsupported = None
    found: set[timedelta] = {timedelta(0)}
    local = False
    # One walk finds the durations, the local days and a comparator the bound cannot see
    # (1,000 segments are some 30,000 objects).
    for item in objects([definitions.segments, definitions.features]):
        found.update(_own_durations(item))
        local = local or _counts_local_days(item)
        if (
            isinstance(item, ColumnTest)
            and item.column not in timestamp_columns
            and any(t.op in ("within", "older_than") for t in item.comparator.tests)
        ):
            unsupported = f"'{item.column}' is compared with as_of (within/older_than)"
    fallback = Reads(None, None, None, frozenset(found), local)
    terms = list(dict.fromkeys(reads(definitions, timestamp_columns, fallback)))
    rows = [t for t in terms if isinstance(t, Reads)]
    edges = _merged([t for t in terms if isinstance(t, Edge)])
    kept: list[Edge] = []
    plain = frozenset(event_columns)
    for edge in edges:
        if _dominated(edge, tuple(rows)):
            continue
        if not _plain(edge.where, plain):  # a nested property, or a test of as_of
            rows.append(_per_row(edge))
            continue
        heavy = _lists([*kept, edge])
        days = sum(e.kind == "distinct_days" for e in [*kept, edge])
        if len(kept) < MAX_EDGES and heavy <= MAX_LISTS and days <= MAX_DAY_EDGES:
            kept.append(edge)
        else:  # its aggregates would cost more than they save: the per-row bound
            rows.append(_per_row(edge))
    return Catalogue(tuple(sorted(found)), local, unsupported, tuple(rows), tuple(kept))


def _per_row(edge: Edge) -> Reads:
    """The per-row bound of an edge's rows (for an edge not kept): its durations applied to
    each row, as a calendar window's local-midnight term for a ``calendar`` edge (a row of
    local day n crosses the edge ``d`` at the start of day n + d, after ``v + d - 26h``)."""
    stamp = frozenset({EVENT_TIME})
    if edge.kind == "calendar":
        return Reads("events", edge.names, stamp, edge.durations, True, rolling=False)
    return Reads("events", edge.names, stamp, edge.durations | {timedelta(0)}, False)


def _plain(where: tuple[ColumnTest, ...], columns: frozenset[str]) -> bool:
    """Whether each ``where`` test reads a column of the events themselves and no duration
    (a nested property's reading is the plan's own, not rendered here)."""
    return all(t.column in columns and durations(t) == {timedelta(0)} for t in where)


def _lists(edges: list[Edge]) -> int:
    """How many lists of rows per person (and passes of their own) these edges keep: one per
    name set (and ``where``) of the counts with a step above 0 (:func:`_counts_sql`), and
    one per ``distinct_days`` edge; some ten times the cost of one aggregate each."""
    counts = {(e.names, e.where) for e in edges if e.kind == "count" and e.steps not in ((), (0,))}
    return len(counts) + sum(e.kind == "distinct_days" for e in edges)


def _merged(edges: list[Edge]) -> list[Edge]:
    """One edge per kind, names, durations and ``where``, with the steps of all of them: a
    step more can only make the bound earlier, and they share one set of aggregates. Edges
    over any event first (they cover every row), then those with no ``where``, then by their
    number of conditions."""
    steps: dict[Edge, set[int]] = {}
    uses: dict[Edge, int] = {}
    for edge in edges:
        key = dataclasses.replace(edge, steps=())
        steps.setdefault(key, set()).update(edge.steps)
        uses[key] = uses.get(key, 0) + 1
    order = sorted(uses, key=lambda k: (k.names is not None, bool(k.where), -uses[k]))
    return [dataclasses.replace(k, steps=tuple(sorted(steps[k]))) for k in order]


def _dominated(edge: Edge, reads: tuple[Reads, ...]) -> bool:
    """Whether the per-row bound already applies each of the edge's durations to every row
    it reads (another condition reads them with the same durations): it then wakes the
    person no later than the edge would, so the edge adds nothing but its aggregates. (Not
    the periods of ``periods`` and ``calendar``: which of their rows wakes depends on the
    others, and a calendar edge's terms are local midnights.)"""
    if edge.kind in ("periods", "calendar"):
        return False
    applying = [
        r
        for r in reads
        if r.rolling  # a calendar window's durations give no v + d term
        and r.table in (None, "events")
        and (r.columns is None or EVENT_TIME in r.columns)
    ]
    anyone = _union(r.durations for r in applying if r.names is None)
    if edge.names is None:
        return edge.durations <= anyone
    return all(
        edge.durations <= anyone | _union(r.durations for r in applying if name in (r.names or ()))
        for name in edge.names
    )


def reads(
    definitions: Definitions, timestamp_columns: set[str], fallback: Reads | None = None
) -> list[Reads | Edge]:
    """The rows each condition and feature reads with its durations (or its :class:`Edge`),
    and the persons' ``created_at`` (a person becomes visible at it). ``fallback``: what a
    condition kind this does not know reads (every row with every duration of the
    catalogue; computed when not given)."""
    if fallback is None:
        everything = [definitions.segments, definitions.features]
        fallback = Reads(None, None, None, durations(everything), uses_local_days(everything))
    found: list[Reads | Edge] = [
        Reads("persons", None, frozenset({"created_at"}), frozenset({timedelta(0)}), False)
    ]
    for segment in definitions.segments.values():
        for condition in segment_conditions(segment):
            found.extend(_condition_reads(condition, timestamp_columns, fallback))
    for feature in definitions.features.values():
        found.extend(_measure_reads(feature.measure, None, timestamp_columns))
    return found


def _condition_reads(condition: Condition, stamps: set[str], fallback: Reads) -> list[Reads | Edge]:
    """One condition's own reads (its parts are walked by ``segment_conditions``); a kind
    this does not know reads everything with every duration."""
    if isinstance(condition, (All, AnyOf, AtLeast, Not, SegmentCondition, ListCondition)):
        return []  # no row of its own: its parts and the segments it names are walked
    if isinstance(condition, (EventCondition, FeatureCondition)):
        edges = _edges(condition.measure, condition.comparator)
        if edges:  # its rows become visible at their time; the rest is the edges'
            zero = frozenset({timedelta(0)})
            names = edges[0].names
            return [Reads("events", names, frozenset({EVENT_TIME}), zero, False), *edges]
        return _measure_reads(condition.measure, condition.comparator, stamps)
    if isinstance(condition, SequenceCondition):
        return [_event_reads(condition, stamps)]
    if isinstance(condition, PropertyCondition):
        test = condition.test
        return [Reads("persons", None, frozenset({test.column}), durations(test), False)]
    if isinstance(condition, SubscriptionCondition):
        # The latest row with updated_at <= as_of: every row and timestamp column counts.
        return [Reads("subscriptions", None, None, durations(condition), False)]
    return [fallback]


#: At most this many edges, keeping at most this many lists of rows per person
#: (:func:`_lists`), of which this many ``distinct_days`` ones (each a pass of its own over
#: the events of its window, some 1 s at 50M events); the others keep the per-row bound. At
#: 1M persons and 10M events with 1,000 segments, everyone's wake-up times took 1.1 s
#: without edges, 5.5 s with 24 edges keeping up to 20 rows per person each in the events'
#: single pass, 1.6 s with 4 of them; 1.8 s with 4 and 2.1 s with 8 in the windows' pass.
#: At 50M events with the benchmark's 27 segments, 8 lists instead of 4 cost a full run
#: 0.4 s and halve the persons woken an hour later (5,167 -> 3,072); 2 ``distinct_days``
#: edges instead of 1 cost it 0.5 s and wake 2,146 persons instead of 3,060 an hour later,
#: 73,209 instead of 88,064 the next day.
MAX_EDGES = 24
MAX_LISTS = 8
MAX_DAY_EDGES = 2
#: A count's edge keeps per person its newest rows up to the largest step + 1: not for a
#: step this large (the per-row bound then applies).
EDGE_ROWS = 64
#: The comparator keys :func:`_steps` evaluates on a count.
COUNT_TESTS = ("eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in")


def _edges(measure: EventMeasure, comparator: Comparator) -> list[Edge]:
    """The :class:`Edge` of a condition on ``measure`` when it has one (a list, empty when
    it has none), over the rows its ``where`` passes."""
    match = measure.match
    if measure.last is not None:
        return []
    names = frozenset(match.names) if match.names is not None else None
    edges = _unfiltered(measure, comparator, names)
    return [dataclasses.replace(e, where=match.where) for e in edges]


def _unfiltered(
    measure: EventMeasure, comparator: Comparator, names: frozenset[str] | None
) -> list[Edge]:
    """:func:`_edges` before the ``where``."""
    window, kind = measure.window, measure.measure.kind
    if kind == "active_periods":
        return _period_edges(measure, comparator, names)
    if window.calendar:
        return _calendar_edges(window, comparator, names)
    within, between = window.within, window.between
    if kind in ("count", "distinct_days") and within is not None:
        if dataclasses.replace(window, within=None) != Window():
            return []
        steps = _steps(comparator)
        if steps is None or (steps and steps[-1] >= EDGE_ROWS):
            return []
        return [Edge(kind, names, frozenset({within}), steps)]
    if kind == "count" and between is not None and between[0] != between[1]:
        if dataclasses.replace(window, between=None) != Window() or _steps(comparator) != (0,):
            return []
        return [Edge("between", names, frozenset(between))]
    if kind in ("last_seen", "first_seen") and window == Window():
        return [Edge(kind, names, durations(comparator) - {timedelta(0)})]
    return []


def _calendar_edges(
    window: Window, comparator: Comparator, names: frozenset[str] | None
) -> list[Edge]:
    """A count in a calendar window (whole days) whose truth changes only between 0 and 1
    row: one period. ``within: N`` holds the local days D - N .. D (boundaries 0 and N + 1),
    ``between: [F, N]`` D - F .. D - N - 1 (N + 1 and F + 1)."""
    if _steps(comparator) != (0,):
        return []
    if window.within is not None:
        bounds = (timedelta(0), window.within + DAY)
    elif window.between is not None and window.between[0] > window.between[1]:
        bounds = (window.between[1] + DAY, window.between[0] + DAY)
    else:
        return []
    if any(b % DAY for b in bounds) or bounds[1] > CALENDAR_DAYS * DAY:
        return []  # beyond the days a calendar edge keeps: the per-row bound
    return [Edge("calendar", names, frozenset(bounds), (0,))]


def _period_edges(
    measure: EventMeasure, comparator: Comparator, names: frozenset[str] | None
) -> list[Edge]:
    """``active_periods`` with ``min_count: 1``: each period is active while it holds a row,
    and the measure (the number of active periods) can cross a step of its comparator only
    when enough periods change. Boundaries K + iE (i = 0 .. of_last); steps below
    ``of_last`` (the measure cannot pass it)."""
    periods = measure.measure.periods
    steps = _steps(comparator)
    if periods is None or periods.min_count != 1 or steps is None:
        return []
    every, offset = periods.every, periods.offset
    kind = "calendar" if measure.window.calendar else "periods"
    if kind == "calendar" and (
        every % DAY or offset % DAY or offset + periods.of_last * every > CALENDAR_DAYS * DAY
    ):
        return []
    bounds = frozenset(offset + i * every for i in range(periods.of_last + 1))
    return [Edge(kind, names, bounds, tuple(j for j in steps if j < periods.of_last))]


def _steps(comparator: Comparator) -> tuple[int, ...] | None:
    """The counts ``j >= 0`` with ``truth(j) != truth(j + 1)`` for a comparator of numbers
    (None for another one). The truth can change only beside a constant ``k``: between
    ``ceil(k) - 1`` and ``ceil(k)``, or ``floor(k)`` and ``floor(k) + 1``."""
    constants: list[float] = []
    for test in comparator.tests:
        values = test.value if isinstance(test.value, tuple) else (test.value,)
        if test.op not in COUNT_TESTS or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            return None
        constants.extend(float(v) for v in values)

    def truth(j: int) -> bool:
        return all(_holds(test.op, test.value, j) for test in comparator.tests)

    near = {j for k in constants for j in (math.floor(k) - 1, math.floor(k), math.ceil(k) - 1)}
    return tuple(sorted(j for j in near if j >= 0 and truth(j) != truth(j + 1)))


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def _holds(op: str, value: Any, j: int) -> bool:
    """Whether the count ``j`` passes one comparator key of :data:`COUNT_TESTS`."""
    if op == "between":
        return bool(value[0] <= j <= value[1])
    if op in ("in", "not_in"):
        return (j in value) == (op == "in")
    return _ORDER[op](j, value)


def _measure_reads(
    measure: EventMeasure, comparator: Comparator | None, stamps: set[str]
) -> list[Reads | Edge]:
    """A condition (or feature) on an events measure: its :func:`_event_reads`, but in a
    calendar window the window's and periods' durations give the local-midnight term alone
    (its edges are local midnights; a row becoming visible keeps the duration 0)."""
    value = (measure, comparator)
    if not measure.window.calendar:
        return [_event_reads(value, stamps)]
    rows = _event_reads(value, stamps)
    edges = durations([measure.window, measure.measure])
    rest = durations([measure.match, comparator])
    streak = measure.measure.kind == "streak"
    return [
        dataclasses.replace(rows, durations=edges, calendar=True, rolling=False),
        dataclasses.replace(rows, durations=rest, calendar=streak),
    ]


def _event_reads(value: Any, stamps: set[str]) -> Reads:
    """An event condition, sequence or feature: the event names of its matches (any, when
    one matches any event; a ``where`` only narrows the rows, so it is left out), the events'
    time column and each timestamp column it names (``where``, ``share``, ``of``), and its
    durations (window, comparator, periods, sequence gaps)."""
    matches = [m for m in objects(value) if isinstance(m, EventMatch)]
    names: frozenset[str] | None = None
    if matches and all(m.names is not None for m in matches):
        names = frozenset(n for m in matches for n in m.names or ())
    named = {s for s in objects(value) if isinstance(s, str) and s in stamps}
    columns = frozenset({EVENT_TIME, *named})
    return Reads("events", names, columns, durations(value), moves_at_midnight(value))


# ---- the SQL ---------------------------------------------------------------------------------


def wake_sql(
    schema: Schema,
    cat: Catalogue,
    moment: datetime,
    timezone: str,
    only: str | None,
    shadowed: Collection[str] = (),
) -> str:
    """SELECT person_id, wake: per person the smallest ``v + d`` at or after ``moment`` over
    every timestamp value ``v`` of the person's rows and every duration ``d`` of a condition
    reading that row (:class:`Reads`). For a local-day condition, also ``max(v + d - 26h, N)``
    for its ``v + d`` up to 4 days before ``moment``, where N is the first local midnight
    after ``moment``: such a measure moves only at a local midnight, one in
    [v + d - 26h, v + d + 4 days]. A lower bound, never later than a real change; persons
    with no such value never wake. ``only``: a table of the persons to compute it for;
    ``shadowed``: the tables that hold their rows alone (an incremental run's temp tables in
    place of the views), read without that filter."""
    midnight = day_start(local_day(moment, timezone) + timedelta(days=1), timezone)
    parts = []
    for table, columns in schema.items():
        if "person_id" not in columns:
            continue
        theirs = None if table in shadowed else only
        plain, days = [], []
        for column, kind in columns.items():
            if kind is not ColumnType.TIMESTAMP:
                continue
            applying = [
                r
                for r in cat.reads
                if r.table in (None, table) and (r.columns is None or column in r.columns)
            ]
            by_name = "event" in columns and table == "events"
            plain += _candidates(qident(column), applying, by_name, moment, calendar=False)
            days += _candidates(qident(column), applying, by_name, moment, calendar=True)
        edges: list[tuple[list[str], str]] = []
        if table == "events" and EVENT_TIME in columns:
            named = "event" in columns  # else no row has a name: no named edge reads one
            windowed = []
            for index, edge in enumerate(cat.edges):
                if (edge.names is not None and not named) or (
                    edge.kind in STEPPED and not edge.steps  # its truth cannot change
                ):
                    continue
                if edge.kind in WINDOWED:
                    windowed.append((index, edge))
                elif edge.kind == "distinct_days":  # a pass of its own
                    parts.append(_days_sql(edge, moment, timezone, theirs))
                else:
                    edges += [f for f in [_seen_sql(index, edge, moment)] if f is not None]
            if windowed:
                parts.append(_window_pass(windowed, moment, timezone, theirs))
        if not plain and not days and not edges:
            continue
        where = f" WHERE person_id IN (SELECT person_id FROM {theirs})" if theirs else ""
        low = f"min(least({', '.join(plain)}))" if plain else "NULL::TIMESTAMP"
        day = f"min(least({', '.join(days)}))" if days else "NULL::TIMESTAMP"
        aggregates = "".join(f", {a}" for found_aggregates, _ in edges for a in found_aggregates)
        select = (
            f"SELECT person_id, {low} AS plain, {day} AS days{aggregates} "
            f"FROM {qident(table)}{where} GROUP BY person_id"
        )
        if edges:  # the edges' terms, from their aggregates in the same pass
            terms = ", ".join(term for _, term in edges)
            select = f"SELECT person_id, least(plain, {terms}) AS plain, days FROM ({select})"
        parts.append(select)
    if not parts:
        return "SELECT NULL::VARCHAR AS person_id, NULL::TIMESTAMP AS wake WHERE false"
    union = " UNION ALL ".join(parts)
    # least() and greatest() skip NULLs: a person with no local-day candidate has none.
    day = f"CASE WHEN min(days) IS NOT NULL THEN greatest(min(days), {_ts(midnight)}) END"
    return (
        f"SELECT person_id, least(min(plain), {day}) AS wake FROM ({union}) "
        "WHERE person_id IS NOT NULL GROUP BY person_id HAVING wake IS NOT NULL"
    )


#: Edges over rows in a window (``count``, ``between``, ``periods``, ``calendar``): a row
#: older than the window's far edge can only move further out, so their aggregates are
#: taken in a pass over the window's rows alone (:func:`_window_pass`).
WINDOWED = ("count", "between", "periods", "calendar")
#: Edges whose truth changes only at their steps (none: it cannot change).
STEPPED = ("count", "distinct_days", "periods", "calendar")


def _windowed_sql(
    index: int, edge: Edge, moment: datetime, timezone: str
) -> tuple[list[str], str, datetime]:
    """A ``between``, ``periods`` or ``calendar`` edge's aggregates over a person's events
    (named ``e<index>_*``), its term from them, and the oldest instant of a row it reads."""
    if edge.kind == "calendar":
        return _calendar_sql(index, edge, moment, timezone)
    if edge.kind == "periods":
        return _periods_sql(index, edge, moment)
    time = qident(EVENT_TIME)
    rows = [f"{time} <= {_ts(moment)}", *_rows(edge, moment)]
    name = f"e{index}"
    near, far = sorted(edge.durations)  # between
    inside = " AND ".join([*rows, f"{time} >= {_ts(moment - far)}"])
    inside += f" AND {time} <= {_ts(moment - near)}"
    coming = " AND ".join([*rows, f"{time} >= {_ts(moment - near)}"])
    return (
        [
            f"max({time}) FILTER (WHERE {inside}) AS {name}_in",
            f"min({time}) FILTER (WHERE {coming}) AS {name}_next",
        ],
        (
            f"CASE WHEN {name}_in IS NOT NULL THEN {name}_in + {_interval(far)} "
            f"ELSE {name}_next + {_interval(near)} END"
        ),
        moment - far,
    )


def _seen_sql(index: int, edge: Edge, moment: datetime) -> tuple[list[str], str] | None:
    """A ``last_seen``/``first_seen`` edge's aggregate over all of a person's events (in
    the events' single pass) and its term; None with no duration to compare."""
    if not edge.durations:
        return None
    time, name = qident(EVENT_TIME), f"e{index}"
    rows = [f"{time} <= {_ts(moment)}", *_rows(edge, moment)]
    value = f"{'max' if edge.kind == 'last_seen' else 'min'}({time})"
    reached = ", ".join(
        f"CASE WHEN {name}_v >= {_ts(moment - d)} THEN {name}_v + {_interval(d)} END"
        for d in sorted(edge.durations)
    )
    return [f"{value} FILTER (WHERE {' AND '.join(rows)}) AS {name}_v"], f"least({reached})"


def _window_pass(
    windowed: list[tuple[int, Edge]], moment: datetime, timezone: str, only: str | None
) -> str:
    """SELECT person_id, plain, days: the :data:`WINDOWED` edges' terms (the calendar ones
    in ``days``), in a pass of their own over the rows since their oldest window's start:
    a filter on the events' time skips the files before it, where their aggregates over
    every event cost a full run seconds (a dozen: 4 s at 50M events)."""
    counts = [edge for _, edge in windowed if edge.kind == "count"]
    found = [
        (edge.kind, _windowed_sql(i, edge, moment, timezone))
        for i, edge in windowed
        if edge.kind != "count"
    ]
    found += [("count", f) for f in _counts_sql(counts, moment)]
    time = qident(EVENT_TIME)
    start = min(oldest for _, (_, _, oldest) in found)
    # Files before ``start`` are skipped. (Not by event name: with one, DuckDB 1.x filters
    # the files' rows by name and no longer skips files by time, 0.2 s -> 1.4 s here.)
    rows = [f"{time} <= {_ts(moment)}", f"{time} >= {_ts(start)}"]
    if only:
        rows.append(f"person_id IN (SELECT person_id FROM {only})")
    aggregates = ", ".join(a for _, (found_aggregates, _, _) in found for a in found_aggregates)

    def terms(kinds: tuple[str, ...]) -> str:
        return "".join(f", {term}" for kind, (_, term, _) in found if kind in kinds)

    return (
        f"SELECT person_id, least(NULL::TIMESTAMP{terms(('count', 'between', 'periods'))}) "
        "AS plain, "
        f"least(NULL::TIMESTAMP{terms(('calendar',))}) AS days FROM ("
        f"SELECT person_id, {aggregates} FROM {qident('events')} "
        f"WHERE {' AND '.join(rows)} GROUP BY person_id)"
    )


def _counts_sql(edges: list[Edge], moment: datetime) -> list[tuple[list[str], str, datetime]]:
    """The ``count`` edges' aggregates and terms: per name set (and ``where``), one list of
    the K newest rows over the longest window of its edges, K the largest step + 1 (a
    count's ``(j + 1)``-th newest row in its window ``d`` is the list's ``(j + 1)``-th when
    that one is in ``d``); each edge's term is the list's ``(j + 1)``-th row plus ``d`` for
    the largest step ``j`` whose row is in the window (then the count is above ``j``).
    Counts of the same rows over several windows and steps share one list."""
    time = qident(EVENT_TIME)
    groups: dict[tuple[frozenset[str] | None, tuple[ColumnTest, ...]], list[Edge]] = {}
    for edge in edges:
        groups.setdefault((edge.names, edge.where), []).append(edge)
    found = []
    for g, members in enumerate(groups.values()):
        longest = max(d for e in members for d in e.durations)
        size = max(e.steps[-1] for e in members) + 1
        rows = [f"{time} <= {_ts(moment)}", f"{time} >= {_ts(moment - longest)}"]
        where = " AND ".join([*rows, *_rows(members[0], moment)])
        name = f"c{g}"
        newest = (
            f"max({time}, {size}) FILTER (WHERE {where})"
            if size > 1
            else f"[max({time}) FILTER (WHERE {where})]"
        )
        terms = []
        for edge in members:
            [d] = edge.durations
            whens = " ".join(
                f"WHEN {name}[{j + 1}] >= {_ts(moment - d)} THEN {name}[{j + 1}] + {_interval(d)}"
                for j in reversed(edge.steps)
            )
            terms.append(f"CASE {whens} END")
        found.append(([f"{newest} AS {name}"], f"least({', '.join(terms)})", moment - longest))
    return found


def _periods_sql(index: int, edge: Edge, moment: datetime) -> tuple[list[str], str, datetime]:
    """A ``periods`` edge's aggregates (per period ``i``, ``e<index>_in<i>``: its newest row,
    ``e<index>_next<i>``: the oldest newer one), its term, and the oldest instant a row it
    reads can have (its last period's first: rows before it only move further out). With
    ``c`` periods active, the number can cross a step ``j`` only once ``j + 1 - c`` or
    ``c - j`` periods have changed: the term is that many-th first change."""
    time, name = qident(EVENT_TIME), f"e{index}"
    bounds = sorted(edge.durations)
    aggregates, changes, active = [], [], []
    for i, (near, far) in enumerate(itertools.pairwise(bounds)):
        inside, newer = f"{name}_in{i}", f"{name}_next{i}"
        newest = [
            *_rows(edge, moment),
            f"{time} > {_ts(moment - far)}",
            f"{time} <= {_ts(moment - near)}",
        ]
        oldest = [*_rows(edge, moment), f"{time} > {_ts(moment - near)}"]
        aggregates += [
            f"max({time}) FILTER (WHERE {' AND '.join(newest)}) AS {inside}",
            f"min({time}) FILTER (WHERE {' AND '.join(oldest)}) AS {newer}",
        ]
        changes.append(
            f"CASE WHEN {inside} IS NOT NULL THEN {inside} + {_interval(far)} "
            f"ELSE {newer} + {_interval(near)} END"
        )
        active.append(f"({inside} IS NOT NULL)::INTEGER")
    c = f"({' + '.join(active)})"
    needed = ", ".join(
        f"CASE WHEN {c} <= {j} THEN {j + 1} - {c} ELSE {c} - {j} END" for j in edge.steps
    )
    term = f"list_sort([{', '.join(changes)}], 'ASC', 'NULLS LAST')[least({needed})]"
    return aggregates, term, moment - bounds[-1]


#: A ``calendar`` edge keeps a person's local days as the bits of a 64-bit integer: its
#: periods reach at most this many days back.
CALENDAR_DAYS = 63


def _calendar_sql(
    index: int, edge: Edge, moment: datetime, timezone: str
) -> tuple[list[str], str, datetime]:
    """A ``calendar`` edge: ``e<index>`` has bit ``k`` set when a row is on the local day
    ``D - k`` (``D``: as_of's local day). On day ``D + t``, period ``i`` is active when a
    row has ``b(i) <= k + t < b(i+1)``: the bits of its mask shifted ``t`` down. The term is
    the first ``t`` (up to the last boundary: every row has left by then) at which the
    number of active periods is on the other side of a step than at ``D``: exact for the
    rows at hand, as its first instant at the earliest (the local midnight less the zone's
    largest UTC offset; the bound then takes the next local midnight at least)."""
    name, bounds = f"e{index}", [d // DAY for d in sorted(edge.durations)]
    today = local_day(moment, timezone)
    bit = f"bit_or(CAST(1 AS UBIGINT) << {_day_index(today, timezone)})"
    rows = _rows(edge, moment)
    names = f" FILTER (WHERE {' AND '.join(rows)})" if rows else ""
    aggregates = [f"{bit}{names} AS {name}"]

    def count(t: int) -> str:  # the periods active on day D + t
        masks = [((1 << far) - (1 << near)) >> t for near, far in itertools.pairwise(bounds)]
        return " + ".join(f"({name} & {mask})::BOOLEAN::INTEGER" for mask in masks if mask)

    def crosses(t: int) -> str:
        now, then = count(0), count(t) or "0"
        return " OR ".join(f"(({now}) > {j}) != (({then}) > {j})" for j in edge.steps)

    whens = " ".join(f"WHEN {crosses(t)} THEN {t}" for t in range(1, bounds[-1] + 1))
    earliest = _interval(_largest_offset(timezone, moment))
    term = f"CAST(DATE '{today.isoformat()}' + (CASE {whens} END) AS TIMESTAMP) - {earliest}"
    return aggregates, term, day_start(today - timedelta(days=bounds[-1] - 1), timezone)


def _day_index(today: date, timezone: str) -> str:
    """SQL: how many local days before ``today`` a row is (at most :data:`CALENDAR_DAYS`:
    the pass reads rows of up to that many days, and a shift of 64 bits is an error)."""
    day = local_day_of(exp.column(EVENT_TIME, quoted=True), timezone).sql("duckdb")
    return f"least(DATE '{today.isoformat()}' - {day}, {CALENDAR_DAYS})"


def _rows(edge: Edge, moment: datetime) -> list[str]:
    """The predicates of an edge's rows: ``event IN (...)`` (none for any event) and its
    ``where`` tests, compiled as the plan compiles them."""
    names = sorted(edge.names) if edge.names is not None else None
    rows = [f"event IN ({', '.join(_text(n) for n in names)})"] if names is not None else []
    return rows + [
        compile_comparator(col(t.column), t.comparator, moment).sql("duckdb") for t in edge.where
    ]


def _largest_offset(timezone: str, moment: datetime) -> timedelta:
    """The largest UTC offset of ``timezone`` in the years around ``moment`` (a local
    midnight is at least this long before the same date's midnight in UTC)."""
    zone = ZoneInfo(timezone)
    start = moment.replace(tzinfo=UTC) - timedelta(days=400)
    found = {zone.utcoffset(start + timedelta(days=n)) for n in range(1200)}
    return max(offset for offset in found if offset is not None)


def _days_sql(edge: Edge, moment: datetime, timezone: str, only: str | None) -> str:
    """SELECT person_id, plain, days: a ``distinct_days`` edge's term, the ``count`` edge's
    over each local day's newest row in the window."""
    time = qident(EVENT_TIME)
    [d] = edge.durations
    rows = [f"{time} <= {_ts(moment)}", f"{time} >= {_ts(moment - d)}", *_rows(edge, moment)]
    if only:
        rows.append(f"person_id IN (SELECT person_id FROM {only})")
    day = local_day_of(exp.column(EVENT_TIME, quoted=True), timezone).sql("duckdb")
    newest = (
        f"SELECT person_id, max({time}) AS w FROM {qident('events')} "
        f"WHERE {' AND '.join(rows)} GROUP BY person_id, {day}"
    )
    whens = " ".join(
        f"WHEN c > {j} THEN top[{j + 1}] + {_interval(d)}" for j in reversed(edge.steps)
    )
    return (
        f"SELECT person_id, CASE {whens} END AS plain, NULL::TIMESTAMP AS days FROM "
        f"(SELECT person_id, count(*) AS c, max(w, {edge.steps[-1] + 1}) AS top "
        f"FROM ({newest}) GROUP BY person_id)"
    )


def _candidates(
    column: str, applying: list[Reads], by_name: bool, moment: datetime, calendar: bool
) -> list[str]:
    """A row's smallest candidate for ``column`` (none, or one expression): with
    ``by_name``, one ``CASE WHEN event IN (...)`` branch per set of event names sharing the
    same durations (rows of any other name get the durations of the conditions reading any
    event, or no candidate)."""
    applying = [r for r in applying if (r.calendar if calendar else r.rolling)]
    if not by_name:
        every = _union(r.durations for r in applying)
        return [_first(column, every, moment, calendar)] if every else []
    anyone = _union(r.durations for r in applying if r.names is None)
    named: dict[str, set[timedelta]] = {}
    for r in applying:
        for name in r.names or ():
            named.setdefault(name, set(anyone)).update(r.durations)
    groups: dict[frozenset[timedelta], list[str]] = {}
    for name, theirs in sorted(named.items()):
        if theirs != anyone:
            groups.setdefault(frozenset(theirs), []).append(name)
    whens = " ".join(
        f"WHEN event IN ({', '.join(_text(n) for n in names)}) "
        f"THEN {_first(column, found, moment, calendar)}"
        for found, names in groups.items()
    )
    otherwise = f" ELSE {_first(column, anyone, moment, calendar)}" if anyone else ""
    if not whens:
        return [_first(column, anyone, moment, calendar)] if anyone else []
    return [f"CASE {whens}{otherwise} END"]


def _union(sets: Iterable[frozenset[timedelta]]) -> frozenset[timedelta]:
    return frozenset().union(*sets)


def _first(column: str, found: Iterable[timedelta], moment: datetime, calendar: bool) -> str:
    """``CASE WHEN column >= low THEN column + d + shift ...`` over the durations ascending:
    the smallest ``d`` whose ``low`` the value reaches (``moment - d``, or 4 days before it
    for the local-midnight term, shifted 26 hours back), so the min over rows is the min over
    every pair (v, d)."""
    reach, shift = (CALENDAR_AFTER, -CALENDAR_BEFORE) if calendar else (timedelta(0), timedelta(0))
    whens = " ".join(
        f"WHEN {column} >= {_ts(moment - d - reach)} THEN {column} + {_interval(d + shift)}"
        for d in sorted(found)
    )
    return f"CASE {whens} END"


def _ts(moment: datetime) -> str:
    return f"TIMESTAMP '{moment.isoformat(sep=' ')}'"


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _interval(delta: timedelta) -> str:
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return f"INTERVAL ({micros}) MICROSECONDS"
