"""Segments -> one SQL plan that scans the events once (SPEC 4 and 8).

A plan is a chain of CTEs, each a sqlglot tree, built in two explicit phases:

1. **conditions** (:mod:`segctl.compiler.conditions`): every segment's rule compiles to a
   boolean expression over ``base`` columns, and names what it reads (measures, sequences,
   person and subscription columns) in the plan's :class:`~segctl.compiler.needs.Needs`;
2. **tables** (:mod:`segctl.compiler.tables`): the CTEs up to ``base`` computing every one of
   them, then ``level_0..level_K``, the segment membership columns. A segment that references
   others lives one level above the deepest of them, so references are plain columns.

>>> plan = Plan(definitions, context)  # doctest: +SKIP
>>> print(plan.segments_query(["power_users"]).sql(dialect="duckdb"))  # doctest: +SKIP
"""

from __future__ import annotations

from sqlglot import exp

from segctl.compiler.conditions import ConditionCompiler
from segctl.compiler.context import PlanContext
from segctl.compiler.needs import Needs
from segctl.compiler.sql import col, ident
from segctl.compiler.tables import Tables
from segctl.definitions.loader import Definitions
from segctl.definitions.model import Condition, SegmentCondition, segment_conditions

#: The segments of one level: (name, membership expression).
Level = list[tuple[str, exp.Expr]]


class Plan:
    """The fused plan of a set of segments (or features) in one context."""

    def __init__(self, definitions: Definitions, ctx: PlanContext) -> None:
        self.definitions = definitions
        self.ctx = ctx
        #: What the compiled conditions read; the tables compute it (phase 2).
        self.needs = Needs(ctx)
        self.conditions = ConditionCompiler(ctx, self.needs)

    # ---- public ------------------------------------------------------------------------

    def condition(self, condition: Condition) -> exp.Expr:
        """Phase 1 for one condition: its boolean expression over the plan's ``base`` (and
        level) columns; the plan's tables will compute what it reads."""
        return self.conditions.visit(condition)

    def segments_query(self, names: list[str]) -> exp.Select:
        """``person_id`` plus one boolean column per segment (dependencies included)."""
        levels = self._levels(self._with_dependencies(names))
        query = self.with_tables(levels)
        projections = [col("person_id")] + [
            exp.alias_(col(f"seg__{n}"), ident(n), copy=False) for n in names
        ]
        # copy=False here and below: the trees are fresh, and copying a plan of a thousand
        # segments at every builder call made building it quadratic.
        return query.select(*projections, copy=False).from_(
            ident(f"level_{len(levels) - 1}"), copy=False
        )

    def members_query(self, name: str) -> exp.Select:
        """The sorted person_ids of one segment."""
        wide = self.segments_query([name])
        return (
            exp.select(col("person_id"))
            .from_(wide.subquery("members"))
            .where(col(name))
            .order_by(col("person_id"))
        )

    def features_query(self, names: list[str]) -> exp.Select:
        """``person_id`` plus one column per named feature."""
        features = self.definitions.features
        columns = {n: self.needs.measure(features[n].measure) for n in names}
        query = self.with_tables([])
        projections = [col("person_id")] + [
            exp.alias_(col(c), ident(n)) for n, c in columns.items()
        ]
        return (
            query.select(*projections, copy=False)
            .from_(ident("base"), copy=False)
            .order_by(col("person_id"), copy=False)
        )

    def with_tables(self, levels: list[Level]) -> exp.Select:
        """Phase 2: an empty SELECT carrying every CTE (the tables computing what the
        compiled conditions read, then the levels); the caller adds projections and FROM."""
        ctes = Tables(self.ctx, self.needs).ctes()
        previous = "base"
        for i, level in enumerate(levels):
            columns = [exp.Star()] + [
                exp.alias_(expression, ident(f"seg__{name}"), copy=False)
                for name, expression in level
            ]
            level_query = exp.select(*columns, copy=False).from_(ident(previous), copy=False)
            ctes.append((f"level_{i}", level_query))
            previous = f"level_{i}"
        query = exp.select()
        for name, cte in ctes:
            query = query.with_(ident(name), as_=cte, copy=False)
        return query

    # ---- segment levels (phase 1) ---------------------------------------------------------

    def _with_dependencies(self, names: list[str]) -> list[str]:
        order: dict[str, None] = {}
        for name in names:
            for dep in self.definitions.dependencies(name):
                order.setdefault(dep, None)
        return list(order)

    def _levels(self, order: list[str]) -> list[Level]:
        depth: dict[str, int] = {}
        levels: list[Level] = []
        for name in order:  # dependencies come first
            segment = self.definitions.segments[name]
            refs = [
                c.segment for c in segment_conditions(segment) if isinstance(c, SegmentCondition)
            ]
            depth[name] = 1 + max((depth[r] for r in refs), default=-1)
            member = self.condition(segment.rule)
            if segment.exclude:
                excluded = exp.or_(*(self.condition(c) for c in segment.exclude))
                member = exp.and_(member, exp.not_(exp.paren(excluded)))
            while len(levels) <= depth[name]:
                levels.append([])
            levels[depth[name]].append((name, member))
        return levels
