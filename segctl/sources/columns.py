"""How one source's columns become the canonical ones, as sqlglot trees (SPEC 1).

A source column is named flat (``user_id``) or as a dotted path into a nested column
(``properties.$user_id``, read by :mod:`segctl.sources.nested`). A preset may give candidates;
the first one present in the data is read. Timestamps are normalised to naive UTC whatever
their encoding: a timestamp type, ISO-8601 text, or (with ``timestamp_unit``) a number of
seconds, milliseconds, microseconds or nanoseconds since the Unix epoch, as a number or as
numeric text (BigQuery's JSON export writes INT64 as text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlglot import exp

from segctl.errors import DataError
from segctl.sources.nested import NestedAccessError, access, parse_path, value_type

TIMESTAMPTZ = "TIMESTAMP WITH TIME ZONE"
#: Any tz-aware timestamp: also TIMESTAMPTZ_NS (pandas writes nanoseconds).
TZ_AWARE = (TIMESTAMPTZ, "TIMESTAMPTZ_")
#: Microseconds in one unit of ``timestamp_unit``.
MICROS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0.001}
UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
_NUMBER = re.compile(
    r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|"
    r"UBIGINT|UHUGEINT|FLOAT|DOUBLE|REAL|DECIMAL.*)$"
)
_TIMESTAMP = re.compile(r"^(TIMESTAMP.*|DATE)$")
_TEXT = ("VARCHAR", "JSON", '"NULL"', "NULL")


@dataclass(frozen=True)
class Column:
    """A source column as read: its SQL tree, the engine type of that tree, and its name."""

    expr: exp.Expr
    type: str
    name: str  # as written (flat name or dotted path)

    @property
    def flat(self) -> bool:
        return "." not in self.name or not isinstance(self.expr, exp.Column)


def is_number(duck_type: str) -> bool:
    return bool(_NUMBER.match(duck_type))


def is_float(duck_type: str) -> bool:
    return duck_type in ("DOUBLE", "FLOAT", "REAL")


def is_timestamp(duck_type: str) -> bool:
    return bool(_TIMESTAMP.match(duck_type))


def is_text(duck_type: str) -> bool:
    return duck_type in _TEXT


def column(name: str, described: dict[str, str]) -> Column | None:
    """``name`` in a relation with columns ``described`` (name -> DuckDB type): a column of
    that name, else a dotted path into a nested column; None when neither is there."""
    if name in described:
        return Column(exp.column(name, quoted=True), described[name], name)
    try:
        path = parse_path(name)
    except ValueError:
        return None
    if not path.nested or path.column not in described:
        return None
    column_type = described[path.column]
    try:
        # A value whose type the column's type says (a STRUCT's or MAP's TIMESTAMP, DATE or
        # number) keeps it, read as its type is; inside JSON text or a GA4 record it is text.
        known = value_type(column_type, path.keys)
        want = "any" if known is not None else "text"
        tree = access(exp.column(path.column, quoted=True), column_type, path.keys, want)
    except NestedAccessError:
        return None
    return Column(tree, _duck_name(known) if known is not None else "VARCHAR", name)


def _duck_name(dtype: exp.DataType) -> str:
    """The name DuckDB's DESCRIBE gives the type (what the readings here compare with)."""
    if dtype.this == exp.DataType.Type.TIMESTAMPTZ:
        return TIMESTAMPTZ
    if dtype.this in exp.DataType.TEXT_TYPES:
        return "VARCHAR"
    return dtype.sql(dialect="duckdb")


def text(col: Column, empty_is_null: bool = True) -> exp.Expr:
    """The column as text; for ids an empty string is no value (an anonymous event)."""
    value: exp.Expr = col.expr
    if col.type == "JSON":  # NDJSON files disagreeing (1001 in one, "1002" in another)
        value = exp.func("json_extract_string", value, exp.Literal.string("$"))
    elif col.type != "VARCHAR":
        value = exp.cast(value, "VARCHAR")
    if not empty_is_null:
        return value
    return exp.func("NULLIF", value, exp.Literal.string(""))


