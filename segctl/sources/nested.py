"""Nested properties: dotted names into JSON text, STRUCT, MAP and key/value record lists.

A property name such as ``properties.plan``, ``properties.$current_url`` or
``properties."app.version"`` is parsed into a :class:`PropertyPath` (the top-level column and the
keys inside it). :func:`access` turns a path into a sqlglot tree that reads the value, following
the column's type as the engine reports it, one key at a time:

- ``VARCHAR``/``JSON``: the rest of the keys as one JSON path (``->>`` on DuckDB,
  ``GET_JSON_OBJECT`` on Spark);
- ``STRUCT(...)``: the field (``col['field']``, which both DuckDB and Spark read as a field);
- ``MAP(K, V)``: the value under the key (``TRY_ELEMENT_AT`` on Spark, which is NULL for a
  missing key even under ANSI);
- ``STRUCT(key ..., value ...)[]``: the value of the first record whose key matches (GA4's
  ``event_params``), whose ``value`` may itself be a record of typed slots
  (``string_value``, ``int_value``...): the first slot set is the value.

How the value is read (``want``) follows SPEC section 1: ``number`` reads numbers and numeric
strings (anything else is NULL), ``boolean`` reads ``true``/``false`` and the strings
``"true"``/``"false"`` (anything else is NULL), ``text`` reads the value's text (a JSON number or
boolean as its JSON text), ``any`` keeps the engine's value. A missing key is NULL whatever the
reading. Keys are always literals in the tree, never spliced into SQL text.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal, TypeVar

from sqlglot import exp

Want = Literal["text", "number", "boolean", "any"]
WANTS: tuple[Want, ...] = ("text", "number", "boolean", "any")

#: A numeric string: an optional minus, digits, optional decimals and exponent; nothing else
#: (no spaces, no "+", no ".5", no "inf").
#: ``[.]`` rather than ``\\.``: Spark unescapes backslashes in string literals.
NUMERIC_PATTERN = r"^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$"
#: The fields of a record of typed slots (GA4's ``value``): the first non-NULL slot is the value.
_SLOT_SUFFIX = "_value"
#: Beside the slots of GA4's ``user_properties`` values: when the property was set (no slot).
SET_AT = "set_timestamp_micros"
#: Dialects that can express each kind of access; ``check_dialect`` refuses the others.
SUPPORTED_DIALECTS: dict[str, frozenset[str]] = {
    "json": frozenset({"duckdb", "spark", "bigquery", "trino", "snowflake", "postgres"}),
    "struct": frozenset({"duckdb", "spark", "trino", "bigquery", "postgres"}),
    "map": frozenset({"duckdb", "spark", "trino", "postgres"}),
    "records": frozenset({"duckdb", "spark", "trino", "bigquery", "postgres"}),
}
_META = "segctl_nested"
#: Marks a bracket that reads a STRUCT's field by name (``col['field']``), which BigQuery and
#: Trino write ``col.field`` (:func:`field_reads`).
_FIELD = "segctl_field"
#: The DuckDB type a nested read gives, on its node (for a warehouse that holds nested
#: columns as JSON documents: :func:`document_reads`).
_TYPE = "segctl_type"
_Node = TypeVar("_Node", bound=exp.Expression)
_BARE_KEY = re.compile(r"[^.\"\s]+")


@dataclass(frozen=True)
class PropertyPath:
    """A property name as the user wrote it, split into its column and the keys inside it."""

    column: str  # the top-level column
    keys: tuple[str, ...]  # keys inside it; () for a plain column
    text: str  # as the user wrote it

    @property
    def nested(self) -> bool:
        """True when the name reaches inside its column."""
        return bool(self.keys)


def parse_path(text: str) -> PropertyPath:
    """``properties.plan`` -> PropertyPath("properties", ("plan",)); a double-quoted part may
    hold dots (``properties."app.version"``). Raises ValueError saying what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a property name is empty: write a column name such as `plan`")
    parts: list[str] = []
    i = 0
    n = len(text)
    while True:
        if i < n and text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise ValueError(
                    f"property name {text!r}: the quote at position {i + 1} is never closed "
                    '(write `column."key.with.dots"`)'
                )
            part = text[i + 1 : end]
            if not part:
                raise ValueError(
                    f'property name {text!r}: an empty quoted key ("") at position {i + 1}'
                )
            i = end + 1
        else:
            match = _BARE_KEY.match(text, i)
            if match is None:
                what = "ends with a dot" if i >= n else f"has {text[i]!r} at position {i + 1}"
                if i == 0 and i < n and text[i] == ".":
                    what = "starts with a dot"
                elif i < n and text[i] == ".":
                    what = f"has an empty key at position {i + 1} (two dots in a row)"
                elif i == 0 and i < n and text[i].isspace():
                    what = "starts with a space"
                raise ValueError(
                    f"property name {text!r} {what}: write `column.key`, with double quotes "
                    'around a key that holds a dot or a space (`properties."app.version"`)'
                )
            part = match.group(0)
            i = match.end()
        parts.append(part)
        if i == n:
            break
        if text[i] != ".":
            raise ValueError(
                f"property name {text!r} has {text[i]!r} at position {i + 1} where a dot or the "
                'end was expected: quote a key that holds a quote or a space ("...")'
            )
        i += 1
        if i == n:
            raise ValueError(f"property name {text!r} ends with a dot: write `column.key`")
    return PropertyPath(column=parts[0], keys=tuple(parts[1:]), text=text)


