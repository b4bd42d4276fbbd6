"""Why a person is (or is not) a member of a segment: ``segctl explain`` (SPEC 3).

Every condition of the rule, its exclusions and the segments it references is shown with the
value measured for the person and its verdict. Nothing is re-implemented here: the values come
from the same fused plan that ``evaluate`` runs (:class:`~segctl.compiler.plan.PlanBuilder`),
with one extra column per condition, and the plan's input tables restricted to the persons
explained. Every measure is computed per person, so restricting the inputs changes no value.

With a state folder, the person's last transition is explained too: the rule is re-evaluated at
the as_of of the run that recorded it and of the run before, and the conditions whose verdict
differs are listed (likewise between the last committed run and the as_of explained).

>>> explanation = project.explain("power_users", "u00042", as_of="2026-11-17")  # doctest: +SKIP
>>> print(explanation.render())  # doctest: +SKIP
power_users for u00042 as of 2026-11-17T00:00:00Z: NOT A MEMBER
rule -> FALSE
└─ all of -> FALSE
   ├─ video_rendered in the last 30d, count: 1, needs >= 10 -> FALSE
   └─ property plan: "premium", needs in ["pro", "premium"] -> TRUE
exclude (any of) -> not excluded
└─ segment vip -> FALSE
   rule -> FALSE
   └─ on list sample_data/lists/vip.csv (by person_id) -> FALSE
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

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
    Measure,
    Not,
    PropertyCondition,
    SegmentCondition,
    SequenceCondition,
    SubscriptionCondition,
    Window,
)
from segctl.errors import DataError
from segctl.timeutil import iso, parse_as_of

if TYPE_CHECKING:
    from sqlglot import exp

    from segctl.compiler.plan import PlanBuilder
    from segctl.definitions.loader import Definitions
    from segctl.project import Project
    from segctl.state import StateStore

__all__ = [
    "Change",
    "Explanation",
    "Node",
    "SegmentExplanation",
    "Since",
    "explain",
    "explain_many",
]

#: The input tables of a plan; each is read through a filter on the persons explained.
INPUTS = ("events", "persons", "subscriptions")
BOOLEAN_KINDS = ("all", "any", "not")


# ---- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """One condition with the value measured for the person and its verdict."""

    kind: str  # all, any, not, property, event, feature, subscription, field, segment, ...
    condition: str  # what is measured, e.g. "video_rendered in the last 30d, count"
    verdict: bool
    location: str  # file:line:col of the condition
    value: Any = None  # the measured value (None: no value, or a kind without one)
    needs: str | None = None  # the comparator, e.g. ">= 10"
    children: tuple[Node, ...] = ()
    segment: SegmentExplanation | None = None  # a referenced segment, explained

    @property
    def has_value(self) -> bool:
        return self.needs is not None

    def line(self, as_of: datetime | None = None) -> str:
        """``video_rendered in the last 30d, count: 7, needs >= 10 -> FALSE``."""
        verdict = "TRUE" if self.verdict else "FALSE"
        if not self.has_value:
            return f"{self.condition} -> {verdict}"
        return f"{self.condition}: {show(self.value, as_of)}, needs {self.needs} -> {verdict}"

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "kind": self.kind,
            "condition": self.condition,
            "verdict": self.verdict,
            "location": self.location,
        }
        if self.has_value:
            document["value"] = plain(self.value)
            document["needs"] = self.needs
        if self.children:
            document["children"] = [c.to_dict() for c in self.children]
        if self.segment is not None:
            document["segment"] = self.segment.to_dict()
        return document

    def walk(self, owner: str) -> list[tuple[str, Node]]:
        """Every node below and including this one, with the segment it belongs to."""
        out = [(owner, self)]
        for child in self.children:
            out.extend(child.walk(owner))
        if self.segment is not None:
            out.extend(self.segment.walk())
        return out


@dataclass(frozen=True)
class SegmentExplanation:
    """A segment's rule and exclusions for one person; ``member`` is what evaluate computes."""

    name: str
    file: str
    member: bool
    rule: Node
    exclude: tuple[Node, ...] = ()

    @property
    def excluded(self) -> bool:
        return any(n.verdict for n in self.exclude)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.file,
            "member": self.member,
            "rule": self.rule.to_dict(),
            "excluded": self.excluded,
            "exclude": [n.to_dict() for n in self.exclude],
        }

    def walk(self) -> list[tuple[str, Node]]:
        out = self.rule.walk(self.name)
        for node in self.exclude:
            out.extend(node.walk(self.name))
        return out


