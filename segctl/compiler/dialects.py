"""Dialect adjustments of a compiled plan that sqlglot does not make by itself.

Regex inline flags (SPEC 2.4b): a pattern may start with ``(?i)``, ``(?s)``, ``(?m)`` or a
combination. DuckDB and BigQuery (RE2), Spark (java.util.regex) and Trino (Java syntax) read the
group inside the pattern alike. Snowflake does not read inline flags: they move to
the parameters argument, where ``i``, ``s`` and ``m`` mean the same. And Snowflake's
REGEXP_LIKE matches the whole value (it anchors the pattern at both ends), where ``regex`` is a
search: the test is ``REGEXP_INSTR(value, pattern, 1, 1, 0[, flags]) > 0`` there. PostgreSQL reads
``(?i)`` and ``(?s)`` (its default), but its ``(?m)`` also stops ``.`` from matching a newline,
so a pattern with ``(?m)`` is refused for PostgreSQL rather than compiled to another meaning.

JSON text (SPEC 1, nested properties): PostgreSQL reads keys out of a ``json`` value, and the
tables hold JSON as text, so each reading casts its column (``JSON_EXTRACT_PATH_TEXT(CAST(props
AS JSON), 'plan')``); a column of JSON values read whole is ``CAST(jv AS JSON) #>> '{}'``, its
scalar unquoted.
"""

from __future__ import annotations

import re

from sqlglot import exp

from segctl.errors import DefinitionError
from segctl.sources.nested import json_reads

_FLAGS = re.compile(r"^\(\?([ism]+)\)")


def adjust(query: exp.Expr, dialect: str) -> exp.Expr:
    """The plan with its regex tests and JSON readings in the form ``dialect`` reads (a copy
    when changed)."""
    if dialect not in ("snowflake", "postgres"):
        return query
    query = query.copy()
    if dialect == "postgres":
        _postgres_json(query)
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
    return query


def _postgres_json(query: exp.Expr) -> None:
    for node in json_reads(query):
        value = exp.cast(node.this, "JSON")
        path = node.expression
        if isinstance(path, exp.JSONPath) and len(path.expressions) == 1:  # the root alone
            node.replace(exp.JSONBExtractScalar(this=value, expression=exp.Literal.string("{}")))
        else:
            node.set("this", value)
