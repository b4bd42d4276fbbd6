"""A segment's plan with one column per condition, for the persons asked about.

:class:`Instrumented` is the plan ``evaluate`` runs, with extra columns projected from its
last level: a condition's verdict (the very expression the segment combines), the value it
compares (a measure, a person or subscription column, an ``at_least``'s count of conditions
holding), or a period count of ``active_periods``. :meth:`Instrumented.query` reads each
input table through a filter on the persons asked about: every CTE of a plan partitions by
person, so they get exactly the values of a full run. ``segctl explain`` is built on it.

>>> plan = Instrumented(definitions, context, "power_users")  # doctest: +SKIP
>>> rule = plan.verdict(definitions.segments["power_users"].rule)  # doctest: +SKIP
>>> plan.query(["u00042"])  # doctest: +SKIP
"""

from __future__ import annotations

import functools

from sqlglot import exp

from segctl.compiler.calendar import period_windows
from segctl.compiler.comparators import literal
from segctl.compiler.context import PlanContext
from segctl.compiler.kinds import ConditionVisitor
from segctl.compiler.plan import Plan
from segctl.compiler.sql import col, ident
from segctl.definitions.loader import Definitions
from segctl.definitions.model import (
    AtLeast,
    Condition,
    EventCondition,
    EventMeasure,
    FeatureCondition,
    Measure,
    PropertyCondition,
    SegmentCondition,
    SequenceCondition,
    SubscriptionCondition,
    Window,
)

#: The input tables of a plan; each is read through a filter on the persons asked about.
INPUTS = ("events", "persons", "subscriptions")


class Instrumented:
    """The plan of ``segment`` (and the segments it references), projecting a column per
    probe; each probe method returns the column's name in the query's rows."""

    def __init__(self, definitions: Definitions, ctx: PlanContext, segment: str) -> None:
        self.segment = segment
        self.plan = Plan(definitions, ctx)
        self.columns: dict[str, exp.Expr] = {}
        self._values = _Values(self.plan)

    def _column(self, expression: exp.Expr) -> str:
        alias = f"x__{len(self.columns)}"
        self.columns[alias] = expression
        return alias

    def member(self, segment: str) -> str:
        """Whether the person is a member of ``segment`` (what evaluate computes)."""
        return self.verdict(SegmentCondition(segment))

    def verdict(self, condition: Condition) -> str:
        """The condition's verdict."""
        return self._column(self.plan.condition(condition))

    def value(self, condition: Condition) -> str | None:
        """The value the condition compares, for the kinds that have one (property, event,
        feature, at_least; a sequence's steps reached); None for the others."""
        value = self._values.visit(condition)
        return None if value is None else self._column(value)

    def fields(self, condition: SubscriptionCondition) -> list[tuple[str, str]]:
        """(verdict, value) of each test of a subscription condition."""
        out = []
        for test in condition.tests:
            single = SubscriptionCondition((test,), condition.pos)
            verdict = self.verdict(single)
            out.append((verdict, self._column(col(self.plan.needs.subscription(test.column)))))
        return out

    def periods(self, measure: EventMeasure) -> list[tuple[Window, str, str]]:
        """(window, event count, verdict) of each period of an ``active_periods`` measure,
        period 0 first; each count is a count measure of the same fused aggregate."""
        periods = measure.measure.periods
        assert periods is not None
        out = []
        for window in period_windows(measure):
            count = col(
                self.plan.needs.measure(EventMeasure(measure.match, window, Measure("count")))
            )
            active = exp.GTE(this=count.copy(), expression=literal(periods.min_count))
            out.append((window, self._column(count), self._column(active)))
        return out

    def query(self, person_ids: list[str]) -> exp.Select:
        """The plan with the probe columns, reading only these persons' rows."""
        wide = self.plan.segments_query([self.segment])
        last = wide.args["from_"].this.name

        def outer(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Column) and node.table == OUTER:
                return col(node.name, last)
            return node

        projections = [col("person_id")] + [
            exp.alias_(expression.transform(outer), ident(alias))
            for alias, expression in self.columns.items()
        ]
        return restrict(wide.select(*projections, append=False), person_ids)


class _Values(ConditionVisitor[exp.Expr | None]):
    """The value a condition compares, as a column of the plan's base."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def visit_property(self, cond: PropertyCondition) -> exp.Expr:
        return col(f"p__{self.plan.needs.person_column(cond.test)}")

    def visit_event(self, cond: EventCondition | FeatureCondition) -> exp.Expr:
        return col(self.plan.needs.measure(cond.measure))

    visit_feature = visit_event

    def visit_at_least(self, cond: AtLeast) -> exp.Expr:
        return self.plan.conditions.held(cond)

    def visit_sequence(self, cond: SequenceCondition) -> exp.Expr:
        """The steps the person reached: a step's table holds those with a valid chain to
        it, so the steps reached are those whose table holds the person."""
        name = self.plan.needs.sequence(cond)
        reached: list[exp.Expr] = [
            exp.If(
                this=exp.Exists(
                    this=exp.select(exp.Literal.number(1))
                    .from_(exp.alias_(ident(f"{name}_step{k}"), "s"))
                    .where(exp.EQ(this=col("person_id", "s"), expression=col("person_id", OUTER)))
                ),
                true=exp.Literal.number(1),
                false=exp.Literal.number(0),
            )
            for k in range(len(cond.steps))
        ]
        return functools.reduce(lambda a, b: exp.Add(this=a, expression=b), reached)

    def visit_none(self, cond: Condition) -> None:
        return None

    visit_all = visit_any = visit_not = visit_subscription = visit_none
    visit_segment = visit_list = visit_none


#: Stands for the query's last level in a probe that reads a person's row of another table
#: (a sequence's steps), named in :meth:`Instrumented.query`.
OUTER = "segctl_outer"


def restrict(query: exp.Select, person_ids: list[str]) -> exp.Select:
    """Read each input table through ``WHERE person_id IN (...)``: every CTE of a plan
    partitions by person, so the persons asked about get exactly the values of a full run."""

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
