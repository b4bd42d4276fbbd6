"""The Spark engine: the same compiled plan, run on Apache Spark (SPEC 8, ``--engine spark``).

The driver keeps everything it has with the default engine: a DuckDB connection whose views
describe the inputs (Parquet footers, a CSV sample), against which definitions are validated
and person ids checked, and which holds the result table that diffs, the state store and
delivery read. Spark does the scan: it reads the same files, conforms each table to the schema
of DuckDB's view (canonical names, person ids as text, every timestamp as UTC), registers it
under the same view name, runs the plan rendered in Spark SQL, and returns ``person_id`` plus
one boolean per segment as Arrow, loaded into the DuckDB result table.

The session runs with ``spark.sql.session.timeZone=UTC`` (Spark's TIMESTAMP is then DuckDB's
naive-UTC TIMESTAMP) and ANSI mode (a value that does not parse is an error, as in DuckDB, not a
silent NULL). pyspark is imported only here, and only when a plan first runs.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import reduce
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

from segctl.config import Config
from segctl.definitions.model import ListCondition
from segctl.engine.duckdb import TIMESTAMP_COLUMNS, DuckDBEngine, qident, quote
from segctl.engine.inputs import InputFiles
from segctl.errors import DataError, DefinitionError, UsageError
from segctl.tempnames import SPARK_RESULT

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame, SparkSession

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

#: DuckDB's type of a view column -> the Spark type its values are cast to.
SPARK_TYPES = {
    "VARCHAR": "string",
    "BOOLEAN": "boolean",
    "TINYINT": "tinyint",
    "SMALLINT": "smallint",
    "INTEGER": "int",
    "BIGINT": "bigint",
    "HUGEINT": "decimal(38,0)",
    "UTINYINT": "smallint",
    "USMALLINT": "int",
    "UINTEGER": "bigint",
    "UBIGINT": "decimal(20,0)",
    "FLOAT": "float",
    "DOUBLE": "double",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
}
_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")


def spark_type(duck_type: str) -> str | None:
    """The Spark SQL type of a DuckDB type, or None for types kept as Spark reads them."""
    decimal = _DECIMAL.match(duck_type)
    if decimal:
        return f"decimal({decimal.group(1)},{decimal.group(2)})"
    return SPARK_TYPES.get(duck_type)


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
                f"cannot start Spark on {master or DEFAULT_MASTER}: {_first_line(exc)} (Spark "
                "needs Java 17 or later on the PATH or in JAVA_HOME, and a reachable master)"
            ) from None
        session.sparkContext.setLogLevel("ERROR")
    for key, value in SESSION_CONF.items():
        session.conf.set(key, value)
    return session


class SparkEngine(DuckDBEngine):
    """Runs plans on Spark; schema, validation and the result table stay in the driver's DuckDB.

    ``spark`` is an existing session to use; by default the active one, else a new one on
    ``config.engine.spark_master`` started when the first plan runs.
    """

    def __init__(self, config: Config, spark: SparkSession | None = None) -> None:
        require_pyspark()
        super().__init__(config)
        self._spark = spark
        self._frames: dict[str, DataFrame] = {}  # view name -> the conformed input
        self._lists: dict[str, ListCondition] = {}  # list view name -> its condition

    @property
    def spark(self) -> SparkSession:
        if self._spark is None:
            engine = self.config.engine
            self._spark = start_session(engine.spark_master, dict(engine.spark_conf))
        return self._spark

    # ---- views ------------------------------------------------------------------------

    def register_lists(self, conditions: list[ListCondition]) -> dict[str, str]:
        tables = super().register_lists(conditions)
        for cond in conditions:
            self._lists.setdefault(tables[cond.path], cond)
        return tables

    def views(self) -> dict[str, DataFrame]:
        """Every input (and list) as a Spark DataFrame with its DuckDB view's columns and
        types, registered as a temporary view of the same name."""
        for table in self.schema():
            if table not in self._frames:
                with self.spark_errors(table):
                    self._frames[table] = self._table_frame(table)
        for name, cond in self._lists.items():
            if name not in self._frames:
                with self.spark_errors("lists"):
                    self._frames[name] = self._list_frame(cond)
        for name, frame in self._frames.items():
            # Again each time: another project may have used these names in this session.
            frame.createOrReplaceTempView(name)
        return self._frames

    def _table_frame(self, table: str) -> DataFrame:
        # The view's columns but DuckDB's own helpers (a raw timestamp for its Parquet pushdown).
        described = self.rows(f"DESCRIBE {qident(table)}")
        target = [(str(r[0]), str(r[1])) for r in described if not str(r[0]).startswith("__")]
        source_of = self.config.columns.get(table, {})
        frames = []
        for group in self.inputs[table]:
            raw = self._read(group)
            frames.append(
                raw.select(
                    *(
                        _conform(raw, source_of.get(name, name), duck_type).alias(name)
                        for name, duck_type in target
                    )
                )
            )
        return reduce(lambda a, b: a.unionByName(b), frames)

    def _read(self, group: InputFiles) -> DataFrame:
        """One group of files as Spark reads them; CSV columns all text, named as DuckDB
        names them, in the dialect DuckDB sniffed."""
        reader = self.spark.read
        if group.format == "parquet":
            if len(group.files) > 1:
                reader = reader.option("mergeSchema", "true")
            return reader.parquet(*group.files)
        frames = [self._read_csv(files) for files in _by_first_line(group.files)]
        return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)

    def _read_csv(self, files: list[str]) -> DataFrame:
        from pyspark.sql.types import StringType, StructField, StructType

        sample = InputFiles("csv", (files[0],), "csv", files[0])
        names = [name for name, _ in self._describe(self._reader(sample), "lists")]
        row = self.rows(
            f"SELECT Delimiter, Quote, Escape, HasHeader, Comment FROM sniff_csv({quote(files[0])})"
        )[0]
        delimiter, quote_char, escape, header, comment = (_sniffed(v) for v in row)
        options: dict[str, str] = {
            "sep": delimiter or ",",
            "quote": quote_char or "\u0000",  # DuckDB found no quoting: none
            "escape": escape or quote_char or "\\",  # "" inside quotes, as DuckDB reads it
            "header": "true" if header else "false",
            "mode": "FAILFAST",  # a malformed row is an error, as in DuckDB
            "enforceSchema": "true",
        }
        if comment:
            options["comment"] = comment
        schema = StructType([StructField(name, StringType()) for name in names])
        return self.spark.read.options(**options).schema(schema).csv(files)

    def _list_frame(self, cond: ListCondition) -> DataFrame:
        from pyspark.sql import functions as F

        if cond.path.endswith(".parquet"):
            raw = self.spark.read.parquet(cond.path)
        else:
            raw = self._read_csv([cond.path])
        source = F.col(_backticks(cond.key))
        key = source.cast("string")
        if cond.key == "email":
            key = F.lower(F.trim(key))
        return raw.where(source.isNotNull()).select(key.alias("key")).distinct()

    # ---- execution --------------------------------------------------------------------

    def sql(self, query: exp.Expression) -> str:
        """A plan in Spark SQL; a construct Spark cannot express is refused, never guessed."""
        try:
            return query.sql(dialect="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)
        except sqlglot.errors.UnsupportedError as exc:
            raise DefinitionError(f"cannot run on spark: {exc}") from None

    def arrow(self, query: exp.Expression | str) -> pa.Table:
        """A plan (a sqlglot tree) runs on Spark; text is our own SQL over the driver's DuckDB
        tables (the result table, state), as with the default engine."""
        if isinstance(query, str):
            return super().arrow(query)
        sql = self.sql(query)
        self.views()
        with self.spark_errors(None):
            return _naive_utc(_to_arrow(self.spark.sql(sql)))

    def create_table(self, name: str, query: exp.Expression, columns: str = "*") -> None:
        """Run a plan on Spark and load ``SELECT columns`` (DuckDB SQL) of its result into
        the driver's DuckDB as a temporary table."""
        table = self.arrow(query)
        self.con.register(SPARK_RESULT, table)
        try:
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE {qident(name)} AS "
                f"SELECT {columns} FROM {SPARK_RESULT}"
            )
        finally:
            self.con.unregister(SPARK_RESULT)

    @contextmanager
    def spark_errors(self, table: str | None) -> Iterator[None]:
        """Spark's errors -> DataError (naming the table, and the file and value of a
        timestamp that does not parse); anything else is a segctl bug and propagates."""
        from py4j.protocol import Py4JJavaError
        from pyspark.errors import AnalysisException, PySparkException

        where = "" if table in (None, "lists") else f"data.{table}: "
        try:
            yield
        except AnalysisException as exc:
            if table is None:
                raise RuntimeError(
                    "Spark rejected the compiled plan (`segctl compile --dialect spark` shows "
                    f"it): {_first_line(exc)}"
                ) from None
            raise DataError(f"{where}cannot read input: {_first_line(exc)}") from None
        except PySparkException as exc:
            message = _first_line(exc)
            if "CAST_INVALID_INPUT" in message:  # trace it to its file, column and value
                for name in [table] if table else list(self.inputs):
                    for column in TIMESTAMP_COLUMNS.get(name, ()):
                        self._find_bad_timestamp(name, column)
            raise DataError(f"{where}{message}") from None
        except Py4JJavaError as exc:  # a Java error pyspark has no class for (reading files)
            detail = str(exc.java_exception.toString()).splitlines()[0]
            raise DataError(f"{where}Spark failed: {detail}") from None


