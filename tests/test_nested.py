"""segctl.sources.nested: property paths and the trees that read them, run on DuckDB for real.

Each container (JSON text, STRUCT, MAP, GA4-style key/value records) holds the same values; every
reading (text, number, boolean, any) of every key, present or missing, is checked against what
the SPEC's rules give in plain Python.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pytest
from sqlglot import exp

from segctl.sources.nested import (
    NestedAccessError,
    PropertyPath,
    access,
    check_dialect,
    format_path,
    is_json_text,
    known_keys,
    parse_path,
    value_type,
)

# ---------------------------------------------------------------------------------------------
# parse_path


@pytest.mark.parametrize(
    ("text", "column", "keys"),
    [
        ("plan", "plan", ()),
        ("properties.plan", "properties", ("plan",)),
        ("properties.$current_url", "properties", ("$current_url",)),
        ('properties."app.version"', "properties", ("app.version",)),
        ('properties."a b".c', "properties", ("a b", "c")),
        ("event_params.page_location", "event_params", ("page_location",)),
        ('"odd.column".k', "odd.column", ("k",)),
        ("a.b.c.d", "a", ("b", "c", "d")),
    ],
)
def test_parse_path(text: str, column: str, keys: tuple[str, ...]) -> None:
    path = parse_path(text)
    assert path == PropertyPath(column=column, keys=keys, text=text)
    assert path.nested == bool(keys)
    assert parse_path(format_path(path.column, path.keys)).keys == keys


@pytest.mark.parametrize(
    ("text", "wording"),
    [
        ("", "empty"),
        ("properties.", "ends with a dot"),
        (".plan", "starts with a dot"),
        ("properties..plan", "two dots in a row"),
        ('properties."app.version', "never closed"),
        ('properties.""', "empty quoted key"),
        ('properties."a"b', "where a dot or the end was expected"),
        ("properties.a b", "where a dot or the end was expected"),
    ],
)
def test_parse_path_refuses_bad_syntax(text: str, wording: str) -> None:
    with pytest.raises(ValueError, match=wording):
        parse_path(text)


# ---------------------------------------------------------------------------------------------
# access, run on DuckDB

VALUES: dict[str, Any] = {
    "plan": "pro",
    "count": 5,
    "price": 2.5,
    "numstr": "42",
    "negexp": "-1.5e3",
    "spaced": " 7",
    "flag": True,
    "flagstr": "false",
    "$current_url": "/pricing",
    "app.version": "1.2",
}
MISSING = "nope"


def _number(value: Any) -> float | None:
    """SPEC: a number, or a string written as a JSON number; anything else is missing."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        json_value = json.loads(value)
    except ValueError:
        return None
    if isinstance(json_value, bool) or not isinstance(json_value, int | float):
        return None
    return float(json_value) if value.strip() == value and not value.startswith("+") else None


def _boolean(value: Any) -> bool | None:
    if value is True or value == "true":
        return True
    if value is False or value == "false":
        return False
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return str(value)


EXPECTED = {"number": _number, "boolean": _boolean, "text": _text}


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("CREATE TABLE t (j VARCHAR)")
    connection.execute("INSERT INTO t VALUES (?)", [json.dumps(VALUES)])
    # The same values as a STRUCT (typed fields), a MAP of text and GA4-style records.
    fields = ", ".join(
        f"{exp.Literal.string(k).sql('duckdb')}: {_duck(v)}" for k, v in VALUES.items()
    )
    connection.execute(f"ALTER TABLE t ADD COLUMN s STRUCT({_struct_type()})")
    connection.execute(f"UPDATE t SET s = {{{fields}}}")
    connection.execute(
        "ALTER TABLE t ADD COLUMN m MAP(VARCHAR, VARCHAR);UPDATE t SET m = MAP(?, ?)",
        [list(VALUES), [_text(v) for v in VALUES.values()]],
    )
    connection.execute(
        "ALTER TABLE t ADD COLUMN ev STRUCT(key VARCHAR, value STRUCT(string_value VARCHAR,"
        " int_value BIGINT, float_value DOUBLE, double_value DOUBLE))[]"
    )
    records = []
    for key, value in VALUES.items():
        slot: dict[str, Any] = dict.fromkeys(
            ("string_value", "int_value", "float_value", "double_value")
        )
        if isinstance(value, bool):
            slot["string_value"] = json.dumps(value)
        elif isinstance(value, int):
            slot["int_value"] = value
        elif isinstance(value, float):
            slot["double_value"] = value
        else:
            slot["string_value"] = value
        records.append({"key": key, "value": slot})
    connection.execute("UPDATE t SET ev = ?", [records])
    return connection


