"""A project's segments as SQL for a warehouse dialect (``segctl compile``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

import sqlglot

from segctl.definitions.model import list_conditions
from segctl.errors import DefinitionError, UsageError
from segctl.timeutil import iso, parse_as_of

if TYPE_CHECKING:
    from segctl.project import Project

DIALECTS = ("duckdb", "spark", "postgres", "bigquery", "snowflake", "trino")


def compile_sql(
    project: Project,
    segments: str | list[str] | None,
    dialect: str,
    as_of: str | datetime | None,
    *,
    pretty: bool,
    header: bool,
) -> str:
    """SQL for one segment's sorted members, or for several (default: all) segments as
    ``person_id`` plus one boolean column each; with ``header``, opened by a comment naming
    what it reads and the ``CREATE TABLE`` statements for it (see :meth:`Project.compile`)."""
    from segctl.compiler import Plan, warehouse
    from segctl.compiler.dialects import adjust
    from segctl.sources.nested import NestedAccessError, check_dialect

    if dialect not in DIALECTS:
        raise UsageError(f"unknown dialect '{dialect}' (choose from {', '.join(DIALECTS)})")
    moment = parse_as_of(as_of, project.config.tz)
    wanted = [segments] if isinstance(segments, str) else segments
    names = project.segment_names(wanted)
    # The SQL shown must run on plain tables: no time bounds on segctl's raw column.
    context = replace(project.plan_context(names, moment, dialect), raw_timestamp=None)
    builder = Plan(project.definitions, context)
    if wanted and len(wanted) == 1:
        query = builder.members_query(wanted[0])
        title = f"segctl: the members of {wanted[0]} at {iso(moment)} (person_id, sorted)"
    else:
        query = builder.segments_query(names)
        title = (
            f"segctl: {len(names)} segment(s) at {iso(moment)} "
            "(person_id and one boolean column per segment)"
        )
    try:
        check_dialect(query, dialect)
    except NestedAccessError as exc:
        raise DefinitionError(f"cannot compile for {dialect}: {exc}") from None
    typed = warehouse.retype(adjust(query, dialect), dialect)
    try:
        sql = typed.sql(dialect=dialect, pretty=pretty, unsupported_level=sqlglot.ErrorLevel.RAISE)
    except sqlglot.errors.UnsupportedError as exc:
        raise DefinitionError(f"cannot compile for {dialect}: {exc}") from None
    if not header:
        return sql
    definitions = project.definitions
    used = (definitions.segments[dep] for n in names for dep in definitions.dependencies(n))
    lists = [
        warehouse.ListTable(context.list_tables[c.path], c.file, c.key)
        for c in list_conditions(used)
    ]
    types = project.engine.driver.column_types()
    return warehouse.header(sql, dialect, project.schema, lists, title, types) + sql
