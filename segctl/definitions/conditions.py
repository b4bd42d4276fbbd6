"""Parse conditions, comparators and windows (SPEC 2.1-2.4) against the data schema.

The :class:`ConditionParser` walks the YAML of one rule and returns typed conditions, recording
every problem it finds (with its position and a suggested fix) instead of stopping at the first.
Whatever could not be parsed comes back as ``None`` and is never compiled: a run with problems
stops before any data is scanned.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from segctl.definitions.model import (
    AGGREGATES,
    MEASURES,
    All,
    AnyOf,
    ColumnTest,
    ColumnType,
    Comparator,
    Condition,
    EventCondition,
    EventMatch,
    EventMeasure,
    Feature,
    FeatureCondition,
    ListCondition,
    Measure,
    Not,
    PropertyCondition,
    Schema,
    SegmentCondition,
    SequenceCondition,
    SubscriptionCondition,
    Test,
    Window,
)
from segctl.definitions.source import (
    Pos,
    Problems,
    YList,
    YMap,
    did_you_mean,
    position_of,
    valid_keys,
)
from segctl.definitions.values import ValueProblem, coerce, parse_duration, parse_timestamp

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
KINDS = (
    "all", "any", "not", "property", "event", "feature", "subscription", "segment",
    "sequence", "list", "template",
)  # fmt: skip
WINDOW_KEYS = ("within", "between", "from", "to")
EVENT_KEYS = ("event", "where", "last", *WINDOW_KEYS)

#: Expands ``template:`` conditions; given (name, params, position) returns a YAML condition.
TemplateExpander = Callable[[Any, Any, Pos], Any]


class ConditionParser:
    """Parses conditions for the segments and features of one project."""

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
    ) -> None:
        self.schema = schema
        self.tz = tz
        self.root = root
        self.problems = problems
        self.features = features or {}
        self.segment_names = set(segment_names)
        self.expand_template = expand_template

    # ---- helpers ----------------------------------------------------------------------

    def error(self, pos: Pos, message: str) -> None:
        self.problems.add(pos, message)

    def mapping(self, node: Any, pos: Pos, what: str, example: str) -> YMap | None:
        if isinstance(node, YMap):
            return node
        self.error(position_of(node, pos), f"{what} must be a mapping, like {example}")
        return None

    def unknown_keys(self, node: YMap, allowed: Iterable[str], what: str) -> None:
        allowed = tuple(allowed)
        for key in node:
            if key not in allowed:
                self.error(
                    node.key_at(key),
                    f"unknown key '{key}' in {what}{valid_keys(key, allowed)}",
                )

    def column_type(self, table: str, column: Any, pos: Pos, what: str) -> ColumnType | None:
        columns = self.schema.get(table, {})
        if not isinstance(column, str) or column not in columns:
            hint = did_you_mean(str(column), columns) or (
                f" (available: {', '.join(sorted(columns)[:12])})" if columns else ""
            )
            self.error(pos, f"unknown {what} '{column}'{hint}")
            return None
        return columns[column]

    # ---- conditions -------------------------------------------------------------------

    def condition(self, node: Any, pos: Pos) -> Condition | None:
        """One condition or boolean node."""
        if not isinstance(node, YMap):
            self.error(
                position_of(node, pos),
                "a condition must be a mapping with one of: " + ", ".join(KINDS),
            )
            return None
        kinds = [k for k in node if k in KINDS]
        if len(kinds) != 1:
            if kinds:
                self.error(
                    node.pos,
                    f"a condition has exactly one kind, found {', '.join(kinds)}; "
                    "wrap several in all: [...] or any: [...]",
                )
            else:
                first = next(iter(node), "")
                self.error(
                    node.key_at(first) if first else node.pos,
                    f"unknown condition '{first}'{did_you_mean(first, KINDS)}; "
                    f"expected one of: {', '.join(KINDS)}",
                )
            return None
        kind = kinds[0]
        parse = getattr(self, f"_{kind}")
        result: Condition | None = parse(node)
        return result

    def _boolean(self, node: YMap, key: str) -> tuple[Condition, ...] | None:
        self.unknown_keys(node, (key,), f"an '{key}' condition")
        items = node[key]
        if not isinstance(items, YList) or not items:
            self.error(node.at(key), f"'{key}' takes a non-empty list of conditions")
            return None
        parsed = [self.condition(item, items.at(i)) for i, item in enumerate(items)]
        if any(p is None for p in parsed):
            return None
        return tuple(p for p in parsed if p is not None)

    def _all(self, node: YMap) -> Condition | None:
        items = self._boolean(node, "all")
        return All(items, node.pos) if items is not None else None

    def _any(self, node: YMap) -> Condition | None:
        items = self._boolean(node, "any")
        return AnyOf(items, node.pos) if items is not None else None

    def _not(self, node: YMap) -> Condition | None:
        self.unknown_keys(node, ("not",), "a 'not' condition")
        inner = self.condition(node["not"], node.at("not"))
        return Not(inner, node.pos) if inner is not None else None

    def _property(self, node: YMap) -> Condition | None:
        self.unknown_keys(node, ("property", *COMPARATORS), "a property condition")
        value_type = self.column_type(
            "persons", node["property"], node.at("property"), "person property"
        )
        if value_type is None:
            return None
        comparator = self.comparator(node, value_type, node.pos, skip=("property",))
        if comparator is None:
            return None
        return PropertyCondition(ColumnTest(node["property"], comparator), node.pos)

    def _event(self, node: YMap) -> Condition | None:
        measures = [k for k in node if k in MEASURES]
        self.unknown_keys(node, (*EVENT_KEYS, *MEASURES), "an event condition")
        if len(measures) != 1:
            if measures:
                self.error(
                    node.pos,
                    "an event condition takes exactly one measure, found " + ", ".join(measures),
                )
            else:
                self.error(
                    node.pos,
                    "an event condition needs a measure, one of "
                    + ", ".join(MEASURES)
                    + " (e.g. count: {gte: 1})",
                )
            return None
        kind = measures[0]
        spec = self.mapping(node[kind], node.at(kind), f"'{kind}'", f"{kind}: {{gte: 1}}")
        if spec is None:
            return None
        measure = self.event_measure(node, kind, spec, node.at(kind))
        if measure is None:
            return None
        skip = ("of",) if kind in AGGREGATES else ("where",) if kind == "share" else ()
        comparator = self.comparator(spec, self.measure_type(measure), spec.pos, skip=skip)
        if comparator is None:
            return None
        return EventCondition(measure, comparator, node.pos)

    def _feature(self, node: YMap) -> Condition | None:
        self.unknown_keys(node, ("feature", *COMPARATORS), "a feature condition")
        name = node["feature"]
        feature = self.features.get(name) if isinstance(name, str) else None
        if feature is None:
            hint = did_you_mean(str(name), self.features) or (" (define it in features.yaml)")
            self.error(node.at("feature"), f"unknown feature '{name}'{hint}")
            return None
        comparator = self.comparator(
            node, self.measure_type(feature.measure), node.pos, skip=("feature",)
        )
        if comparator is None:
            return None
        return FeatureCondition(name, feature.measure, comparator, node.pos)

    def _subscription(self, node: YMap) -> Condition | None:
        self.unknown_keys(node, ("subscription",), "a subscription condition")
        if "subscriptions" not in self.schema:
            self.error(
                node.key_at("subscription"),
                "a subscription condition needs "
                "subscription data: set data.subscriptions in segctl.yaml",
            )
            return None
        spec = self.mapping(
            node["subscription"],
            node.at("subscription"),
            "'subscription'",
            "subscription: {status: {eq: active}}",
        )
        if spec is None:
            return None
        tests = self.column_tests("subscriptions", spec, "subscription field")
        if tests is None:
            return None
        if not tests:
            self.error(
                spec.pos, "'subscription' needs at least one field, like status: {eq: active}"
            )
            return None
        return SubscriptionCondition(tests, node.pos)

    def _segment(self, node: YMap) -> Condition | None:
        self.unknown_keys(node, ("segment",), "a segment condition")
        name = node["segment"]
        if not isinstance(name, str) or name not in self.segment_names:
            self.error(
                node.at("segment"),
                f"unknown segment '{name}'{did_you_mean(str(name), self.segment_names)}",
            )
            return None
        return SegmentCondition(name, node.pos)

    def _sequence(self, node: YMap) -> Condition | None:
        self.unknown_keys(node, ("sequence",), "a sequence condition")
        spec = self.mapping(
            node["sequence"],
            node.at("sequence"),
            "'sequence'",
            "sequence: {steps: [{event: signup}, {event: purchase}]}",
        )
        if spec is None:
            return None
        self.unknown_keys(spec, ("steps", "max_gap", *WINDOW_KEYS), "a sequence")
        steps = spec.get("steps")
        if not isinstance(steps, YList) or not steps:
            self.error(
                spec.at("steps") if "steps" in spec else spec.pos,
                "a sequence needs 'steps': a list like [{event: signup}, {event: purchase}]",
            )
            return None
        parsed: list[EventMatch | None] = []
        for i, step in enumerate(steps):
            step_map = self.mapping(step, steps.at(i), "a sequence step", "{event: signup}")
            if step_map is None:
                parsed.append(None)
                continue
            self.unknown_keys(step_map, ("event", "where"), "a sequence step")
            parsed.append(self.event_match(step_map))
        window = self.window(spec)
        max_gap = self.duration(spec, "max_gap") if "max_gap" in spec else None
        if window is None or any(s is None for s in parsed) or max_gap is False:
            return None
        assert max_gap is not True
        return SequenceCondition(
            tuple(s for s in parsed if s is not None), window, max_gap or None, node.pos
        )

    def _list(self, node: YMap) -> Condition | None:
        self.unknown_keys(node, ("list",), "a list condition")
        spec = self.mapping(
            node["list"], node.at("list"), "'list'", "list: {file: lists/vip.csv, key: person_id}"
        )
        if spec is None:
            return None
        self.unknown_keys(spec, ("file", "key"), "a list condition")
        file, key = spec.get("file"), spec.get("key", "person_id")
        ok = True
        if not isinstance(file, str) or not file:
            self.error(
                spec.at("file") if "file" in spec else spec.pos,
                "a list needs 'file': a CSV or Parquet path relative to the project",
            )
            ok = False
        elif not (self.root / file).is_file():
            self.error(spec.at("file"), f"list file not found: {file}")
            ok = False
        if key not in ("person_id", "email"):
            self.error(
                spec.at("key"),
                f"a list key is person_id or email, not {key!r}"
                f"{did_you_mean(str(key), ('person_id', 'email'))}",
            )
            ok = False
        if not ok:
            return None
        assert isinstance(file, str)
        return ListCondition(file, str((self.root / file).resolve()), key, node.pos)

    def _template(self, node: YMap) -> Condition | None:
        self.unknown_keys(node, ("template", "params"), "a template condition")
        if self.expand_template is None:
            self.error(node.pos, "templates cannot be used here")
            return None
        expanded = self.expand_template(node["template"], node.get("params"), node.at("template"))
        if expanded is None:
            return None
        return self.condition(expanded, node.pos)

    # ---- events and measures ----------------------------------------------------------

    def event_match(self, node: YMap) -> EventMatch | None:
        """``event`` (name, list of names or "*") and optional ``where``."""
        names = node.get("event")
        pos = node.at("event")
        parsed_names: tuple[str, ...] | None
        if "event" not in node:
            self.error(node.pos, "missing 'event': an event name, a list of names, or \"*\"")
            return None
        if names == "*":
            parsed_names = None
        elif isinstance(names, str) and names:
            parsed_names = (names,)
        elif (
            isinstance(names, YList)
            and names
            and all(isinstance(n, str) and n and n != "*" for n in names)
        ):
            parsed_names = tuple(dict.fromkeys(names))
        else:
            self.error(pos, "'event' must be an event name, a list of names, or \"*\"")
            return None
        where: tuple[ColumnTest, ...] | None = ()
        if "where" in node:
            spec = self.mapping(
                node["where"], node.at("where"), "'where'", "where: {format: {eq: mp4}}"
            )
            where = self.column_tests("events", spec, "event property") if spec else None
        if where is None:
            return None
        return EventMatch(parsed_names, where)

    def column_tests(self, table: str, spec: YMap, what: str) -> tuple[ColumnTest, ...] | None:
        tests: list[ColumnTest] = []
        ok = True
        for column, comparator_node in spec.items():
            value_type = self.column_type(table, column, spec.key_at(column), what)
            comp = self.mapping(
                comparator_node, spec.at(column), f"'{column}'", f"{column}: {{eq: ...}}"
            )
            if value_type is None or comp is None:
                ok = False
                continue
            self.unknown_keys(comp, COMPARATORS, "a comparator")
            comparator = self.comparator(comp, value_type, comp.pos)
            if comparator is None:
                ok = False
            else:
                tests.append(ColumnTest(column, comparator))
        return tuple(tests) if ok else None

    def event_measure(self, node: YMap, kind: str, spec: Any, pos: Pos) -> EventMeasure | None:
        """The measure an event condition (or a feature) computes."""
        match = self.event_match(node)
        window = self.window(node)
        last = self.last(node)
        measure = self.measure(kind, spec, pos)
        if match is None or window is None or last is False or measure is None:
            return None
        assert last is not True
        return EventMeasure(match, window, measure, last or None)

    def measure(self, kind: str, spec: Any, pos: Pos) -> Measure | None:
        if kind in AGGREGATES:
            of = spec.get("of") if isinstance(spec, YMap) else None
            if of is None:
                self.error(
                    position_of(spec, pos),
                    f"'{kind}' needs 'of': the event property to aggregate, like "
                    f"{kind}: {{of: amount, gte: 100}}",
                )
                return None
            of_pos = spec.at("of") if isinstance(spec, YMap) else pos
            of_type = self.column_type("events", of, of_pos, "event property")
            if of_type is None:
                return None
            allowed = {ColumnType.NUMBER} if kind in ("sum", "avg") else ORDERED
            if of_type not in allowed:
                self.error(
                    of_pos,
                    f"cannot take {kind} of '{of}': it is a {of_type.value} "
                    "column" + (" (sum and avg need numbers)" if kind != "min" else ""),
                )
                return None
            return Measure(kind, of=of)
        if kind == "share":
            where = spec.get("where") if isinstance(spec, YMap) else None
            if not isinstance(where, YMap):
                self.error(
                    position_of(spec, pos),
                    "'share' needs 'where': the events to count, like "
                    "share: {where: {certification: {eq: aws}}, gte: 0.6}",
                )
                return None
            tests = self.column_tests("events", where, "event property")
            return Measure(kind, share_where=tests) if tests is not None else None
        return Measure(kind)

    def measure_type(self, measure: EventMeasure) -> ColumnType:
        if measure.measure.kind in ("min", "max") and measure.measure.of:
            return self.schema["events"].get(measure.measure.of, ColumnType.NUMBER)
        return measure.value_type

    def last(self, node: YMap) -> int | bool | None:
        if "last" not in node:
            return None
        value = node["last"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.error(node.at("last"), f"'last' must be a positive whole number, got {value!r}")
            return False
        return value

    def duration(self, node: YMap, key: str) -> timedelta | bool:
        try:
            return parse_duration(node[key])
        except ValueProblem as exc:
            self.error(node.at(key), f"'{key}': {exc}")
            return False

    def window(self, node: YMap) -> Window | None:
        """The window of an event condition or sequence (SPEC 2.3)."""
        present = [k for k in WINDOW_KEYS if k in node]
        if len(present) > 1 and ("within" in present or "between" in present):
            self.error(
                node.key_at(present[1]),
                f"use one window: within, between, or from/to (found {', '.join(present)})",
            )
            return None
        if "within" in node:
            within = self.duration(node, "within")
            return Window(within=within) if isinstance(within, timedelta) else None
        if "between" in node:
            value = node["between"]
            try:
                if not isinstance(value, list) or len(value) != 2:
                    raise ValueProblem(
                        "expected two durations, the far one first, like between: [90d, 30d]"
                    )
                far, near = parse_duration(value[0]), parse_duration(value[1])
                if far <= near:
                    raise ValueProblem(
                        f"the first duration must be the larger one "
                        f"(between: [{value[1]}, {value[0]}])"
                    )
            except ValueProblem as exc:
                self.error(node.at("between"), f"'between': {exc}")
                return None
            return Window(between=(far, near))
        bounds: dict[str, datetime] = {}
        ok = True
        for key in ("from", "to"):
            if key not in node:
                continue
            try:
                bounds[key] = parse_timestamp(node[key], self.tz)
            except ValueProblem as exc:
                self.error(node.at(key), f"'{key}': {exc}")
                ok = False
        if not ok:
            return None
        start, end = bounds.get("from"), bounds.get("to")
        if start is not None and end is not None and start >= end:
            self.error(node.at("to"), "'to' must be after 'from'")
            return None
        return Window(start=start, end=end)

    # ---- comparators ------------------------------------------------------------------

    def comparator(
        self, node: YMap, value_type: ColumnType, pos: Pos, *, skip: Iterable[str] = ()
    ) -> Comparator | None:
        """The comparator keys of ``node`` (other keys are the caller's: ``skip``)."""
        skip = tuple(skip)
        keys = [k for k in node if k not in skip]
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
                    f"unknown operator '{key}'{did_you_mean(key, (*COMPARATORS, *skip))}",
                )
                ok = False
                continue
            test = self.test(key, node[key], value_type, node.at(key))
            if test is None:
                ok = False
            else:
                tests.append(test)
        return Comparator(tuple(tests), value_type, pos) if ok else None

    def test(self, op: str, raw: Any, value_type: ColumnType, pos: Pos) -> Test | None:
        applies = APPLIES_TO[op]
        if applies is not None and value_type not in applies:
            kinds = " or ".join(sorted(t.value for t in applies))
            self.error(pos, f"'{op}' applies to {kinds} values, not to a {value_type.value} value")
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
            self.error(pos, f"'{op}': {exc}")
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
