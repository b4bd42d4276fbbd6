"""Definitions -> sqlglot trees -> SQL per dialect.

The public API that the project, explain and ml build on:

- :class:`PlanContext`: what a plan depends on besides the definitions (schema, as_of,
  dialect...); ``Project.plan_context(names, as_of, dialect)`` builds one for its data;
- :class:`Plan`: the fused plan of segments or features (``segments_query``,
  ``members_query``, ``features_query``), and ``Plan.condition`` compiles one condition;
- :class:`Instrumented`: a segment's plan with a column per condition (``segctl explain``);
- :func:`current_subscription`: each person's current subscription row at as_of;
- :class:`ConditionVisitor` and :data:`KINDS`: the one dispatch over condition kinds;
- :func:`col`, :func:`ident`, :func:`literal`, :func:`time_bound`, :data:`DOUBLE`: the
  builders of sqlglot trees a caller needs to read a plan's columns.
"""

from segctl.compiler.comparators import literal
from segctl.compiler.context import PlanContext
from segctl.compiler.instrument import INPUTS, Instrumented
from segctl.compiler.kinds import KINDS, ConditionVisitor, kind_of
from segctl.compiler.plan import Plan
from segctl.compiler.sql import DOUBLE, col, ident, time_bound
from segctl.compiler.tables import current_subscription

__all__ = [
    "DOUBLE",
    "INPUTS",
    "KINDS",
    "ConditionVisitor",
    "Instrumented",
    "Plan",
    "PlanContext",
    "col",
    "current_subscription",
    "ident",
    "kind_of",
    "literal",
    "time_bound",
]
