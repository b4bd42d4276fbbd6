"""The shared ground of the definition readers: where problems go, mappings, unknown keys and
the types of columns and nested properties (:class:`ParserBase`).

The readers stack on it, each a module of its own: comparisons (``gte: 10``...), measures and
windows (``count: {gte: 10}, within: 30d``) and conditions (``event:``, ``all:``...), in
:class:`segctl.definitions.conditions.ConditionParser`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from segctl.definitions.model import (
    BlindSchema,
    ColumnType,
    EventMatch,
    Feature,
    Schema,
)
from segctl.definitions.properties import (
    TIME_ONLY,
    NestedProperties,
    blind_type,
    looks_nested,
    reading_of,
)
from segctl.definitions.source import (
    Pos,
    Problems,
    YMap,
    did_you_mean,
    operator_hint,
    position_of,
    valid_keys,
)

#: Expands ``template:`` conditions; given (name, params, position) returns a YAML condition.
TemplateExpander = Callable[[Any, Any, Pos], Any]


#: Keys that belong to another kind of condition: where each goes and how, said instead of a
#: did-you-mean.
ELSEWHERE = {
    "calendar": (
        "only to an event condition's window",
        "use it beside within: or between: of an event or custom_event condition",
    ),
    "last": (
        "to an event condition",
        "last: 5 beside event: keeps each person's 5 newest matching events",
    ),
    "max_gap": ("to a sequence", "sequence: {steps: [...], max_gap: 7d}"),
    "max_span": ("to a sequence", "sequence: {steps: [...], max_span: 30d}"),
}


def misplaced(key: Any, what: str) -> str | None:
    """The message for a key that belongs to another kind of condition, else None."""
    found = ELSEWHERE.get(key) if isinstance(key, str) else None
    if found is None:
        return None
    where, how = found
    return f"'{key}' applies {where}, not to {what} ({how})"


class ParserBase:
    """Problems, mappings and column types for the readers of one project."""

    def __init__(
        self,
        schema: Schema,
        tz: ZoneInfo,
        root: Path,
        problems: Problems,
        *,
        features: dict[str, Feature] | None = None,
        segment_names: Iterable[str] = (),
        expand_template: TemplateExpander | None = None,
        properties: NestedProperties | None = None,
        custom_events: dict[str, EventMatch] | None = None,
    ) -> None:
        self.schema = schema
        self.tz = tz
        self.root = root
        self.problems = problems
        self.features = features if features is not None else {}
        self.segment_names = set(segment_names)
        self.expand_template = expand_template
        self.properties = properties
        self.custom_events = custom_events or {}

    # ---- helpers ----------------------------------------------------------------------

    def error(self, pos: Pos, message: str) -> None:
        self.problems.add(pos, message)

    def mapping(self, node: Any, pos: Pos, what: str, example: str) -> YMap | None:
        if isinstance(node, YMap):
            return node
        self.error(position_of(node, pos), f"{what} must be a mapping, like {example}")
        return None

    def unknown_keys(
        self, node: YMap, allowed: Iterable[str], what: str, *, operators: bool = False
    ) -> None:
        """Report each key of ``node`` not ``allowed``. With ``operators`` (a condition of a
        column and comparators, whose other keys can only be operators), as an unknown
        operator: "unknown operator 'gtee' (did you mean 'gte'?)"."""
        allowed = tuple(allowed)
        for key in node:
            if key not in allowed and (elsewhere := misplaced(key, what)):
                self.error(node.key_at(key), elsewhere)
            elif key not in allowed and operators:
                self.error(
                    node.key_at(key), f"unknown operator '{key}'{operator_hint(key, allowed)}"
                )
            elif key not in allowed:
                self.error(
                    node.key_at(key),
                    f"unknown key '{key}' in {what}{valid_keys(key, allowed)}",
                )

    def column_type(
        self,
        table: str,
        column: Any,
        pos: Pos,
        what: str,
        comparators: Iterable[tuple[str, Any]] | None = None,
    ) -> ColumnType | None:
        """The type family of a column or nested property (``comparators``: the keys it is
        tested with, which decide how a value only the data types is read; none: a number)."""
        if isinstance(self.schema, BlindSchema):
            return blind_type(comparators or [])
        columns = self.schema.get(table, {})
        if column not in columns and self.properties is not None and looks_nested(column):
            return self.nested_type(table, column, pos, what, comparators)
        if not isinstance(column, str) or column not in columns:
            inside = self.properties.holding(table, column) if self.properties else []
            hint = (
                f" (did you mean '{inside[0]}'? the export keeps it inside that column)"
                if inside and isinstance(column, str)
                else did_you_mean(str(column), columns)
                or (f" (available: {', '.join(sorted(columns)[:12])})" if columns else "")
            )
            self.error(pos, f"unknown {what} '{column}'{hint}")
            self.problems.unknown_column = True
            return None
        if self._json_values(table, column):
            return self.nested_type(table, column, pos, what, comparators)
        return columns[column]

    def _json_values(self, table: str, column: str) -> bool:
        """Whether a plain column holds values whose type only the data knows (JSON values:
        a top-level NDJSON key whose lines mix numbers and text), read as nested ones are."""
        if self.properties is None or self.schema[table].get(column) is not ColumnType.OTHER:
            return False
        try:
            found = self.properties.nested_type(table, column)
        except ValueError:  # a LIST, a STRUCT named whole: not comparable, said as before
            return False
        return found is not None and found.family is None

    def nested_type(
        self,
        table: str,
        name: str,
        pos: Pos,
        what: str,
        comparators: Iterable[tuple[str, Any]] | None,
    ) -> ColumnType | None:
        """A dotted name's type family (SPEC 1, "Nested properties"); problems recorded."""
        assert self.properties is not None
        try:
            found = self.properties.nested_type(table, name)
        except ValueError as exc:
            message = str(exc)  # a syntax error names the property itself
            if message.startswith("property name "):
                message = f"{what} name {message.removeprefix('property name ')}"
            else:
                message = f"{what} '{name}': {message}"
            self.error(pos, message)
            return None
        if found is None:
            columns = self.schema.get(table, {})
            head = name.split(".", 1)[0].strip('"')
            hint = did_you_mean(head, columns) or (
                f" (available: {', '.join(sorted(columns)[:12])})" if columns else ""
            )
            self.error(pos, f"unknown {what} '{name}': there is no column '{head}'{hint}")
            self.problems.unknown_column = True
            return None
        if found.warning:
            self.problems.warn(pos, f"{what} '{name}': {found.warning}")
        if found.family is not None:
            return found.family
        tests = list(comparators or [])
        timed = [op for op, _ in tests if op in TIME_ONLY]
        if timed:
            self.error(
                pos,
                f"'{timed[0]}' needs a timestamp, but {what} '{name}' holds JSON values, read "
                "as text, a number or a boolean: compare it with eq/gte/... instead",
            )
            return None
        family = reading_of(tests) if comparators is not None else ColumnType.NUMBER
        if family is not ColumnType.STRING:
            warning = self.properties.reading_warning(table, name, family)
            if warning:
                self.problems.warn(pos, f"{what} '{name}': {warning}")
        return family
