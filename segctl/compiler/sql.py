"""Small sqlglot builders every part of the compiler shares: quoted names, types, FILTER.

Callers outside the compiler (explain, ml) build their few queries from these too, so an
identifier is quoted the same way wherever a plan's columns are read.
"""

from __future__ import annotations

from datetime import datetime

from sqlglot import exp

from segctl.compiler.comparators import literal

DATE = exp.DataType.build("DATE")
DOUBLE = exp.DataType.build("DOUBLE")
HUGEINT = exp.DataType.build("HUGEINT")
BIGINT = exp.DataType.build("BIGINT")


def ident(name: str) -> exp.Identifier:
    """A quoted identifier: ``"name"``."""
    return exp.to_identifier(name, quoted=True)


def col(name: str, table: str | None = None) -> exp.Column:
    """A quoted column, optionally qualified: ``"table"."name"``."""
    # copy=False: the identifiers are fresh (a 1,000-segment plan makes some 3,000 columns).
    return exp.column(ident(name), table=ident(table) if table else None, copy=False)


def filtered(aggregate: exp.Expr, condition: exp.Expr | None) -> exp.Expr:
    """``aggregate FILTER (WHERE condition)``, or the aggregate alone without a condition."""
    if condition is None:
        return aggregate
    return exp.Filter(this=aggregate, expression=exp.Where(this=condition))


def time_bound(moment: datetime, raw: str | None) -> exp.Expr:
    """A naive-UTC ``moment`` as a literal to compare with the events' ``timestamp``, or with
    the source's TIMESTAMPTZ column ``raw`` (which the Parquet scan can push down)."""
    if raw is None:
        return literal(moment)
    text = exp.Literal.string(f"{moment.isoformat(sep=' ')}+00")
    return exp.cast(text, exp.DataType.build("TIMESTAMPTZ"))
