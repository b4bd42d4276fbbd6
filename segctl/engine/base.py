"""The Engine protocol: where a compiled plan runs.

Two engines implement it side by side (SPEC 8): :class:`~segctl.engine.duckdb.DuckDBEngine`,
the default, and :class:`~segctl.engine.spark.SparkEngine`. Each has a *driver*: the DuckDB
connection on this machine that holds the input views (the schema, the data checks), the result
table, the attached state store and delivery's staging tables. A DuckDBEngine is its own driver;
a SparkEngine holds one and runs only the plans on Spark.

A call site says where its query runs:

- ``engine.arrow(plan)``, ``engine.create_table(name, plan)``: on the evaluation engine (a plan
  is a sqlglot tree, rendered in the engine's dialect);
- ``engine.driver.rows(sql)``, ``engine.driver.arrow(...)``, ``engine.driver.con``: on DuckDB,
  whatever the engine.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlglot import exp

    from segctl.definitions.model import ListCondition
    from segctl.engine.duckdb import DuckDBEngine


class Engine(Protocol):
    """Runs compiled plans; everything else happens in its DuckDB :attr:`driver`."""

    @property
    def dialect(self) -> str:
        """The SQL dialect plans are rendered in (``duckdb`` or ``spark``)."""
        ...

    @property
    def driver(self) -> DuckDBEngine:
        """The DuckDB connection on this machine (input views, result table, state)."""
        ...

    def register_lists(self, conditions: list[ListCondition]) -> dict[str, str]:
        """A table per static list file the plans read: list file path -> table name."""
        ...

    def prepare(self, as_of: datetime) -> None:
        """Inputs that depend on the evaluation time (``latest_by`` of persons)."""
        ...

    def arrow(self, plan: exp.Expr) -> pa.Table:
        """Run a plan on this engine; its whole result as Arrow."""
        ...

    def create_table(self, name: str, plan: exp.Expr, columns: str = "*") -> None:
        """Run a plan on this engine into the driver's temporary table ``name``:
        ``SELECT columns`` (DuckDB SQL over the plan's columns) of its result."""
        ...
