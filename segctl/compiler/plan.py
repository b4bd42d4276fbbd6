"""Segments -> one SQL plan that scans the events once (SPEC 4 and 8).

The plan is a chain of CTEs, each a sqlglot tree::

    persons_base          persons created at or before as_of (the others are not evaluated)
    current_subscription  each person's latest subscription row with updated_at <= as_of
    scoped_events         events up to as_of, pushed down to the widest window and the event
                          names any condition needs; adds the local day and last-N ranks
    event_measures        one GROUP BY person_id computing every distinct measure once,
                          each aggregate restricted by FILTER to its own events and window
    streak_N, sequence_N  the measures that need more than one aggregate pass
                          (in DuckDB a streak is a day bitmask in event_measures, and
                          streak_N only recomputes the rare streaks longer than its horizon)
    base                  persons joined with their measures (missing counts become 0)
    level_0..level_K      segment membership columns; a segment that references others lives
                          one level above the deepest of them, so references are plain columns

For DuckDB (``PlanContext.dialect``) some measures take a faster form that other dialects lack:
``distinct_days`` and ``streak`` as 128-bit day masks, ``last: N`` as ``MAX_BY(value, key, N)``,
and time bounds on the source's raw tz-aware timestamp so the Parquet scan skips row groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlglot import exp

from segctl.compiler.calendar import period_windows, resolve, scope
from segctl.compiler.comparators import compile_comparator, literal
from segctl.definitions.loader import Definitions
from segctl.definitions.model import (
    All,
    AnyOf,
    AtLeast,
    ColumnTest,
    ColumnType,
    Condition,
    EventCondition,
    EventMatch,
    EventMeasure,
    FeatureCondition,
    ListCondition,
    Not,
    PropertyCondition,
    Schema,
    SegmentCondition,
    SequenceCondition,
    SubscriptionCondition,
    Window,
    segment_conditions,
)
from segctl.sources.nested import access, parse_path, share_json_parses, value_type

DATE = exp.DataType.build("DATE")
DOUBLE = exp.DataType.build("DOUBLE")
# Measures that are never NULL once persons without events get their zero.
ZERO_WHEN_NONE = {"count", "distinct_days", "sum", "streak", "active_periods"}
# Day bitmasks are HUGEINTs: bits 0..126 keep clear of the sign bit, with a day to spare for
# windows that straddle a daylight-saving change in the project timezone.
MAX_BITMASK_LOOKBACK = timedelta(days=125)
# A streak is read from a bitmask of this many days; persons whose streak may be longer (all
# bits set) get the exact value from the full-history streak query, run for them alone.
STREAK_HORIZON = 120
HUGEINT = exp.DataType.build("HUGEINT")
BIGINT = exp.DataType.build("BIGINT")


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


def ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(ident(name), table=ident(table) if table else None)


@dataclass(frozen=True)
class PlanContext:
    """What a plan depends on besides the definitions."""

    schema: Schema
    as_of: datetime  # naive UTC
    timezone: str = "UTC"
    list_tables: dict[str, str] = field(default_factory=dict)  # list file path -> table name
    #: The SQL dialect the plan will be rendered in: some measures have a faster form that
    #: only DuckDB supports (e.g. 128-bit day bitmasks), used only when it is the target.
    dialect: str = "duckdb"
    #: An events column holding the same instant as ``timestamp`` as the source stored it
    #: (TIMESTAMPTZ), for time bounds the scan can push down; None when there is none.
    raw_timestamp: str | None = None
    #: Memory is limited (engine.memory_limit): prefer forms whose aggregate states DuckDB
    #: can spill to disk over faster ones whose states it cannot.
    spillable: bool = False
    #: table -> column -> the engine's full type (``STRUCT(...)``, ``MAP(...)``, ``VARCHAR``),
    #: which nested property names (``properties.plan``) are read through.
    column_types: dict[str, dict[str, str]] = field(default_factory=dict)
    #: A table of person ids: evaluate only those persons (an incremental run's D,
    #: segctl.incremental); None evaluates everyone.
    persons_filter: str | None = None

    def local_day(self, value: exp.Expr) -> exp.Expr:
        """The calendar day of a naive-UTC timestamp in the project timezone."""
        if self.timezone == "UTC":
            return exp.cast(value, DATE)
        local = exp.ConvertTimezone(
            source_tz=literal("UTC"), target_tz=literal(self.timezone), timestamp=value
        )
        return exp.cast(local, DATE)

    def as_of_day(self) -> datetime:
        from zoneinfo import ZoneInfo

        local = self.as_of.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(self.timezone))
        return datetime(local.year, local.month, local.day)


class PlanBuilder:
    """Builds the fused plan for a set of segments (and optionally features)."""

    def __init__(self, definitions: Definitions, ctx: PlanContext) -> None:
        self.definitions = definitions
        self.ctx = ctx
        self.measures: dict[EventMeasure, str] = {}
        self.sequences: dict[SequenceCondition, str] = {}
        #: ``last: N`` ranks of the portable form, by (match, window, tie-break value SQL):
        #: the rank column's name and the value that orders events of the same instant.
        self.ranks: dict[tuple[EventMatch, Window, str], tuple[str, exp.Expr | None]] = {}
        self.person_columns: dict[str, None] = {"person_id": None}
        self.subscription_columns: dict[str, None] = {}
        self.event_columns: dict[str, None] = {}
        self.measure_table: dict[EventMeasure, str] = {}  # its per-person aggregate CTE
        #: Nested property readings, (name, reading) -> column: extracted once per row, in the
        #: scan (events) or persons_base, however many conditions read them.
        self.nested: dict[tuple[str, str, str], str] = {}
        self.nested_reads: dict[str, dict[str, exp.Expr]] = {"events": {}, "persons": {}}

    # ---- public ------------------------------------------------------------------------

    def segments_query(self, names: list[str]) -> exp.Select:
        """``person_id`` plus one boolean column per segment (dependencies included)."""
        order = self._with_dependencies(names)
        levels = self._levels(order)
        query = self._base_query(levels)
        projections = [col("person_id")] + [exp.alias_(col(f"seg__{n}"), ident(n)) for n in names]
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
        for name in names:
            self._measure_column(self.definitions.features[name].measure)
        query = self._base_query([])
        projections = [col("person_id")] + [
            exp.alias_(col(self.measures[self.definitions.features[n].measure]), ident(n))
            for n in names
        ]
        return (
            query.select(*projections, copy=False)
            .from_(ident("base"), copy=False)
            .order_by(col("person_id"), copy=False)
        )

    # ---- segment levels ---------------------------------------------------------------

    def _with_dependencies(self, names: list[str]) -> list[str]:
        order: dict[str, None] = {}
        for name in names:
            for dep in self.definitions.dependencies(name):
                order.setdefault(dep, None)
        return list(order)

    def _levels(self, order: list[str]) -> list[list[tuple[str, exp.Expr]]]:
        depth: dict[str, int] = {}
        levels: list[list[tuple[str, exp.Expr]]] = []
        for name in order:  # dependencies come first
            segment = self.definitions.segments[name]
            refs = [
                c.segment for c in segment_conditions(segment) if isinstance(c, SegmentCondition)
            ]
            depth[name] = 1 + max((depth[r] for r in refs), default=-1)
            member = self._condition(segment.rule)
            if segment.exclude:
                excluded = exp.or_(*(self._condition(c) for c in segment.exclude))
                member = exp.and_(member, exp.not_(exp.paren(excluded)))
            while len(levels) <= depth[name]:
                levels.append([])
            levels[depth[name]].append((name, member))
        return levels

    def _condition(self, cond: Condition) -> exp.Expr:
        if isinstance(cond, All):
            return exp.paren(exp.and_(*(self._condition(c) for c in cond.items), copy=False), False)
        if isinstance(cond, AnyOf):
            return exp.paren(exp.or_(*(self._condition(c) for c in cond.items), copy=False), False)
        if isinstance(cond, Not):
            return exp.not_(exp.paren(self._condition(cond.item)))
        if isinstance(cond, PropertyCondition):
            return compile_comparator(
                col(f"p__{self.person_column(cond.test)}"), cond.test.comparator, self.ctx.as_of
            )
        if isinstance(cond, (EventCondition, FeatureCondition)):
            column = self._measure_column(cond.measure)
            nullable = cond.measure.measure.kind not in ZERO_WHEN_NONE
            return compile_comparator(
                col(column), cond.comparator, self.ctx.as_of, nullable=nullable
            )
        if isinstance(cond, SubscriptionCondition):
            parts = []
            for test in cond.tests:
                self.subscription_columns.setdefault(test.column, None)
                parts.append(
                    compile_comparator(col(f"sub__{test.column}"), test.comparator, self.ctx.as_of)
                )
            return exp.paren(exp.and_(*parts)) if len(parts) > 1 else parts[0]
        if isinstance(cond, SegmentCondition):
            return col(f"seg__{cond.segment}")
        if isinstance(cond, SequenceCondition):
            return col(self.sequences.setdefault(cond, f"q__{len(self.sequences)}"))
        if isinstance(cond, ListCondition):
            return self._list(cond)
        if isinstance(cond, AtLeast):
            return self._at_least(cond)
        raise TypeError(f"unknown condition {cond!r}")  # pragma: no cover

    # ---- property names (plain columns or nested paths) ------------------------------------

    def person_column(self, test: ColumnTest) -> str:
        """The persons_base column a person property test reads (``p__`` + it in base)."""
        reading = self._reading("persons", test.column, _want(test.comparator.value_type))
        self.person_columns.setdefault(reading, None)
        return reading

    def _event_value(self, name: str, want: str, alias: str | None = None) -> exp.Column:
        """An events column, or a nested property's reading projected by the scan."""
        column = self._reading("events", name, want)
        self.event_columns.setdefault(column, None)
        return col(column, alias)

    def _of_value(self, name: str) -> exp.Column:
        """The value ``of:`` aggregates: a nested property whose type only the data knows is
        read as a number (SPEC 1); a typed one (a STRUCT's BIGINT) as it is."""
        return self._event_value(name, self._of_want(name))

    def _of_want(self, name: str) -> str:
        if name in self.ctx.schema.get("events", {}):
            return "any"
        path = parse_path(name)
        leaf = value_type(self.ctx.column_types["events"][path.column], path.keys)
        typed = leaf is not None and leaf.this not in exp.DataType.TEXT_TYPES
        return "any" if typed else "number"

    def _reading(self, table: str, name: str, want: str) -> str:
        """``name`` itself for a plain column; for a nested path, the column its reading is
        projected as (registered once per name and reading)."""
        if name in self.ctx.schema.get(table, {}):
            return name
        key = (table, name, want)
        if key not in self.nested:
            path = parse_path(name)
            column_type = self.ctx.column_types[table][path.column]
            read = access(col(path.column), column_type, path.keys, want)
            prefix = "n__" if table == "events" else f"n__{want}__"
            self.nested[key] = f"{prefix}{len(self.nested)}"
            self.nested_reads[table][self.nested[key]] = read
        return self.nested[key]

    def _events_source(self) -> exp.Expr:
        """``events``, or with the nested readings projected beside its columns (so that
        each is extracted once per row, and the scan's filters and ranks can read it)."""
        reads = self.nested_reads["events"]
        if not reads:
            return ident("events")
        source: exp.Expr = ident("events")
        if self.ctx.dialect == "duckdb":
            reads, parsed = share_json_parses(reads)
            if parsed:  # each JSON column parsed once per row, for all its keys
                lists = [exp.alias_(e, ident(a)) for a, e in parsed.items()]
                source = exp.select(exp.Star(), *lists).from_(source).subquery(ident("events"))
        projections = [exp.Star(), *(exp.alias_(e.copy(), ident(a)) for a, e in reads.items())]
        return exp.select(*projections).from_(source).subquery(ident("events"))

    def _in_filter(self) -> exp.Expr:
        """``person_id IN (SELECT person_id FROM <persons_filter>)``."""
        assert self.ctx.persons_filter is not None
        persons = exp.select(col("person_id")).from_(ident(self.ctx.persons_filter))
        return exp.In(this=col("person_id"), query=persons.subquery())

    def _at_least(self, cond: AtLeast) -> exp.Expr:
        """How many of the conditions hold, compared with K."""
        return exp.paren(exp.GTE(this=self.held(cond), expression=literal(cond.count)))

    def held(self, cond: AtLeast) -> exp.Expr:
        """How many of an ``at_least``'s conditions hold (a condition is never NULL, but a
        CASE keeps the count right even if one were); ``explain`` shows it."""
        ones = [
            exp.Case(ifs=[exp.If(this=self._condition(c), true=literal(1))], default=literal(0))
            for c in cond.items
        ]
        total: exp.Expr = ones[0]
        for one in ones[1:]:
            total = exp.Add(this=total, expression=one)
        return exp.paren(total, False)

    def _list(self, cond: ListCondition) -> exp.Expr:
        table = self.ctx.list_tables.get(cond.path, "segctl_list")
        keys = exp.select(col("key")).from_(ident(table))
        if cond.key == "email":
            self.person_columns.setdefault("email", None)
            value: exp.Expr = exp.Lower(this=exp.Trim(this=col("p__email")))
        else:
            value = col("person_id")
        found = exp.In(this=value, query=keys.subquery())
        return exp.func("COALESCE", found, exp.false())

    def _measure_column(self, measure: EventMeasure) -> str:
        if measure not in self.measures:
            self.measures[measure] = f"m__{len(self.measures)}"
        return self.measures[measure]

    # ---- events -----------------------------------------------------------------------

    def _match(self, match: EventMatch, window: Window, alias: str | None = None) -> list[exp.Expr]:
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
            parts.append(self._event_test(test, alias))
        parts.extend(self._window(window, ts))
        return parts

    def _event_test(self, test: ColumnTest, alias: str | None = None) -> exp.Expr:
        value = self._event_value(test.column, _want(test.comparator.value_type), alias)
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

    def _filter(self, measure: EventMeasure) -> exp.Expr | None:
        parts = self._match(measure.match, measure.window)
        if measure.last is not None and not self._top_n(measure):
            tie = self._last_value(measure)
            key = (measure.match, measure.window, "" if tie is None else tie.sql())
            rank, _ = self.ranks.setdefault(key, (f"r__{len(self.ranks)}", tie))
            parts.append(exp.LTE(this=col(rank), expression=literal(measure.last)))
        return exp.and_(*parts) if parts else None

    def _last_value(self, measure: EventMeasure) -> exp.Expr | None:
        """The value a ``last: N`` measure keeps of each event, which also orders its events
        of the same instant and name (largest first), so that both forms take the same N.
        None where events of one instant give the same value (its day, its time) or none."""
        kind, of = measure.measure.kind, measure.measure.of
        if kind == "share":
            hit = exp.and_(*(self._event_test(t) for t in measure.measure.share_where))
            if self.ctx.dialect not in ("duckdb", "spark"):
                # Postgres and BigQuery cast a boolean to an integer only, not to DOUBLE.
                hit = exp.cast(hit, exp.DataType.build("INT"))
            return exp.cast(hit, DOUBLE)
        if kind in ("sum", "avg", "min", "max"):
            assert of is not None
            return self._of_value(of)
        return None

    # DuckDB-only fast forms; other dialects get the portable ones.

    def _top_n(self, measure: EventMeasure) -> bool:
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

    def _streak_bits(self, measure: EventMeasure) -> bool:
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

    def _streak_of_bits(self, bits: exp.Expr) -> exp.Expr:
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

    def _aggregate(self, measure: EventMeasure) -> exp.Expr:
        if measure.measure.periods is not None:
            return self._active_periods(measure)
        kind, where = measure.measure.kind, self._filter(measure)

        if self._top_n(measure):
            return self._top_n_aggregate(measure, where)
        if kind == "count":
            return self._filtered(exp.Count(this=exp.Star()), where)
        if kind == "distinct_days" and self._day_bits(measure):
            days = exp.func("BIT_COUNT", self._filtered(exp.func("BIT_OR", self._day_bit()), where))
            return exp.cast(days, BIGINT)  # BIT_COUNT gives a TINYINT
        if kind == "streak" and self._streak_bits(measure):
            recent = exp.LT(this=self._days_back(), expression=literal(STREAK_HORIZON))
            return self._filtered(exp.func("BIT_OR", self._day_bit()), exp.and_(where, recent))
        if kind == "distinct_days":
            return filtered(exp.Count(this=exp.Distinct(expressions=[col("day")])), where)
        if kind in ("sum", "avg", "min", "max"):
            assert measure.measure.of is not None
            func = {"sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max}[kind]
            return self._filtered(func(this=self._of_value(measure.measure.of)), where)
        if kind in ("first_seen", "last_seen"):
            func = exp.Min if kind == "first_seen" else exp.Max
            return self._filtered(func(this=col("timestamp")), where)
        if kind == "share":
            hits = [self._event_test(t) for t in measure.measure.share_where]
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
        for count in self.period_counts(measure):
            active = exp.GTE(this=count, expression=literal(periods.min_count))
            one = exp.Case(ifs=[exp.If(this=active, true=literal(1))], default=literal(0))
            total = one if total is None else exp.Add(this=total, expression=one)
        assert total is not None
        return total

    def period_counts(self, measure: EventMeasure) -> list[exp.Expr]:
        """The matching events of each period of an ``active_periods`` measure (aggregates
        over scoped_events), period 0 first; ``explain`` shows them."""
        counts = []
        for window in period_windows(measure):
            parts = self._match(measure.match, window)
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
        assert of is not None and value is not None and kind in ("sum", "avg", "min", "max")
        return exp.func(f"LIST_{kind.upper()}", self._last_n(measure, value, where))

    def _widest_scope(self) -> list[exp.Expr]:
        """The pushed-down filter: only events some measure or sequence can look at."""
        raw = self.ctx.raw_timestamp
        ts = col(raw or "timestamp")

        # (match, window, how far back the plan reads them: None = as far as the window goes)
        horizon = timedelta(days=STREAK_HORIZON + 2)  # + a day either side for local days
        as_of, tz = self.ctx.as_of, self.ctx.timezone
        scopes: list[tuple[EventMatch, Window, timedelta | None]] = [
            (m.match, scope(m, as_of, tz), horizon if self._streak_bits(m) else None)
            for m in self.measures
        ]
        for seq in self.sequences:
            scopes.extend((step, seq.window, None) for step in seq.steps)
        parts: list[exp.Expr] = [exp.LTE(this=ts, expression=time_bound(self.ctx.as_of, raw))]
        if self.ctx.persons_filter is not None:  # only D's rows (a subset, for speed)
            parts.append(self._in_filter())
        names: set[str] = set()
        if all(match.names is not None for match, _, _ in scopes):
            for match, _, _ in scopes:
                names.update(match.names or ())
            parts.append(exp.In(this=col("event"), expressions=[literal(n) for n in sorted(names)]))
        lower_bounds: list[datetime] = []
        for _, window, limit in scopes:
            lookback = window.lookback()
            if limit is not None and (lookback is None or lookback > limit):
                lookback = limit
            if lookback is not None:
                lower_bounds.append(self.ctx.as_of - lookback)
            elif window.start is not None:
                lower_bounds.append(window.start - timedelta(microseconds=1))
            else:
                return parts  # some condition reads all history
        if lower_bounds:
            parts.append(exp.GT(this=ts.copy(), expression=time_bound(min(lower_bounds), raw)))
        return parts

    def _ctes(self) -> list[tuple[str, exp.Expr]]:
        """The CTEs up to and including ``base``."""
        ctes: list[tuple[str, exp.Expr]] = []
        aggregated = [
            m for m in self.measures if m.measure.kind != "streak" or self._streak_bits(m)
        ]
        streaks = [m for m in self.measures if m not in aggregated]
        # Aggregates are built first: building them registers the columns and ranks they read.
        aggregates = {
            m: exp.alias_(self._aggregate(m), ident(self.measures[m])) for m in aggregated
        }
        streak_filters = {m: self._filter(m) for m in streaks}
        sequence_steps: dict[SequenceCondition, list[exp.Expr]] = {
            seq: [exp.and_(*self._match(step, seq.window, "e")) for step in seq.steps]
            for seq in self.sequences
        }
        needs_events = bool(self.measures or self.sequences)
        if needs_events:
            ctes.append(("scoped_events", self._scoped_events()))
        tables = self._measure_tables(aggregated)
        for table, (names, measures) in tables.items():
            query = exp.select(col("person_id"), *(aggregates[m] for m in measures))
            if len(tables) > 1 and names is not None:
                events = [literal(n) for n in names]
                query = query.where(exp.In(this=col("event"), expressions=events))
            ctes.append((table, query.from_(ident("scoped_events")).group_by(col("person_id"))))
        for measure, condition in streak_filters.items():
            ctes.append((f"streak_{self.measures[measure]}", self._streak(condition)))
        for measure in aggregated:
            if self._streak_bits(measure):
                ctes.append((f"streak_{self.measures[measure]}", self._long_streak(measure)))
        for seq, steps in sequence_steps.items():
            ctes.extend(self._sequence(seq, steps))
        ctes.insert(0, ("persons_base", self._persons_base()))
        if self.subscription_columns:
            ctes.insert(1, ("current_subscription", self._current_subscription()))
        ctes.append(("base", self._base(aggregated, streaks)))
        return ctes

    def _measure_tables(
        self, aggregated: list[EventMeasure]
    ) -> dict[str, tuple[tuple[str, ...] | None, list[EventMeasure]]]:
        """The per-person aggregate CTEs: name -> (the events they read, their measures).

        On DuckDB, one GROUP BY per set of event names: a FILTER aggregate costs every row
        it sees, so measures of different events in one GROUP BY make each event's rows pay
        for every other event's measures too; split, each row feeds only its own event's
        (a thousand-segment catalogue: 10x fewer aggregate updates). Measures of any event
        share one aggregate over every scoped event. Other dialects keep one aggregate.
        """
        groups: dict[tuple[str, ...] | None, list[EventMeasure]] = {}
        for measure in aggregated:
            names = measure.match.names
            key = (
                tuple(sorted(set(names)))
                if names is not None and self.ctx.dialect == "duckdb"
                else None
            )
            groups.setdefault(key, []).append(measure)
        if len(groups) == 1:
            tables = {"event_measures": next(iter(groups.items()))}
        else:
            tables = {f"event_measures_{i}": group for i, group in enumerate(groups.items())}
        self.measure_table = {m: t for t, (_, ms) in tables.items() for m in ms}
        return tables

    def _scoped_events(self) -> exp.Select:
        columns = {"person_id": None, "event": None, "timestamp": None, **self.event_columns}
        projections: list[exp.Expr] = [col(c) for c in columns]
        if any(m.measure.kind in ("distinct_days", "streak") for m in self.measures):
            projections.append(exp.alias_(self.ctx.local_day(col("timestamp")), ident("day")))
        for (match, window, _), (rank, tie) in self.ranks.items():
            matched = (
                exp.and_(*self._match(match, window))
                if (match.names is not None or match.where or not window.unbounded)
                else exp.true()
            )
            # As the fast form's MAX_BY key (timestamp, event, value) orders them: the
            # largest first, and a NULL value above any other.
            order = [
                exp.Ordered(this=col("timestamp"), desc=True),
                exp.Ordered(this=col("event"), desc=True),
            ]
            if tie is not None:
                order.append(exp.Ordered(this=tie.copy(), desc=True, nulls_first=True))
            order += [exp.Ordered(this=col(c)) for c in self.event_columns]
            number = exp.Window(
                this=exp.RowNumber(),
                partition_by=[col("person_id"), matched.copy()],
                order=exp.Order(expressions=order),
            )
            projections.append(
                exp.alias_(exp.Case(ifs=[exp.If(this=matched, true=number)]), ident(rank))
            )
        return (
            exp.select(*projections)
            .from_(self._events_source())
            .where(exp.and_(*self._widest_scope()))
        )

    def _long_streak(self, measure: EventMeasure) -> exp.Select:
        """The exact streak of the persons whose bitmask streak reached the horizon, from
        their whole history (an empty join when nobody did, which is the usual case)."""
        name = self.measures[measure]
        long = exp.GTE(this=self._streak_of_bits(col(name)), expression=literal(STREAK_HORIZON - 1))
        persons = exp.select(col("person_id")).from_(ident(self.measure_table[measure])).where(long)
        events = (
            exp.select(exp.Star(), exp.alias_(self.ctx.local_day(col("timestamp")), ident("day")))
            .from_(self._events_source())
            .where(
                exp.and_(
                    exp.LTE(this=col("timestamp"), expression=literal(self.ctx.as_of)),
                    exp.In(this=col("person_id"), query=persons.subquery()),
                )
            )
        )
        return self._streak(self._filter(measure), events.subquery("e"))

    def _streak(self, condition: exp.Expr | None, source: exp.Expr | None = None) -> exp.Select:
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
                exp.Window(
                    this=exp.Max(this=col("day")), partition_by=[c.copy() for c in by_person]
                ),
                ident("top"),
            ),
        ).from_(days.subquery("d"))
        today = self.ctx.as_of_day()
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

    def _sequence(
        self, seq: SequenceCondition, steps: list[exp.Expr]
    ) -> list[tuple[str, exp.Expr]]:
        """Step k's valid times: events of step k strictly after a valid time of step k-1
        (and at most max_gap after it). Without max_gap the earliest valid time suffices."""
        name = self.sequences[seq]
        if seq.max_span is not None:
            return self._spanned_sequence(seq, steps)
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
                    gap = exp.Interval(
                        this=literal(str(int(seq.max_gap.total_seconds()))), unit=exp.var("SECOND")
                    )
                    on.append(
                        exp.LTE(
                            this=ts.copy(), expression=exp.Add(this=col("t", "p"), expression=gap)
                        )
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
        self, seq: SequenceCondition, steps: list[exp.Expr]
    ) -> list[tuple[str, exp.Expr]]:
        """A sequence with ``max_span``: each valid time of step k carries the latest start
        (step 0's time) of the chains that reach it, since a later start leaves more room for
        the steps after; a step is valid while it is at most max_span after that start."""
        assert seq.max_span is not None
        name = self.sequences[seq]
        ctes: list[tuple[str, exp.Expr]] = []

        def seconds(delta: timedelta) -> exp.Expr:
            return exp.Interval(
                this=literal(str(int(delta.total_seconds()))), unit=exp.var("SECOND")
            )

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
                    expression=exp.Add(this=col("s", "p"), expression=seconds(seq.max_span)),
                ),
            ]
            if seq.max_gap is not None:
                on.append(
                    exp.LTE(
                        this=ts.copy(),
                        expression=exp.Add(this=col("t", "p"), expression=seconds(seq.max_gap)),
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

    # ---- persons ----------------------------------------------------------------------

    def _persons_base(self) -> exp.Select:
        person_schema = self.ctx.schema.get("persons", {})
        reads = self.nested_reads["persons"]
        columns = [
            exp.alias_(reads[c].copy(), ident(c)) if c in reads else col(c)
            for c in self.person_columns
        ]
        query = exp.select(*columns).from_(ident("persons"))
        if self.ctx.persons_filter is not None:
            query = query.where(self._in_filter())
        if person_schema.get("created_at") is ColumnType.TIMESTAMP:
            created = col("created_at")
            query = query.where(
                exp.or_(
                    exp.Is(this=created, expression=exp.Null()),
                    exp.LTE(this=created.copy(), expression=literal(self.ctx.as_of)),
                )
            )
        return query

    def _current_subscription(self) -> exp.Select:
        columns = list(dict.fromkeys(["person_id", *self.subscription_columns]))
        others = [
            c for c in self.ctx.schema["subscriptions"] if c not in ("person_id", "updated_at")
        ]
        number = exp.Window(
            this=exp.RowNumber(),
            partition_by=[col("person_id")],
            order=exp.Order(
                expressions=[exp.Ordered(this=col("updated_at"), desc=True)]
                + [exp.Ordered(this=col(c)) for c in sorted(others)]
            ),
        )
        ranked = (
            exp.select(
                *(col(c) for c in dict.fromkeys([*columns, "updated_at"])),
                exp.alias_(number, ident("rn")),
            )
            .from_(ident("subscriptions"))
            .where(exp.LTE(this=col("updated_at"), expression=literal(self.ctx.as_of)))
        )
        return (
            exp.select(*(col(c) for c in columns))
            .from_(ranked.subquery("s"))
            .where(exp.EQ(this=col("rn"), expression=literal(1)))
        )

    def _base(self, aggregated: list[EventMeasure], streaks: list[EventMeasure]) -> exp.Select:
        projections: list[exp.Expr] = [col("person_id", "p")]
        projections += [exp.alias_(col(c, "p"), ident(f"p__{c}")) for c in self.person_columns]
        projections += [
            exp.alias_(col(c, "s"), ident(f"sub__{c}")) for c in self.subscription_columns
        ]
        query = exp.select().from_(exp.alias_(ident("persons_base"), "p"))

        def join(table: str, alias: str) -> None:
            nonlocal query
            on = exp.EQ(this=col("person_id", alias), expression=col("person_id", "p"))
            query = query.join(exp.alias_(ident(table), alias), on=on, join_type="LEFT", copy=False)

        if self.subscription_columns:
            join("current_subscription", "s")
        aliases = {}  # event_measures AS m, event_measures_0 AS m0, ...
        for table in dict.fromkeys(self.measure_table.values()):
            aliases[table] = "m" + table.removeprefix("event_measures").lstrip("_")
            join(table, aliases[table])
        for measure in aggregated:
            name = self.measures[measure]
            value: exp.Expr = col(name, aliases[self.measure_table[measure]])
            if self._streak_bits(measure):
                join(f"streak_{name}", name)
                short = exp.Is(this=col("value", name), expression=exp.Null())
                value = exp.Case(
                    ifs=[exp.If(this=short, true=self._streak_of_bits(value))],
                    default=col("value", name),
                )
            if measure.measure.kind in ZERO_WHEN_NONE:
                value = exp.func("COALESCE", value, literal(0))
            projections.append(exp.alias_(value, ident(name)))
        for measure in streaks:
            name = self.measures[measure]
            join(f"streak_{name}", name)
            value = exp.func("COALESCE", col("value", name), literal(0))
            projections.append(exp.alias_(value, ident(name)))
        for name in self.sequences.values():
            join(name, name)
            found = exp.not_(exp.Is(this=col("person_id", name), expression=exp.Null()))
            projections.append(exp.alias_(found, ident(name)))
        return query.select(*projections, copy=False)

    def _base_query(self, levels: list[list[tuple[str, exp.Expr]]]) -> exp.Select:
        """An empty SELECT carrying every CTE; the caller adds projections and FROM."""
        ctes = self._ctes()
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


def _want(value_type: ColumnType) -> str:
    """How a nested value is read for a comparator of this type (SPEC 1)."""
    return {
        ColumnType.NUMBER: "number",
        ColumnType.BOOLEAN: "boolean",
        ColumnType.STRING: "text",
    }.get(value_type, "any")
