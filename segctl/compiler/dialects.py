"""Dialect adjustments of a compiled plan that sqlglot does not make by itself.

Regex inline flags (SPEC 2.4b): a pattern may start with ``(?i)``, ``(?s)``, ``(?m)`` or a
combination. DuckDB and BigQuery (RE2), Spark (java.util.regex) and Trino (Java syntax) read the
group inside the pattern alike. Snowflake does not read inline flags: they move to
the parameters argument, where ``i``, ``s`` and ``m`` mean the same. And Snowflake's
REGEXP_LIKE matches the whole value (it anchors the pattern at both ends), where ``regex`` is a
search: the test is ``REGEXP_INSTR(value, pattern, 1, 1, 0[, flags]) > 0`` there. PostgreSQL reads
``(?i)`` and ``(?s)`` (its default), but its ``(?m)`` also stops ``.`` from matching a newline,
so a pattern with ``(?m)`` is refused for PostgreSQL rather than compiled to another meaning.

Local times (a calendar measure in a project ``timezone`` other than UTC): BigQuery's
``DATETIME(ts, zone)`` of its TIMESTAMP columns, Trino's ``WITH_TIMEZONE(ts, 'UTC') AT TIME ZONE
zone`` (an ``AT TIME ZONE`` of a naive timestamp reads it in the session's zone).

JSON text (SPEC 1, nested properties): PostgreSQL reads keys out of a ``json`` value, and the
tables hold JSON as text, so each reading casts its column (``JSON_EXTRACT_PATH_TEXT(CAST(props
AS JSON), 'plan')``); a column of JSON values read whole is ``CAST(jv AS JSON) #>> '{}'``, its
scalar unquoted.

STRUCT, MAP and key/value record columns: PostgreSQL holds them as ``JSONB`` documents (the
header's ``CREATE TABLE`` says so; DuckDB's ``to_json`` of the column fills one). A field or a
key is ``jsonb_extract_path(col, 'field')``, the value of the first record whose key matches
(GA4's ``event_params``) a subquery over ``jsonb_array_elements``, and the value read is the
document's scalar as text (``#>> '{}'``) cast to the type DuckDB reads there, so that the
reading rules of SPEC 1 (a number, a boolean, text) apply as they do in DuckDB.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp

from segctl.errors import DefinitionError
from segctl.sources.nested import (
    document_reads,
    field_reads,
    is_text_type,
    json_reads,
    record_reads,
)

_FLAGS = re.compile(r"^\(\?([ism]+)\)")


def adjust(query: exp.Expr, dialect: str) -> exp.Expr:
    """The plan with its regex tests and JSON readings in the form ``dialect`` reads (a copy
    when changed)."""
    if dialect not in ("snowflake", "postgres", "bigquery", "trino"):
        return query
    query = query.copy()
    if dialect == "postgres":
        _postgres_json(query)
        _postgres_documents(query)
    if dialect == "bigquery":
        _bigquery_records(query)
    if dialect in ("bigquery", "trino"):
        _dotted_fields(query)
        _local_times(query, dialect)
    if dialect in ("snowflake", "postgres"):
        _regexes(query, dialect)
    return query


def _regexes(query: exp.Expr, dialect: str) -> None:
    """Snowflake's search with the flags as parameters; PostgreSQL's refusal of ``(?m)``."""
    for node in list(query.find_all(exp.RegexpLike)):
        pattern = node.expression
        if not isinstance(pattern, exp.Literal) or not pattern.is_string:
            continue
        found = _FLAGS.match(pattern.this)
        flags = "".join(sorted(set(found.group(1)))) if found else ""
        if dialect == "postgres":
            if "m" in flags:
                raise DefinitionError(
                    f"cannot compile for postgres: regex '{pattern.this}' uses (?m), which "
                    "PostgreSQL reads differently ('.' stops matching a newline too); "
                    "rewrite it without (?m) for this dialect"
                )
            continue
        text = pattern.this[found.end() :] if found else pattern.this
        position = [exp.Literal.number(n) for n in (1, 1, 0)]
        arguments = [node.this, exp.Literal.string(text), *position]
        arguments += [exp.Literal.string(flags)] if flags else []
        search = exp.Anonymous(this="REGEXP_INSTR", expressions=arguments)
        node.replace(exp.GT(this=search, expression=exp.Literal.number(0)))


def _postgres_json(query: exp.Expr) -> None:
    for node in json_reads(query):
        value = exp.cast(node.this, "JSON")
        path = node.expression
        if isinstance(path, exp.JSONPath) and len(path.expressions) == 1:  # the root alone
            node.replace(exp.JSONBExtractScalar(this=value, expression=exp.Literal.string("{}")))
        else:
            node.set("this", value)


#: The first record of a JSONB list whose key matches (``:key``), its value (``:list``).
_PG_RECORD = sqlglot.parse_one(
    "SELECT __kv.e -> 'value' FROM JSONB_ARRAY_ELEMENTS(:list) AS __kv(e) "
    "WHERE __kv.e ->> 'key' = :key LIMIT 1",
    read="postgres",
)


def _postgres_documents(query: exp.Expr) -> None:
    """STRUCT, MAP and record list reads as reads of a JSONB document."""
    for read in document_reads(query):
        value: exp.Expr = read.column
        for kind, key in read.steps:
            if kind == "key":
                value = exp.Anonymous(
                    this="JSONB_EXTRACT_PATH", expressions=[value, exp.Literal.string(key)]
                )
            else:
                values = {"list": value, "key": exp.Literal.string(key)}
                select = exp.replace_placeholders(_PG_RECORD.copy(), **values)
                assert isinstance(select, exp.Select)
                value = select.subquery()
        dtype = read.dtype
        if dtype is None or dtype.is_type(*exp.DataType.NESTED_TYPES):
            read.node.replace(value)  # a document still (or typed slots, read below)
            continue
        text = exp.JSONBExtractScalar(this=value, expression=exp.Literal.string("{}"))
        typed = text if is_text_type(dtype) else exp.cast(text, dtype)
        read.node.replace(typed)


def _dotted_fields(query: exp.Expr) -> None:
    """A STRUCT's field by name, ``col['field']`` in DuckDB and Spark, is ``col.field`` in
    BigQuery and Trino (where a ROW takes only a constant position in brackets)."""
    for node in field_reads(query):
        [name] = node.expressions
        node.replace(exp.Dot(this=node.this, expression=exp.to_identifier(name.this, quoted=True)))


def _bigquery_records(query: exp.Expr) -> None:
    """The value of the first record whose key matches in a list of key/value records (GA4's
    ``event_params``): BigQuery has no array filter, so a subquery over the list, as GA4's
    own examples read it: ``(SELECT __kv.value FROM UNNEST(event_params) AS __kv WHERE
    __kv.key = 'page_location' LIMIT 1)``."""
    for node in record_reads(query):
        first = node.this  # the first match of the list's filter
        assert isinstance(first, exp.Bracket) and isinstance(first.this, exp.ArrayFilter)
        listed, match = first.this.this, first.this.expression
        assert isinstance(match, exp.Lambda)
        [record] = match.expressions
        select = (
            exp.select(exp.column("value", table=record.name))
            .from_(exp.Unnest(expressions=[listed], alias=exp.TableAlias(columns=[record])))
            .where(match.this)
            .limit(1)
        )
        node.replace(select.subquery())


def _local_times(query: exp.Expr, dialect: str) -> None:
    """A naive-UTC timestamp's local time (``local_day_of``: the project's timezone), in the
    form each warehouse types right. BigQuery's columns are TIMESTAMP (instants):
    ``DATETIME(ts, zone)``. Trino's are naive TIMESTAMP, which an ``AT TIME ZONE`` would read
    in the session's zone: ``WITH_TIMEZONE(ts, 'UTC') AT TIME ZONE zone``."""
    for node in list(query.find_all(exp.ConvertTimezone)):
        value, zone = node.args["timestamp"], node.args["target_tz"]
        if dialect == "bigquery":
            node.replace(exp.Anonymous(this="DATETIME", expressions=[value, zone]))
        else:
            utc = exp.Anonymous(this="WITH_TIMEZONE", expressions=[value, node.args["source_tz"]])
            node.replace(exp.AtTimeZone(this=utc, zone=zone))