# ---- helpers ------------------------------------------------------------------------------


def _conform(raw: DataFrame, source: str, duck_type: str) -> Column:
    """A source column with the values and type of DuckDB's view column."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import IntegralType, StringType

    target = spark_type(duck_type)
    if source not in raw.columns:  # missing from this group's files: NULL, as union_by_name
        return F.lit(None).cast(target or "string")
    column = F.col(_backticks(source))
    current = raw.schema[source].dataType
    if target == "timestamp" and isinstance(current, IntegralType):
        # Nanoseconds since the epoch (Parquet TIMESTAMP(NANOS)); DuckDB truncates to micros.
        micros = exp.IntDiv(
            this=exp.column(source, quoted=True), expression=exp.Literal.number(1000)
        )
        return F.timestamp_micros(F.expr(micros.sql(dialect="spark")))
    if target == "timestamp" and isinstance(current, StringType):
        # ISO-8601 text: an offset is honoured, none means UTC (the session time zone).
        return column.cast("timestamp")
    return column.cast(target) if target else column


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


def _by_first_line(files: tuple[str, ...]) -> Iterator[list[str]]:
    """Files grouped by their first line: files with one header are read in one pass."""
    groups: dict[bytes, list[str]] = {}
    for file in files:
        opener: Any = gzip.open if file.lower().endswith(".gz") else open
        with opener(file, "rb") as handle:
            groups.setdefault(handle.readline(), []).append(file)
    yield from groups.values()


def _sniffed(value: Any) -> Any:
    return None if value in ("(empty)", "") else value


def _backticks(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
