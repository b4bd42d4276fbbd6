"""The Spark engine: the same compiled plan, run on Apache Spark (SPEC 8, ``--engine spark``).

A SparkEngine holds a DuckDB driver (:class:`~segctl.engine.duckdb.DuckDBEngine`) that keeps
everything it has with the default engine: a DuckDB connection whose views
describe the inputs (Parquet footers, a CSV sample), against which definitions are validated
and person ids checked, and which holds the result table that diffs, the state store and
delivery read. Spark does the scan: it reads the same files, conforms each table to the schema
of DuckDB's view (:mod:`segctl.engine.spark_inputs`), registers it under the same view name,
runs the plan rendered in Spark SQL, and returns ``person_id`` plus one boolean per segment as
Arrow, loaded into the driver's result table.

The session runs with ``spark.sql.session.timeZone=UTC`` (Spark's TIMESTAMP is then DuckDB's
naive-UTC TIMESTAMP) and ANSI mode (a value that does not parse is an error, as in DuckDB, not a
silent NULL). pyspark is imported only here, and only when a plan first runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

from segctl.config import Config
from segctl.definitions.model import ListCondition
from segctl.engine.duckdb import DuckDBEngine, qident
from segctl.engine.spark_inputs import InputFrames, first_line, spark_errors
from segctl.errors import DefinitionError, UsageError
from segctl.tempnames import SPARK_RESULT

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

INSTALL_HINT = "pip install 'segctl[spark]'"
DEFAULT_MASTER = "local[*]"
#: Set on every session segctl uses (runtime settings, so an existing session takes them too).
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "true",
    # Parquet nanosecond timestamps (pandas' default) arrive as longs; converted below.
    "spark.sql.legacy.parquet.nanosAsLong": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
#: Only for a session segctl starts itself.
STARTUP_CONF = {
    "spark.app.name": "segctl",
    "spark.ui.showConsoleProgress": "false",  # segctl draws its own progress
    "spark.log.level": "ERROR",  # stderr stays readable; warnings are Spark's business
}


def require_pyspark() -> None:
    """Refuse early, with the install command, when the optional extra is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise UsageError(
            f"the spark engine needs pyspark, which is not installed: {INSTALL_HINT} "
            "(and Java 17 or later)"
        ) from None


def start_session(master: str | None = None, conf: dict[str, str] | None = None) -> SparkSession:
    """The active SparkSession (a notebook's, a test's, spark-submit's), or a new one on
    ``master`` (default ``local[*]``) with ``conf``; either way set up for segctl's plans."""
    require_pyspark()
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is None:
        builder = SparkSession.builder.master(master or DEFAULT_MASTER)
        for key, value in {**STARTUP_CONF, **(conf or {})}.items():
            builder = builder.config(key, value)
        try:
            session = builder.getOrCreate()
        except Exception as exc:  # the JVM did not start: no Java, a bad master URL ...
            raise UsageError(
                f"cannot start Spark on {master or DEFAULT_MASTER}: {first_line(exc)} (Spark "
                "needs Java 17 or later on the PATH or in JAVA_HOME, and a reachable master)"
            ) from None
        session.sparkContext.setLogLevel("ERROR")
    for key, value in SESSION_CONF.items():
        session.conf.set(key, value)
    return session


