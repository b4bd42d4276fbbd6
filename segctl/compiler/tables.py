"""Phase 2 of a plan: the CTEs computing everything the conditions named (up to ``base``).

persons_base          persons created at or before as_of (the others are not evaluated)
current_subscription  each person's latest subscription row with updated_at <= as_of
scoped_events         events up to as_of, pushed down to the widest window and the event
                      names any condition needs; adds the local day and last-N ranks
event_measures        one GROUP BY person_id computing every distinct measure once,
                      each aggregate restricted by FILTER to its own events and window
streak_N, q__N        the measures that need more than one pass (segctl.compiler.sequences)
base                  persons joined with their measures (missing counts become 0)
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlglot import exp

from segctl.compiler import sequences
from segctl.compiler.calendar import scope
from segctl.compiler.comparators import literal
from segctl.compiler.conditions import ZERO_WHEN_NONE
from segctl.compiler.context import PlanContext
from segctl.compiler.measures import STREAK_HORIZON, Measures
from segctl.compiler.needs import Needs
from segctl.compiler.sql import col, ident, time_bound
from segctl.definitions.model import (
    ColumnType,
    EventMatch,
    EventMeasure,
    Schema,
    SequenceCondition,
    Window,
)

#: An aggregate CTE: the event names it reads (None: any) and its measures.
MeasureTables = dict[str, tuple[tuple[str, ...] | None, list[EventMeasure]]]


def current_subscription(schema: Schema, as_of: datetime, columns: Iterable[str]) -> exp.Select:
    """Each person's latest subscription row with ``updated_at <= as_of`` (``columns`` of
    it, person_id first), ties broken by the other columns, ascending."""
    wanted = list(dict.fromkeys(["person_id", *columns]))
    others = [c for c in schema["subscriptions"] if c not in ("person_id", "updated_at")]
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
            *(col(c) for c in dict.fromkeys([*wanted, "updated_at"])),
            exp.alias_(number, ident("rn")),
        )
        .from_(ident("subscriptions"))
        .where(exp.LTE(this=col("updated_at"), expression=literal(as_of)))
    )
    return (
        exp.select(*(col(c) for c in wanted))
        .from_(ranked.subquery("s"))
        .where(exp.EQ(this=col("rn"), expression=literal(1)))
    )


class Tables:
    """Builds the CTEs of a plan from its :class:`~segctl.compiler.needs.Needs`."""

    def __init__(self, ctx: PlanContext, needs: Needs) -> None:
        self.ctx = ctx
        self.needs = needs
        self.measures = Measures(ctx, needs)

    def ctes(self) -> list[tuple[str, exp.Expr]]:
        """The CTEs up to and including ``base``."""
        needs, measures = self.needs, self.measures
        ctes: list[tuple[str, exp.Expr]] = []
        aggregated = [
            m for m in needs.measures if m.measure.kind != "streak" or measures.streak_bits(m)
        ]
        streaks = [m for m in needs.measures if m not in aggregated]
        # The aggregates, streak filters and sequence steps first: building them names the
        # event columns and ranks they read, which the scan below projects.
        aggregates = {
            m: exp.alias_(measures.aggregate(m), ident(needs.measures[m]), copy=False)
            for m in aggregated
        }
        streak_filters = {m: measures.filter(m) for m in streaks}
        sequence_steps: dict[SequenceCondition, list[exp.Expr]] = {
            seq: [exp.and_(*measures.match(step, seq.window, "e")) for step in seq.steps]
            for seq in needs.sequences
        }
        if needs.measures or needs.sequences:
            ctes.append(("scoped_events", self._scoped_events()))
        tables = self._measure_tables(aggregated)
        for table, (names, group) in tables.items():
            query = exp.select(col("person_id"), *(aggregates[m] for m in group))
            if len(tables) > 1 and names is not None:
                events = [literal(n) for n in names]
                query = query.where(exp.In(this=col("event"), expressions=events))
            ctes.append((table, query.from_(ident("scoped_events")).group_by(col("person_id"))))
        for measure, condition in streak_filters.items():
            ctes.append(
                (f"streak_{needs.measures[measure]}", sequences.streak(self.ctx, condition))
            )
        table_of = {m: t for t, (_, group) in tables.items() for m in group}
        for measure in aggregated:
            if measures.streak_bits(measure):
                long = sequences.long_streak(measures, measure, table_of[measure])
                ctes.append((f"streak_{needs.measures[measure]}", long))
        for seq, steps in sequence_steps.items():
            ctes.extend(sequences.sequence(needs.sequences[seq], seq, steps))
        ctes.insert(0, ("persons_base", self._persons_base()))
        if needs.subscription_columns:
            subscription = current_subscription(
                self.ctx.schema, self.ctx.as_of, needs.subscription_columns
            )
            ctes.insert(1, ("current_subscription", subscription))
        ctes.append(("base", self._base(aggregated, streaks, table_of)))
        return ctes

    def _measure_tables(self, aggregated: list[EventMeasure]) -> MeasureTables:
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
            return {"event_measures": next(iter(groups.items()))}
        return {f"event_measures_{i}": group for i, group in enumerate(groups.items())}

    def _in_filter(self) -> exp.Expr:
        """``person_id IN (SELECT person_id FROM <persons_filter>)``."""
        assert self.ctx.persons_filter is not None
        persons = exp.select(col("person_id")).from_(ident(self.ctx.persons_filter))
        return exp.In(this=col("person_id"), query=persons.subquery())

    def _scoped_events(self) -> exp.Select:
        needs = self.needs
        columns = {"person_id": None, "event": None, "timestamp": None, **needs.event_columns}
        projections: list[exp.Expr] = [col(c) for c in columns]
        if any(m.measure.kind in ("distinct_days", "streak") for m in needs.measures):
            projections.append(exp.alias_(self.ctx.local_day(col("timestamp")), ident("day")))
        for (match, window, _), (rank, tie) in needs.ranks.items():
            matched = (
                exp.and_(*self.measures.match(match, window))
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
            order += [exp.Ordered(this=col(c)) for c in needs.event_columns]
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
            .from_(needs.events_source())
            .where(exp.and_(*self._widest_scope()))
        )

    def _widest_scope(self) -> list[exp.Expr]:
        """The pushed-down filter: only events some measure or sequence can look at."""
        raw = self.ctx.raw_timestamp
        ts = col(raw or "timestamp")

        # (match, window, how far back the plan reads them: None = as far as the window goes)
        horizon = timedelta(days=STREAK_HORIZON + 2)  # + a day either side for local days
        as_of, tz = self.ctx.as_of, self.ctx.timezone
        scopes: list[tuple[EventMatch, Window, timedelta | None]] = [
            (m.match, scope(m, as_of, tz), horizon if self.measures.streak_bits(m) else None)
            for m in self.needs.measures
        ]
        for seq in self.needs.sequences:
            scopes.extend((step, seq.window, None) for step in seq.steps)
        parts: list[exp.Expr] = [exp.LTE(this=ts, expression=time_bound(as_of, raw))]
        if self.ctx.persons_filter is not None and not self.ctx.events_shadowed:
            parts.append(self._in_filter())  # only D's rows (a subset, for speed)
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
                lower_bounds.append(as_of - lookback)
            elif window.start is not None:
                lower_bounds.append(window.start - timedelta(microseconds=1))
            else:
                return parts  # some condition reads all history
        if lower_bounds:
            parts.append(exp.GT(this=ts.copy(), expression=time_bound(min(lower_bounds), raw)))
        return parts

    def _persons_base(self) -> exp.Select:
        person_schema = self.ctx.schema.get("persons", {})
        reads = self.needs.nested_reads["persons"]
        columns = [
            exp.alias_(reads[c].copy(), ident(c)) if c in reads else col(c)
            for c in self.needs.person_columns
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

    def _base(
        self,
        aggregated: list[EventMeasure],
        streaks: list[EventMeasure],
        table_of: dict[EventMeasure, str],
    ) -> exp.Select:
        needs = self.needs
        projections: list[exp.Expr] = [col("person_id", "p")]
        projections += [exp.alias_(col(c, "p"), ident(f"p__{c}")) for c in needs.person_columns]
        projections += [
            exp.alias_(col(c, "s"), ident(f"sub__{c}")) for c in needs.subscription_columns
        ]
        query = exp.select().from_(exp.alias_(ident("persons_base"), "p"))

        def join(table: str, alias: str) -> None:
            nonlocal query
            on = exp.EQ(this=col("person_id", alias), expression=col("person_id", "p"))
            query = query.join(exp.alias_(ident(table), alias), on=on, join_type="LEFT", copy=False)

        if needs.subscription_columns:
            join("current_subscription", "s")
        aliases = {}  # event_measures AS m, event_measures_0 AS m0, ...
        for table in dict.fromkeys(table_of.values()):
            aliases[table] = "m" + table.removeprefix("event_measures").lstrip("_")
            join(table, aliases[table])
        for measure in aggregated:
            name = needs.measures[measure]
            value: exp.Expr = col(name, aliases[table_of[measure]])
            if self.measures.streak_bits(measure):
                join(f"streak_{name}", name)
                short = exp.Is(this=col("value", name), expression=exp.Null())
                value = exp.Case(
                    ifs=[exp.If(this=short, true=self.measures.streak_of_bits(value))],
                    default=col("value", name),
                )
            if measure.measure.kind in ZERO_WHEN_NONE:
                value = exp.func("COALESCE", value, literal(0))
            projections.append(exp.alias_(value, ident(name)))
        for measure in streaks:
            name = needs.measures[measure]
            join(f"streak_{name}", name)
            value = exp.func("COALESCE", col("value", name), literal(0))
            projections.append(exp.alias_(value, ident(name)))
        for name in needs.sequences.values():
            join(name, name)
            found = exp.not_(exp.Is(this=col("person_id", name), expression=exp.Null()))
            projections.append(exp.alias_(found, ident(name)))
        return query.select(*projections, copy=False)