@dataclass(frozen=True)
class Change:
    """A condition whose verdict differs between two as_of times."""

    segment: str
    condition: str
    location: str
    needs: str | None
    before: Any
    after: Any
    was: bool
    now: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "condition": self.condition,
            "location": self.location,
            "needs": self.needs,
            "before": plain(self.before),
            "after": plain(self.after),
            "was": self.was,
            "now": self.now,
        }

    def line(self) -> str:
        verdicts = f"{'TRUE' if self.was else 'FALSE'} -> {'TRUE' if self.now else 'FALSE'}"
        if self.needs is None:
            return f"{self.segment}: {self.condition}: {verdicts}"
        values = f"{show(self.before)} -> {show(self.after)}"
        return f"{self.segment}: {self.condition}: {values}, needs {self.needs}: {verdicts}"


@dataclass(frozen=True)
class Since:
    """Membership at a committed run against a later (re-evaluated) moment, and what changed.

    For the last transition: ``run_id`` recorded the entry or exit, ``from_run`` is the run
    before it (None in the segment's first run, where everyone who matched entered).
    """

    kind: str  # "entered", "exited" (a transition) or "since" (the last run vs as_of)
    run_id: int
    as_of: datetime
    from_run: int | None = None
    from_as_of: datetime | None = None
    member_then: bool | None = None
    member_now: bool | None = None
    changes: tuple[Change, ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "run_id": self.run_id,
            "as_of": iso(self.as_of),
            "changes": [c.to_dict() for c in self.changes],
            "notes": list(self.notes),
        }
        if self.kind == "since":
            document["member_then"] = self.member_then
            document["member_now"] = self.member_now
        else:
            document["kind"] = self.kind
            document["from_run"] = self.from_run
            document["from_as_of"] = iso(self.from_as_of) if self.from_as_of else None
        return document

    def lines(self) -> list[str]:
        if self.kind == "since":
            then = "a member" if self.member_then else "not a member"
            now = "a member" if self.member_now else "not a member"
            head = f"since run {self.run_id} ({iso(self.as_of)}): {then} then, {now} now"
        else:
            head = f"last transition: {self.kind} at run {self.run_id} ({iso(self.as_of)})"
            if self.from_run is not None and self.from_as_of is not None:
                head += f"; compared with run {self.from_run} ({iso(self.from_as_of)})"
        out = [head + (":" if self.changes else "")]
        out += [f"  {c.line()}" for c in self.changes]
        if not self.changes and (self.kind == "since" or self.from_run is not None):
            out.append("  no condition changed its verdict")
        out += [f"  note: {n}" for n in self.notes]
        return out


@dataclass(frozen=True)
class Explanation:
    """Why ``person_id`` is or is not a member of ``name`` at ``as_of``."""

    name: str
    person_id: str
    as_of: datetime
    segment: SegmentExplanation | None  # None: the person was not evaluated (created later)
    notes: tuple[str, ...] = ()
    transition: Since | None = None
    since_last_run: Since | None = None

    @property
    def member(self) -> bool:
        return self.segment is not None and self.segment.member

    @property
    def evaluated(self) -> bool:
        return self.segment is not None

    def to_dict(self) -> dict[str, Any]:
        """The ``explain --format json`` document."""
        segment = self.segment
        return {
            "segment": self.name,
            "person_id": self.person_id,
            "as_of": iso(self.as_of),
            "evaluated": self.evaluated,
            "member": self.member,
            "file": segment.file if segment else None,
            "rule": segment.rule.to_dict() if segment else None,
            "excluded": segment.excluded if segment else None,
            "exclude": [n.to_dict() for n in segment.exclude] if segment else [],
            "last_transition": self.transition.to_dict() if self.transition else None,
            "since_last_run": self.since_last_run.to_dict() if self.since_last_run else None,
            "notes": list(self.notes),
        }

    def rows(self) -> list[tuple[str, int, str, Any, str | None, bool, str]]:
        """One row per condition: (segment, depth, condition, value, needs, verdict, location)."""
        out: list[tuple[str, int, str, Any, str | None, bool, str]] = []

        def visit(owner: str, node: Node, depth: int) -> None:
            value = plain(node.value) if node.has_value else None
            out.append(
                (owner, depth, node.condition, value, node.needs, node.verdict, node.location)
            )
            for child in node.children:
                visit(owner, child, depth + 1)
            if node.segment is not None:
                visit_segment(node.segment, depth + 1)

        def visit_segment(segment: SegmentExplanation, depth: int) -> None:
            visit(segment.name, segment.rule, depth)
            for node in segment.exclude:
                visit(segment.name, node, depth)

        if self.segment is not None:
            visit_segment(self.segment, 0)
        return out

    def render(self) -> str:
        """The explanation as an indented tree, for people."""
        verdict = "A MEMBER" if self.member else "NOT A MEMBER"
        lines = [f"{self.name} for {self.person_id} as of {iso(self.as_of)}: {verdict}"]
        if self.segment is not None:
            lines += _segment_lines(self.segment, "", self.as_of)
        lines += [f"note: {n}" for n in self.notes]
        for history in (self.transition, self.since_last_run):
            if history is not None:
                lines += history.lines()
        return "\n".join(lines)