class SparkEngine:
    """Runs plans on Spark; schema, validation and the result table stay in its DuckDB
    :attr:`driver` (see :class:`segctl.engine.base.Engine`).

    ``spark`` is an existing session to use; by default the active one, else a new one on
    ``config.engine.spark_master`` started when the first plan runs.
    """

    dialect = "spark"

    def __init__(self, config: Config, spark: SparkSession | None = None) -> None:
        require_pyspark()
        self.config = config
        self.driver = DuckDBEngine(config)
        self._spark = spark
        self._inputs: InputFrames | None = None
        self._lists: dict[str, ListCondition] = {}  # list view name -> its condition
        self._as_of: datetime | None = None

    @property
    def spark(self) -> SparkSession:
        if self._spark is None:
            engine = self.config.engine
            self._spark = start_session(engine.spark_master, dict(engine.spark_conf))
        return self._spark

    @property
    def inputs(self) -> InputFrames:
        """The inputs as Spark DataFrames (the session starts on first use)."""
        if self._inputs is None:
            self._inputs = InputFrames(self.spark, self.driver)
            if self._as_of is not None:
                self._inputs.set_as_of(self._as_of)
        return self._inputs

    # ---- views ------------------------------------------------------------------------

    def register_lists(self, conditions: list[ListCondition]) -> dict[str, str]:
        """The driver's list views (which check the files), read by Spark when a plan runs."""
        tables = self.driver.register_lists(conditions)
        for cond in conditions:
            self._lists.setdefault(tables[cond.path], cond)
        return tables

    def prepare(self, as_of: datetime) -> None:
        self.driver.prepare(as_of)
        self._as_of = as_of
        if self._inputs is not None:
            self._inputs.set_as_of(as_of)

    def views(self) -> dict[str, DataFrame]:
        """Every input (and list) as a Spark DataFrame with its DuckDB view's columns and
        types, registered as a temporary view of the same name."""
        inputs = self.inputs
        for table in self.driver.schema():
            inputs.table(table)
        for name, cond in self._lists.items():
            inputs.list_frame(name, cond)
        for name, frame in inputs.frames.items():
            # Again each time: another project may have used these names in this session.
            frame.createOrReplaceTempView(name)
        return inputs.frames

    # ---- execution --------------------------------------------------------------------

    def sql(self, plan: exp.Expr) -> str:
        """A plan in Spark SQL; a construct Spark cannot express is refused, never guessed."""
        try:
            return plan.sql(dialect="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)
        except sqlglot.errors.UnsupportedError as exc:
            raise DefinitionError(f"cannot run on spark: {exc}") from None

    def arrow(self, plan: exp.Expr) -> pa.Table:
        """Run a plan on Spark; its whole result as Arrow (timestamps naive UTC, as DuckDB's)."""
        sql = self.sql(plan)
        self.views()
        with spark_errors(self.driver, None):
            return _naive_utc(_to_arrow(self.spark.sql(sql)))

    def create_table(self, name: str, plan: exp.Expr, columns: str = "*") -> None:
        """Run a plan on Spark and load ``SELECT columns`` (DuckDB SQL) of its result into
        the driver's DuckDB as a temporary table."""
        table = self.arrow(plan)
        con = self.driver.con
        con.register(SPARK_RESULT, table)
        try:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {qident(name)} AS "
                f"SELECT {columns} FROM {SPARK_RESULT}"
            )
        finally:
            con.unregister(SPARK_RESULT)


# ---- helpers ------------------------------------------------------------------------------


def _to_arrow(frame: DataFrame) -> pa.Table:
    """The whole result on the driver as Arrow (pyspark 4's toArrow; 3.5's private twin)."""
    to_arrow = getattr(frame, "toArrow", None)
    if to_arrow is not None:
        table: pa.Table = to_arrow()
        return table
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    collect: Any = getattr(frame, "_collect_as_arrow")  # noqa: B009 (private, untyped)
    batches = collect()
    return pa.Table.from_batches(batches, schema=to_arrow_schema(frame.schema))


def _naive_utc(table: pa.Table) -> pa.Table:
    """Spark's timestamps arrive tagged with the session zone (UTC); DuckDB's are naive UTC."""
    import pyarrow as pa

    fields = [
        pa.field(f.name, pa.timestamp(f.type.unit), f.nullable)
        if pa.types.is_timestamp(f.type) and f.type.tz is not None
        else f
        for f in table.schema
    ]
    schema = pa.schema(fields)
    return table if schema.equals(table.schema) else table.cast(schema)
