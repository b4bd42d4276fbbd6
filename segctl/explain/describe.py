"""The segment language in plain words: each condition's kind and what it measures.

``describe(condition)`` gives ``("event", "video_rendered in the last 30d, count")``; the
dispatch over condition kinds is the compiler's one (:class:`~segctl.compiler.ConditionVisitor`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from segctl.compiler import ConditionVisitor, kind_of
from segctl.definitions.model import (
    All,
    AnyOf,
    AtLeast,
    ColumnTest,
    Comparator,
    Condition,
    EventCondition,
    EventMatch,
    EventMeasure,
    FeatureCondition,
    ListCondition,
    Not,
    PropertyCondition,
    SegmentCondition,
    SequenceCondition,
    SubscriptionCondition,
    Window,
)
from segctl.explain.text import duration, needs
from segctl.timeutil import iso


def _tests(tests: tuple[ColumnTest, ...]) -> str:
    return " and ".join(f"{t.column} {needs(t.comparator)}" for t in tests)


def _events(match: EventMatch) -> str:
    names = match.names
    if match.custom is not None:
        return f"custom event {match.custom}"  # its definition is in features.yaml
    if names is None:
        text = "any event"
    elif len(names) == 1:
        text = names[0]
    else:
        text = ", ".join(names[:-1]) + f" or {names[-1]}"
    if match.where:
        text += f" where {_tests(match.where)}"
    return text


def _window(window: Window) -> str:
    if window.calendar and window.within is not None:
        return f" on the {window.within.days} calendar days before today and today"
    if window.calendar and window.between is not None:
        far, near = window.between
        return f" on the calendar days from {far.days} to {near.days + 1} days before today"
    if window.within is not None:
        return f" in the last {duration(window.within)}"
    if window.between is not None:
        far, near = window.between
        return f" between {duration(far)} and {duration(near)} ago"
    text = ""
    if window.start is not None:
        text += f" from {iso(window.start)}"
    if window.end is not None:
        text += f" before {iso(window.end)}"
    return text or " (all time)"


def describe_measure(measure: EventMeasure) -> str:
    """``video_rendered in the last 30d, count``."""
    selection = _events(measure.match) + _window(measure.window)
    if measure.last is not None:
        window = "" if measure.window.unbounded else _window(measure.window)
        selection = f"last {measure.last} {_events(measure.match)}{window}"
    kind, of = measure.measure.kind, measure.measure.of
    periods = measure.measure.periods
    if periods is not None:
        calendar = "calendar " if measure.window.calendar else ""
        offset = f", {duration(periods.offset)} back" if periods.offset else ""
        return (
            f"{_events(measure.match)}, {calendar}periods of {duration(periods.every)} "
            f"(last {periods.of_last}{offset}) with at least {periods.min_count} "
            f"event{'s' if periods.min_count > 1 else ''}, active periods"
        )
    if of is not None:
        what = f"{kind} of {of}"
    elif kind == "share":
        what = f"share where {_tests(measure.measure.share_where)}"
    else:
        what = {"distinct_days": "distinct days", "streak": "streak (days)"}.get(
            kind, kind.replace("_", " ")
        )
    return f"{selection}, {what}"


def describe(condition: Condition) -> tuple[str, str]:
    """(kind, text) of a condition: ``("event", "video_rendered in the last 30d, count")``."""
    return kind_of(condition), _Describe().visit(condition)


class _Describe(ConditionVisitor[str]):
    """The text of each kind of condition."""

    def visit_all(self, condition: All) -> str:
        return "all of"

    def visit_any(self, condition: AnyOf) -> str:
        return "any of"

    def visit_not(self, condition: Not) -> str:
        return "not"

    def visit_property(self, condition: PropertyCondition) -> str:
        return f"property {condition.test.column}"

    def visit_event(self, condition: EventCondition) -> str:
        return describe_measure(condition.measure)

    def visit_feature(self, condition: FeatureCondition) -> str:
        return f"feature {condition.feature} ({describe_measure(condition.measure)})"

    def visit_subscription(self, condition: SubscriptionCondition) -> str:
        return "current subscription"

    def visit_segment(self, condition: SegmentCondition) -> str:
        return f"segment {condition.segment}"

    def visit_sequence(self, condition: SequenceCondition) -> str:
        steps = ", then ".join(_events(s) for s in condition.steps)
        text = f"sequence {steps}{_window(condition.window)}"
        if condition.max_gap is not None:
            text += f", at most {duration(condition.max_gap)} apart"
        if condition.max_span is not None:
            text += f", all within {duration(condition.max_span)} of the first"
        return text

    def visit_list(self, condition: ListCondition) -> str:
        return f"on list {condition.file} (by {condition.key})"

    def visit_at_least(self, condition: AtLeast) -> str:
        return f"at least {condition.count} of, conditions holding"


def local(moment: datetime, timezone: str) -> str:
    """A naive-UTC instant as local time with its offset: ``2026-03-23T00:00:00+01:00``."""
    return moment.replace(tzinfo=UTC).astimezone(ZoneInfo(timezone)).isoformat()


def location(condition: Condition | Comparator) -> str:
    pos = condition.pos
    return f"{pos.file}:{pos.line}:{pos.col}" if pos.line else pos.file