def _segment_lines(segment: SegmentExplanation, indent: str, as_of: datetime) -> list[str]:
    lines = [f"{indent}rule -> {'TRUE' if segment.rule.verdict else 'FALSE'}"]
    lines += _tree([segment.rule], indent, as_of)
    if segment.exclude:
        excluded = "EXCLUDED" if segment.excluded else "not excluded"
        lines.append(f"{indent}exclude (any of) -> {excluded}")
        lines += _tree(list(segment.exclude), indent, as_of)
    return lines


def _tree(nodes: list[Node], indent: str, as_of: datetime) -> list[str]:
    lines: list[str] = []
    for i, node in enumerate(nodes):
        last = i == len(nodes) - 1
        lines.append(f"{indent}{'└─ ' if last else '├─ '}{node.line(as_of)}")
        deeper = indent + ("   " if last else "│  ")
        lines += _tree(list(node.children), deeper, as_of)
        if node.segment is not None:
            lines += _segment_lines(node.segment, deeper, as_of)
    return lines


# ---- values and conditions as text ---------------------------------------------------------


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
    """(kind, text) of a condition."""
    if isinstance(condition, All):
        return "all", "all of"
    if isinstance(condition, AnyOf):
        return "any", "any of"
    if isinstance(condition, Not):
        return "not", "not"
    if isinstance(condition, PropertyCondition):
        return "property", f"property {condition.test.column}"
    if isinstance(condition, EventCondition):
        return "event", describe_measure(condition.measure)
    if isinstance(condition, FeatureCondition):
        return "feature", f"feature {condition.feature} ({describe_measure(condition.measure)})"
    if isinstance(condition, SubscriptionCondition):
        return "subscription", "current subscription"
    if isinstance(condition, SegmentCondition):
        return "segment", f"segment {condition.segment}"
    if isinstance(condition, SequenceCondition):
        steps = ", then ".join(_events(s) for s in condition.steps)
        text = f"sequence {steps}{_window(condition.window)}"
        if condition.max_gap is not None:
            text += f", at most {duration(condition.max_gap)} apart"
        if condition.max_span is not None:
            text += f", all within {duration(condition.max_span)} of the first"
        return "sequence", text
    if isinstance(condition, ListCondition):
        return "list", f"on list {condition.file} (by {condition.key})"
    if isinstance(condition, AtLeast):
        return "at_least", f"at least {condition.count} of, conditions holding"
    raise TypeError(f"unknown condition {condition!r}")  # pragma: no cover


def _local(moment: datetime, timezone: str) -> str:
    """A naive-UTC instant as local time with its offset: ``2026-03-23T00:00:00+01:00``."""
    from datetime import UTC
    from zoneinfo import ZoneInfo

    return moment.replace(tzinfo=UTC).astimezone(ZoneInfo(timezone)).isoformat()


def _location(condition: Condition | Comparator) -> str:
    pos = condition.pos
    return f"{pos.file}:{pos.line}:{pos.col}" if pos.line else pos.file


# ---- the plan: one column per condition -----------------------------------------------------


