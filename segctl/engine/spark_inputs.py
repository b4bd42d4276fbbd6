"""The inputs as Spark DataFrames, conformed to the driver's DuckDB views (SPEC 8).

Spark reads the same files as DuckDB, maps each source as the loader does
(:mod:`segctl.sources.load`: canonical names, person ids as text, every timestamp as UTC),
unions a role's sources, leaves out repeats and events with no person, and gives anonymous
events their person through the identity map the driver resolved. Each table ends with the
columns and types of the driver's view of the same name, so a plan reads the same rows on
either engine. pyspark is imported only inside the functions (it is an optional extra).
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import reduce
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from segctl.definitions.model import ListCondition
from segctl.engine.duckdb import TIMESTAMP_COLUMNS, DuckDBEngine
from segctl.errors import DataError
from segctl.sources.columns import Column as SourceColumn
from segctl.sources.columns import is_number
from segctl.sources.inputs import InputFiles
from segctl.sources.load import ID_COLUMNS, TEXT_COLUMNS, TIMESTAMPS, Staged
from segctl.sources.sql import read_files
from segctl.sources.sql import table as sql_table
from segctl.sources.views import DUPLICATE, LATEST, timestamp_literal
from segctl.tempnames import IDENTITY_MAP_TABLE

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

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


class InputFrames:
    """Each input table (and list file) as a Spark DataFrame, made once per session."""

    def __init__(self, spark: SparkSession, driver: DuckDBEngine) -> None:
        self.spark = spark
        self.driver = driver
        self.frames: dict[str, DataFrame] = {}  # view name -> the conformed input
        self.as_of: datetime | None = None  # persons' latest_by is bounded by it

    def table(self, table: str) -> DataFrame:
        """A table's conformed frame (made once)."""
        if table not in self.frames:
            with spark_errors(self.driver, table):
                self.frames[table] = self._table_frame(table)
        return self.frames[table]

    def list_frame(self, name: str, cond: ListCondition) -> DataFrame:
        """A list file's distinct keys, as the driver's list view has them."""
        if name not in self.frames:
            with spark_errors(self.driver, "lists"):
                self.frames[name] = self._read_list(cond)
        return self.frames[name]

    def set_as_of(self, as_of: datetime) -> None:
        if as_of != self.as_of:
            self.as_of = as_of
            self.frames.pop("persons", None)  # latest_by depends on as_of

    def _table_frame(self, table: str) -> DataFrame:
        """One table as DuckDB's view has it: each source read by Spark and mapped as the
        loader maps it (segctl.sources.load), unioned, repeats and events with no person left
        out, anonymous events given their person through the driver's identity map."""
        from pyspark.sql import functions as F

        # The view's columns but DuckDB's own helpers (a raw timestamp for its Parquet pushdown).
        described = self.driver.describe(sql_table(table), table)
        target = [(name, kind) for name, kind in described if not name.startswith("__")]
        loader = self.driver.loader
        if table == "persons" and loader.derived_persons:
            events = self.table("events")
            frame = events.groupBy("person_id").agg(F.min("timestamp").alias("created_at"))
        else:
            frames = [self._source_frame(staged) for staged in loader.staged[table]]
            frame = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)
        if table == "events":
            frame = self._events(frame)
        if table == "persons" and LATEST in frame.columns:
            frame = self._latest(frame)
        return frame.select(
            *(_conform(frame, name, duck_type).alias(name) for name, duck_type in target)
        )

    def _source_frame(self, staged: Staged) -> DataFrame:
        """One source's rows with the canonical columns (and its other columns as they are)."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        source = staged.source
        role = source.role
        frames = []
        for group in staged.groups:
            raw = self._read(group.files, group.described)
            columns: dict[str, Column] = {}
            used = set()
            for canonical, found in group.picked.items():
                if found is None:
                    if canonical in ("person_id", "event", "id"):
                        columns[canonical] = F.lit(None).cast("string")
                    continue
                if found.name in group.described and canonical not in ("dedupe_on", "latest_by"):
                    used.add(found.name)
                value = F.expr(found.expr.sql(dialect="spark"))
                if canonical in ("dedupe_on",):
                    columns[DUPLICATE] = _text(value)
                elif canonical == "latest_by":
                    if role == "persons":
                        columns[LATEST] = _timestamp(raw, found, value, source.timestamp_unit)
                elif canonical == TIMESTAMPS.get(role):
                    columns[canonical] = _timestamp(raw, found, value, source.timestamp_unit)
                elif canonical in TEXT_COLUMNS or canonical == "event":
                    columns[canonical] = _text(value, canonical in ID_COLUMNS)
                else:
                    columns[canonical] = value
            if role == "events" and source.event is not None:
                columns["event"] = F.lit(source.event)
            rest = [F.col(_backticks(c)) for c in raw.columns if c not in used and c not in columns]
            frames.append(raw.select(*rest, *(v.alias(k) for k, v in columns.items())))
        frame = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)
        if role != "events":
            return frame
        if staged.dedupe:
            order = [
                F.col(c).asc_nulls_first()
                for c in ("timestamp", "event", "person_id", "anonymous_id")
                if c in frame.columns
            ]
            window = Window.partitionBy(DUPLICATE).orderBy(*order)
            repeat = F.when(F.col(DUPLICATE).isNull(), F.lit(False)).otherwise(
                F.row_number().over(window) > 1
            )
            frame = frame.withColumn(DUPLICATE, repeat)
        else:
            frame = frame.withColumn(DUPLICATE, F.lit(False))
        return frame

    def _events(self, frame: DataFrame) -> DataFrame:
        """Repeats out; anonymous events to their person (the identity map is the one the
        driver resolved, a row per anonymous id); events with no person or name out."""
        from pyspark.sql import functions as F

        if self.driver.loader.linked:
            resolved = exp.select("id", "person_id").from_(IDENTITY_MAP_TABLE)
            links = self.driver.rows(resolved.sql(dialect="duckdb"))
            mapping = self.spark.createDataFrame(
                links or [("", "")], "segctl_id string, segctl_person string"
            )
            frame = frame.join(
                F.broadcast(mapping),
                F.col("person_id").isNull() & (F.col("anonymous_id") == F.col("segctl_id")),
                "left",
            )
            frame = frame.withColumn(
                "person_id", F.coalesce(F.col("person_id"), F.col("segctl_person"))
            ).drop("segctl_id", "segctl_person")
        return frame.where(
            ~F.col(DUPLICATE) & F.col("person_id").isNotNull() & F.col("event").isNotNull()
        )

    def _latest(self, frame: DataFrame) -> DataFrame:
        """latest_by: each person's latest row at or before as_of."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        frame = frame.where(F.col("person_id").isNotNull())
        if self.as_of is not None:
            bound = timestamp_literal(self.as_of).sql(dialect="spark")
            frame = frame.where(F.col(LATEST) <= F.expr(bound))
        window = Window.partitionBy("person_id").orderBy(F.col(LATEST).desc_nulls_last())
        return frame.withColumn("__rank", F.row_number().over(window)).where("__rank = 1")

    def _read(self, group: InputFiles, described: dict[str, str] | None = None) -> DataFrame:
        """One group of files as Spark reads them; CSV columns all text, named as DuckDB
        names them, in the dialect DuckDB sniffed; NDJSON with the columns DuckDB found, nested
        objects as their JSON text (as DuckDB reads them)."""
        reader = self.spark.read
        if group.format == "parquet":
            if len(group.files) > 1:
                reader = reader.option("mergeSchema", "true")
            return reader.parquet(*group.files)
        if group.format == "json":
            return self._read_json(group, described or {})
        frames = [self._read_csv(files) for files in _by_first_line(group.files)]
        return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)

    def _read_json(self, group: InputFiles, described: dict[str, str]) -> DataFrame:
        fields = []
        for name, duck_type in described.items():
            kind = "STRING" if duck_type in ("JSON", "VARCHAR") else _spark_ddl(duck_type)
            fields.append(f"{_backticks(name)} {kind}")
        options = {"mode": "FAILFAST", "multiLine": "false"}
        return self.spark.read.options(**options).schema(", ".join(fields)).json(list(group.files))

    def _read_csv(self, files: list[str]) -> DataFrame:
        from pyspark.sql.types import StringType, StructField, StructType

        sample = read_files("csv", (files[0],))
        names = [name for name, _ in self.driver.describe(sample, "lists")]
        sniff = exp.Anonymous(this="sniff_csv", expressions=[exp.Literal.string(files[0])])
        dialect = exp.select("Delimiter", "Quote", "Escape", "HasHeader", "Comment").from_(
            exp.Table(this=sniff)
        )
        row = self.driver.rows(dialect.sql(dialect="duckdb"))[0]
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

    def _read_list(self, cond: ListCondition) -> DataFrame:
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