def format_path(column: str, keys: tuple[str, ...]) -> str:
    """The canonical text of a path (keys quoted where they need it)."""
    return ".".join(p if _BARE_KEY.fullmatch(p) else f'"{p}"' for p in (column, *keys))


class NestedAccessError(ValueError):
    """A path that the column's type cannot reach (unknown struct field, keys into a number...)."""


def parse_type(column_type: str) -> exp.DataType:
    """The engine's type string (DuckDB's spelling) as a sqlglot DataType."""
    try:
        return exp.DataType.build(column_type, dialect="duckdb")
    except Exception as error:  # sqlglot raises ParseError or ValueError
        raise NestedAccessError(f"cannot read the column type {column_type!r}: {error}") from None


def access(
    column: exp.Expression, column_type: str, keys: tuple[str, ...], want: str
) -> exp.Expression:
    """A tree reading ``keys`` inside ``column`` (of the engine type ``column_type``) as ``want``.

    Raises NestedAccessError when the type cannot hold the keys (an unknown STRUCT field, with
    the closest names; keys into a number), ValueError for an unknown ``want``."""
    if want not in WANTS:
        raise ValueError(f"unknown reading {want!r} (expected one of {', '.join(WANTS)})")
    return _read(column, parse_type(column_type), keys, want, keys)


def value_type(column_type: str, keys: tuple[str, ...]) -> exp.DataType | None:
    """The engine type at the end of ``keys`` (None when it is only known at run time: inside
    JSON text, or a record of typed slots). Raises NestedAccessError like :func:`access`."""
    dtype = parse_type(column_type)
    for i, key in enumerate(keys):
        if _is_text(dtype):
            return None
        dtype = _child_type(dtype, key, keys[: i + 1])
    if typed_slots(dtype) is not None:
        return None
    return dtype


def known_keys(column_type: str, keys: tuple[str, ...]) -> list[str] | None:
    """The keys available after ``keys`` where the type says (a STRUCT's fields), else None."""
    dtype = parse_type(column_type)
    for i, key in enumerate(keys):
        if _is_text(dtype):
            return None
        dtype = _child_type(dtype, key, keys[: i + 1])
    if dtype.this == exp.DataType.Type.STRUCT:
        return [_field_name(f) for f in dtype.expressions]
    return None


def is_text_type(dtype: exp.DataType) -> bool:
    """Text (VARCHAR or JSON): its keys, if any, are only known from the data."""
    return _is_text(dtype)


def is_json_text(column_type: str) -> bool:
    """True for a column whose keys are only known from the data (JSON held as text)."""
    return _is_text(parse_type(column_type))


def check_dialect(tree: exp.Expression, dialect: str) -> None:
    """Raise NestedAccessError when ``tree`` holds a nested access ``dialect`` cannot express."""
    for node in tree.walk():
        kind = node.meta.get(_META) if node._meta else None
        if kind is not None and dialect not in SUPPORTED_DIALECTS[kind]:
            able = ", ".join(sorted(SUPPORTED_DIALECTS[kind]))
            raise NestedAccessError(
                f"the {dialect} dialect cannot read a property nested in a {_KIND_NAMES[kind]} "
                f"(segctl renders that for: {able})"
            )