@dataclass
class _Shape:
    """A condition with the plan columns holding its verdict and value."""

    kind: str
    text: str
    location: str
    verdict: str
    value: str | None = None
    needs: str | None = None
    children: list[_Shape] = field(default_factory=list)
    segment: str | None = None


@dataclass
class _SegmentShape:
    name: str
    file: str
    member: str
    rule: _Shape
    exclude: list[_Shape]


class _Plan:
    """The fused plan of a segment and the segments it references, projecting one verdict
    column per condition (and one value column per measured condition).

    The builder's own ``_condition`` compiles each condition, and its column names (the
    measures, ``p__``/``sub__`` for person and subscription columns) give the values, so the
    verdicts are the very expressions evaluate combines.
    """

    def __init__(self, definitions: Definitions, name: str, builder: PlanBuilder) -> None:
        self.definitions = definitions
        self.builder = builder
        self.projections: dict[str, exp.Expr] = {}
        self.segments: dict[str, _SegmentShape] = {}
        self.root = self._segment(name)

    def _column(self, expression: exp.Expr) -> str:
        alias = f"x__{len(self.projections)}"
        self.projections[alias] = expression
        return alias

    def _segment(self, name: str) -> _SegmentShape:
        if name not in self.segments:
            segment = self.definitions.segments[name]
            member = self._column(self.builder._condition(SegmentCondition(name)))
            rule = self._shape(segment.rule)
            exclude = [self._shape(c) for c in segment.exclude]
            self.segments[name] = _SegmentShape(name, segment.file, member, rule, exclude)
        return self.segments[name]

    def _shape(self, condition: Condition) -> _Shape:
        from segctl.compiler.plan import col

        kind, text = describe(condition)
        shape = _Shape(
            kind, text, _location(condition), self._column(self.builder._condition(condition))
        )
        if isinstance(condition, (All, AnyOf, AtLeast)):
            shape.children = [self._shape(c) for c in condition.items]
        if isinstance(condition, AtLeast):
            shape.value = self._column(self.builder.held(condition))
            shape.needs = f">= {condition.count}"
        elif isinstance(condition, Not):
            shape.children = [self._shape(condition.item)]
        elif isinstance(condition, PropertyCondition):
            shape.value = self._column(col(f"p__{self.builder.person_column(condition.test)}"))
            shape.needs = needs(condition.test.comparator)
        elif isinstance(condition, (EventCondition, FeatureCondition)):
            shape.value = self._column(col(self.builder.measures[condition.measure]))
            shape.needs = needs(condition.comparator)
            shape.text += self._calendar_bounds(condition.measure.window)
            if condition.measure.measure.periods is not None:
                shape.children = self._periods(condition.measure, shape.location)
        elif isinstance(condition, SubscriptionCondition):
            for test in condition.tests:
                single = SubscriptionCondition((test,), condition.pos)
                verdict = self._column(self.builder._condition(single))
                value = self._column(col(f"sub__{test.column}"))
                location = _location(test.comparator)
                shape.children.append(
                    _Shape(
                        "field",
                        f"subscription {test.column}",
                        location,
                        verdict,
                        value,
                        needs(test.comparator),
                    )
                )
        elif isinstance(condition, SegmentCondition):
            self._segment(condition.segment)
            shape.segment = condition.segment
        return shape

    def _calendar_bounds(self, window: Window) -> str:
        """A calendar window's instants at this as_of, in the project timezone."""
        from segctl.compiler.calendar import resolve

        if not window.calendar or (window.within is None and window.between is None):
            return ""
        ctx = self.builder.ctx
        bounds = resolve(window, ctx.as_of, ctx.timezone)
        assert bounds.start is not None
        end = "as_of" if bounds.end is None else f"before {_local(bounds.end, ctx.timezone)}"
        return f" ({_local(bounds.start, ctx.timezone)} to {end})"

    def _periods(self, measure: EventMeasure, location: str) -> list[_Shape]:
        """One child per period of ``active_periods``: its bounds and its count of events,
        each a count measure of the same fused aggregate."""
        from sqlglot import exp

        from segctl.compiler.calendar import period_windows, resolve
        from segctl.compiler.comparators import literal
        from segctl.compiler.plan import col

        periods = measure.measure.periods
        assert periods is not None
        ctx = self.builder.ctx
        shapes = []
        for i, window in enumerate(period_windows(measure)):
            bounds = resolve(window, ctx.as_of, ctx.timezone)
            if bounds.start is not None:
                end = "as_of" if bounds.end is None else _local(bounds.end, ctx.timezone)
                span = f"{_local(bounds.start, ctx.timezone)} to {end}"
            else:
                far = window.lookback() or timedelta(0)
                near = window.between[1] if window.between is not None else timedelta(0)
                span = f"after {iso(ctx.as_of - far)} to {iso(ctx.as_of - near)}"
            count = EventMeasure(measure.match, window, Measure("count"))
            column = self.builder._measure_column(count)
            value = self._column(col(column))
            verdict = self._column(exp.GTE(this=col(column), expression=literal(periods.min_count)))
            shapes.append(
                _Shape(
                    "period",
                    f"period {i + 1} ({span}), events",
                    location,
                    verdict,
                    value,
                    f">= {periods.min_count}",
                )
            )
        return shapes

    def query(self, person_ids: list[str]) -> exp.Select:
        """The plan with the condition columns, reading only these persons' rows."""
        from sqlglot import exp

        from segctl.compiler.plan import col, ident

        wide = self.builder.segments_query([self.root.name])
        projections = [col("person_id")] + [
            exp.alias_(expression, ident(alias)) for alias, expression in self.projections.items()
        ]
        return _restrict(wide.select(*projections, append=False), person_ids)

    def explain(self, row: dict[str, Any]) -> SegmentExplanation:
        return self._explain_segment(self.root, row)

    def _explain_segment(self, shape: _SegmentShape, row: dict[str, Any]) -> SegmentExplanation:
        return SegmentExplanation(
            shape.name,
            shape.file,
            bool(row[shape.member]),
            self._node(shape.rule, row),
            tuple(self._node(s, row) for s in shape.exclude),
        )

    def _node(self, shape: _Shape, row: dict[str, Any]) -> Node:
        return Node(
            kind=shape.kind,
            condition=shape.text,
            verdict=bool(row[shape.verdict]),
            location=shape.location,
            value=row[shape.value] if shape.value else None,
            needs=shape.needs,
            children=tuple(self._node(c, row) for c in shape.children),
            segment=(
                self._explain_segment(self.segments[shape.segment], row) if shape.segment else None
            ),
        )


