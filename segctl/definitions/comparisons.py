"""Read comparators (SPEC 2.2): ``gte: 10``, ``in: [a, b]``, ``within: 30d``... typed against
the column or measure they test."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

import duckdb

from segctl.definitions.durations import parse_duration
from segctl.definitions.model import (
    BlindSchema,
    ColumnType,
    Comparator,
    Test,
)
from segctl.definitions.parsing import ParserBase, misplaced
from segctl.definitions.properties import blind_type
from segctl.definitions.source import (
    Pos,
    YMap,
    operator_hint,
)
from segctl.definitions.values import coerce
from segctl.errors import ValueProblem
from segctl.timeutil import parse_timestamp

COMPARATORS = (
    "eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "contains",
    "starts_with", "ends_with", "regex", "is_set", "within", "older_than", "before", "after",
)  # fmt: skip
ORDERED = {ColumnType.NUMBER, ColumnType.STRING, ColumnType.TIMESTAMP}
# Which value types each comparator applies to (None: every type).
APPLIES_TO: dict[str, set[ColumnType] | None] = {
    "eq": None, "ne": None, "in": None, "not_in": None, "is_set": None,
    "gt": ORDERED, "gte": ORDERED, "lt": ORDERED, "lte": ORDERED, "between": ORDERED,
    "contains": {ColumnType.STRING}, "starts_with": {ColumnType.STRING},
    "ends_with": {ColumnType.STRING}, "regex": {ColumnType.STRING},
    "within": {ColumnType.TIMESTAMP}, "older_than": {ColumnType.TIMESTAMP},
    "before": {ColumnType.TIMESTAMP}, "after": {ColumnType.TIMESTAMP},
}  # fmt: skip
#: Inline flag groups both DuckDB (RE2) and Spark (java.util.regex) read the same way.
REGEX_FLAGS = re.compile(r"^\(\?([a-zA-Z]+)\)")


class ComparisonParser(ParserBase):
    """Comparators and their values."""

    def comparator(
        self,
        node: YMap,
        value_type: ColumnType,
        pos: Pos,
        *,
        skip: Iterable[str] = (),
        subject: str | None = None,
    ) -> Comparator | None:
        """The comparator keys of ``node`` (other keys are the caller's: ``skip``).

        ``subject`` says what is compared and its type ("'age' is a number column"), so that a
        value of the wrong type is reported with the column it was meant for."""
        skip = tuple(skip)
        keys = [k for k in node if k not in skip]
        if isinstance(self.schema, BlindSchema):  # no data: what the comparators apply to
            value_type = blind_type((k, node[k]) for k in keys)
        if not keys:
            self.error(
                pos,
                "missing comparator: add one of "
                + ", ".join(COMPARATORS[:6])
                + " ... (e.g. gte: 1)",
            )
            return None
        tests: list[Test] = []
        ok = True
        for key in keys:
            if key not in COMPARATORS:
                self.error(
                    node.key_at(key),
                    misplaced(key, "a comparator")
                    or f"unknown operator '{key}'{operator_hint(key, (*COMPARATORS, *skip))}",
                )
                ok = False
                continue
            test = self.test(key, node[key], value_type, node.at(key), subject)
            if test is None:
                ok = False
            else:
                tests.append(test)
        return Comparator(tuple(tests), value_type, pos) if ok else None

    def test(
        self, op: str, raw: Any, value_type: ColumnType, pos: Pos, subject: str | None = None
    ) -> Test | None:
        applies = APPLIES_TO[op]
        if applies is not None and value_type not in applies:
            kinds = " or ".join(sorted(t.value for t in applies))
            about = f" ({subject})" if subject else ""
            what = "a nested" if value_type is ColumnType.OTHER else f"a {value_type.value}"
            self.error(pos, f"'{op}' applies to {kinds} values, not to {what} value{about}")
            return None
        if applies is ORDERED and value_type is ColumnType.STRING and _has_number(raw):
            # A CSV column with one value that is not a number is read as text, and the
            # comparison would silently become alphabetical ('500' >= '2900').
            self.error(
                pos,
                f"'{op}' compares a number with a text column: the values would compare as "
                "text ('500' > '2900'). If the column should hold numbers, some value in the "
                f"data is not one: fix it; to compare text, quote the value ({op}: '...')",
            )
            return None
        try:
            value = self.test_value(op, raw, value_type)
        except ValueProblem as exc:
            about = f" ({subject})" if subject and op not in _OWN_TYPE else ""
            self.error(pos, f"'{op}': {exc}{about}")
            return None
        return Test(op, value, pos)

    def test_value(self, op: str, raw: Any, value_type: ColumnType) -> Any:
        if op == "is_set":
            if not isinstance(raw, bool):
                raise ValueProblem(f"expected true or false, got {raw!r}")
            return raw
        if op in ("within", "older_than"):
            return parse_duration(raw)
        if op in ("before", "after"):
            return parse_timestamp(raw, self.tz)
        if op in ("in", "not_in"):
            if not isinstance(raw, list) or not raw:
                raise ValueProblem(f"expected a non-empty list, like {op}: [a, b]")
            return tuple(coerce(v, value_type, self.tz) for v in raw)
        if op == "between":
            if not isinstance(raw, list) or len(raw) != 2:
                raise ValueProblem("expected two values, like between: [1, 10]")
            low, high = (coerce(v, value_type, self.tz) for v in raw)
            if low > high:
                raise ValueProblem(f"the lower bound comes first (between: [{raw[1]}, {raw[0]}])")
            return (low, high)
        if op == "regex":
            if not isinstance(raw, str):
                raise ValueProblem(f"expected a regular expression, got {raw!r}")
            try:
                re.compile(raw)
            except re.error as exc:
                raise ValueProblem(f"invalid regular expression: {exc}") from None
            _check_regex_flags(raw)
            _check_re2(raw)
            return raw
        if op in ("contains", "starts_with", "ends_with"):
            if isinstance(raw, (list, dict, bool)) or raw is None:
                raise ValueProblem(f"expected text, got {raw!r}")
            return str(raw)
        return coerce(raw, value_type, self.tz)


def _has_number(raw: Any) -> bool:
    """A YAML number (not a boolean), or a list holding one."""
    values = raw if isinstance(raw, list) else [raw]
    return any(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


# Comparators whose value type is their own, whatever the column holds: a wrong value there is
# not about the column.
_OWN_TYPE = {"is_set", "within", "older_than", "before", "after", "regex"}


@functools.cache
def _regex_engine() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that compiles regexes as the plan's will (RE2)."""
    return duckdb.connect()


def _check_re2(pattern: str) -> None:
    """A pattern Python reads but DuckDB's RE2 does not (a lookahead, a backreference, a
    possessive quantifier) is a definition error here, not a failure of the first run."""
    try:
        _regex_engine().cursor().execute("SELECT regexp_matches('', ?)", [pattern])
    except duckdb.Error as exc:
        reason = str(exc).split("Error: ", 1)[-1]
        raise ValueProblem(
            f"DuckDB's regular expressions (RE2) cannot read this one: {reason} (lookarounds, "
            "backreferences and possessive or atomic groups are not supported; rewrite it "
            "without them)"
        ) from None


def _check_regex_flags(pattern: str) -> None:
    """Inline flags: only a leading group of i, s and m (SPEC 2.4b), which RE2 (DuckDB) and
    java.util.regex (Spark) read alike; other flags mean different things on each engine or
    are unknown to one of them."""
    leading = REGEX_FLAGS.match(pattern)
    if leading is not None:
        unknown = sorted(set(leading.group(1)) - set("ism"))
        if unknown:
            raise ValueProblem(
                f"inline flag '{unknown[0]}' is not supported: a regex may start with (?i) "
                "(any case), (?s) (. matches a newline) and (?m) (^ and $ at each line), "
                "which every engine reads alike"
            )
    inner = pattern[leading.end() :] if leading is not None else pattern
    if re.search(r"(?<!\\)\(\?[a-zA-Z]+\)", inner):
        raise ValueProblem(
            "inline flags go at the start of the regex, like regex: '(?i)^abc' "
            "(a flag group in the middle reads differently on each engine)"
        )


def column_subject(column: str, value_type: ColumnType) -> str:
    """What a comparator's error says of the column it compares."""
    if value_type is ColumnType.OTHER:  # a STRUCT, MAP, list or key/value records
        return f"'{column}' holds nested values: compare a key inside it, like {column}.<key>"
    return f"'{column}' is a {value_type.value} column"