def json_reads(tree: exp.Expr) -> list[exp.JSONExtractScalar]:
    """The readings of JSON text in ``tree`` (for a dialect's own form of them)."""
    return [
        node
        for node in tree.find_all(exp.JSONExtractScalar)
        if node._meta and node.meta.get(_META) == "json"
    ]


_KIND_NAMES = {
    "json": "JSON text column",
    "struct": "STRUCT column",
    "map": "MAP column",
    "records": "list of key/value records",
}


def _mark(node: exp.Expression, kind: str, dtype: exp.DataType | None = None) -> exp.Expression:
    node.meta[_META] = kind
    return node if dtype is None else _typed(node, dtype)


_DOCUMENT_KINDS = ("struct", "map", "records")


def _in_document(node: exp.Expr | None) -> bool:
    """A step of a nested read into a STRUCT, MAP or record list (:func:`document_reads`)."""
    return isinstance(node, exp.Bracket) and bool(
        node._meta and (node.meta.get(_FIELD) or node.meta.get(_META) in _DOCUMENT_KINDS)
    )


@dataclass(frozen=True)
class DocumentRead:
    """A nested read into a STRUCT, MAP or record list, as steps into a JSON document (where
    a warehouse holds such a column: PostgreSQL's JSONB)."""

    node: exp.Bracket  # the read's outermost step, to replace
    column: exp.Expr  # what it reads into
    #: ("key", name): an object's member (a STRUCT's field, a MAP's key, a typed slot);
    #: ("record", key): the ``value`` of the first record of a list whose ``key`` matches.
    steps: tuple[tuple[str, str], ...]
    dtype: exp.DataType | None  # what DuckDB reads there (None: not known)


def document_reads(tree: exp.Expr) -> list[DocumentRead]:
    """The nested reads into STRUCT, MAP and record list columns of ``tree``, outermost steps
    only, each as its steps from its column."""
    found = []
    for node in tree.find_all(exp.Bracket):
        if not _in_document(node) or _in_document(node.parent):
            continue
        steps: list[tuple[str, str]] = []
        at: exp.Expr = node
        while _in_document(at):
            assert isinstance(at, exp.Bracket)
            inner = at.this
            if isinstance(inner, exp.Bracket) and isinstance(inner.this, exp.ArrayFilter):
                match = inner.this.expression
                assert isinstance(match, exp.Lambda) and isinstance(match.this, exp.EQ)
                steps.append(("record", str(match.this.expression.this)))
                at = inner.this.this
            else:
                [key] = at.expressions
                steps.append(("key", str(key.this)))
                at = inner
        typed = node.meta.get(_TYPE)
        dtype = parse_type(typed) if typed else None
        found.append(DocumentRead(node, at, tuple(reversed(steps)), dtype))
    return found


def _typed(node: _Node, dtype: exp.DataType) -> _Node:
    """``node``, marked as reading a value of ``dtype`` (DuckDB's)."""
    node.meta[_TYPE] = dtype.sql(dialect="duckdb")
    return node


def _field(node: exp.Expression, name: str) -> exp.Bracket:
    """``node['name']``: a STRUCT's field, marked as one (:func:`field_reads`)."""
    bracket = exp.Bracket(this=node, expressions=[exp.Literal.string(name)])
    bracket.meta[_FIELD] = True
    return bracket


def field_reads(tree: exp.Expr) -> list[exp.Bracket]:
    """The readings of a STRUCT's field by name in ``tree``, innermost first."""
    found = [n for n in tree.find_all(exp.Bracket) if n._meta and n.meta.get(_FIELD)]
    return sorted(found, key=lambda n: -n.depth)


def record_reads(tree: exp.Expr) -> list[exp.Bracket]:
    """The readings of a value in a list of key/value records in ``tree`` (``value`` of the
    first record whose key matches), innermost first."""
    found = [n for n in tree.find_all(exp.Bracket) if n._meta and n.meta.get(_META) == "records"]
    return sorted(found, key=lambda n: -n.depth)


def _is_text(dtype: exp.DataType) -> bool:
    return dtype.this in exp.DataType.TEXT_TYPES or dtype.this == exp.DataType.Type.JSON


def _field_name(field: exp.Expression) -> str:
    return field.name


