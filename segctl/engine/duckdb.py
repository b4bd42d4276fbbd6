"""The embedded DuckDB engine: views over the input files, schema, checks, and execution.

Inputs are views, not copies: each table is a view over ``read_parquet``/``read_csv`` that
renames columns to their canonical names, reads person ids as text and normalises every
timestamp to naive UTC (naive input values are UTC). Compiled plans read these views.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
from sqlglot import exp

from segctl import runfiles
from segctl.config import Config
from segctl.definitions.model import ColumnType, ListCondition, Schema
from segctl.engine.inputs import InputFiles
from segctl.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa

REQUIRED = {
    "events": ("person_id", "event", "timestamp"),
    "persons": ("person_id",),
    "subscriptions": ("person_id", "status", "updated_at"),
}
TIMESTAMP_COLUMNS = {
    "events": ("timestamp",),
    "persons": ("created_at",),
    "subscriptions": ("updated_at",),
}
# Read as text from CSV whatever they look like: ids and phones lose meaning as numbers.
TEXT_COLUMNS = ("person_id", "email", "phone")
TIMESTAMPTZ = "TIMESTAMP WITH TIME ZONE"
# Any tz-aware timestamp: also TIMESTAMPTZ_NS (pandas writes nanoseconds), which DuckDB cannot
# cast to TIMESTAMP nor compare with a TIMESTAMPTZ, but can convert AT TIME ZONE.
TZ_AWARE = (TIMESTAMPTZ, "TIMESTAMPTZ_")
#: The events view's extra column holding the source's tz-aware timestamp (not in the schema).
RAW_TIMESTAMP = "__segctl_raw_timestamp"
_NUMBER = re.compile(
    r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|"
    r"UBIGINT|UHUGEINT|FLOAT|DOUBLE|REAL|DECIMAL.*)$"
)
_TIMESTAMP = re.compile(r"^(TIMESTAMP.*|DATE)$")


def column_type(duck_type: str) -> ColumnType:
    """DuckDB's type name -> the language's type family."""
    if duck_type == "VARCHAR":
        return ColumnType.STRING
    if duck_type == "BOOLEAN":
        return ColumnType.BOOLEAN
    if _NUMBER.match(duck_type):
        return ColumnType.NUMBER
    if _TIMESTAMP.match(duck_type):
        return ColumnType.TIMESTAMP
    return ColumnType.OTHER


def fetch_arrow(relation: duckdb.DuckDBPyRelation) -> pa.Table:
    """A relation's whole result as an Arrow table (DuckDB builds it without the GIL);
    ``to_arrow_table`` where this duckdb has it, ``fetch_arrow_table`` before."""
    fetch = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table
    table: pa.Table = fetch()
    return table


def quote(value: str) -> str:
    """A SQL string literal (for our own config values: file paths)."""
    return exp.Literal.string(value).sql(dialect="duckdb")


def qident(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect="duckdb")


class DuckDBEngine:
    """One in-memory DuckDB connection with the project's inputs registered as views."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET TimeZone = 'UTC'")
        engine = config.engine
        if engine.memory_limit:
            self.con.execute(f"SET memory_limit = {quote(engine.memory_limit)}")
        if engine.temp_directory:
            self.con.execute(f"SET temp_directory = {quote(engine.temp_directory)}")
        if engine.threads:
            self.con.execute(f"SET threads = {int(engine.threads)}")
        self.inputs: dict[str, list[InputFiles]] = {}
        self._schema: Schema | None = None
        self.list_tables: dict[str, str] = {}
        # (table, canonical column) of timestamp columns stored as text, parsed by the views.
        self.text_timestamps: list[tuple[str, str]] = []
        # The events' tz-aware source timestamp, when the view exposes it (see _register).
        self.raw_timestamp: str | None = None
        # table -> the only files to read (segctl verify: exactly the files a run read).
        self.pinned: dict[str, tuple[str, ...]] | None = None

    # ---- views ------------------------------------------------------------------------

    def schema(self) -> Schema:
        """Register the input views (once) and return their canonical column types."""
        if self._schema is None:
            schema: Schema = {}
            for table, patterns in self.config.inputs.items():
                self.inputs[table] = runfiles.resolve(
                    table, patterns, self.config.root, self.pinned
                )
                schema[table] = self._register(table)
            self._schema = schema
        return self._schema

    def _reader(self, group: InputFiles, types: dict[str, str] | None = None) -> str:
        files = "[" + ", ".join(quote(f) for f in group.files) + "]"
        if group.format == "parquet":
            return f"read_parquet({files}, union_by_name = true)"
        options = ""
        if types:
            pairs = ", ".join(f"{quote(k)}: {quote(v)}" for k, v in types.items())
            options = f", types = {{{pairs}}}"
        return f"read_csv({files}, union_by_name = true{options})"

    def _describe(self, sql: str, table: str) -> list[tuple[str, str]]:
        with self.translate_errors(table):
            rows = self.con.execute(f"DESCRIBE SELECT * FROM {sql}").fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def _register(self, table: str) -> dict[str, ColumnType]:
        renames = self.config.columns.get(table, {})
        source_of = {canonical: source for canonical, source in renames.items()}
        canonical_of = {source: canonical for canonical, source in renames.items()}
        readers = []
        described: dict[str, str] = {}
        tz_aware: set[str] = set()  # event timestamp type of every group
        for group in self.inputs[table]:
            plain = self._reader(group)
            columns = dict(self._describe(plain, table))
            if group.format == "csv":
                # Ids, phones and timestamps are parsed by us, not guessed by the sniffer.
                wanted = [source_of.get(c, c) for c in TEXT_COLUMNS + TIMESTAMP_COLUMNS[table]]
                types = {c: "VARCHAR" for c in wanted if c in columns}
                plain = self._reader(group, types)
                columns = dict(self._describe(plain, table))
            readers.append(plain)
            tz_aware.add(columns.get(source_of.get("timestamp", "timestamp"), ""))
            for name, duck_type in columns.items():
                described.setdefault(name, duck_type)
        display = ", ".join(g.display for g in self.inputs[table][:1])
        for canonical, source in renames.items():
            if source not in described:
                raise DataError(
                    f"{display}: missing column '{source}' (mapped to '{canonical}' "
                    f"in data.columns.{table}); columns are: "
                    f"{', '.join(described)}"
                )
            if canonical in described and canonical != source:
                raise DataError(
                    f"{display}: has both '{source}' (renamed to '{canonical}' in "
                    f"data.columns.{table}) and a column named '{canonical}'"
                )
        names = {canonical_of.get(c, c): c for c in described}
        for required in REQUIRED[table]:
            if required not in names:
                hint = f"rename yours with data.columns.{table}: {{{required}: your_column}}"
                if all(re.fullmatch(r"column\d+", c) for c in described):
                    hint = (  # DuckDB names the columns itself when it finds no header row
                        "no header row was found: is the file empty, or does a row have more "
                        "fields than the header?"
                    )
                raise DataError(
                    f"{display}: missing required column '{required}' (columns "
                    f"are: {', '.join(described)}; {hint})"
                )
        select = []
        schema: dict[str, ColumnType] = {}
        for canonical, source in names.items():
            duck_type = described[source]
            expr, family = self._normalise(table, canonical, qident(source), duck_type, display)
            if canonical in TIMESTAMP_COLUMNS[table] and duck_type == "VARCHAR":
                self.text_timestamps.append((table, canonical))
            select.append(f"{expr} AS {qident(canonical)}")
            schema[canonical] = family
        if table == "events" and len(tz_aware) == 1 and tz_aware.pop() == TIMESTAMPTZ:
            # The canonical timestamp is a per-row conversion, which hides it from the Parquet
            # scan's filter pushdown; the raw column lets the plan's time bounds skip row groups.
            select.append(f"{qident(names['timestamp'])} AS {qident(RAW_TIMESTAMP)}")
            self.raw_timestamp = RAW_TIMESTAMP
        source_sql = " UNION ALL BY NAME ".join(f"SELECT * FROM {r}" for r in readers)
        self.con.execute(
            f"CREATE OR REPLACE VIEW {qident(table)} AS SELECT {', '.join(select)} "
            f"FROM ({source_sql})"
        )
        return schema

    def _normalise(
        self, table: str, name: str, source: str, duck_type: str, display: str
    ) -> tuple[str, ColumnType]:
        """SQL turning a source column into its canonical form, and its type family."""
        if name in ("person_id", "event") or name in TEXT_COLUMNS:
            return f"CAST({source} AS VARCHAR)", ColumnType.STRING
        family = column_type(duck_type)
        if name in TIMESTAMP_COLUMNS[table] and family not in (
            ColumnType.TIMESTAMP,
            ColumnType.STRING,
        ):
            raise DataError(
                f"{display}: column '{name}' must hold timestamps (ISO-8601 text or "
                f"a timestamp type), but it is {duck_type}"
            )
        if duck_type == "VARCHAR" and name in TIMESTAMP_COLUMNS[table]:
            return (
                f"make_timestamp(epoch_us(CAST({source} AS TIMESTAMPTZ)))",
                ColumnType.TIMESTAMP,
            )
        if duck_type == TIMESTAMPTZ:
            # The same instant as naive UTC by arithmetic: AT TIME ZONE goes through ICU and
            # cost 6x the whole scan (1.3 s per 10M events). Infinite values become NULL.
            return f"make_timestamp(epoch_us({source}))", ColumnType.TIMESTAMP
        if duck_type.startswith(TZ_AWARE):
            return f"CAST({source} AT TIME ZONE 'UTC' AS TIMESTAMP)", ColumnType.TIMESTAMP
        if family is ColumnType.TIMESTAMP and duck_type != "TIMESTAMP":
            return f"CAST({source} AS TIMESTAMP)", ColumnType.TIMESTAMP
        return source, family

    def register_lists(self, conditions: list[ListCondition]) -> dict[str, str]:
        """A view per static list file, with one normalised ``key`` column."""
        for cond in conditions:
            if cond.path in self.list_tables:
                continue
            # Named after the file as written, so compiled SQL is the same on every machine.
            name = "segctl_list_" + hashlib.sha256(cond.file.encode()).hexdigest()[:10]
            reader = (
                f"read_parquet({quote(cond.path)})"
                if cond.path.endswith(".parquet")
                else f"read_csv({quote(cond.path)}, all_varchar = true)"
            )
            try:
                columns = [c for c, _ in self._describe(reader, "lists")]
            except DataError as exc:  # name the list file: the reader's error does not
                raise DataError(f"{cond.file}: {exc}") from None
            if cond.key not in columns:
                raise DataError(
                    f"{cond.file}: list has no '{cond.key}' column (columns are: "
                    f"{', '.join(columns)})"
                )
            key = f"CAST({qident(cond.key)} AS VARCHAR)"
            if cond.key == "email":
                key = f"LOWER(TRIM({key}))"
            self.con.execute(
                f"CREATE OR REPLACE VIEW {qident(name)} AS SELECT DISTINCT {key} "
                f"AS key FROM {reader} WHERE {qident(cond.key)} IS NOT NULL"
            )
            self.list_tables[cond.path] = name
        return self.list_tables

    # ---- checks -----------------------------------------------------------------------

    def check_persons(self) -> None:
        """Person ids must be present and unique (SPEC 1, data contract)."""
        self.schema()
        display = self.inputs["persons"][0].display
        with self.translate_errors("persons"):
            missing = self.rows(
                "SELECT count(*) FROM persons WHERE person_id IS NULL OR person_id = ''"
            )[0]
            dupes = self.con.execute(
                "SELECT person_id, count(*) AS n FROM persons GROUP BY person_id "
                "HAVING count(*) > 1 ORDER BY n DESC, person_id LIMIT 3"
            ).fetchall()
        if missing and missing[0]:
            raise DataError(
                f"{display}: {missing[0]} row(s) have an empty person_id; every person needs one"
            )
        if dupes:
            examples = ", ".join(f"'{pid}' ({n} rows)" for pid, n in dupes)
            raise DataError(
                f"{display}: duplicate person_id values, e.g. {examples}; person ids must be unique"
            )

    def check_timestamps(self) -> None:
        """Scan text timestamp columns (CSV, or strings in Parquet) for values that do not
        parse (names file, column and value)."""
        self.schema()
        for table, column in self.text_timestamps:
            self._find_bad_timestamp(table, column)

    def _find_bad_timestamp(self, table: str, column: str) -> None:
        source = self.config.columns.get(table, {}).get(column, column)
        for group in self.inputs.get(table, []):
            for file in group.files:
                single = InputFiles(table, (file,), group.format, group.display)
                reader = self._reader(
                    single, {source: "VARCHAR"} if group.format == "csv" else None
                )
                try:
                    found = self.rows(
                        f"SELECT {qident(source)} FROM {reader} WHERE {qident(source)} IS NOT "
                        f"NULL AND TRY_CAST({qident(source)} AS TIMESTAMPTZ) IS NULL LIMIT 1"
                    )
                    row = found[0] if found else None
                except duckdb.Error:
                    continue
                if row:
                    raise DataError(
                        f"{self.config.display(Path(file))}: column '{source}' has a value "
                        f"that is not a timestamp: {row[0]!r} (expected ISO-8601, like "
                        "2026-01-31T12:00:00Z; values without an offset are read as UTC)"
                    )

    # ---- execution --------------------------------------------------------------------

    @contextmanager
    def translate_errors(self, table: str) -> Iterator[None]:
        """DuckDB's errors while reading one table's inputs -> DataError naming the table."""
        where = "" if table == "lists" else f"data.{table}: "
        try:
            yield
        except duckdb.ConversionException as exc:
            for column in TIMESTAMP_COLUMNS.get(table, ()):
                self._find_bad_timestamp(table, column)
            raise DataError(f"{where}{_first_line(exc)}") from None
        except (duckdb.IOException, duckdb.InvalidInputException) as exc:
            raise DataError(f"{where}cannot read input: {_first_line(exc)}") from None
        except duckdb.BinderException as exc:
            raise DataError(f"{where}{_first_line(exc)}") from None

    @contextmanager
    def plan_errors(self) -> Iterator[None]:
        """DuckDB's errors while running a plan -> DataError; a value that is not a timestamp
        is traced to its file, column and value."""
        try:
            yield
        except duckdb.ConversionException as exc:
            for table in self.inputs:
                for column in TIMESTAMP_COLUMNS.get(table, ()):
                    self._find_bad_timestamp(table, column)
            raise DataError(_first_line(exc)) from None
        except (duckdb.IOException, duckdb.InvalidInputException) as exc:
            raise DataError(f"cannot read input: {_first_line(exc)}") from None
        except duckdb.OutOfMemoryException as exc:
            raise memory_error(exc, self.config.engine.memory_limit) from None

    def arrow(self, query: exp.Expression | str) -> pa.Table:
        """Run a plan (or our own SQL) and return the whole result as an Arrow table."""
        sql = query if isinstance(query, str) else query.sql(dialect="duckdb")
        with self.plan_errors():
            return fetch_arrow(self.con.sql(sql))

    def create_table(self, name: str, query: exp.Expression, columns: str = "*") -> None:
        """Materialise a plan's result as a temporary table: ``SELECT columns`` (DuckDB
        SQL over the plan's columns) of it."""
        sql = query.sql(dialect="duckdb")
        with self.plan_errors():
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE {qident(name)} AS SELECT {columns} FROM ({sql})"
            )

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Every row of our own (trusted) SQL, fully fetched."""
        return self.con.execute(sql, params or []).fetchall()


def memory_error(exc: Exception, limit: str | None = None) -> DataError:
    """DuckDB's out-of-memory error as a DataError saying what to change."""
    setting = f"engine.memory_limit {limit}" if limit else "engine.memory_limit"
    return DataError(
        f"out of memory under {setting}: {_first_line(exc)}; most of the plan spills to "
        "engine.temp_directory, but each thread needs its share of the limit for the "
        "per-person aggregate: set engine.threads: 1 or raise engine.memory_limit in segctl.yaml"
    )


def _first_line(exc: Exception) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
