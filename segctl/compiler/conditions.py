"""Conditions -> boolean sqlglot expressions over the plan's ``base`` columns (phase 1).

Each condition compiles to an expression over the columns its kind reads: ``p__<column>``
for a person property, a measure's ``m__N``, ``sub__<column>``, ``seg__<name>`` for a
referenced segment, a sequence's ``q__N``. Compiling names those columns in the plan's
:class:`~segctl.compiler.needs.Needs`, which the tables then compute (phase 2).
"""

from __future__ import annotations

from sqlglot import exp

from segctl.compiler.comparators import compile_comparator, literal
from segctl.compiler.context import PlanContext
from segctl.compiler.kinds import ConditionVisitor
from segctl.compiler.needs import Needs
from segctl.compiler.sql import col, ident
from segctl.definitions.model import (
    All,
    AnyOf,
    AtLeast,
    EventCondition,
    FeatureCondition,
    ListCondition,
    Not,
    PropertyCondition,
    SegmentCondition,
    SequenceCondition,
    SubscriptionCondition,
)

#: Measures that are never NULL once persons without events get their zero.
ZERO_WHEN_NONE = {"count", "distinct_days", "sum", "streak", "active_periods"}


class ConditionCompiler(ConditionVisitor[exp.Expr]):
    """Compiles conditions, naming what they read in ``needs``."""

    def __init__(self, ctx: PlanContext, needs: Needs) -> None:
        self.ctx = ctx
        self.needs = needs

    def visit_all(self, cond: All) -> exp.Expr:
        return exp.paren(exp.and_(*(self.visit(c) for c in cond.items), copy=False), False)

    def visit_any(self, cond: AnyOf) -> exp.Expr:
        return exp.paren(exp.or_(*(self.visit(c) for c in cond.items), copy=False), False)

    def visit_not(self, cond: Not) -> exp.Expr:
        return exp.not_(exp.paren(self.visit(cond.item)))

    def visit_property(self, cond: PropertyCondition) -> exp.Expr:
        column = col(f"p__{self.needs.person_column(cond.test)}")
        return compile_comparator(column, cond.test.comparator, self.ctx.as_of)

    def visit_event(self, cond: EventCondition | FeatureCondition) -> exp.Expr:
        column = self.needs.measure(cond.measure)
        nullable = cond.measure.measure.kind not in ZERO_WHEN_NONE
        return compile_comparator(col(column), cond.comparator, self.ctx.as_of, nullable=nullable)

    visit_feature = visit_event

    def visit_subscription(self, cond: SubscriptionCondition) -> exp.Expr:
        parts = [
            compile_comparator(
                col(self.needs.subscription(test.column)), test.comparator, self.ctx.as_of
            )
            for test in cond.tests
        ]
        return exp.paren(exp.and_(*parts)) if len(parts) > 1 else parts[0]

    def visit_segment(self, cond: SegmentCondition) -> exp.Expr:
        return col(f"seg__{cond.segment}")

    def visit_sequence(self, cond: SequenceCondition) -> exp.Expr:
        return col(self.needs.sequence(cond))

    def visit_list(self, cond: ListCondition) -> exp.Expr:
        table = self.ctx.list_tables.get(cond.path, "segctl_list")
        keys = exp.select(col("key")).from_(ident(table))
        if cond.key == "email":
            value: exp.Expr = exp.Lower(this=exp.Trim(this=col(self.needs.person("email"))))
        else:
            value = col("person_id")
        found = exp.In(this=value, query=keys.subquery())
        return exp.func("COALESCE", found, exp.false())

    def visit_at_least(self, cond: AtLeast) -> exp.Expr:
        """How many of the conditions hold, compared with K."""
        return exp.paren(exp.GTE(this=self.held(cond), expression=literal(cond.count)))

    def held(self, cond: AtLeast) -> exp.Expr:
        """How many of an ``at_least``'s conditions hold (a condition is never NULL, but a
        CASE keeps the count right even if one were); ``explain`` shows it."""
        ones = [
            exp.Case(ifs=[exp.If(this=self.visit(c), true=literal(1))], default=literal(0))
            for c in cond.items
        ]
        total: exp.Expr = ones[0]
        for one in ones[1:]:
            total = exp.Add(this=total, expression=one)
        return exp.paren(total, False)
