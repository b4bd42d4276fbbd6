"""What a plan depends on besides the definitions: the schema, as_of, the dialect...

A :class:`PlanContext` is built by whoever knows the data (``Project.plan_context`` registers
the list files and the persons view at as_of, then builds one); the compiler only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlglot import exp

from segctl.compiler.calendar import local_day_of
from segctl.definitions.model import Schema


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
    #: The ``events`` the plan reads hold the rows of ``persons_filter``'s persons alone (an
    #: incremental run's temp table in place of the view): their scan needs no filter.
    events_shadowed: bool = False

    def local_day(self, value: exp.Expr) -> exp.Expr:
        """The calendar day of a naive-UTC timestamp in the project timezone."""
        return local_day_of(value, self.timezone)

    def as_of_day(self) -> datetime:
        """as_of's calendar day in the project timezone, as a naive midnight."""
        local = self.as_of.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(self.timezone))
        return datetime(local.year, local.month, local.day)
