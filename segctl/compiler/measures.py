"""Per-person event measures -> aggregate expressions over ``scoped_events``.

Each :class:`~segctl.definitions.model.EventMeasure` becomes one aggregate of the person's
GROUP BY, restricted (FILTER, or a CASE on DuckDB) to its own events and window. For DuckDB
(``PlanContext.dialect``) some measures take a faster form that other dialects lack:
``distinct_days`` and ``streak`` as 128-bit day masks, ``last: N`` as ``MAX_BY(value, key,
N)``. Building an aggregate names the event columns and ranks it reads in the plan's
:class:`~segctl.compiler.needs.Needs`, for the scan to project.
"""

from __future__ import annotations

from datetime import timedelta

from sqlglot import exp

from segctl.compiler.calendar import period_windows, resolve
from segctl.compiler.comparators import compile_comparator, literal
from segctl.compiler.context import PlanContext
from segctl.compiler.needs import Needs, want
from segctl.compiler.sql import BIGINT, DATE, DOUBLE, HUGEINT, col, filtered, ident
from segctl.definitions.model import ColumnTest, EventMatch, EventMeasure, Window

# Day bitmasks are HUGEINTs: bits 0..126 keep clear of the sign bit, with a day to spare for
# windows that straddle a daylight-saving change in the project timezone.
MAX_BITMASK_LOOKBACK = timedelta(days=125)
# A streak is read from a bitmask of this many days; persons whose streak may be longer (all
# bits set) get the exact value from the full-history streak query, run for them alone.
STREAK_HORIZON = 120
AGGREGATES = {"sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max}


class Measures:
    """The aggregates of a plan's measures, and the event predicates they filter on."""

    def __init__(self, ctx: PlanContext, needs: Needs) -> None:
        self.ctx = ctx
        self.needs = needs

    # ---- selecting events ----------------------------------------------------------------

    def match(self, match: EventMatch, window: Window, alias: str | None = None) -> list[exp.Expr]:
        """Predicates selecting the events of a match within a window (as_of is implied)."""
        ts = col("timestamp", alias)
        parts: list[exp.Expr] = []
        if match.names is not None:
            event = col("event", alias)
            if len(match.names) == 1:
                parts.append(exp.EQ(this=event, expression=literal(match.names[0])))
            else:
                parts.append(exp.In(this=event, expressions=[literal(n) for n in match.names]))
        for test in match.where:
            parts.append(self.event_test(test, alias))
        parts.extend(self._window(window, ts))
        return parts

    def event_test(self, test: ColumnTest, alias: str | None = None) -> exp.Expr:
        value = self.needs.event_value(test.column, want(test.comparator.value_type), alias)
        return compile_comparator(value, test.comparator, self.ctx.as_of)

    def _window(self, window: Window, ts: exp.Expr) -> list[exp.Expr]:
        as_of = self.ctx.as_of
        window = resolve(window, as_of, self.ctx.timezone)  # calendar days -> instants
        parts: list[exp.Expr] = []
        if window.within is not None:
            parts.append(exp.GT(this=ts.copy(), expression=literal(as_of - window.within)))
        if window.between is not None:
            far, near = window.between
            parts.append(exp.GT(this=ts.copy(), expression=literal(as_of - far)))
            parts.append(exp.LTE(this=ts.copy(), expression=literal(as_of - near)))
        if window.start is not None:
            parts.append(exp.GTE(this=ts.copy(), expression=literal(window.start)))
        if window.end is not None:
            parts.append(exp.LT(this=ts.copy(), expression=literal(window.end)))
        return parts

    def filter(self, measure: EventMeasure) -> exp.Expr | None:
        """The events a measure aggregates (its match, window and ``last: N`` rank)."""
        parts = self.match(measure.match, measure.window)
        if measure.last is not None and not self.top_n(measure):
            tie = self._last_value(measure)
            key = (measure.match, measure.window, "" if tie is None else tie.sql())
            rank = self.needs.rank(key, tie)
            parts.append(exp.LTE(this=col(rank), expression=literal(measure.last)))
        return exp.and_(*parts) if parts else None

    def _last_value(self, measure: EventMeasure) -> exp.Expr | None:
        """The value a ``last: N`` measure keeps of each event, which also orders its events
        of the same instant and name (largest first), so that both forms take the same N.
        None where events of one instant give the same value (its day, its time) or none."""
        kind, of = measure.measure.kind, measure.measure.of
        if kind == "share":
            hit = exp.and_(*(self.event_test(t) for t in measure.measure.share_where))
            if self.ctx.dialect not in ("duckdb", "spark"):
                # Postgres and BigQuery cast a boolean to an integer only, not to DOUBLE.
                hit = exp.cast(hit, exp.DataType.build("INT"))
            return exp.cast(hit, DOUBLE)
        if kind in AGGREGATES:
            assert of is not None
            return self.needs.of_value(of)
        return None

    # ---- DuckDB-only fast forms; other dialects get the portable ones ---------------------

    def top_n(self, measure: EventMeasure) -> bool:
        """``last: N`` as one ``MAX_BY(value, key, N)`` in the person's GROUP BY instead of a
        ``ROW_NUMBER()`` over every scoped event (a sort of all rows). Not under a memory
        limit: DuckDB cannot spill MAX_BY's lists, while the sort spills (the 27-segment
        benchmark ran out of memory at 1 GB with them, and passed in 24 s without)."""
        return (
            self.ctx.dialect == "duckdb"
            and not self.ctx.spillable
            and measure.last is not None
            and measure.measure.kind != "streak"
        )

    def _day_bits(self, measure: EventMeasure) -> bool:
        """``distinct_days`` as the popcount of a 128-bit mask of days back from as_of's day:
        one bitwise OR in the GROUP BY instead of a separate (person, day) hash aggregate."""
        lookback = measure.window.lookback()
        return (
            self.ctx.dialect == "duckdb"
            and measure.last is None
            and lookback is not None
            and lookback <= MAX_BITMASK_LOOKBACK
        )

    def streak_bits(self, measure: EventMeasure) -> bool:
        """``streak`` from a bitmask of the last STREAK_HORIZON days in the person's GROUP BY,
        instead of a (person, day) DISTINCT and a window over the whole history."""
        return (
            self.ctx.dialect == "duckdb"
            and measure.measure.kind == "streak"
            and measure.last is None
        )

    def _day_bit(self) -> exp.Expr:
        # DuckDB computes the argument before the FILTER drops older events: clamp it.
        shift = exp.func("LEAST", self._days_back(), literal(126))
        return exp.BitwiseLeftShift(this=exp.cast(literal(1), HUGEINT), expression=shift)

    @staticmethod
    def streak_of_bits(bits: exp.Expr) -> exp.Expr:
        """Consecutive set bits from bit 0 (as_of's day), or from bit 1 when as_of's day has no
        event: ``popcount(x ^ (x + 1)) - 1`` counts a mask's trailing ones."""

        def trailing_ones(x: exp.Expr) -> exp.Expr:
            plus_one = exp.Add(this=x.copy(), expression=literal(1))
            flipped = exp.BitwiseXor(this=x.copy(), expression=plus_one)
            return exp.Sub(this=exp.func("BIT_COUNT", flipped), expression=literal(1))

        today = exp.EQ(
            this=exp.BitwiseAnd(this=bits.copy(), expression=literal(1)), expression=literal(1)
        )
        yesterday = exp.BitwiseRightShift(this=bits.copy(), expression=literal(1))
        return exp.Case(
            ifs=[exp.If(this=today, true=trailing_ones(bits))], default=trailing_ones(yesterday)
        )

    def _days_back(self) -> exp.Expr:
        """Local days between an event and as_of (0 on as_of's own local day)."""
        as_of_day = exp.cast(literal(self.ctx.as_of_day().date().isoformat()), DATE)
        return exp.DateDiff(this=as_of_day, expression=col("day"), unit=exp.var("DAY"))

    def _last_n(self, measure: EventMeasure, value: exp.Expr, where: exp.Expr | None) -> exp.Expr:
        """The list of ``value`` over the measure's N most recent events (ties on the timestamp
        broken by the event name, then by the value, both descending)."""
        assert measure.last is not None
        key = exp.Struct(
            expressions=[
                exp.PropertyEQ(this=ident("t"), expression=col("timestamp")),
                exp.PropertyEQ(this=ident("e"), expression=col("event")),
                exp.PropertyEQ(this=ident("v"), expression=value.copy()),
            ]
        )
        # MAX_BY skips NULL values, which still take one of the N places: wrap each in a list.
        top = exp.func("MAX_BY", exp.Array(expressions=[value]), key, literal(measure.last))
        return exp.func("FLATTEN", filtered(top, where))

    def _filtered(self, aggregate: exp.Expr, condition: exp.Expr | None) -> exp.Expr:
        """``aggregate FILTER (WHERE condition)``; on DuckDB, ``COUNT_IF(condition)`` or the
        aggregate of ``CASE WHEN condition THEN x END`` (the same result: the aggregates
        skip NULLs), which DuckDB's hash aggregate updates ~25% cheaper than a FILTER."""
        if condition is None or self.ctx.dialect != "duckdb":
            return filtered(aggregate, condition)
        if isinstance(aggregate, exp.Count) and isinstance(aggregate.this, exp.Star):
            # COUNT_IF gives a HUGEINT, which leaves DuckDB through Arrow as a Decimal.
            return exp.cast(exp.func("COUNT_IF", condition), BIGINT)
        if isinstance(aggregate, (exp.Sum, exp.Min, exp.Max, exp.Avg)):
            when = exp.Case(ifs=[exp.If(this=condition, true=aggregate.this)])
            return aggregate.__class__(this=when)
        if aggregate.name.upper() == "BIT_OR":
            when = exp.Case(ifs=[exp.If(this=condition, true=aggregate.expressions[0])])
            return exp.func("BIT_OR", when)
        return filtered(aggregate, condition)

    # ---- the aggregates ------------------------------------------------------------------

    def aggregate(self, measure: EventMeasure) -> exp.Expr:
        """The measure's aggregate in the person's GROUP BY (a streak's bitmask on DuckDB;
        the portable streak is its own CTE, :mod:`segctl.compiler.sequences`)."""
        if measure.measure.periods is not None:
            return self._active_periods(measure)
        kind, where = measure.measure.kind, self.filter(measure)

        if self.top_n(measure):
            return self._top_n_aggregate(measure, where)
        if kind == "count":
            return self._filtered(exp.Count(this=exp.Star()), where)
        if kind == "distinct_days" and self._day_bits(measure):
            days = exp.func("BIT_COUNT", self._filtered(exp.func("BIT_OR", self._day_bit()), where))
            return exp.cast(days, BIGINT)  # BIT_COUNT gives a TINYINT
        if kind == "streak" and self.streak_bits(measure):
            recent = exp.LT(this=self._days_back(), expression=literal(STREAK_HORIZON))
            return self._filtered(exp.func("BIT_OR", self._day_bit()), exp.and_(where, recent))
        if kind == "distinct_days":
            return filtered(exp.Count(this=exp.Distinct(expressions=[col("day")])), where)
        if kind in AGGREGATES:
            assert measure.measure.of is not None
            func = AGGREGATES[kind]
            return self._filtered(func(this=self.needs.of_value(measure.measure.of)), where)
        if kind in ("first_seen", "last_seen"):
            func = exp.Min if kind == "first_seen" else exp.Max
            return self._filtered(func(this=col("timestamp")), where)
        if kind == "share":
            hits = [self.event_test(t) for t in measure.measure.share_where]
            both = exp.and_(*(p for p in [where, *hits] if p is not None))
            numerator = exp.cast(self._filtered(exp.Count(this=exp.Star()), both), DOUBLE)
            denominator = exp.func(
                "NULLIF", self._filtered(exp.Count(this=exp.Star()), where), literal(0)
            )
            return exp.Div(this=numerator, expression=denominator)
        raise ValueError(f"no aggregate for measure {kind}")  # streak is its own CTE

    def _active_periods(self, measure: EventMeasure) -> exp.Expr:
        """``active_periods``: one filtered count per period, in the same GROUP BY as every
        other measure, and the number of periods whose count reaches ``min_count``."""
        periods = measure.measure.periods
        assert periods is not None
        total: exp.Expr | None = None
        for count in self._period_counts(measure):
            active = exp.GTE(this=count, expression=literal(periods.min_count))
            one = exp.Case(ifs=[exp.If(this=active, true=literal(1))], default=literal(0))
            total = one if total is None else exp.Add(this=total, expression=one)
        assert total is not None
        return total

    def _period_counts(self, measure: EventMeasure) -> list[exp.Expr]:
        """The matching events of each period of an ``active_periods`` measure (aggregates
        over scoped_events), period 0 first."""
        counts = []
        for window in period_windows(measure):
            parts = self.match(measure.match, window)
            condition = exp.and_(*parts) if parts else None
            counts.append(self._filtered(exp.Count(this=exp.Star()), condition))
        return counts

    def _top_n_aggregate(self, measure: EventMeasure, where: exp.Expr | None) -> exp.Expr:
        kind, of = measure.measure.kind, measure.measure.of
        if kind == "count":
            return exp.func(
                "LEAST", self._filtered(exp.Count(this=exp.Star()), where), literal(measure.last)
            )
        value = self._last_value(measure)
        if kind == "share":
            assert value is not None
            return exp.func("LIST_AVG", self._last_n(measure, value, where))
        if kind == "distinct_days":
            days = self._last_n(measure, col("day"), where)
            return exp.func("LEN", exp.func("LIST_DISTINCT", days))
        if kind in ("first_seen", "last_seen"):
            func = "LIST_MIN" if kind == "first_seen" else "LIST_MAX"
            return exp.func(func, self._last_n(measure, col("timestamp"), where))
        assert of is not None and value is not None and kind in AGGREGATES
        return exp.func(f"LIST_{kind.upper()}", self._last_n(measure, value, where))