def _struct_fields(dtype: exp.DataType) -> dict[str, exp.DataType]:
    fields: dict[str, exp.DataType] = {}
    for column_def in dtype.expressions:
        kind = column_def.args.get("kind")
        if isinstance(kind, exp.DataType):
            fields[_field_name(column_def)] = kind
    return fields


def _records(dtype: exp.DataType) -> exp.DataType | None:
    """The ``value`` type of a list of key/value records, else None."""
    if dtype.this != exp.DataType.Type.ARRAY or not dtype.expressions:
        return None
    element = dtype.expressions[0]
    if not isinstance(element, exp.DataType) or element.this != exp.DataType.Type.STRUCT:
        return None
    fields = _struct_fields(element)
    if "key" in fields and "value" in fields and _is_text(fields["key"]):
        return fields["value"]
    return None


def typed_slots(dtype: exp.DataType) -> dict[str, exp.DataType] | None:
    """The typed slots of a record such as GA4's value (every field ends in ``_value``; the
    ``set_timestamp_micros`` of GA4's ``user_properties`` values beside them is no slot)."""
    if dtype.this != exp.DataType.Type.STRUCT:
        return None
    fields = {k: v for k, v in _struct_fields(dtype).items() if k != SET_AT}
    if fields and all(name.endswith(_SLOT_SUFFIX) for name in fields):
        return fields
    return None


def _child_type(dtype: exp.DataType, key: str, so_far: tuple[str, ...]) -> exp.DataType:
    """The type under ``key`` in a STRUCT, MAP or record list; NestedAccessError otherwise."""
    where = ".".join(so_far[:-1]) or "the column"
    if dtype.this == exp.DataType.Type.STRUCT:
        fields = _struct_fields(dtype)
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise NestedAccessError(
                f"unknown key {key!r} in {where} (a STRUCT with keys: {', '.join(fields)}){hint}"
            )
        return fields[key]
    if dtype.this == exp.DataType.Type.MAP and len(dtype.expressions) == 2:
        value = dtype.expressions[1]
        assert isinstance(value, exp.DataType)
        return value
    value_of_records = _records(dtype)
    if value_of_records is not None:
        return value_of_records
    raise NestedAccessError(
        f"cannot read key {key!r} in {where}: it is {dtype.sql(dialect='duckdb')}, "
        "not JSON text, a STRUCT, a MAP or a list of key/value records"
    )


def _read(
    node: exp.Expression,
    dtype: exp.DataType,
    keys: tuple[str, ...],
    want: str,
    path: tuple[str, ...],
) -> exp.Expression:
    if keys and _is_text(dtype):
        json_path = exp.JSONPath(
            expressions=[exp.JSONPathRoot(), *(exp.JSONPathKey(this=k) for k in keys)]
        )
        text = _mark(exp.JSONExtractScalar(this=node, expression=json_path), "json")
        return _from_text(text, want)
    if not keys:
        slots = typed_slots(dtype)
        if slots is not None:
            return _from_slots(node, slots, want)
        if dtype.this == exp.DataType.Type.JSON:  # a JSON value (a top-level NDJSON key
            # whose lines mix numbers and text): its scalar, unquoted, read by the rules
            root = exp.JSONPath(expressions=[exp.JSONPathRoot()])
            text = _mark(exp.JSONExtractScalar(this=node, expression=root), "json")
            return _from_text(text, "text" if want == "any" else want)
        return _convert(node, dtype, want)
    key = keys[0]
    done = path[: len(path) - len(keys) + 1]
    child = _child_type(dtype, key, done)
    literal = exp.Literal.string(key)
    if dtype.this == exp.DataType.Type.STRUCT:
        inner: exp.Expression = _mark(_field(node, key), "struct", child)
    elif dtype.this == exp.DataType.Type.MAP:
        inner = _mark(exp.Bracket(this=node, expressions=[literal], safe=True), "map", child)
    else:
        record = exp.to_identifier("__kv")
        match = exp.Lambda(
            this=exp.EQ(
                this=exp.Dot(this=exp.column(record), expression=exp.to_identifier("key")),
                expression=literal,
            ),
            expressions=[record],
        )
        first = exp.Bracket(
            this=exp.ArrayFilter(this=node, expression=match),
            expressions=[exp.Literal.number(0)],
            offset=0,
            safe=True,
        )
        inner = _mark(_field(first, "value"), "records", child)
    return _read(inner, child, keys[1:], want, path)