def _restrict(query: exp.Select, person_ids: list[str]) -> exp.Select:
    """Read each input table through ``WHERE person_id IN (...)``: every CTE of a plan
    partitions by person, so the persons explained get exactly the values of a full run."""
    from sqlglot import exp

    from segctl.compiler.comparators import literal
    from segctl.compiler.plan import col, ident

    def source(node: exp.Expr) -> tuple[str, str] | None:
        """(input table, the name it is read as) of a FROM or JOIN target."""
        if isinstance(node, exp.Identifier):
            return node.name, node.name
        if isinstance(node, exp.Table) and not node.args.get("db"):
            return node.name, node.alias_or_name
        if isinstance(node, exp.Alias) and isinstance(node.this, exp.Identifier):
            return node.this.name, node.alias
        return None

    restricted = query.copy()
    for clause in list(restricted.find_all(exp.From, exp.Join)):
        found = source(clause.this)
        if found is None or found[0] not in INPUTS:
            continue
        keep = exp.In(this=col("person_id"), expressions=[literal(p) for p in person_ids])
        rows = exp.select(exp.Star()).from_(exp.Table(this=ident(found[0]))).where(keep)
        clause.set("this", rows.subquery(ident(found[1])))
    return restricted


# ---- entry points ---------------------------------------------------------------------------


