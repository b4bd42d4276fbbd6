"""Comparators -> sqlglot boolean expressions with segctl's two-valued NULL semantics.

SPEC 2.2: a condition is never unknown. A NULL value makes every comparator FALSE except
``ne``, ``not_in`` and ``is_set: false``, which are TRUE; so ``not`` flips exactly. SQL's
three-valued logic is folded here, once, with COALESCE to the value a NULL must give.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlglot import exp

from segctl.definitions.model import ColumnType, Comparator, Test

TIMESTAMP = exp.DataType.build("TIMESTAMP")

# Ordering and equality operators map one-to-one onto sqlglot nodes (ibis' BINARY_INFIX_OPS).
BINARY: dict[str, type[exp.Binary]] = {
    "eq": exp.EQ,
    "ne": exp.NEQ,
    "gt": exp.GT,
    "gte": exp.GTE,
    "lt": exp.LT,
    "lte": exp.LTE,
    "before": exp.LT,
    "after": exp.GTE,
}
#: Comparators that are TRUE for a NULL value.
TRUE_ON_NULL = {"ne", "not_in"}


def literal(value: Any) -> exp.Expr:
    """A typed SQL literal; strings are quoted by sqlglot for the target dialect."""
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.Literal.number(repr(value) if isinstance(value, float) else value)
    if isinstance(value, datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), TIMESTAMP)
    return exp.Literal.string(str(value))


def compile_comparator(
    value: exp.Expr, comparator: Comparator, as_of: datetime, *, nullable: bool = True
) -> exp.Expr:
    """All tests of a comparator on ``value``, ANDed; never NULL when ``nullable`` is False
    or thanks to COALESCE otherwise."""
    parts = [
        compile_test(value, test, comparator.value_type, as_of, nullable=nullable)
        for test in comparator.tests
    ]
    return exp.and_(*parts) if len(parts) > 1 else parts[0]


def compile_test(
    value: exp.Expr,
    test: Test,
    value_type: ColumnType,
    as_of: datetime,
    *,
    nullable: bool = True,
) -> exp.Expr:
    """One comparator key as a two-valued boolean expression."""
    if test.op == "is_set":
        present: exp.Expr = exp.not_(exp.Is(this=value.copy(), expression=exp.Null()))
        if value_type is ColumnType.STRING:
            present = exp.and_(present, exp.NEQ(this=value.copy(), expression=literal("")))
        return present if test.value else exp.not_(exp.paren(present))
    condition = _BUILDERS[test.op](value.copy(), test.value, as_of)
    if not nullable:
        return condition
    fallback = exp.true() if test.op in TRUE_ON_NULL else exp.false()
    return exp.func("COALESCE", exp.paren(condition), fallback)


def _binary(op: str) -> Callable[[exp.Expr, Any, datetime], exp.Expr]:
    def build(value: exp.Expr, literal_value: Any, _: datetime) -> exp.Expr:
        return BINARY[op](this=value, expression=literal(literal_value))

    return build


def _between(value: exp.Expr, bounds: tuple[Any, Any], _: datetime) -> exp.Expr:
    return exp.Between(this=value, low=literal(bounds[0]), high=literal(bounds[1]))


def _in(value: exp.Expr, values: tuple[Any, ...], _: datetime) -> exp.Expr:
    return exp.In(this=value, expressions=[literal(v) for v in values])


def _not_in(value: exp.Expr, values: tuple[Any, ...], as_of: datetime) -> exp.Expr:
    return exp.not_(_in(value, values, as_of))


def _lower(value: exp.Expr) -> exp.Expr:
    return exp.Lower(this=value)


# The engine lowers both sides: lower case is not the same everywhere (Python lowers 'İ' to
# two characters, DuckDB to one), and a value must always match itself.


def _contains(value: exp.Expr, needle: str, _: datetime) -> exp.Expr:
    position = exp.StrPosition(this=_lower(value), substr=_lower(literal(needle)))
    return exp.GT(this=position, expression=literal(0))


def _starts_with(value: exp.Expr, prefix: str, _: datetime) -> exp.Expr:
    lowered = _lower(literal(prefix))
    head = exp.Left(this=_lower(value), expression=exp.Length(this=lowered.copy()))
    return exp.EQ(this=head, expression=lowered)


def _ends_with(value: exp.Expr, suffix: str, _: datetime) -> exp.Expr:
    if not suffix:
        return exp.true()
    lowered = _lower(literal(suffix))
    tail = exp.Right(this=_lower(value), expression=exp.Length(this=lowered.copy()))
    return exp.EQ(this=tail, expression=lowered)


def _regex(value: exp.Expr, pattern: str, _: datetime) -> exp.Expr:
    return exp.RegexpLike(this=value, expression=literal(pattern))


def _within(value: exp.Expr, duration: timedelta, as_of: datetime) -> exp.Expr:
    return exp.and_(
        exp.GT(this=value, expression=literal(as_of - duration)),
        exp.LTE(this=value.copy(), expression=literal(as_of)),
    )


def _older_than(value: exp.Expr, duration: timedelta, as_of: datetime) -> exp.Expr:
    return exp.LTE(this=value, expression=literal(as_of - duration))


_BUILDERS: dict[str, Callable[[exp.Expr, Any, datetime], exp.Expr]] = {
    **{op: _binary(op) for op in BINARY},
    "between": _between,
    "in": _in,
    "not_in": _not_in,
    "contains": _contains,
    "starts_with": _starts_with,
    "ends_with": _ends_with,
    "regex": _regex,
    "within": _within,
    "older_than": _older_than,
}
