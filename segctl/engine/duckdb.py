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
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
from sqlglot import exp

from segctl.config import Config
from segctl.definitions.model import ColumnType, ListCondition, Schema
from segctl.engine.read_errors import first_bad_line, first_line, past_the_sample, read_error
from segctl.errors import DataError
from segctl.sources import sql as trees
from segctl.sources.inputs import InputFiles

if TYPE_CHECKING:
    import pyarrow as pa

    from segctl.sources.load import Loader

TIMESTAMP_COLUMNS = {
    "events": ("timestamp",),
    "persons": ("created_at",),
    "subscriptions": ("updated_at",),
}
# Read as text from CSV whatever they look like: ids and phones lose meaning as numbers.
TEXT_COLUMNS = ("person_id", "email", "phone")
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
    """One in-memory DuckDB connection with the project's inputs registered as views; it runs
    the plans too, and is its own :attr:`driver` (see :class:`segctl.engine.base.Engine`)."""

    dialect = "duckdb"

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
        self._types: dict[str, dict[str, str]] = {}
        self.list_tables: dict[str, str] = {}
        self.loader: Loader
        # The events' tz-aware source timestamp, when the view exposes it (segctl.sources.views).
        self.raw_timestamp: str | None = None
        # table -> the only files to read (segctl verify: exactly the files a run read).
        self.pinned: dict[str, tuple[str, ...]] | None = None
        # Files whose checks alone passed in the last run and would again (runfiles.unchanged).
        self.checked: frozenset[str] = frozenset()
        # NDJSON columns sniffed from every line (see sample_every_line).
        self.every_line = False

    @property
    def driver(self) -> DuckDBEngine:
        """This engine: the input views, the result table and the state are on it."""
        return self

    # ---- views ------------------------------------------------------------------------

    def schema(self) -> Schema:
        """Register the input views (once) and return their canonical column types."""
        if self._schema is None:
            from segctl.sources.load import Loader

            loader = Loader(
                self.con,
                self.config.sources,
                self.config.root,
                self.config.display,
                self.describe,
                pinned=self.pinned,
                checked=self.checked,
                every_line=self.every_line,
            )
            self.inputs = loader.inputs  # filled as it loads: a reader's error names its file
            with self.translate_errors("events"):
                loader.load()
            self.loader = loader
            self.raw_timestamp = loader.raw_timestamp
            schema: Schema = {}
            for table in ("events", "persons", "subscriptions"):
                if table in loader.staged or table == "persons":
                    described = self.describe(trees.table(table), table)
                    self._types[table] = dict(described)
                    schema[table] = {
                        name: _family(name, kind)
                        for name, kind in described
                        if not name.startswith("__")  # the views' helper columns
                    }
            self._schema = schema
        return self._schema

    def sample_every_line(self) -> bool:
        """Sniff the NDJSON sources' columns from every line from now on, where DuckDB reads
        the first 20,480: a top-level key first written past them is otherwise not a column.
        Costs a parse of every line at each load, so a project asks only when its definitions
        name a column the views lack. False when it changes nothing (already so, or no NDJSON
        source); else the views are made again at the next :meth:`schema`."""
        self.schema()
        json = any(g.format == "json" for groups in self.inputs.values() for g in groups)
        if self.every_line or not json:
            return False
        self.every_line = True
        self._schema = None
        self._types = {}
        return True

    def first_non_number(self, table: str, column: str) -> str | None:
        """Why a column a definition needs numbers of is text: its first value that is not
        a number, with file and row (:func:`segctl.sources.checks.first_non_number`)."""
        from segctl.sources.checks import first_non_number

        self.schema()
        return first_non_number(self.loader, table, column)

    def column_types(self) -> dict[str, dict[str, str]]:
        """Each view's columns with DuckDB's full type (``STRUCT(...)``, ``MAP(...)``...), which
        nested property names are resolved against (the schema keeps only type families).
        Described once, with the schema: a run asks twice (0.02 s each over 547 files)."""
        self.schema()
        return {table: dict(types) for table, types in self._types.items()}

    def sample_rows(self, query: exp.Expr) -> list[tuple[Any, ...]]:
        """The rows of a small query built by segctl (a sample of JSON keys), or [] when the
        data cannot answer it (malformed JSON in the sample): it only feeds warnings."""
        try:
            return self.con.execute(query.sql(dialect="duckdb")).fetchall()
        except duckdb.Error:
            return []

    def describe(self, source: exp.Expr, table: str) -> list[tuple[str, str]]:
        """The columns and DuckDB types of a query's source (a reader of files, a view):
        ``(name, type)`` in order, a reader's errors as DataError naming ``table``."""
        query = exp.select("*").from_(source)
        with self.translate_errors(table):
            rows = self.con.execute(f"DESCRIBE {query.sql(dialect='duckdb')}").fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def prepare(self, as_of: datetime) -> None:
        """Views that depend on the evaluation time (``latest_by`` of persons)."""
        self.schema()
        self.loader.set_as_of(as_of)

    def warnings(self) -> list[str]:
        """What the views leave out (events with no person, duplicates ...), per source."""
        from segctl.sources.checks import warnings

        self.schema()
        with self.plan_errors():
            return warnings(self.loader)

    def register_lists(self, conditions: list[ListCondition]) -> dict[str, str]:
        """A view per static list file, with one normalised ``key`` column."""
        for cond in conditions:
            if cond.path in self.list_tables:
                continue
            # Named after the file as written, so compiled SQL is the same on every machine.
            name = "segctl_list_" + hashlib.sha256(cond.file.encode()).hexdigest()[:10]
            reader = trees.list_reader(cond.path)
            try:
                columns = [c for c, _ in self.describe(reader, "lists")]
            except DataError as exc:  # name the list file: the reader's error does not
                raise DataError(f"{cond.file}: {exc}") from None
            if cond.key not in columns:
                raise DataError(
                    f"{cond.file}: list has no '{cond.key}' column (columns are: "
                    f"{', '.join(columns)})"
                )
            column = exp.column(cond.key, quoted=True)
            key: exp.Expr = exp.cast(column, "VARCHAR")
            if cond.key == "email":
                key = exp.Lower(this=exp.Trim(this=key))
            keys = (
                exp.select(exp.alias_(key, "key"))
                .distinct()
                .from_(reader)
                .where(exp.not_(column.copy().is_(exp.null())))
            )
            self.con.execute(trees.create_view(name, keys))
            self.list_tables[cond.path] = name
        return self.list_tables

    # ---- checks -----------------------------------------------------------------------

    def check_persons(self) -> None:
        """Person ids must be present and unique, and the persons' and subscriptions'
        timestamps read from text must parse, whether or not a condition reads them (SPEC 1,
        data contract)."""
        self.schema()
        self._check_text_timestamps()
        if self.loader.derived_persons:
            return  # the distinct person ids of the events: unique and present by construction
        display = self.inputs["persons"][0].display
        person = exp.column("person_id")
        rows = exp.Count(this=exp.Star())
        empty = exp.or_(
            person.is_(exp.null()), exp.EQ(this=person, expression=exp.Literal.string(""))
        )
        repeated = (
            exp.select(person, exp.alias_(rows, "n"))
            .from_("persons")
            .group_by(person)
            .having(exp.GT(this=rows, expression=exp.Literal.number(1)))
            .order_by(exp.Ordered(this=exp.column("n"), desc=True), person)
            .limit(3)
        )
        with self.translate_errors("persons"):
            counted = exp.select(rows).from_("persons").where(empty)
            missing = self.rows(counted.sql(dialect="duckdb"))[0]
            dupes = self.rows(repeated.sql(dialect="duckdb"))
        if missing and missing[0]:
            raise DataError(
                f"{display}: {missing[0]} row(s) have an empty person_id; every person needs one"
            )
        if dupes:
            examples = ", ".join(f"'{pid}' ({n} rows)" for pid, n in dupes)
            raise DataError(
                f"{display}: duplicate person_id values, e.g. {examples}; person ids must be "
                "unique (several rows per person, such as an identifies table: set latest_by: "
                "<timestamp column> on the persons source to read each person's latest row)"
            )

    def _check_text_timestamps(self) -> None:
        """A persons or subscriptions timestamp read from text that does not parse is a
        DataError naming its file, row, column and value, as ``validate`` says, even where no
        condition reads the column (the events' are read by any plan that reads events: their
        files are the large ones)."""
        noted: dict[str, set[str]] = {}
        for role, _, column in self.loader.text_timestamps:
            if role != "events":  # latest_by: the view's choice of rows reads it
                noted.setdefault(role, set()).update({column} - {"latest_by"})
        for role, columns in noted.items():
            counts = [exp.column(c, quoted=True) for c in sorted(columns)]
            read = exp.select(
                exp.Count(this=exp.Star()), *(exp.Count(this=c) for c in counts)
            ).from_(exp.to_table(role, quoted=True))
            with self.translate_errors(role):
                self.rows(read.sql(dialect="duckdb"))

    def check_timestamps(self) -> None:
        """Scan text timestamp columns (CSV, strings in Parquet or JSON, numeric text with
        ``timestamp_unit``) for values that do not parse (names file, row, column and value)."""
        self.schema()
        self.trace_bad_timestamps()

    def trace_bad_timestamps(self) -> None:
        """Trace a conversion error to its file, row, column and value (DataError), once the
        views exist; nothing when no value is bad."""
        from segctl.sources.checks import find_bad_timestamps

        if self._schema is not None:
            find_bad_timestamps(self.loader)

    # ---- execution --------------------------------------------------------------------

    @contextmanager
    def translate_errors(self, table: str) -> Iterator[None]:
        """DuckDB's errors while reading one table's inputs -> DataError naming the table."""
        where = "" if table == "lists" else f"data.{table}: "
        try:
            yield
        except duckdb.ConversionException as exc:
            if table in TIMESTAMP_COLUMNS:
                self.trace_bad_timestamps()
            past = past_the_sample(str(exc), self.config.display)
            raise past or DataError(f"{where}{first_line(exc)}") from None
        except (duckdb.IOException, duckdb.InvalidInputException) as exc:
            raise read_error(exc, where, self.config.display) from None
        except duckdb.BinderException as exc:
            if "json_read expected records" in str(exc):
                json_files = [
                    Path(path)
                    for group in self.inputs.values()
                    for files in group
                    if files.format == "json"
                    for path in files.files
                ]
                found = next(((p, b) for p in json_files if (b := first_bad_line(p))), None)
                place = f"{self.config.display(found[0])}:{found[1][0]}: " if found else where
                shown = f" ({found[1][1]})" if found else ""
                raise DataError(
                    f"{place}a JSON line that is not an object{shown}: each line of an NDJSON "
                    'file must be one JSON object (like {"event": "login", ...}), not a JSON '
                    "array or a bare value"
                ) from None
            raise DataError(f"{where}{first_line(exc)}") from None

    @contextmanager
    def plan_errors(self) -> Iterator[None]:
        """DuckDB's errors while running a plan -> DataError; a value that is not a timestamp
        is traced to its file, column and value."""
        try:
            yield
        except duckdb.ConversionException as exc:
            if any(table in TIMESTAMP_COLUMNS for table in self.inputs):
                self.trace_bad_timestamps()
            past = past_the_sample(str(exc), self.config.display)
            raise past or DataError(first_line(exc)) from None
        except (duckdb.IOException, duckdb.InvalidInputException) as exc:
            raise read_error(exc, "", self.config.display) from None
        except duckdb.OutOfMemoryException as exc:
            raise self.memory_error(exc) from None

    def memory_error(self, exc: Exception) -> DataError:
        """:func:`memory_error` with this engine's settings."""
        return memory_error(exc, self.config.engine.memory_limit, self.config.engine.threads)

    def arrow(self, query: exp.Expr | str) -> pa.Table:
        """Run a query on this DuckDB connection (a tree, or our own SQL text over the result
        table and state) and return the whole result as an Arrow table."""
        sql = query if isinstance(query, str) else query.sql(dialect="duckdb")
        with self.plan_errors():
            return fetch_arrow(self.con.sql(sql))

    def create_table(self, name: str, plan: exp.Expr, columns: str = "*") -> None:
        """Materialise a plan's result as a temporary table: ``SELECT columns`` (DuckDB
        SQL over the plan's columns) of it. The plan is spent: its SQL is generated without
        the copy of the tree (0.03 to 0.17 s for a 1,000-segment plan), which the generator's
        rewrites may change."""
        sql = plan.sql(dialect="duckdb", copy=False)
        with self.plan_errors():
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE {qident(name)} AS SELECT {columns} FROM ({sql})"
            )

    @contextmanager
    def light_planning(self) -> Iterator[None]:
        """While inside, DuckDB skips the optimizer passes of :data:`HEAVY_PASSES`: for a
        plan over a few persons' rows (an incremental run's), whose planning is then most
        of its time."""
        known = {str(r[0]) for r in self.rows("SELECT name FROM duckdb_optimizers()")}
        skipped = ",".join(p for p in HEAVY_PASSES if p in known)
        if not skipped:
            yield
            return
        self.con.execute(f"SET disabled_optimizers = {quote(skipped)}")
        try:
            yield
        finally:
            self.con.execute("RESET disabled_optimizers")

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Every row of our own (trusted) SQL, fully fetched."""
        try:
            return self.con.execute(sql, params or []).fetchall()
        except duckdb.OutOfMemoryException as exc:
            raise self.memory_error(exc) from None


#: DuckDB's optimizer passes whose cost is the plan's size, not its rows': DuckDB 2.0's
#: ``projection_placement`` took a third of planning the plan of 1,000 segments (0.1 s of
#: 0.3 s); over the rows of 37,000 persons (13.6M events) the plan ran as fast without it.
HEAVY_PASSES = ("projection_placement",)


def memory_error(exc: Exception, limit: str | None = None, threads: int | None = None) -> DataError:
    """DuckDB's out-of-memory error as a DataError saying what to change (``threads``: the
    engine's setting; with one thread already, the limit is what to raise)."""
    setting = f"engine.memory_limit {limit}" if limit else "engine.memory_limit"
    if threads == 1:
        fix = (
            "with one thread, the plan still holds some blocks per measure whatever the "
            "data's size (a catalogue of many measure kinds may need 150 MB): raise "
            "engine.memory_limit in segctl.yaml"
        )
    else:
        fix = (
            "each thread needs its share of the limit for the per-person aggregate: set "
            "engine.threads: 1 or raise engine.memory_limit in segctl.yaml"
        )
    return DataError(
        f"out of memory under {setting}: {first_line(exc)}; most of the plan spills to "
        f"engine.temp_directory, but {fix}"
    )


def _family(name: str, duck_type: str) -> ColumnType:
    if name in ("person_id", "event") or name in TEXT_COLUMNS:
        return ColumnType.STRING
    return column_type(duck_type)