def _null(of: str) -> exp.Expression:
    return exp.Cast(this=exp.Null(), to=exp.DataType.build(of))


def _from_text(text: exp.Expression, want: str) -> exp.Expression:
    """A text value read as ``want`` (the numeric-string and boolean-string rules)."""
    if want in ("text", "any"):
        return text
    if want == "number":
        is_number = exp.RegexpLike(this=text.copy(), expression=exp.Literal.string(NUMERIC_PATTERN))
        return exp.Case(
            ifs=[exp.If(this=is_number, true=exp.Cast(this=text, to=exp.DataType.build("DOUBLE")))]
        )
    return exp.Case(
        ifs=[
            exp.If(
                this=exp.EQ(this=text.copy(), expression=exp.Literal.string("true")),
                true=exp.true(),
            ),
            exp.If(
                this=exp.EQ(this=text, expression=exp.Literal.string("false")), true=exp.false()
            ),
        ]
    )


def _convert(node: exp.Expression, dtype: exp.DataType, want: str) -> exp.Expression:
    """A value of a known engine type read as ``want``."""
    if want == "any":
        return node
    if _is_text(dtype):
        return _from_text(node, want)
    is_number = dtype.this in exp.DataType.NUMERIC_TYPES
    is_boolean = dtype.this == exp.DataType.Type.BOOLEAN
    if want == "number":
        return node if is_number else _null("DOUBLE")
    if want == "boolean":
        return node if is_boolean else _null("BOOLEAN")
    if is_number or is_boolean:
        return exp.Cast(this=node, to=exp.DataType.build("VARCHAR"))
    return _null("VARCHAR")


def _from_slots(node: exp.Expression, slots: dict[str, exp.DataType], want: str) -> exp.Expression:
    """The first set slot of a typed-slot record, read as ``want`` (text slots first)."""
    order = sorted(slots, key=lambda name: (not _is_text(slots[name]), list(slots).index(name)))
    # Mixed slot types have no common type: ``any`` reads the value as text.
    reading = "text" if want == "any" else want
    reads = [
        _convert(_typed(_field(node.copy(), name), slots[name]), slots[name], reading)
        for name in order
    ]
    return exp.Coalesce(this=reads[0], expressions=reads[1:]) if len(reads) > 1 else reads[0]


def share_json_parses(
    reads: dict[str, exp.Expr], prefix: str = "j__"
) -> tuple[dict[str, exp.Expr], dict[str, exp.Expr]]:
    """DuckDB's faster form of many readings of JSON text columns: each column parsed once per
    row for all its keys (``JSON_EXTRACT_STRING(col, ['$.a', '$.b'])``, a list) instead of once
    per key, and every reading takes its element of that list.

    Returns the readings rewritten and the lists to project before them, ``{alias: tree}``.
    On the benchmark's three keys, one parse per row cost half of three."""
    paths: dict[str, dict[str, exp.Expr]] = {}  # column -> path SQL -> path
    columns: dict[str, exp.Expr] = {}
    for tree in reads.values():
        for node in tree.find_all(exp.JSONExtractScalar):
            if isinstance(node.this, exp.Column):
                column = node.this.sql(dialect="duckdb")
                columns.setdefault(column, node.this)
                path = node.expression
                paths.setdefault(column, {}).setdefault(path.sql(dialect="duckdb"), path)
    if not columns:
        return reads, {}
    aliases = {column: f"{prefix}{i}" for i, column in enumerate(columns)}
    parsed: dict[str, exp.Expr] = {
        aliases[column]: exp.Anonymous(
            this="JSON_EXTRACT_STRING",
            expressions=[
                columns[column].copy(),
                exp.Array(expressions=[p.copy() for p in paths[column].values()]),
            ],
        )
        for column in columns
    }

    def element(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.JSONExtractScalar) and isinstance(node.this, exp.Column):
            column = node.this.sql(dialect="duckdb")
            index = list(paths[column]).index(node.expression.sql(dialect="duckdb"))
            values = exp.column(exp.to_identifier(aliases[column], quoted=True))
            return exp.Bracket(this=values, expressions=[exp.Literal.number(index)], offset=0)
        return node

    rewritten = {alias: tree.copy().transform(element) for alias, tree in reads.items()}
    return rewritten, parsed