def _duck(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return exp.Literal.string(value).sql("duckdb")


def _struct_type() -> str:
    def kind(value: Any) -> str:
        if isinstance(value, bool):
            return "BOOLEAN"
        if isinstance(value, int):
            return "BIGINT"
        if isinstance(value, float):
            return "DOUBLE"
        return "VARCHAR"

    return ", ".join(f'"{k}" {kind(v)}' for k, v in VALUES.items())


def _types(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return {row[0]: row[1] for row in con.execute("DESCRIBE t").fetchall()}


def _run(con: duckdb.DuckDBPyConnection, column: str, keys: tuple[str, ...], want: str) -> Any:
    tree = access(exp.column(column, table="t"), _types(con)[column], keys, want)
    return con.execute(exp.select(tree).from_("t").sql(dialect="duckdb")).fetchone()[0]  # type: ignore[index]


@pytest.mark.parametrize("want", ["text", "number", "boolean"])
@pytest.mark.parametrize("key", [*VALUES, MISSING])
def test_json_text_reads_by_the_spec_rules(
    con: duckdb.DuckDBPyConnection, key: str, want: str
) -> None:
    assert _run(con, "j", (key,), want) == EXPECTED[want](VALUES.get(key))


@pytest.mark.parametrize("want", ["text", "number", "boolean"])
@pytest.mark.parametrize("key", [*VALUES, MISSING])
def test_map_of_text_reads_like_json_text(
    con: duckdb.DuckDBPyConnection, key: str, want: str
) -> None:
    # The map holds every value as its text: the same rules give the same values.
    assert _run(con, "m", (key,), want) == EXPECTED[want](_text(VALUES.get(key)))


@pytest.mark.parametrize("want", ["text", "number", "boolean"])
@pytest.mark.parametrize("key", list(VALUES))
def test_struct_reads_typed_fields(con: duckdb.DuckDBPyConnection, key: str, want: str) -> None:
    value = VALUES[key]
    expected = EXPECTED[want](value)
    got = _run(con, "s", (key,), want)
    if want == "text" and isinstance(value, float):
        expected = str(value)  # a DOUBLE's text is the engine's: 2.5
    assert got == expected


@pytest.mark.parametrize("want", ["text", "number", "boolean"])
@pytest.mark.parametrize("key", [*VALUES, MISSING])
def test_key_value_records_read_the_set_slot(
    con: duckdb.DuckDBPyConnection, key: str, want: str
) -> None:
    value = VALUES.get(key)
    expected = EXPECTED[want](value)
    if want == "text" and isinstance(value, float):
        expected = str(value)
    assert _run(con, "ev", (key,), want) == expected


def test_any_keeps_the_engine_value(con: duckdb.DuckDBPyConnection) -> None:
    assert _run(con, "s", ("count",), "any") == 5
    assert _run(con, "s", ("flag",), "any") is True
    assert _run(con, "j", ("count",), "any") == "5"
    assert _run(con, "ev", ("count",), "any") == "5"


def test_deeper_keys_through_struct_and_json() -> None:
    con = duckdb.connect()
    con.execute(
        """CREATE TABLE t AS SELECT {'ctx': {'os': 'ios', 'meta': '{"v": "3"}'}} AS s,
        '{"a": {"b": {"c": 9}}, "x": [1, 2]}' AS j"""
    )
    types = _types(con)

    def run(column: str, keys: tuple[str, ...], want: str) -> Any:
        tree = access(exp.column(column), types[column], keys, want)
        return con.execute(exp.select(tree).from_("t").sql("duckdb")).fetchone()[0]  # type: ignore[index]

    assert run("s", ("ctx", "os"), "text") == "ios"
    assert run("s", ("ctx", "meta", "v"), "number") == 3.0  # JSON text inside a STRUCT
    assert run("j", ("a", "b", "c"), "number") == 9.0
    assert run("j", ("a", "zz", "c"), "number") is None
    assert run("j", ("x", "y"), "text") is None  # a key into a list is missing


def test_unknown_struct_key_says_did_you_mean() -> None:
    with pytest.raises(NestedAccessError, match=r"unknown key 'plam'.*did you mean 'plan'"):
        access(exp.column("s"), "STRUCT(plan VARCHAR, n INTEGER)", ("plam",), "text")
    with pytest.raises(NestedAccessError, match=r"unknown key 'os'.*ctx"):
        value_type("STRUCT(ctx STRUCT(o VARCHAR))", ("ctx", "os"))


def test_keys_into_a_scalar_are_refused() -> None:
    with pytest.raises(NestedAccessError, match="it is BIGINT, not JSON text"):
        access(exp.column("n"), "BIGINT", ("a",), "number")
    with pytest.raises(ValueError, match="unknown reading"):
        access(exp.column("n"), "VARCHAR", ("a",), "numeric")


def test_types_and_keys_known_from_the_schema() -> None:
    struct = "STRUCT(plan VARCHAR, n INTEGER, ctx STRUCT(os VARCHAR))"
    assert known_keys(struct, ()) == ["plan", "n", "ctx"]
    assert known_keys(struct, ("ctx",)) == ["os"]
    assert known_keys("VARCHAR", ()) is None
    n_type = value_type(struct, ("n",))
    assert n_type is not None and n_type.this == exp.DataType.Type.INT
    assert value_type("JSON", ("a",)) is None
    assert is_json_text("JSON") and is_json_text("VARCHAR") and not is_json_text(struct)


@pytest.mark.parametrize(
    ("column_type", "spark"),
    [
        ("VARCHAR", "GET_JSON_OBJECT(p, '$[\\'app.version\\']')"),
        ('STRUCT("app.version" VARCHAR)', "p['app.version']"),
        ("MAP(VARCHAR, VARCHAR)", "TRY_ELEMENT_AT(p, 'app.version')"),
    ],
)
def test_spark_rendering(column_type: str, spark: str) -> None:
    tree = access(exp.column("p"), column_type, ("app.version",), "text")
    check_dialect(tree, "spark")
    assert tree.sql(dialect="spark") == spark


def test_a_dialect_that_cannot_express_the_access_is_refused() -> None:
    tree = access(exp.column("p"), "MAP(VARCHAR, VARCHAR)", ("k",), "text")
    with pytest.raises(NestedAccessError, match=r"the snowflake dialect cannot read .* MAP column"):
        check_dialect(tree, "snowflake")
    with pytest.raises(NestedAccessError, match=r"the bigquery dialect cannot read .* MAP column"):
        check_dialect(tree, "bigquery")
    check_dialect(tree, "postgres")  # a JSONB document there
    check_dialect(access(exp.column("p"), "VARCHAR", ("k",), "text"), "bigquery")
    # A plain column has nothing to refuse.
    check_dialect(access(exp.column("p"), "VARCHAR", (), "number"), "postgres")


def test_keys_are_literals_not_sql() -> None:
    hostile = "x') OR 1=1 --"
    con = duckdb.connect()
    con.execute("""CREATE TABLE t AS SELECT '{"a": 1}' AS j""")
    tree = access(exp.column("j"), "VARCHAR", (hostile,), "text")
    assert con.execute(exp.select(tree).from_("t").sql("duckdb")).fetchall() == [(None,)]


# ---------------------------------------------------------------------------------------------
# PropertyTypes: what the definitions learn about a nested name


def test_property_types_families_and_errors() -> None:
    from segctl.definitions.model import ColumnType
    from segctl.sources.property_types import PropertyTypes

    types = PropertyTypes(
        {
            "events": {
                "properties": "VARCHAR",
                "ctx": "STRUCT(n BIGINT, ok BOOLEAN, at TIMESTAMP, os VARCHAR, "
                "inner STRUCT(a INTEGER))",
                "m": "MAP(VARCHAR, DOUBLE)",
                "amount": "DOUBLE",
            }
        }
    )
    family = {
        n: t.family if (t := types.nested_type("events", n)) else "unknown"
        for n in ("properties.a", "ctx.n", "ctx.ok", "ctx.at", "ctx.os", "m.k", "nope.k")
    }
    assert family == {
        "properties.a": None,  # the comparator decides
        "ctx.n": ColumnType.NUMBER,
        "ctx.ok": ColumnType.BOOLEAN,
        "ctx.at": ColumnType.TIMESTAMP,
        "ctx.os": None,  # text: read as the comparator asks (numeric strings count)
        "m.k": ColumnType.NUMBER,
        "nope.k": "unknown",
    }
    with pytest.raises(
        NestedAccessError, match=r"ctx.inner is a STRUCT: name one of its keys \(a\)"
    ):
        types.nested_type("events", "ctx.inner")
    with pytest.raises(NestedAccessError, match="it is DOUBLE"):
        types.nested_type("events", "amount.x")


def test_property_types_warn_once_about_unseen_json_keys() -> None:
    from segctl.sources.property_types import PropertyTypes

    con = duckdb.connect()
    con.execute(
        """CREATE TABLE events AS SELECT * FROM (VALUES
        ('{"plan": "pro", "ctx": {"os": "ios"}}'), ('{"plan": "free", "amount": 3}'), (NULL))
        AS t(properties)"""
    )
    queries: list[str] = []

    def run(query: exp.Expression) -> list[tuple[Any, ...]]:
        queries.append(query.sql("duckdb"))
        return con.execute(queries[-1]).fetchall()

    types = PropertyTypes({"events": {"properties": "VARCHAR"}}, run)
    assert types.nested_type("events", "properties.plan") == types.nested_type(
        "events", "properties.amount"
    )
    found = types.nested_type("events", "properties.amout")
    assert found is not None and found.family is None
    assert found.warning is not None
    assert "key 'amout' never appears in the first 10,000 rows of properties" in found.warning
    assert "(keys seen: amount, ctx, plan)" in found.warning
    assert "did you mean 'amount'?" in found.warning
    nested = types.nested_type("events", "properties.ctx.oss")
    assert nested is not None and nested.warning is not None and "(keys seen: os)" in nested.warning
    assert len(queries) == 2  # one sample per JSON object level, cached