@contextmanager
def spark_errors(driver: DuckDBEngine, table: str | None) -> Iterator[None]:
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
                f"it): {first_line(exc)}"
            ) from None
        raise DataError(f"{where}cannot read input: {first_line(exc)}") from None
    except PySparkException as exc:
        message = first_line(exc)
        if "CAST_INVALID_INPUT" in message:  # trace it to its file, column and value
            names = [table] if table else list(driver.inputs)
            if any(name in TIMESTAMP_COLUMNS for name in names):
                driver.trace_bad_timestamps()
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


def _text(value: Column, empty_is_null: bool = True) -> Column:
    """Ids and names as text; for ids an empty string is no value (as DuckDB's NULLIF)."""
    from pyspark.sql import functions as F

    text = value.cast("string")
    if not empty_is_null:
        return text
    return F.when(text == F.lit(""), F.lit(None).cast("string")).otherwise(text)


def _timestamp(raw: DataFrame, found: SourceColumn, value: Column, unit: str | None) -> Column:
    """A source timestamp as Spark's (UTC session) TIMESTAMP, read as the loader reads it."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import IntegralType, NumericType, StringType

    spark_kind = raw.schema[found.name].dataType if found.name in raw.columns else StringType()
    if unit is not None and (isinstance(spark_kind, (NumericType, StringType))):
        # Decimals, as DuckDB: nanoseconds since 1970 have more digits than a double holds.
        number = value.cast("decimal(38,9)") if isinstance(spark_kind, StringType) else value
        if unit == "ns":  # in decimals: cut (a cast to decimal(38,0) would round the fraction)
            micros = F.floor(number).cast("decimal(38,0)") / F.lit(1000)
        else:
            micros = number * F.lit({"s": 1_000_000, "ms": 1_000, "us": 1}[unit])
        return F.timestamp_micros(F.floor(micros).cast("long"))
    if isinstance(spark_kind, IntegralType) and not is_number(found.type):
        # Nanoseconds since the epoch (Parquet TIMESTAMP(NANOS)), cut to the microsecond as
        # DuckDB cuts them; in decimals: a long divided is a double (53 bits, and a nanosecond
        # value of today has 61), which rounded .000000999 up a microsecond.
        micros = value.cast("decimal(38,0)") / F.lit(1000)
        return F.timestamp_micros(F.floor(micros).cast("long"))
    return value.cast("timestamp")


def _spark_ddl(duck_type: str) -> str:
    """A DuckDB type in Spark's DDL (nested types through sqlglot)."""
    simple = spark_type(duck_type)
    if simple is not None:
        return simple
    data_type = exp.DataType.build(duck_type.replace("JSON", "VARCHAR"), dialect="duckdb")
    return data_type.sql(dialect="spark")


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


def first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
