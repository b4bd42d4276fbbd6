"""What the definitions learn about nested property names from the engine and the data.

:class:`PropertyTypes` implements ``segctl.definitions.properties.NestedProperties`` over the
engine's column types (``DESCRIBE`` of the input views): the type family a dotted name reaches
(a STRUCT field's type, or None where only the data knows, as in JSON text), its problems
(unknown STRUCT key, keys into a number...), and two warnings drawn from the first rows of a
JSON text column: a key never seen there, and a comparator whose reading (number, boolean)
none of the key's values gives.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from segctl.definitions.model import ColumnType
from segctl.definitions.properties import NestedType
from segctl.sources.nested import (
    NestedAccessError,
    PropertyPath,
    access,
    format_path,
    is_json_text,
    is_text_type,
    known_keys,
    parse_path,
    value_type,
)

#: Rows of the data sampled for the JSON keys a validate warns about.
SAMPLE_ROWS = 10_000
RunQuery = Callable[[exp.Expression], list[tuple[Any, ...]]]


def sample_keys_query(
    table: str, column: str, prefix: tuple[str, ...], rows: int, function: str = "JSON_KEYS"
) -> exp.Select:
    """The distinct keys of the JSON objects at ``prefix`` in the first ``rows`` rows of
    ``table.column`` (DuckDB); with ``function="JSON_TYPE"``, the distinct JSON types there."""
    json_path = exp.JSONPath(
        expressions=[exp.JSONPathRoot(), *(exp.JSONPathKey(this=k) for k in prefix)]
    )
    column_ref = exp.column(exp.to_identifier(column, quoted=True))
    sample = (
        exp.select(column_ref)
        .from_(exp.to_identifier(table, quoted=True))
        .where(exp.not_(exp.Is(this=column_ref.copy(), expression=exp.Null())))
        .limit(rows)
    )
    read = exp.Anonymous(this=function, expressions=[column_ref.copy(), json_path])
    keys = exp.Unnest(expressions=[read]) if function == "JSON_KEYS" else read
    return (
        exp.select(exp.alias_(keys, "key"))
        .distinct()
        .from_(sample.subquery("sample"))
        .order_by(exp.column("key"))
    )


@dataclass
class PropertyTypes:
    """Resolves nested property names for the definitions (``NestedProperties``) from the
    engine's column types; ``run`` answers the JSON key samples behind the warnings."""

    column_types: dict[str, dict[str, str]]
    run: RunQuery | None = None
    rows: int = SAMPLE_ROWS
    _samples: dict[tuple[str, str, tuple[str, ...]], set[str]] = field(default_factory=dict)

    def nested_type(self, table: str, name: str) -> NestedType | None:
        """See ``segctl.definitions.properties.NestedProperties``. A plain column is named
        too: one of JSON values reads as a nested value does (its family None)."""
        plain = name in self.column_types.get(table, {})
        path = PropertyPath(name, (), name) if plain else parse_path(name)
        column_type = self.column_types.get(table, {}).get(path.column)
        if column_type is None:
            return None
        leaf = value_type(column_type, path.keys)
        if leaf is None or is_text_type(leaf):
            # JSON text, text in a MAP, GA4's typed slots: the comparator's value decides.
            return NestedType(None, self._unseen(table, path, column_type))
        if leaf.this in exp.DataType.NUMERIC_TYPES:
            return NestedType(ColumnType.NUMBER)
        if leaf.this == exp.DataType.Type.BOOLEAN:
            return NestedType(ColumnType.BOOLEAN)
        if leaf.this in exp.DataType.TEMPORAL_TYPES:
            return NestedType(ColumnType.TIMESTAMP)
        inner = known_keys(column_type, path.keys)
        if inner is not None:
            raise NestedAccessError(
                f"{format_path(path.column, path.keys)} is a STRUCT: name one of its keys "
                f"({', '.join(inner)})"
            )
        raise NestedAccessError(
            f"{format_path(path.column, path.keys)} is {leaf.sql(dialect='duckdb')}, which "
            "segctl cannot compare: name a key inside it"
        )

    def reading_warning(self, table: str, name: str, family: ColumnType) -> str | None:
        """See ``segctl.definitions.properties.NestedProperties``: for JSON text columns, from
        the first rows where the key has a value."""
        path = parse_path(name)
        column_type = self.column_types.get(table, {}).get(path.column)
        if self.run is None or column_type is None or not is_json_text(column_type):
            return None
        want = {ColumnType.NUMBER: "number", ColumnType.BOOLEAN: "boolean"}.get(family)
        if want is None or not path.keys:
            return None
        column = exp.column(exp.to_identifier(path.column, quoted=True))
        text = access(column, column_type, path.keys, "text")
        read = access(column.copy(), column_type, path.keys, want)
        # The first rows of the column (as the key sample): a rare key must not make it scan
        # every row on each load of the project.
        rows = (
            exp.select(column.copy())
            .from_(exp.to_identifier(table, quoted=True))
            .where(exp.not_(exp.Is(this=column.copy(), expression=exp.Null())))
            .limit(self.rows)
        )
        sample = (
            exp.select(exp.alias_(text, "text"), exp.alias_(read, "value"))
            .from_(rows.subquery("rows"))
            .where(exp.not_(exp.Is(this=text.copy(), expression=exp.Null())))
        )
        query = exp.select(
            exp.func("COUNT", exp.column("value")),
            exp.func("COUNT", exp.Star()),
            exp.Anonymous(
                this="LIST",
                expressions=[exp.Distinct(expressions=[exp.column("text")])],
            ),
        ).from_(sample.subquery("sample"))
        found = self.run(query)
        if not found or not found[0][1] or found[0][0]:
            return None  # no value in the sample, or some read as asked
        seen = sorted(str(v) for v in found[0][2] or [])
        shown = ", ".join(repr(v) for v in seen[:5]) + (", ..." if len(seen) > 5 else "")
        return (
            f"the comparator reads it as a {family.value}, but none of its {found[0][1]:,} values "
            f"in the first {self.rows:,} rows is a {family.value} (seen: {shown}); "
            "compare with text to read it as text (eq: '5')"
        )

    def holding(self, table: str, key: str) -> list[str]:
        """The nested names of ``key`` at the top of a column of ``table``: a STRUCT's
        field, a key of a JSON text column's sample (``properties.$current_url`` for
        ``$current_url``, a property the user named as the tool shows it)."""
        found = []
        for column, column_type in self.column_types.get(table, {}).items():
            if is_json_text(column_type):
                keys = self._keys(table, column, ()) if self.run is not None else set()
            else:
                keys = set(known_keys(column_type, ()) or ())
            if key in keys:
                found.append(format_path(column, (key,)))
        return found

    def _keys(
        self, table: str, column: str, prefix: tuple[str, ...], function: str = "JSON_KEYS"
    ) -> set[str]:
        """The keys at ``prefix`` in the sample of a JSON text column (none when its values
        are not JSON objects); with ``function="JSON_TYPE"``, the JSON types there."""
        assert self.run is not None
        cache = (table, column, (function, *prefix))
        if cache not in self._samples:
            query = sample_keys_query(table, column, prefix, self.rows, function)
            self._samples[cache] = {str(r[0]) for r in self.run(query) if r[0] is not None}
        return self._samples[cache]

    def _unseen(self, table: str, path: PropertyPath, column_type: str) -> str | None:
        """A warning when the top-level JSON text column's sample never has the key."""
        if self.run is None or not path.keys or not is_json_text(column_type):
            return None
        prefix, key = path.keys[:-1], path.keys[-1]
        seen = self._keys(table, path.column, prefix)
        where = format_path(path.column, prefix)
        if not seen and self._keys(table, path.column, prefix, "JSON_TYPE") == {"ARRAY"}:
            return (
                f"{where} holds JSON lists, not objects, in the first {self.rows:,} rows: "
                f"key {key!r} reads nothing in a list, so the value is missing (a list of "
                "key/value records is read by key from NDJSON or Parquet, not from text)"
            )
        if not seen or key in seen:
            return None  # no sample (empty, or not JSON objects): nothing to say
        close = difflib.get_close_matches(key, sorted(seen), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        shown = ", ".join(sorted(seen)[:8]) + (", ..." if len(seen) > 8 else "")
        return (
            f"key {key!r} never appears in the first {self.rows:,} rows of {where} "
            f"(keys seen: {shown}){hint}; where it is missing the value is missing"
        )
