"""Compiled SQL for a warehouse: typed for its dialect, and saying what it reads.

A plan reads the canonical tables ``events``, ``persons``, ``subscriptions`` and one table per
static list file. Inside segctl they are views over the project's files; in a warehouse they are
the user's tables. So the SQL that ``segctl compile --dialect D`` prints starts with a comment
naming each table and the columns it reads, with the ``CREATE TABLE`` that holds them in D, and
its timestamp literals have the type the timestamp columns have there.

Timestamps are naive UTC in segctl's data contract, which is ``TIMESTAMP`` in most dialects.
BigQuery is the exception: its ``DATETIME`` is naive and its ``TIMESTAMP`` is an instant, event
tables use ``TIMESTAMP``, and BigQuery refuses to compare the two implicitly; so there the
columns are ``TIMESTAMP`` and so are the literals.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from segctl.definitions.model import ColumnType, Schema

#: The SQL type of a timestamp column (and of the literals compared with it), per dialect.
TIMESTAMP_TYPES: dict[str, str] = {
    "duckdb": "TIMESTAMP",
    "spark": "TIMESTAMP",
    "postgres": "TIMESTAMP",
    "bigquery": "TIMESTAMPTZ",  # sqlglot's name for BigQuery's TIMESTAMP (an instant)
    "snowflake": "TIMESTAMPNTZ",  # explicit: TIMESTAMP follows the account's mapping setting
    "trino": "TIMESTAMP",
}
#: The generic SQL type of each column family (rendered in the dialect by sqlglot).
FAMILY_TYPES: dict[ColumnType, str] = {
    ColumnType.STRING: "TEXT",
    ColumnType.NUMBER: "DOUBLE",
    ColumnType.BOOLEAN: "BOOLEAN",
    ColumnType.OTHER: "TEXT",
}
SOURCE_TABLES = ("events", "persons", "subscriptions")


@dataclass(frozen=True)
class ListTable:
    """A static list file as the table a plan reads: one ``key`` column."""

    table: str
    file: str  # as written in the segment file
    key: str  # the file's column holding the values


def retype(tree: exp.Expr, dialect: str) -> exp.Expr:
    """``tree`` with its timestamp casts in ``dialect``'s timestamp type (a copy)."""
    target = TIMESTAMP_TYPES[dialect]
    if target == "TIMESTAMP":
        return tree
    to = exp.DataType.build(target)

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Cast) and node.to.is_type(exp.DataType.Type.TIMESTAMP):
            return exp.Cast(this=node.this, to=to.copy())
        return node

    return tree.transform(swap)


def column_type(family: ColumnType, dialect: str, engine_type: str | None = None) -> exp.DataType:
    """The SQL type a column of this family has in ``dialect``'s tables; a nested one (a
    STRUCT, a MAP, a list: ``engine_type``, DuckDB's spelling) keeps its shape, which the
    plan reads into, but in PostgreSQL, which holds it as a JSONB document."""
    if family is ColumnType.TIMESTAMP:
        return exp.DataType.build(TIMESTAMP_TYPES[dialect])
    if family is ColumnType.OTHER and engine_type is not None:
        nested = exp.DataType.build(engine_type, dialect="duckdb")
        if nested.is_type(*exp.DataType.NESTED_TYPES):
            return exp.DataType.build("JSONB") if dialect == "postgres" else nested
    return exp.DataType.build(FAMILY_TYPES[family])


def expected_tables(
    sql: str, dialect: str, schema: Schema, lists: list[ListTable]
) -> dict[str, dict[str, ColumnType]]:
    """The tables ``sql`` reads and, for each, the columns of the data schema it names
    (in the schema's order; list tables have their one ``key`` column)."""
    # Read back from the SQL itself: what the header promises is what the text reads.
    tree = sqlglot.parse_one(sql, read=dialect)
    tables = {t.name for t in tree.find_all(exp.Table)}
    # A STRUCT's field read with a dot (BigQuery, Trino) parses as column.table: both count.
    named = {n for c in tree.find_all(exp.Column) for n in (c.name, c.table) if n}
    found: dict[str, dict[str, ColumnType]] = {}
    for table in SOURCE_TABLES:
        if table in tables and table in schema:
            columns = schema[table]
            found[table] = {c: t for c, t in columns.items() if c in named or c == "person_id"}
    for item in lists:
        if item.table in tables:
            found[item.table] = {"key": ColumnType.STRING}
    return found


def header(
    sql: str,
    dialect: str,
    schema: Schema,
    lists: list[ListTable],
    title: str,
    engine_types: dict[str, dict[str, str]] | None = None,
) -> str:
    """The comment that opens compiled SQL: what it computes, the tables and columns it reads,
    how to fill the list tables, and the ``CREATE TABLE`` statements for ``dialect``
    (``engine_types``: the columns' DuckDB types, for the nested ones' shapes)."""
    engine_types = engine_types or {}
    tables = expected_tables(sql, dialect, schema, lists)
    by_table = {item.table: item for item in lists}
    lines = [
        f"{title}, for {dialect}.",
        "It reads these tables (segctl's canonical column names; timestamps in UTC):",
    ]
    for table, columns in tables.items():
        lines.append(f"  {table}({', '.join(columns)})")
        if table in by_table:
            item = by_table[table]
            how = "lower-cased and trimmed" if item.key == "email" else "as text"
            lines.append(
                f"    one row per distinct non-empty value of column '{item.key}' of "
                f"{item.file}, {how}"
            )
    if dialect == "bigquery":
        lines.append("Run it with the query's default dataset set to the one holding them.")
    lines.append("Create them with:")
    for table, columns in tables.items():
        create = exp.Create(
            this=exp.Schema(
                this=exp.Table(this=exp.to_identifier(table, quoted=True)),
                expressions=[
                    exp.ColumnDef(
                        this=exp.to_identifier(name, quoted=True),
                        kind=column_type(family, dialect, engine_types.get(table, {}).get(name)),
                    )
                    for name, family in columns.items()
                ],
            ),
            kind="TABLE",
        )
        lines.append(f"  {create.sql(dialect=dialect)};")
    return "".join(f"-- {_printable(line)}\n" for line in lines)


def _printable(line: str) -> str:
    """``line`` with control characters replaced: a list file's name comes from a segment file,
    and a line break in it would end the comment and let the rest run as SQL."""
    return "".join(c if c.isprintable() else "?" for c in line)