def explain_many(
    project: Project, segment: str, person_ids: list[str], as_of: datetime
) -> dict[str, Explanation]:
    """Explain one segment for several persons at once (one restricted plan).

    Raises UsageError for an unknown segment and DataError naming the person ids that are not
    in the persons data.
    """
    from segctl.compiler.plan import PlanBuilder

    project.segment_names([segment])
    if not person_ids:
        return {}
    created = _persons(project, person_ids)
    plan = _Plan(
        project.definitions,
        segment,
        PlanBuilder(project.definitions, project._context([segment], as_of)),
    )
    sql = plan.query(sorted(set(person_ids))).sql(dialect="duckdb")
    with project.engine.driver.plan_errors():
        cursor = project.engine.driver.con.execute(sql)
        columns = [d[0] for d in cursor.description]
        rows = {r[0]: dict(zip(columns, r, strict=True)) for r in cursor.fetchall()}
    out: dict[str, Explanation] = {}
    for person_id in person_ids:
        row = rows.get(person_id)
        if row is None:
            when = created.get(person_id)
            note = (
                f"created at {iso(when)}, after as_of: not evaluated, so not a member"
                if when is not None
                else "not evaluated at this as_of, so not a member"
            )
            out[person_id] = Explanation(segment, person_id, as_of, None, (note,))
        else:
            out[person_id] = Explanation(segment, person_id, as_of, plan.explain(row))
    return out


