"""The views over the sources, as sqlglot trees (DuckDB): what :mod:`segctl.sources.load`
creates once each source's canonical rows are known.

- ``segctl_events_staged``: every event row with its source's index, its resolved person and a
  duplicate flag (``dedupe_on``);
- ``events``: the rows the plans count (not duplicates, with a person and an event name);
- ``persons``: the persons source (its latest row per person at ``as_of`` with ``latest_by``),
  else the distinct persons of the events with ``created_at`` their first event.
"""

from __future__ import annotations

from datetime import datetime

from sqlglot import exp

from segctl.tempnames import EVENTS_STAGED_VIEW, IDENTITY_MAP_TABLE

#: Helper columns of the views (``__``: not properties, hidden from the schema and inspect).
SOURCE_INDEX = "__segctl_source"
DUPLICATE = "__segctl_duplicate"
LATEST = "__segctl_latest"
RAW_TIMESTAMP = "__segctl_raw_timestamp"
ROW = "__segctl_row"  # the alias of a source's rows, whose name is the row as a whole


def flagged(query: exp.Query, index: int, dedupe: list[str] | None, drop_raw: bool) -> exp.Query:
    """One events source's rows with its index and the duplicate flag: with ``dedupe`` (the
    order of repeats), a row repeating an earlier row's ``dedupe_on`` value is flagged."""
    flag: exp.Expr = exp.false()
    exclude = []
    if dedupe is not None:
        duplicate = quoted(DUPLICATE)
        # Repeats alike in these columns but not in others (a copy without a property):
        # the hash of the whole row decides, so that every evaluation keeps the same one.
        whole = exp.func("hash", exp.column(ROW, quoted=True))
        rank = exp.Window(
            this=exp.RowNumber(),
            partition_by=[duplicate],
            order=exp.Order(expressions=[*(exp.column(c) for c in dedupe), whole]),
        )
        flag = exp.Case(
            ifs=[exp.If(this=duplicate.copy().is_(exp.null()), true=exp.false())],
            default=exp.GT(this=rank, expression=exp.Literal.number(1)),
        )
        exclude.append(DUPLICATE)
    if drop_raw:
        exclude.append(RAW_TIMESTAMP)
    return exp.select(
        star(*exclude),
        alias(exp.Literal.number(index), SOURCE_INDEX),
        alias(flag, DUPLICATE),
    ).from_(query.subquery(ROW))


def resolved(union: exp.Query) -> exp.Query:
    """The events with anonymous rows given the person their id links to."""
    person = exp.Coalesce(
        this=exp.column("person_id", "s"), expressions=[exp.column("person_id", "m")]
    )
    anonymous = exp.and_(
        exp.column("person_id", "s").is_(exp.null()),
        exp.EQ(this=exp.column("anonymous_id", "s"), expression=exp.column("id", "m")),
    )
    return (
        exp.select(exp.alias_(person, "person_id"), star("person_id", table="s"))
        .from_(union.subquery("s"))
        .join(exp.table_(IDENTITY_MAP_TABLE, alias="m"), on=anonymous, join_type="left")
    )


def counted(staged: exp.Query | None = None) -> exp.Query:
    """The ``events`` view: not repeats, with a person and an event name (of ``staged``'s
    rows, by default of the staged view's)."""
    kept = exp.and_(exp.not_(quoted(DUPLICATE)), present("person_id", "event"))
    rows = staged.subquery() if staged is not None else exp.to_table(EVENTS_STAGED_VIEW)
    return exp.select(star(SOURCE_INDEX, DUPLICATE)).from_(rows).where(kept)


def links(identities: list[exp.Query], union: exp.Query) -> exp.Query:
    """Every distinct (id, person_id) link: of the identities sources, and of the events
    (``union``) carrying both a person id and a different anonymous id."""
    found = [
        exp.select("id", "person_id").from_(q.subquery()).where(present("id", "person_id"))
        for q in identities
    ]
    differ = exp.NEQ(this=exp.column("anonymous_id"), expression=exp.column("person_id"))
    found.append(
        exp.select(exp.alias_("anonymous_id", "id"), "person_id")
        .from_(union.subquery())
        .where(exp.and_(present("anonymous_id", "person_id"), differ))
    )
    every: exp.Query = found[0]
    for query in found[1:]:
        every = exp.union(every, query, distinct=False)
    return exp.select("id", "person_id").distinct().from_(every.subquery())


def derived_persons() -> exp.Query:
    """Persons from the events alone: each person id with its first event as created_at."""
    first = exp.Min(this=exp.column("timestamp"))
    return (
        exp.select("person_id", exp.alias_(first, "created_at"))
        .from_("events")
        .group_by("person_id")
    )


def latest(query: exp.Query, as_of: datetime | None) -> exp.Query:
    """``latest_by``: each person's latest row (at or before ``as_of``, when given)."""
    column = quoted(LATEST)
    kept: list[exp.Expr] = [present("person_id")]
    if as_of is not None:
        kept.append(exp.LTE(this=column, expression=timestamp_literal(as_of)))
    newest = exp.Ordered(this=column.copy(), desc=True, nulls_first=False)
    rank = exp.Window(
        this=exp.RowNumber(),
        partition_by=[exp.column("person_id")],
        order=exp.Order(expressions=[newest]),
    )
    return (
        exp.select(star(LATEST))
        .from_(query.subquery())
        .where(exp.and_(*kept))
        .qualify(exp.EQ(this=rank, expression=exp.Literal.number(1)))
    )


def timestamp_literal(moment: datetime) -> exp.Cast:
    """A naive UTC datetime as a SQL timestamp: ``CAST('2026-11-17 00:00:00' AS TIMESTAMP)``."""
    return exp.cast(exp.Literal.string(moment.isoformat(sep=" ")), "TIMESTAMP")


def quoted(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def alias(tree: exp.Expr, name: str) -> exp.Expr:
    """``tree AS "name"``."""
    return exp.alias_(tree, exp.to_identifier(name, quoted=True))


def star(*exclude: str, table: str | None = None) -> exp.Expr:
    """``*`` (of ``table``) without the ``exclude`` columns (DuckDB's ``* EXCLUDE (...)``)."""
    every = exp.Star(except_=[quoted(c) for c in exclude] or None)
    return exp.Column(this=every, table=exp.to_identifier(table)) if table else every


def present(*names: str) -> exp.Condition:
    """Every named column holds a value."""
    return exp.and_(*(exp.not_(exp.column(n).is_(exp.null())) for n in names))
