"""How definitions learn the type of a nested property (``properties.plan``) they cannot see.

The definitions know the data only as type families (:data:`~segctl.definitions.model.Schema`).
A dotted name reaches inside a column whose engine type (JSON text, STRUCT, MAP, key/value
records) the layer above knows: it hands the parser a :class:`NestedProperties` (the project
builds one from the engine's column types, see ``segctl.sources.property_types``).

What the comparator reads (SPEC 1, "Nested properties"): where the type is only known from the
data (JSON text, text in a MAP, GA4's typed slots), the comparator's value decides: a number
reads a number, ``true``/``false`` a boolean, anything else text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from segctl.definitions.model import ColumnType


@dataclass(frozen=True)
class NestedType:
    """What a nested property name reaches: its type family, or None when the comparator's
    value decides how it is read; and a warning to show (a key never seen in the data)."""

    family: ColumnType | None
    warning: str | None = None


class NestedProperties(Protocol):
    """Resolves names that are not plain columns of a table."""

    def nested_type(self, table: str, name: str) -> NestedType | None:
        """None when ``name`` is not a nested name (the caller reports an unknown column);
        raises ValueError with the problem (bad path syntax, an unknown STRUCT key...)."""
        ...

    def reading_warning(self, table: str, name: str, family: ColumnType) -> str | None:
        """A warning when a value whose type only the data knows, read as ``family`` (a number,
        a boolean), never reads so in a sample of the data, although it is there."""
        ...

    def holding(self, table: str, key: str) -> list[str]:
        """The nested names of ``key`` at the top of a column of ``table`` (a suggestion for
        a plain name that is no column)."""
        ...


def looks_nested(name: Any) -> bool:
    """A name that can only mean a path (it has a dot or a quote)."""
    return isinstance(name, str) and ("." in name or '"' in name)


#: Comparators whose value is compared with the property's (the others give no type hint).
_VALUED = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "between")
#: Comparators that only apply to timestamps, which a JSON value is never read as.
TIME_ONLY = ("within", "older_than", "before", "after")


def blind_type(comparators: Iterable[tuple[str, Any]]) -> ColumnType:
    """The type a column of data that cannot be read is taken to have, for these comparator
    keys (:class:`~segctl.definitions.model.BlindSchema`): whatever they apply to, so that
    no type problem is made up (a timestamp for the time comparators or a date value, text
    for the text ones, else as a JSON value is read)."""
    tests = list(comparators)
    values = [
        v for op, raw in tests if op in _VALUED for v in (raw if isinstance(raw, list) else [raw])
    ]
    if any(op in TIME_ONLY for op, _ in tests) or any(isinstance(v, date) for v in values):
        return ColumnType.TIMESTAMP
    if any(op in ("contains", "starts_with", "ends_with", "regex") for op, _ in tests):
        return ColumnType.STRING
    return reading_of(tests) if values else ColumnType.NUMBER


def reading_of(comparators: Iterable[tuple[str, Any]]) -> ColumnType:
    """How a nested value whose type only the data knows is read for these comparator keys:
    as a boolean against true/false, as a number against a number, as text otherwise."""
    values: list[Any] = []
    for op, raw in comparators:
        if op in _VALUED:
            values.extend(raw if isinstance(raw, list) else [raw])
    if any(isinstance(v, bool) for v in values):
        return ColumnType.BOOLEAN
    if any(isinstance(v, int | float) for v in values):
        return ColumnType.NUMBER
    return ColumnType.STRING
