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
    AtLeast,
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
    Periods,
    PropertyCondition,
    Schema,
    SegmentCondition,
    SequenceCondition,
    SubscriptionCondition,
    Test,
    Window,
)
from segctl.definitions.properties import TIME_ONLY, NestedProperties, looks_nested, reading_of
from segctl.definitions.source import (
    Pos,
    Problems,
    YList,
    YMap,
    did_you_mean,
    position_of,
    valid_keys,
)
from segctl.definitions.values import coerce, parse_duration
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
KINDS = (
    "all", "any", "not", "property", "event", "feature", "subscription", "segment",
    "sequence", "list", "template", "at_least", "custom_event",
)  # fmt: skip
WINDOW_KEYS = ("within", "between", "from", "to")
EVENT_KEYS = ("event", "where", "last", *WINDOW_KEYS, "calendar")
#: The keys of an ``active_periods`` measure besides its comparator (SPEC 2.4b).
PERIOD_KEYS = ("every", "of_last", "min_count", "offset")
#: Inline flag groups both DuckDB (RE2) and Spark (java.util.regex) read the same way.
REGEX_FLAGS = re.compile(r"^\(\?([a-zA-Z]+)\)")

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
        properties: NestedProperties | None = None,
        custom_events: dict[str, EventMatch] | None = None,
    ) -> None:
        self.schema = schema
        self.tz = tz
        self.root = root
        self.problems = problems
        self.features = features or {}
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

    def unknown_keys(self, node: YMap, allowed: Iterable[str], what: str) -> None:
        allowed = tuple(allowed)
        for key in node:
            if key == "calendar" and key not in allowed:
                self.error(
                    node.key_at(key),
                    f"'calendar' applies only to an event condition's window, not to {what} "
                    "(use it beside within: or between: of an event or custom_event condition)",
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
        columns = self.schema.get(table, {})
        if column not in columns and self.properties is not None and looks_nested(column):
            return self.nested_type(table, column, pos, what, comparators)
        if not isinstance(column, str) or column not in columns:
            hint = did_you_mean(str(column), columns) or (
                f" (available: {', '.join(sorted(columns)[:12])})" if columns else ""
            )
            self.error(pos, f"unknown {what} '{column}'{hint}")
            return None
        return columns[column]

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
            "persons",
            node["property"],
            node.at("property"),
            "person property",
            [(k, v) for k, v in node.items() if k != "property"],
        )
        if value_type is None:
            return None
        comparator = self.comparator(
            node,
            value_type,
            node.pos,
            skip=("property", "calendar"),  # 'calendar' is reported by unknown_keys
            subject=f"'{node['property']}' is a {value_type.value} column",
        )
        if comparator is None:
            return None
        return PropertyCondition(ColumnTest(node["property"], comparator), node.pos)

    def _event(self, node: YMap) -> Condition | None:
        measures = [k for k in node if k in MEASURES]
        self.unknown_keys(node, (*EVENT_KEYS, "custom_event", *MEASURES), "an event condition")
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
        skip: tuple[str, ...] = (
            ("of",) if kind in AGGREGATES else ("where",) if kind == "share" else ()
        )
        if kind == "active_periods":
            skip = PERIOD_KEYS
        comparator = self.comparator(
            spec, self.measure_type(measure), spec.pos, skip=skip, subject=_measure_subject(kind)
        )
        if comparator is None:
            return None
        return EventCondition(measure, comparator, node.pos)

    # A custom event (features.yaml ``custom_events:``) stands where an event does.
    _custom_event = _event

    def _at_least(self, node: YMap) -> Condition | None:
        """``at_least: K`` with ``of: [conditions]`` (SPEC 2.4b)."""
        known = len(self.problems.items)
        self.unknown_keys(node, ("at_least", "of"), "an 'at_least' condition")
        items = node.get("of")
        if "of" not in node and len(self.problems.items) > known:
            return None  # a misspelt 'of', reported with its did-you-mean
        if not isinstance(items, YList) or not items:
            self.error(
                node.at("of") if "of" in node else node.pos,
                "'at_least' needs 'of': a non-empty list of conditions, like "
                "at_least: 2, of: [{...}, {...}, {...}]",
            )
            return None
        count = node["at_least"]
        ok = True
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= len(items):
            self.error(
                node.at("at_least"),
                f"'at_least' must be a whole number from 1 to {len(items)} (the number of "
                f"conditions in 'of'), got {count!r}",
            )
            ok = False
        parsed = [self.condition(item, items.at(i)) for i, item in enumerate(items)]
        if not ok or any(p is None for p in parsed):
            return None
        assert isinstance(count, int)
        return AtLeast(count, tuple(p for p in parsed if p is not None), node.pos)

    def _feature(self, node: YMap) -> Condition | None:
        self.unknown_keys(node, ("feature", *COMPARATORS), "a feature condition")
        name = node["feature"]
        feature = self.features.get(name) if isinstance(name, str) else None
        if feature is None:
            hint = did_you_mean(str(name), self.features) or (" (define it in features.yaml)")
            self.error(node.at("feature"), f"unknown feature '{name}'{hint}")
            return None
        comparator = self.comparator(
            node,
            self.measure_type(feature.measure),
            node.pos,
            skip=("feature", "calendar"),  # 'calendar' is reported by unknown_keys
            subject=f"feature '{name}'",
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
        self.unknown_keys(spec, ("steps", "max_gap", "max_span", *WINDOW_KEYS), "a sequence")
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
            self.unknown_keys(step_map, ("event", "custom_event", "where"), "a sequence step")
            parsed.append(self.event_match(step_map))
        window = self.window(spec)
        max_gap = self.duration(spec, "max_gap") if "max_gap" in spec else None
        max_span = self.duration(spec, "max_span") if "max_span" in spec else None
        if (
            window is None
            or any(s is None for s in parsed)
            or max_gap is False
            or max_span is False
        ):
            return None
        assert max_gap is not True and max_span is not True
        return SequenceCondition(
            tuple(s for s in parsed if s is not None),
            window,
            max_gap or None,
            node.pos,
            max_span=max_span,
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
        if "custom_event" in node:
            return self.custom_event_match(node)
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
        where = self.event_where(node)
        if where is None:
            return None
        return EventMatch(parsed_names, where)

    def event_where(self, node: YMap) -> tuple[ColumnTest, ...] | None:
        """The event-property tests of a node's optional ``where`` (None: a problem)."""
        if "where" not in node:
            return ()
        spec = self.mapping(
            node["where"], node.at("where"), "'where'", "where: {format: {eq: mp4}}"
        )
        return self.column_tests("events", spec, "event property") if spec else None

    def custom_event_match(self, node: YMap) -> EventMatch | None:
        """``custom_event: NAME`` with an optional ``where`` ANDed with the definition's."""
        name = node["custom_event"]
        if "event" in node:
            self.error(
                node.key_at("event"),
                "use either 'event' or 'custom_event', not both",
            )
            return None
        definition = self.custom_events.get(name) if isinstance(name, str) else None
        if definition is None:
            hint = did_you_mean(str(name), self.custom_events) or (
                " (define it under custom_events: in features.yaml)"
            )
            self.error(node.at("custom_event"), f"unknown custom event '{name}'{hint}")
            return None
        where = self.event_where(node)
        if where is None:
            return None
        return EventMatch(definition.names, definition.where + where, custom=name)

    def column_tests(self, table: str, spec: YMap, what: str) -> tuple[ColumnTest, ...] | None:
        tests: list[ColumnTest] = []
        ok = True
        for column, comparator_node in spec.items():
            tested = list(comparator_node.items()) if isinstance(comparator_node, YMap) else []
            value_type = self.column_type(table, column, spec.key_at(column), what, tested)
            comp = self.mapping(
                comparator_node, spec.at(column), f"'{column}'", f"{column}: {{eq: ...}}"
            )
            if value_type is None or comp is None:
                ok = False
                continue
            self.unknown_keys(comp, COMPARATORS, "a comparator")
            comparator = self.comparator(
                comp, value_type, comp.pos, subject=f"'{column}' is a {value_type.value} column"
            )
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
        window = self.calendar(node, window, kind)
        if window is None:
            return None
        if kind == "active_periods":
            present = [k for k in (*WINDOW_KEYS, "last") if k in node]
            if present:
                self.error(
                    node.key_at(present[0]),
                    f"'active_periods' defines its own window (every x of_last, moved back by "
                    f"offset): remove '{present[0]}'",
                )
                return None
            assert measure.periods is not None
            if window.calendar and not _whole_days(measure.periods.every, measure.periods.offset):
                self.error(
                    position_of(spec, pos),
                    "calendar periods are whole days: 'every' and 'offset' take d, w or y "
                    "(like every: 7d), not hours",
                )
                return None
        return EventMeasure(match, window, measure, last or None)

    def calendar(self, node: YMap, window: Window, kind: str) -> Window | None:
        """``calendar: true``: the window counts local calendar days (SPEC 2.4b)."""
        if "calendar" not in node:
            return window
        value = node["calendar"]
        if not isinstance(value, bool):
            self.error(node.at("calendar"), f"'calendar' is true or false, got {value!r}")
            return None
        if not value:
            return window
        pos = node.key_at("calendar")
        if window.start is not None or window.end is not None:
            self.error(
                pos,
                "'calendar' cannot go with from/to (they are already dates); "
                "use within: or between: with calendar: true",
            )
            return None
        if kind == "active_periods":
            return Window(calendar=True)
        if window.within is None and window.between is None:
            self.error(
                pos,
                "'calendar' needs a window: add within: 7d (the 7 previous days and today) or "
                "between: [90d, 30d]",
            )
            return None
        durations = [window.within] if window.within is not None else list(window.between or ())
        if not _whole_days(*(d for d in durations if d is not None)):
            key = "within" if window.within is not None else "between"
            self.error(
                node.at(key),
                f"a calendar window counts whole days: '{key}' takes d, w or y "
                "(like 7d), not hours",
            )
            return None
        return Window(within=window.within, between=window.between, calendar=True)

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
        if kind == "active_periods":
            periods = self.periods(spec, pos)
            return Measure(kind, periods=periods) if periods is not None else None
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

    def periods(self, spec: Any, pos: Pos) -> Periods | None:
        """``every``, ``of_last``, ``min_count`` and ``offset`` of ``active_periods``."""
        example = "active_periods: {every: 7d, of_last: 4, min_count: 1, gte: 3}"
        if not isinstance(spec, YMap) or "every" not in spec or "of_last" not in spec:
            given = spec if isinstance(spec, YMap) else {}
            missing = [k for k in ("every", "of_last") if k not in given]
            self.error(
                position_of(spec, pos),
                f"'active_periods' needs {' and '.join(repr(k) for k in missing)}, like {example}",
            )
            return None
        every = self.duration(spec, "every")
        offset = self.duration(spec, "offset") if "offset" in spec else timedelta(0)
        ok = isinstance(every, timedelta) and isinstance(offset, timedelta)
        if isinstance(every, timedelta) and every <= timedelta(0):
            self.error(spec.at("every"), "'every' must be longer than 0 (like every: 7d)")
            ok = False
        numbers: dict[str, int] = {}
        for key, default, low in (("of_last", None, 1), ("min_count", 1, 1)):
            value = spec.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                self.error(spec.at(key), f"'{key}' must be a whole number >= {low}, got {value!r}")
                ok = False
            else:
                numbers[key] = value
        if not ok:
            return None
        assert isinstance(every, timedelta) and isinstance(offset, timedelta)
        if numbers["of_last"] * every + offset > timedelta(days=100 * 365):
            self.error(spec.at("of_last"), "the periods reach back more than 100 years")
            return None
        return Periods(every, numbers["of_last"], numbers["min_count"], offset)

    def measure_type(self, measure: EventMeasure) -> ColumnType:
        of = measure.measure.of
        if measure.measure.kind in ("min", "max") and of:
            if of not in self.schema["events"] and self.properties is not None:
                try:  # a nested property: its own type, else read as a number
                    found = self.properties.nested_type("events", of)
                except ValueError:
                    found = None
                return found.family or ColumnType.NUMBER if found else ColumnType.NUMBER
            return self.schema["events"].get(of, ColumnType.NUMBER)
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
            self.error(
                pos, f"'{op}' applies to {kinds} values, not to a {value_type.value} value{about}"
            )
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


def _measure_subject(kind: str) -> str:
    if kind in ("first_seen", "last_seen"):
        return f"{kind} is a timestamp"
    if kind in ("min", "max", "sum", "avg"):
        return f"{kind} is a value of its 'of' column"
    return f"{kind} is a number"


def _whole_days(*durations: timedelta) -> bool:
    return all(d % timedelta(days=1) == timedelta(0) for d in durations)


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
