"""The measures that need more than one pass over the events: streaks and sequences.

``streak_N`` is a person's run of consecutive local days with an event (in DuckDB a day
bitmask of event_measures answers it, and ``streak_N`` only recomputes the rare streaks
longer than its horizon); ``q__N`` (with its ``q__N_stepK`` CTEs) the persons who did a
sequence's steps in order.
"""

from __future__ import annotations

from datetime import timedelta

from sqlglot import exp

from segctl.compiler.comparators import literal
from segctl.compiler.context import PlanContext
from segctl.compiler.measures import STREAK_HORIZON, Measures
from segctl.compiler.sql import DATE, col, ident
from segctl.definitions.model import EventMeasure, SequenceCondition


def streak(
    ctx: PlanContext, condition: exp.Expr | None, source: exp.Expr | None = None
) -> exp.Select:
    """Consecutive local days with an event, ending on as_of's day or the day before."""
    days = (
        exp.select(col("person_id"), col("day"))
        .distinct()
        .from_(source if source is not None else ident("scoped_events"))
    )
    if condition is not None:
        days = days.where(condition)
    by_person = [col("person_id")]
    ranked = exp.select(
        col("person_id"),
        col("day"),
        exp.alias_(
            exp.Window(
                this=exp.RowNumber(),
                partition_by=by_person,
                order=exp.Order(expressions=[exp.Ordered(this=col("day"), desc=True)]),
            ),
            ident("rn"),
        ),
        exp.alias_(
            exp.Window(this=exp.Max(this=col("day")), partition_by=[c.copy() for c in by_person]),
            ident("top"),
        ),
    ).from_(days.subquery("d"))
    today = ctx.as_of_day()
    yesterday = today - timedelta(days=1)
    gap = exp.DateDiff(this=col("top"), expression=col("day"), unit=exp.var("DAY"))
    return (
        exp.select(col("person_id"), exp.alias_(exp.Count(this=exp.Star()), ident("value")))
        .from_(ranked.subquery("r"))
        .where(
            exp.and_(
                exp.GTE(
                    this=col("top"),
                    expression=exp.cast(literal(yesterday.date().isoformat()), DATE),
                ),
                exp.EQ(this=gap, expression=exp.Sub(this=col("rn"), expression=literal(1))),
            )
        )
        .group_by(col("person_id"))
    )


def long_streak(measures: Measures, measure: EventMeasure, table: str) -> exp.Select:
    """The exact streak of the persons whose bitmask streak (in ``table``) reached the
    horizon, from their whole history (an empty join when nobody did, the usual case)."""
    ctx = measures.ctx
    name = measures.needs.measures[measure]
    reached = measures.streak_of_bits(col(name))
    long = exp.GTE(this=reached, expression=literal(STREAK_HORIZON - 1))
    persons = exp.select(col("person_id")).from_(ident(table)).where(long)
    events = (
        exp.select(exp.Star(), exp.alias_(ctx.local_day(col("timestamp")), ident("day")))
        .from_(measures.needs.events_source())
        .where(
            exp.and_(
                exp.LTE(this=col("timestamp"), expression=literal(ctx.as_of)),
                exp.In(this=col("person_id"), query=persons.subquery()),
            )
        )
    )
    return streak(ctx, measures.filter(measure), events.subquery("e"))


def _seconds(delta: timedelta) -> exp.Expr:
    return exp.Interval(this=literal(str(int(delta.total_seconds()))), unit=exp.var("SECOND"))


def sequence(
    name: str, seq: SequenceCondition, steps: list[exp.Expr]
) -> list[tuple[str, exp.Expr]]:
    """Step k's valid times: events of step k strictly after a valid time of step k-1
    (and at most max_gap after it). Without max_gap the earliest valid time suffices."""
    if seq.max_span is not None:
        return _spanned_sequence(name, seq, steps)
    ctes: list[tuple[str, exp.Expr]] = []
    for k, step in enumerate(steps):
        cte = f"{name}_step{k}"
        ts = col("timestamp", "e")
        query = exp.select(col("person_id", "e"))
        if seq.max_gap is None:
            query = query.select(exp.alias_(exp.Min(this=ts), ident("t")))
        else:
            query = query.select(exp.alias_(ts, ident("t"))).distinct()
        query = query.from_(exp.alias_(ident("scoped_events"), "e"))
        if k > 0:
            previous = f"{name}_step{k - 1}"
            on = [
                exp.EQ(this=col("person_id", "p"), expression=col("person_id", "e")),
                exp.GT(this=ts.copy(), expression=col("t", "p")),
            ]
            if seq.max_gap is not None:
                gap = _seconds(seq.max_gap)
                on.append(
                    exp.LTE(this=ts.copy(), expression=exp.Add(this=col("t", "p"), expression=gap))
                )
            query = query.join(exp.alias_(ident(previous), "p"), on=exp.and_(*on))
        query = query.where(step)
        if seq.max_gap is None:
            query = query.group_by(col("person_id", "e"))
        ctes.append((cte, query))
    last = f"{name}_step{len(steps) - 1}"
    ctes.append((name, exp.select(col("person_id")).distinct().from_(ident(last))))
    return ctes


def _spanned_sequence(
    name: str, seq: SequenceCondition, steps: list[exp.Expr]
) -> list[tuple[str, exp.Expr]]:
    """A sequence with ``max_span``: each valid time of step k carries the latest start
    (step 0's time) of the chains that reach it, since a later start leaves more room for
    the steps after; a step is valid while it is at most max_span after that start."""
    assert seq.max_span is not None
    ctes: list[tuple[str, exp.Expr]] = []
    ts = col("timestamp", "e")
    for k, step in enumerate(steps):
        cte = f"{name}_step{k}"
        events = exp.alias_(ident("scoped_events"), "e")
        if k == 0:
            query = (
                exp.select(
                    col("person_id", "e"),
                    exp.alias_(ts.copy(), ident("t")),
                    exp.alias_(ts.copy(), ident("s")),
                )
                .distinct()
                .from_(events)
                .where(step)
            )
            ctes.append((cte, query))
            continue
        on = [
            exp.EQ(this=col("person_id", "p"), expression=col("person_id", "e")),
            exp.GT(this=ts.copy(), expression=col("t", "p")),
            exp.LTE(
                this=ts.copy(),
                expression=exp.Add(this=col("s", "p"), expression=_seconds(seq.max_span)),
            ),
        ]
        if seq.max_gap is not None:
            on.append(
                exp.LTE(
                    this=ts.copy(),
                    expression=exp.Add(this=col("t", "p"), expression=_seconds(seq.max_gap)),
                )
            )
        query = (
            exp.select(
                col("person_id", "e"),
                exp.alias_(ts.copy(), ident("t")),
                exp.alias_(exp.Max(this=col("s", "p")), ident("s")),
            )
            .from_(events)
            .join(exp.alias_(ident(f"{name}_step{k - 1}"), "p"), on=exp.and_(*on))
            .where(step)
            .group_by(col("person_id", "e"), ts.copy())
        )
        ctes.append((cte, query))
    last = f"{name}_step{len(steps) - 1}"
    ctes.append((name, exp.select(col("person_id")).distinct().from_(ident(last))))
    return ctes
