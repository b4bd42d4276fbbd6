"""The validated, typed form of segment and feature definitions.

Everything here is frozen and hashable. Source positions are kept for messages but left out of
equality, so two segments that count the same events in the same window share one
:class:`EventMeasure`, and the compiler computes it once.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeAlias

from segctl.definitions.source import Pos

if TYPE_CHECKING:
    from segctl.definitions.actions import Action, Audience

NOWHERE = Pos("")


class ColumnType(enum.Enum):
    """The few type families the language distinguishes."""

    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    TIMESTAMP = "timestamp"
    OTHER = "other"


#: table name -> column name -> type family (what the engine reports for the data).
Schema: TypeAlias = dict[str, dict[str, ColumnType]]


class _AnyColumn(dict[str, ColumnType]):
    """Every column name (:class:`BlindSchema`), each a number until its comparators say."""

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> ColumnType:
        return ColumnType.NUMBER


class BlindSchema(dict[str, dict[str, ColumnType]]):
    """The schema of data that cannot be read (``segctl validate`` with an input missing):
    every table and column is there, and the readers take a column's type from the
    comparators it is tested with (as for JSON values), so that the definitions' own
    problems are still found, and no problem of types the data would decide is made up."""

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> dict[str, ColumnType]:
        return _AnyColumn()

    def get(self, key: str, default: object = None) -> dict[str, ColumnType]:
        return self[key]


@dataclass(frozen=True)
class Test:
    """One comparator key with its typed value, e.g. ``gte: 10``.

    Values are normalised: timestamps are naive UTC datetimes, durations are timedeltas,
    ``in``/``not_in``/``between`` hold tuples.
    """

    op: str
    value: Any
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Comparator:
    """All tests must hold (``{gte: 5, lte: 30}``)."""

    tests: tuple[Test, ...]
    value_type: ColumnType
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class ColumnTest:
    """A comparator applied to a named column (event property, subscription field ...)."""

    column: str
    comparator: Comparator


@dataclass(frozen=True)
class Window:
    """Which events count, relative to ``as_of`` (at most one form is set).

    ``within``: as_of - within < ts <= as_of; ``between`` (far, near):
    as_of - far < ts <= as_of - near; ``start``/``end``: start <= ts < end (and ts <= as_of).
    """

    within: timedelta | None = None
    between: tuple[timedelta, timedelta] | None = None
    start: datetime | None = None
    end: datetime | None = None
    #: ``calendar: true`` (SPEC 2.4b): ``within``/``between`` count local calendar days in the
    #: project timezone; the compiler resolves them to instants for each as_of
    #: (segctl.compiler.calendar).
    calendar: bool = False

    def lookback(self) -> timedelta | None:
        """How far before as_of this window reaches (None: unbounded or absolute)."""
        # A calendar window starts at a local midnight: up to a day (and a DST hour) earlier.
        extra = timedelta(days=2) if self.calendar else timedelta(0)
        if self.within is not None:
            return self.within + extra
        if self.between is not None:
            return self.between[0] + extra
        return None

    @property
    def unbounded(self) -> bool:
        return self == Window()


@dataclass(frozen=True)
class EventMatch:
    """Which events a condition looks at: names (None = any event) and property tests."""

    names: tuple[str, ...] | None
    where: tuple[ColumnTest, ...] = ()
    #: The custom event (features.yaml ``custom_events:``) this match was written as, for
    #: messages; two spellings of the same events still compare equal.
    custom: str | None = field(default=None, compare=False)


MEASURES = (
    "count",
    "distinct_days",
    "sum",
    "avg",
    "min",
    "max",
    "first_seen",
    "last_seen",
    "streak",
    "share",
    "active_periods",
)
AGGREGATES = ("sum", "avg", "min", "max")


@dataclass(frozen=True)
class Measure:
    """What is computed over the matching events."""

    kind: str
    of: str | None = None  # sum/avg/min/max: the event property
    share_where: tuple[ColumnTest, ...] = ()  # share: the sub-condition
    periods: Periods | None = None  # active_periods: which periods, how many events in each


@dataclass(frozen=True)
class Periods:
    """``active_periods`` (SPEC 2.4b): the last ``of_last`` periods of length ``every``, moved
    back by ``offset``; a period counts when it holds at least ``min_count`` matching events.
    Whether the periods are rolling or calendar days is the window's ``calendar``."""

    every: timedelta
    of_last: int
    min_count: int = 1
    offset: timedelta = timedelta(0)


