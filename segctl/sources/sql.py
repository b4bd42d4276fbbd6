"""The DuckDB trees the loader and the engine build: file readers and view definitions.

A reader is one of DuckDB's table functions (``read_parquet``, ``read_csv``, ``read_json``)
over a list of files, with named options (``union_by_name = TRUE``, ``types = {...}``): a tree
like any other query, so no file path or column name is spliced into SQL text.
"""

from __future__ import annotations

from typing import Literal

from sqlglot import exp

from segctl.sources.nested import typed_slots


def duck(tree: exp.Expr) -> str:
    """A tree in DuckDB SQL."""
    return tree.sql(dialect="duckdb")


def qident(name: str) -> str:
    """A quoted identifier in DuckDB SQL."""
    return exp.to_identifier(name, quoted=True).sql(dialect="duckdb")


def count(where: exp.Expr | None = None, *, distinct: str | None = None) -> exp.Expr:
    """``count(*)`` (or ``count(DISTINCT column)``), ``FILTER (WHERE where)`` when given."""
    counted = exp.Distinct(expressions=[exp.column(distinct)]) if distinct else exp.Star()
    total = exp.Count(this=counted)
    return total if where is None else exp.Filter(this=total, expression=exp.Where(this=where))


def table(name: str) -> exp.Table:
    """A table or view by name, quoted."""
    return exp.Table(this=exp.to_identifier(name, quoted=True))


def table_function(name: str, files: tuple[str, ...], **options: exp.Expr) -> exp.Table:
    """``name([files...], option = value, ...)`` as a FROM source."""
    listed = exp.Array(expressions=[exp.Literal.string(f) for f in files])
    named = [exp.EQ(this=exp.var(key), expression=value) for key, value in options.items()]
    return exp.Table(this=exp.Anonymous(this=name, expressions=[listed, *named]))


def struct(pairs: dict[str, str]) -> exp.Struct:
    """A struct of text values, as DuckDB's readers take column types: ``{'a': 'VARCHAR'}``."""
    return exp.Struct(
        expressions=[
            exp.PropertyEQ(this=exp.Literal.string(k), expression=exp.Literal.string(v))
            for k, v in pairs.items()
        ]
    )


def read_files(
    fmt: str,
    files: tuple[str, ...],
    described: dict[str, str] | None = None,
    text: tuple[str, ...] = (),
    *,
    every_line: bool = False,
    hive: bool = False,
) -> exp.Table:
    """The DuckDB reader of files of one format. CSV: ``text`` columns read as VARCHAR.
    JSON: with ``described`` (the sniffed columns), nested objects are read as JSON text,
    so keys beyond the sniffed sample are never lost; without, the columns are sniffed from
    the first lines, or from ``every_line`` (a top-level key first written past them).
    ``hive``: the folders' ``key=value`` names are columns (given, never detected per read:
    see :attr:`segctl.sources.inputs.InputFiles.hive`)."""
    partitioned = exp.true() if hive else exp.false()
    if fmt == "parquet":
        return table_function(
            "read_parquet", files, union_by_name=exp.true(), hive_partitioning=partitioned
        )
    if fmt == "json":
        options: dict[str, exp.Expr] = {
            "format": exp.Literal.string("newline_delimited"),
            "records": exp.true(),
            "hive_partitioning": partitioned,
        }
        if described:
            options["columns"] = struct({k: json_type(v) for k, v in described.items()})
        else:
            options["union_by_name"] = exp.true()
            if every_line:
                options["sample_size"] = exp.Literal.number(-1)
        return table_function("read_json", files, **options)
    csv: dict[str, exp.Expr] = {"union_by_name": exp.true(), "hive_partitioning": partitioned}
    if text:
        csv["types"] = struct(dict.fromkeys(text, "VARCHAR"))
    return table_function("read_csv", files, **csv)


def list_reader(path: str) -> exp.Table:
    """The reader of a list (or suppression) file: Parquet, else CSV with every column text."""
    if path.endswith(".parquet"):
        return table_function("read_parquet", (path,))
    return table_function("read_csv", (path,), all_varchar=exp.true())


#: The value of GA4's key/value records (its documented export schema): one typed slot set.
GA4_SLOTS = (
    "STRUCT(string_value VARCHAR, int_value BIGINT, float_value DOUBLE, double_value DOUBLE)"
)


def json_type(kind: str) -> str:
    """Nested objects of NDJSON are read as JSON text: their keys vary from line to line. A
    list of key/value records is read as such records, so that its keys are read as nested
    properties are (``params.format``): GA4's ``event_params``, whose values are typed slots
    (sniffed as ``STRUCT(key VARCHAR, value STRUCT(string_value ...))[]``), with every slot
    of GA4's schema, so that a slot the sniffed lines left out is not lost; any other list
    of records with a ``key`` and a ``value`` (fields beside them ignored), with each value
    as JSON (text, a number, an object: whatever the lines hold)."""
    records = _records(kind)
    if records == "slots":
        return f"STRUCT(key VARCHAR, value {GA4_SLOTS})[]"
    if records == "values":
        return "STRUCT(key VARCHAR, value JSON)[]"
    if kind.startswith(("STRUCT", "MAP")) or kind in ('"NULL"', "NULL"):
        return "JSON" if kind.startswith(("STRUCT", "MAP")) else "VARCHAR"
    return kind


def _records(kind: str) -> Literal["slots", "values"] | None:
    """Whether a sniffed type is a list of key/value records: of GA4's typed slots, of other
    values, or neither (None)."""
    if not kind.endswith("[]") or not kind.startswith("STRUCT"):
        return None
    try:
        element = exp.DataType.build(kind[:-2], dialect="duckdb")
    except Exception:  # sqlglot raises ParseError or ValueError: not such a list
        return None
    fields = {f.name: f.args.get("kind") for f in element.expressions}
    value = fields.get("value")
    if not {"key", "value"} <= set(fields) or not isinstance(value, exp.DataType):
        return None
    slots = typed_slots(value)  # GA4's, read with each of GA4's slots
    ga4 = {"string_value", "int_value", "float_value", "double_value"}
    typed = slots is not None and slots.keys() <= ga4
    return "slots" if set(fields) == {"key", "value"} and typed else "values"


def create_view(name: str, query: exp.Expr) -> str:
    """``CREATE OR REPLACE VIEW name AS query`` in DuckDB SQL."""
    return duck(exp.Create(this=table(name), kind="VIEW", replace=True, expression=query))


def union_by_name(queries: list[exp.Query]) -> exp.Query:
    """``q1 UNION ALL BY NAME q2 ...`` (a single query as it is)."""
    union = queries[0]
    for query in queries[1:]:
        union = exp.Union(this=union, expression=query, distinct=False, by_name=True)
    return union