def timestamp(col: Column, unit: str | None, display: str, canonical: str) -> exp.Expr:
    """The column as a naive-UTC TIMESTAMP; a DataError when its type cannot be one."""
    duck_type = col.type
    source = col.expr
    if unit is not None and (is_number(duck_type) or is_text(duck_type)):
        number: exp.Expr = source
        if not is_number(duck_type):  # numeric text: a value that is not a number is an error
            # DECIMAL, not DOUBLE: nanoseconds since 1970 have more digits than a double holds.
            number = exp.cast(source, "DECIMAL(38, 9)")
        if unit == "ns" and is_float(duck_type):
            micros: exp.Expr = exp.Div(this=number, expression=exp.Literal.number(1000))
        elif unit == "ns":
            # In whole numbers: a division reads them as doubles first (53 bits), and a
            # nanosecond value of today has 61, so .000000999 was rounded up a microsecond.
            # A DECIMAL's fraction is cut (FLOOR of an integer would make it a double).
            decimal = not is_number(duck_type) or duck_type.startswith("DECIMAL")
            whole = exp.cast(exp.func("FLOOR", number) if decimal else number, "HUGEINT")
            micros = _floor_div(whole, 1000)
        else:
            micros = exp.Mul(this=number.copy(), expression=exp.Literal.number(MICROS[unit]))
        # Sub-microsecond digits are cut, as DuckDB cuts nanosecond timestamps.
        stamp = exp.func("make_timestamp", exp.cast(exp.func("FLOOR", micros), "BIGINT"))
        # Beyond the years 1 to 9999 (milliseconds read as seconds: the year 58,000) a value
        # fails as text that is not a timestamp fails, and is traced to its row the same way.
        refused = exp.cast(
            exp.DPipe(
                this=exp.cast(number.copy(), "VARCHAR"), expression=exp.Literal.string(" (range)")
            ),
            "TIMESTAMP",
        )
        inside = exp.If(this=in_range(number.copy(), unit), true=stamp)
        return exp.Case(ifs=[inside], default=refused)
    if is_number(duck_type):
        raise numbers_not_timestamps(display, col, canonical)
    if is_text(duck_type):
        return exp.func("make_timestamp", exp.func("epoch_us", exp.cast(source, "TIMESTAMPTZ")))
    if duck_type == TIMESTAMPTZ:
        # The same instant as naive UTC by arithmetic: AT TIME ZONE goes through ICU and cost
        # 6x the whole scan (1.3 s per 10M events). Infinite values become NULL.
        return exp.func("make_timestamp", exp.func("epoch_us", source))
    if duck_type.startswith(TZ_AWARE):
        return exp.cast(exp.AtTimeZone(this=source, zone=exp.Literal.string("UTC")), "TIMESTAMP")
    if duck_type == "TIMESTAMP_NS":
        # Cut to the microsecond, as ISO text with nine digits and ns epochs are read (the
        # cast rounds: .999999999 became the next second, and a run reading a file as text
        # beside one typed in ns disagreed with one reading each alone). Floor division.
        ns = exp.func("epoch_ns", source)
        thousand = exp.Literal.number(1000)
        below = exp.Mod(  # ((ns % 1000) + 1000) % 1000: the nanoseconds below a microsecond
            this=exp.paren(
                exp.Add(this=exp.Mod(this=ns, expression=thousand), expression=thousand.copy())
            ),
            expression=thousand.copy(),
        )
        micros = exp.IntDiv(
            this=exp.paren(exp.Sub(this=ns.copy(), expression=exp.paren(below))),
            expression=thousand.copy(),
        )
        return exp.func("make_timestamp", micros)
    if is_timestamp(duck_type):
        return source if duck_type == "TIMESTAMP" else exp.cast(source, "TIMESTAMP")
    raise DataError(
        f"{display}: column '{canonical}' must hold timestamps (ISO-8601 text or a timestamp "
        f"type), but it is {duck_type}"
    )


#: The instants a timestamp can be (Python's years 1 to 9999), in microseconds since 1970.
_MICROS_RANGE = (-62_135_596_800_000_000, 253_402_300_799_999_999)


def in_range(number: exp.Expr, unit: str) -> exp.Expr:
    """True when ``number`` (of ``unit`` since the Unix epoch) is an instant of the years 1 to
    9999; compared in the unit itself, so that no product overflows."""
    low, high = (exp.Literal.number(repr(m / MICROS[unit])) for m in _MICROS_RANGE)
    return exp.Between(this=number, low=low, high=high)


def _floor_div(whole: exp.Expr, by: int) -> exp.Expr:
    """``whole`` // ``by`` rounded down, negatives too (DuckDB's ``//`` cuts toward zero):
    the remainder taken off first, made positive."""
    divisor = exp.Literal.number(by)
    remainder = exp.Mod(
        this=exp.paren(
            exp.Add(this=exp.Mod(this=whole.copy(), expression=divisor), expression=divisor.copy())
        ),
        expression=divisor.copy(),
    )
    exact = exp.paren(exp.Sub(this=whole.copy(), expression=remainder))
    return exp.IntDiv(this=exact, expression=divisor.copy())


def numbers_not_timestamps(
    display: str, col: Column, canonical: str, first: tuple[str, int, float] | None = None
) -> DataError:
    """A timestamp column of numbers with no ``timestamp_unit``; with its ``first`` value
    ("row" or "line", its number, the value), that value and the unit that reads it."""
    if first is None:
        return DataError(
            f"{display}: column '{col.name}' ({canonical}) holds numbers ({col.type}): set "
            "timestamp_unit (s, ms, us or ns since the Unix epoch) on the source, or use "
            "ISO-8601 text or a timestamp type"
        )
    where, n, value = first
    unit = plausible_unit(float(value))
    reads = (
        f"it reads as {UNIT_NAMES[unit]} since the Unix epoch: set timestamp_unit: {unit}"
        if unit
        else "set timestamp_unit (s, ms, us or ns since the Unix epoch)"
    )
    return DataError(
        f"{display}: {where} {n}: column '{col.name}' ({canonical}) holds numbers ({col.type}), "
        f"like {value}, not timestamps: {reads} on the source, or use ISO-8601 text or a "
        "timestamp type"
    )


def plausible_unit(value: float) -> str | None:
    """The first unit (s, ms, us, ns) that reads ``value`` as an instant of 1990 to 2100."""
    return next((u for u in MICROS if 631_152_000 <= value * MICROS[u] / 1e6 < 4_102_444_800), None)


def bad_timestamp(value: exp.Expr, unit: str | None) -> exp.Expr:
    """True for a (text) value that the timestamp reading refuses."""
    target = "DOUBLE" if unit else "TIMESTAMPTZ"
    read = exp.TryCast(this=value, to=exp.DataType.build(target))
    refused: exp.Expr = exp.Is(this=read, expression=exp.Null())
    if unit:
        refused = exp.or_(refused, exp.not_(in_range(read.copy(), unit)))
    return exp.and_(exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null())), refused)
