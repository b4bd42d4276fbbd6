"""Each condition's value and verdict for some persons, from the plan ``evaluate`` runs.

Nothing is re-implemented here: a :class:`~segctl.compiler.Instrumented` plan projects one
verdict column per condition (and one value column per measured condition), reading only
the rows of the persons explained; :class:`_Shapes` remembers which column holds what, and
turns a row of the plan into a tree of :class:`~segctl.explain.result.Node`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlglot import exp

from segctl.compiler import ConditionVisitor, Instrumented, col, ident, literal
from segctl.compiler.calendar import resolve
from segctl.definitions.model import (
    All,
    AnyOf,
    AtLeast,
    Condition,
    EventCondition,
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
from segctl.errors import DataError
from segctl.explain.describe import describe, local, location
from segctl.explain.result import Explanation, Node, SegmentExplanation
from segctl.explain.text import needs
from segctl.timeutil import iso

if TYPE_CHECKING:
    from segctl.compiler import PlanContext
    from segctl.definitions.loader import Definitions
    from segctl.definitions.model import Schema
    from segctl.engine.base import Engine


class Subject(Protocol):
    """What explain reads of a project (a :class:`segctl.Project` is one)."""

    @property
    def definitions(self) -> Definitions: ...

    @property
    def engine(self) -> Engine: ...

    @property
    def schema(self) -> Schema: ...

    def segment_names(self, names: list[str] | None = None) -> list[str]: ...

    def plan_context(
        self,
        names: list[str],
        as_of: datetime,
        dialect: str = "duckdb",
        definitions: Definitions | None = None,
    ) -> PlanContext: ...


def explain_many(
    subject: Subject, segment: str, person_ids: list[str], as_of: datetime
) -> dict[str, Explanation]:
    """Explain one segment for several persons at once (one restricted plan).

    Raises UsageError for an unknown segment and DataError naming the person ids that are not
    in the persons data.
    """
    subject.segment_names([segment])
    if not person_ids:
        return {}
    with subject.engine.driver.plan_errors():  # a bad timestamp: a data error, traced
        created = _persons(subject, person_ids)
    plan = Instrumented(subject.definitions, subject.plan_context([segment], as_of), segment)
    shapes = _Shapes(subject.definitions, plan)
    root = shapes.segment(segment)
    sql = plan.query(sorted(set(person_ids))).sql(dialect="duckdb")
    driver = subject.engine.driver
    with driver.plan_errors():
        cursor = driver.con.execute(sql)
        columns = [d[0] for d in cursor.description]
        rows = {r[0]: dict(zip(columns, r, strict=True)) for r in cursor.fetchall()}
    out: dict[str, Explanation] = {}
    for person_id in person_ids:
        row = rows.get(person_id)
        if row is None:
            when = created.get(person_id)
            why = (
                f"created at {iso(when)}, after as_of"
                if when is not None and when > as_of.astimezone(UTC).replace(tzinfo=None)
                else "no persons row of theirs is in force at this as_of (latest_by reads only "
                "rows dated at or before it)"
            )
            note = f"{why}: not evaluated, so not a member"
            out[person_id] = Explanation(segment, person_id, as_of, None, (note,), unevaluated=why)
        else:
            out[person_id] = Explanation(segment, person_id, as_of, shapes.explain(root, row))
    return out


def _persons(subject: Subject, person_ids: list[str]) -> dict[str, datetime | None]:
    """person_id -> created_at (None when unknown) for the persons found; raises DataError
    naming the others (with the closest known id)."""
    driver = subject.engine.driver
    created = col("created_at") if "created_at" in subject.schema["persons"] else exp.Null()
    wanted = exp.In(
        this=col("person_id"), expressions=[literal(p) for p in dict.fromkeys(person_ids)]
    )
    found = driver.rows(
        exp.select(col("person_id"), created).from_(ident("persons")).where(wanted).sql("duckdb")
    )
    known = {str(r[0]): r[1] if isinstance(r[1], datetime) else None for r in found}
    display = driver.inputs["persons"][0].display
    if len(known) < len(found):
        twice = sorted(p for p, n in Counter(str(r[0]) for r in found).items() if n > 1)
        raise DataError(
            f"{display}: duplicate person_id values, e.g. '{twice[0]}'; person ids must be unique"
        )
    missing = [p for p in dict.fromkeys(person_ids) if p not in known]
    if missing:
        closest = driver.rows(_closest(missing[0]).sql("duckdb"))
        hint = f" (did you mean '{closest[0][0]}'?)" if closest and closest[0][1] <= 2 else ""
        listed = ", ".join(f"'{p}'" for p in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DataError(
            f"person {listed}{more} not found in the persons data ({display}){hint}; "
            "person ids are matched exactly"
        )
    return known


def _closest(person_id: str) -> exp.Select:
    """The known person id closest to ``person_id``, and its edit distance."""
    distance = exp.func("LEVENSHTEIN", col("person_id"), literal(person_id))
    similarity = exp.func("JARO_WINKLER_SIMILARITY", col("person_id"), literal(person_id))
    return (
        exp.select(col("person_id"), exp.alias_(distance, ident("d")))
        .from_(ident("persons"))
        .order_by(col("d"), exp.Ordered(this=similarity, desc=True), col("person_id"))
        .limit(1)
    )


# ---- which plan column holds what ------------------------------------------------------------


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


class _Shapes(ConditionVisitor[_Shape]):
    """The shapes of a segment and of the segments it references, one per condition."""

    def __init__(self, definitions: Definitions, plan: Instrumented) -> None:
        self.definitions = definitions
        self.plan = plan
        self.segments: dict[str, _SegmentShape] = {}

    def segment(self, name: str) -> _SegmentShape:
        if name not in self.segments:
            segment = self.definitions.segments[name]
            member = self.plan.member(name)
            rule = self.visit(segment.rule)
            exclude = [self.visit(c) for c in segment.exclude]
            self.segments[name] = _SegmentShape(name, segment.file, member, rule, exclude)
        return self.segments[name]

    def _shape(self, condition: Condition, wants: str | None = None) -> _Shape:
        """The condition's description, verdict and value (for the kinds with one)."""
        kind, text = describe(condition)
        verdict = self.plan.verdict(condition)
        value = self.plan.value(condition)
        return _Shape(kind, text, location(condition), verdict, value, wants)

    def visit_all(self, condition: All | AnyOf) -> _Shape:
        shape = self._shape(condition)
        shape.children = [self.visit(c) for c in condition.items]
        return shape

    visit_any = visit_all

    def visit_at_least(self, condition: AtLeast) -> _Shape:
        shape = self._shape(condition, f">= {condition.count}")
        shape.children = [self.visit(c) for c in condition.items]
        return shape

    def visit_not(self, condition: Not) -> _Shape:
        shape = self._shape(condition)
        shape.children = [self.visit(condition.item)]
        return shape

    def visit_property(self, condition: PropertyCondition) -> _Shape:
        return self._shape(condition, needs(condition.test.comparator))

    def visit_event(self, condition: EventCondition | FeatureCondition) -> _Shape:
        shape = self._shape(condition, needs(condition.comparator))
        shape.text += self._calendar_bounds(condition.measure.window)
        if condition.measure.measure.periods is not None:
            shape.children = self._periods(condition.measure, shape.location)
        return shape

    visit_feature = visit_event

    def visit_subscription(self, condition: SubscriptionCondition) -> _Shape:
        shape = self._shape(condition)
        fields = self.plan.fields(condition)
        shape.children = [
            _Shape(
                "field",
                f"subscription {test.column}",
                location(test.comparator),
                verdict,
                value,
                needs(test.comparator),
            )
            for test, (verdict, value) in zip(condition.tests, fields, strict=True)
        ]
        return shape

    def visit_segment(self, condition: SegmentCondition) -> _Shape:
        shape = self._shape(condition)
        self.segment(condition.segment)
        shape.segment = condition.segment
        return shape

    def visit_sequence(self, condition: SequenceCondition) -> _Shape:
        steps = len(condition.steps)  # its value: the steps reached, in order
        return self._shape(condition, f"{steps} of {steps} steps")

    def visit_list(self, condition: ListCondition) -> _Shape:
        return self._shape(condition)

    def _calendar_bounds(self, window: Window) -> str:
        """A calendar window's instants at this as_of, in the project timezone."""
        if not window.calendar or (window.within is None and window.between is None):
            return ""
        ctx = self.plan.plan.ctx
        bounds = resolve(window, ctx.as_of, ctx.timezone)
        assert bounds.start is not None
        end = "as_of" if bounds.end is None else f"before {local(bounds.end, ctx.timezone)}"
        return f" ({local(bounds.start, ctx.timezone)} to {end})"

    def _periods(self, measure: EventMeasure, where: str) -> list[_Shape]:
        """One child per period of ``active_periods``: its bounds and its count of events."""
        periods = measure.measure.periods
        assert periods is not None
        ctx = self.plan.plan.ctx
        shapes = []
        for i, (window, value, verdict) in enumerate(self.plan.periods(measure)):
            bounds = resolve(window, ctx.as_of, ctx.timezone)
            if bounds.start is not None:
                end = "as_of" if bounds.end is None else local(bounds.end, ctx.timezone)
                span = f"{local(bounds.start, ctx.timezone)} to {end}"
            else:
                far = window.lookback() or timedelta(0)
                near = window.between[1] if window.between is not None else timedelta(0)
                span = f"after {iso(ctx.as_of - far)} to {iso(ctx.as_of - near)}"
            text = f"period {i + 1} ({span}), events"
            shapes.append(_Shape("period", text, where, verdict, value, f">= {periods.min_count}"))
        return shapes

    # ---- a row of the plan -> nodes -----------------------------------------------------

    def explain(self, shape: _SegmentShape, row: dict[str, Any]) -> SegmentExplanation:
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
            segment=(self.explain(self.segments[shape.segment], row) if shape.segment else None),
        )