def _persons(project: Project, person_ids: list[str]) -> dict[str, datetime | None]:
    """person_id -> created_at (None when unknown) for the persons found; raises DataError
    naming the others (with the closest known id)."""
    schema = project.schema["persons"]
    created = "created_at" if "created_at" in schema else "NULL"
    found = project.engine.driver.rows(
        f"SELECT person_id, {created} FROM persons "
        "WHERE person_id IN (SELECT unnest(?::VARCHAR[]))",
        [list(person_ids)],
    )
    known = {str(r[0]): r[1] if isinstance(r[1], datetime) else None for r in found}
    display = project.engine.driver.inputs["persons"][0].display
    if len(known) < len(found):
        twice = sorted(p for p, n in Counter(str(r[0]) for r in found).items() if n > 1)
        raise DataError(
            f"{display}: duplicate person_id values, e.g. '{twice[0]}'; person ids must be unique"
        )
    missing = [p for p in dict.fromkeys(person_ids) if p not in known]
    if missing:
        closest = project.engine.driver.rows(
            "SELECT person_id, levenshtein(person_id, ?) AS d FROM persons "
            "ORDER BY d, jaro_winkler_similarity(person_id, ?) DESC, person_id LIMIT 1",
            [missing[0], missing[0]],
        )
        hint = f" (did you mean '{closest[0][0]}'?)" if closest and closest[0][1] <= 2 else ""
        listed = ", ".join(f"'{p}'" for p in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DataError(
            f"person {listed}{more} not found in the persons data ({display}){hint}; "
            "person ids are matched exactly"
        )
    return known


def explain(
    project: Project,
    segment: str,
    person_id: str,
    as_of: str | datetime | None = None,
    *,
    wait: float = 10.0,
) -> Explanation:
    """Explain one person's membership of ``segment`` at ``as_of`` (default now), with their
    last transition when the project has a state folder.

    See :meth:`segctl.Project.explain`.
    """
    from segctl.state import StateStore

    moment = parse_as_of(as_of, project.config.tz)
    project.segment_names([segment])
    # As evaluate does, the persons data must be usable as a whole. The plan itself always
    # runs in the local DuckDB, even for a Spark project: it reads one person's rows.
    project.engine.driver.check_persons()
    explanation = explain_many(project, segment, [person_id], moment)[person_id]
    folder = project.config.state_dir
    if not StateStore.exists(folder):
        return explanation
    project.schema  # noqa: B018 - the input views must exist before the state is attached
    with StateStore.open(folder, con=project.engine.driver.con, wait=wait) as store:
        facts = _history(store, segment, person_id, moment)
    if facts is None:
        return explanation
    transition, since = facts
    return Explanation(
        explanation.name,
        person_id,
        moment,
        explanation.segment,
        explanation.notes,
        _transition(project, explanation, transition),
        _since(project, explanation, since),
    )


@dataclass(frozen=True)
class _Facts:
    """What the state records about a person and a segment at one committed run."""

    run_id: int
    as_of: datetime
    kind: str  # the transition at that run: enter / exit (or "" for none)
    hash: str  # the segment's definition hash at that run
    first_run: bool
    previous: tuple[int, datetime, str] | None = None  # the run before: id, as_of, hash
    member: bool = False


def _history(
    store: StateStore, segment: str, person_id: str, moment: datetime
) -> tuple[_Facts | None, _Facts] | None:
    """The person's last transition in this segment (None if they never entered) and the
    last committed run that evaluated the segment, both at or before ``moment``; None when no
    run evaluated it by then. (An explanation at a past as_of compares with the run of that
    time, never with a later one.)"""
    from segctl.state import S

    evaluated = store.rows(
        f"""SELECT s.run_id, r.as_of, s.definition_hash, s.first_run
            FROM {S}.run_segments s JOIN {S}.runs r USING (run_id)
            WHERE s.segment = ? AND r.as_of <= ? ORDER BY s.run_id""",
        [segment, moment],
    )
    if not evaluated:
        return None
    runs = {int(r[0]): (r[1], str(r[2]), bool(r[3])) for r in evaluated}
    ids = sorted(runs)
    last_transition = store.rows(
        f"""SELECT run_id, kind FROM {S}.transitions
            WHERE segment = ? AND person_id = ? AND run_id <= ?
            ORDER BY run_id DESC LIMIT 1""",
        [segment, person_id, ids[-1]],
    )

    def facts(run_id: int, kind: str, member: bool) -> _Facts:
        moment, digest, first = runs[run_id]
        earlier = [i for i in ids if i < run_id]
        previous = (earlier[-1], runs[earlier[-1]][0], runs[earlier[-1]][1]) if earlier else None
        return _Facts(run_id, moment, kind, digest, first, previous, member)

    member = bool(last_transition) and last_transition[0][1] == "enter"
    transition = None
    if last_transition and int(last_transition[0][0]) in runs:
        run_id, kind = int(last_transition[0][0]), str(last_transition[0][1])
        transition = facts(run_id, kind, kind == "enter")
    return transition, facts(ids[-1], "", member)


def _changes(before: SegmentExplanation | None, after: SegmentExplanation | None) -> list[Change]:
    """Leaf conditions whose verdict differs (both explanations come from one definition)."""
    if before is None or after is None:
        return []
    changes = []
    for (owner, old), (_, new) in zip(before.walk(), after.walk(), strict=True):
        if old.kind in BOOLEAN_KINDS or old.kind == "subscription" or old.verdict == new.verdict:
            continue
        changes.append(
            Change(
                owner,
                new.condition,
                new.location,
                new.needs,
                old.value,
                new.value,
                old.verdict,
                new.verdict,
            )
        )
    return changes


def _at(project: Project, explanation: Explanation, moment: datetime) -> Explanation:
    if moment == explanation.as_of:
        return explanation
    return explain_many(project, explanation.name, [explanation.person_id], moment)[
        explanation.person_id
    ]


def _transition(project: Project, now: Explanation, facts: _Facts | None) -> Since | None:
    if facts is None:
        return None
    kind = "entered" if facts.kind == "enter" else "exited"
    current = project.definitions.segments[now.name].source_hash
    notes = []
    if facts.first_run or facts.previous is None:
        notes.append(
            f"run {facts.run_id} was the segment's first run: everyone who matched entered"
        )
    elif facts.previous[2] != facts.hash:
        notes.append(f"the segment's definition changed in run {facts.run_id}")
    if current != facts.hash:
        notes.append(
            f"the definition has changed since run {facts.run_id}; its conditions are "
            "re-evaluated with the current one"
        )
    after = _at(project, now, facts.as_of)
    if after.member != (facts.kind == "enter"):
        notes.append(
            f"re-evaluated at run {facts.run_id}'s as_of with the data as it is now, the person "
            f"is {'' if after.member else 'not '}a member: the data or the definition has "
            "changed since"
        )
    if facts.previous is None or facts.first_run:
        return Since(kind, facts.run_id, facts.as_of, notes=tuple(notes))
    before = _at(project, now, facts.previous[1])
    return Since(
        kind,
        facts.run_id,
        facts.as_of,
        facts.previous[0],
        facts.previous[1],
        changes=tuple(_changes(before.segment, after.segment)),
        notes=tuple(notes),
    )


def _since(project: Project, now: Explanation, facts: _Facts) -> Since | None:
    if facts.as_of == now.as_of:
        return None
    then = _at(project, now, facts.as_of)
    return Since(
        "since",
        facts.run_id,
        facts.as_of,
        member_then=facts.member,
        member_now=now.member,
        changes=tuple(_changes(then.segment, now.segment)),
    )