@dataclass(frozen=True)
class EventMeasure:
    """A per-person value computed from events; the unit the compiler deduplicates."""

    match: EventMatch
    window: Window
    measure: Measure
    last: int | None = None

    @property
    def value_type(self) -> ColumnType:
        return measure_type(self.measure.kind)


def measure_type(kind: str) -> ColumnType:
    """The type of a measure's value (``min``/``max`` take their column's: see the parser)."""
    return ColumnType.TIMESTAMP if kind in ("first_seen", "last_seen") else ColumnType.NUMBER


# ---- conditions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class All:
    items: tuple[Condition, ...]
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Not:
    item: Condition
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class PropertyCondition:
    test: ColumnTest
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class EventCondition:
    measure: EventMeasure
    comparator: Comparator
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class FeatureCondition:
    feature: str
    measure: EventMeasure
    comparator: Comparator
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class SubscriptionCondition:
    tests: tuple[ColumnTest, ...]
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class SegmentCondition:
    segment: str
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class SequenceCondition:
    steps: tuple[EventMatch, ...]
    window: Window
    max_gap: timedelta | None = None
    pos: Pos = field(default=NOWHERE, compare=False)
    #: The time from the first step to the last is at most this (SPEC 2.4b).
    max_span: timedelta | None = None


@dataclass(frozen=True)
class AtLeast:
    """``at_least: K`` with ``of: [...]``: TRUE when K or more of the conditions hold."""

    count: int
    items: tuple[Condition, ...]
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class ListCondition:
    file: str  # as written, relative to the project root
    path: str  # absolute path
    key: str  # "person_id" or "email"
    pos: Pos = field(default=NOWHERE, compare=False)


Condition: TypeAlias = (
    All
    | AnyOf
    | Not
    | PropertyCondition
    | EventCondition
    | FeatureCondition
    | SubscriptionCondition
    | SegmentCondition
    | SequenceCondition
    | ListCondition
    | AtLeast
)


@dataclass(frozen=True)
class Segment:
    """A validated segment definition."""

    name: str
    rule: Condition
    exclude: tuple[Condition, ...] = ()
    description: str = ""
    tags: tuple[str, ...] = ()
    file: str = ""
    on_enter: tuple[Action, ...] = ()
    on_exit: tuple[Action, ...] = ()
    audiences: tuple[Audience, ...] = ()
    source_hash: str = ""
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Feature:
    """A named measure from features.yaml."""

    name: str
    measure: EventMeasure
    description: str = ""
    pos: Pos = field(default=NOWHERE, compare=False)


def walk(condition: Condition) -> list[Condition]:
    """Every condition in a tree, depth first, the root included."""
    out: list[Condition] = [condition]
    if isinstance(condition, (All, AnyOf, AtLeast)):
        for item in condition.items:
            out.extend(walk(item))
    elif isinstance(condition, Not):
        out.extend(walk(condition.item))
    return out


def segment_conditions(segment: Segment) -> list[Condition]:
    """Every condition of a segment's rule and exclusions."""
    out = walk(segment.rule)
    for item in segment.exclude:
        out.extend(walk(item))
    return out


def list_conditions(segments: Iterable[Segment]) -> list[ListCondition]:
    """Every list condition of ``segments`` (their rules and exclusions)."""
    return [
        item
        for segment in segments
        for item in segment_conditions(segment)
        if isinstance(item, ListCondition)
    ]
