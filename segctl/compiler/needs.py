"""What a plan must compute, named as the conditions ask for it.

A plan is built in two phases (see :mod:`segctl.compiler.plan`), and :class:`Needs` is what
passes between them, in plain sight:

1. compiling the conditions (:class:`~segctl.compiler.conditions.ConditionCompiler`) names
   each measure, sequence, person and subscription column a condition reads (``m__0``,
   ``q__0``, ``p__plan``...);
2. building the tables (:mod:`segctl.compiler.tables`) computes every one of them. Building
   the aggregates first (:class:`~segctl.compiler.measures.Measures`) adds the event columns
   and ``last: N`` ranks they read, which the scan of the events then projects.

Names are handed out in the order they are asked for, so a plan's SQL is the same on
every build.
"""

from __future__ import annotations

from sqlglot import exp

from segctl.compiler.context import PlanContext
from segctl.compiler.sql import col, ident
from segctl.definitions.model import (
    ColumnTest,
    ColumnType,
    EventMatch,
    EventMeasure,
    SequenceCondition,
    Window,
)
from segctl.sources.nested import (
    PropertyPath,
    access,
    parse_path,
    share_json_parses,
    value_type,
)


def want(value_type: ColumnType) -> str:
    """How a nested value is read for a comparator of this type (SPEC 1)."""
    return {
        ColumnType.NUMBER: "number",
        ColumnType.BOOLEAN: "boolean",
        ColumnType.STRING: "text",
    }.get(value_type, "any")


class Needs:
    """The measures, sequences and columns a plan computes, each with its column name."""

    def __init__(self, ctx: PlanContext) -> None:
        self.ctx = ctx
        self.measures: dict[EventMeasure, str] = {}
        self.sequences: dict[SequenceCondition, str] = {}
        #: ``last: N`` ranks of the portable form, by (match, window, tie-break value SQL):
        #: the rank column's name and the value that orders events of the same instant.
        self.ranks: dict[tuple[EventMatch, Window, str], tuple[str, exp.Expr | None]] = {}
        self.person_columns: dict[str, None] = {"person_id": None}
        self.subscription_columns: dict[str, None] = {}
        self.event_columns: dict[str, None] = {}
        #: Nested property readings, (table, name, reading) -> column: extracted once per
        #: row, in the scan (events) or persons_base, however many conditions read them.
        self.nested: dict[tuple[str, str, str], str] = {}
        self.nested_reads: dict[str, dict[str, exp.Expr]] = {"events": {}, "persons": {}}

    # ---- phase 1: what the conditions read -------------------------------------------------

    def measure(self, measure: EventMeasure) -> str:
        """The column of a per-person event measure (``m__0``)."""
        if measure not in self.measures:
            self.measures[measure] = f"m__{len(self.measures)}"
        return self.measures[measure]

    def sequence(self, sequence: SequenceCondition) -> str:
        """The CTE (and flag column) of a sequence (``q__0``)."""
        return self.sequences.setdefault(sequence, f"q__{len(self.sequences)}")

    def person_column(self, test: ColumnTest) -> str:
        """The persons_base column a person property test reads (``p__`` + it in base)."""
        reading = self._reading("persons", test.column, want(test.comparator.value_type))
        self.person_columns.setdefault(reading, None)
        return reading

    def person(self, column: str) -> str:
        """A plain persons column, read into base as ``p__<column>``."""
        self.person_columns.setdefault(column, None)
        return f"p__{column}"

    def subscription(self, column: str) -> str:
        """A column of the current subscription, read into base as ``sub__<column>``."""
        self.subscription_columns.setdefault(column, None)
        return f"sub__{column}"

    # ---- phase 2: what the aggregates read -----------------------------------------------

    def rank(self, key: tuple[EventMatch, Window, str], tie: exp.Expr | None) -> str:
        """The scan's ``ROW_NUMBER()`` column of a ``last: N`` selection (``r__0``)."""
        rank, _ = self.ranks.setdefault(key, (f"r__{len(self.ranks)}", tie))
        return rank

    def event_value(self, name: str, wanted: str, alias: str | None = None) -> exp.Column:
        """An events column, or a nested property's reading projected by the scan."""
        column = self._reading("events", name, wanted)
        self.event_columns.setdefault(column, None)
        return col(column, alias)

    def of_value(self, name: str) -> exp.Column:
        """The value ``of:`` aggregates: a nested property whose type only the data knows is
        read as a number (SPEC 1); a typed one (a STRUCT's BIGINT) as it is."""
        return self.event_value(name, self._of_want(name))

    def _of_want(self, name: str) -> str:
        if name in self.ctx.schema.get("events", {}):
            return "number" if self._json("events", name) else "any"
        path = parse_path(name)
        leaf = value_type(self.ctx.column_types["events"][path.column], path.keys)
        typed = leaf is not None and leaf.this not in exp.DataType.TEXT_TYPES
        return "any" if typed else "number"

    def _reading(self, table: str, name: str, wanted: str) -> str:
        """``name`` itself for a plain column; for a nested path, the column its reading is
        projected as (registered once per name and reading)."""
        plain = name in self.ctx.schema.get(table, {})
        if plain and not self._json(table, name):
            return name
        key = (table, name, wanted)
        if key not in self.nested:
            path = PropertyPath(name, (), name) if plain else parse_path(name)
            column_type = self.ctx.column_types[table][path.column]
            read = access(col(path.column), column_type, path.keys, wanted)
            prefix = "n__" if table == "events" else f"n__{wanted}__"
            self.nested[key] = f"{prefix}{len(self.nested)}"
            self.nested_reads[table][self.nested[key]] = read
        return self.nested[key]

    def _json(self, table: str, name: str) -> bool:
        """Whether a plain column holds JSON values (a top-level NDJSON key whose lines mix
        numbers and text), read by the comparator's value as nested JSON values are."""
        return self.ctx.column_types.get(table, {}).get(name) == "JSON"

    # ---- the tables' view of it ------------------------------------------------------------

    def events_source(self) -> exp.Expr:
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
