"""Read what a condition measures: event matches and their ``where``, measures (``count``,
``sum``, ``streak``, ``active_periods``...), windows (``within``, ``between``, ``calendar``)
and ``last: N`` (SPEC 2.3, 2.4, 2.4b)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from segctl.definitions.comparisons import COMPARATORS, ORDERED, ComparisonParser, column_subject
from segctl.definitions.durations import in_hours, parse_duration
from segctl.definitions.model import (
    AGGREGATES,
    ColumnTest,
    ColumnType,
    EventMatch,
    EventMeasure,
    Measure,
    Periods,
    Window,
)
from segctl.definitions.source import (
    Pos,
    YList,
    YMap,
    did_you_mean,
    position_of,
)
from segctl.errors import ValueProblem
from segctl.timeutil import parse_timestamp

WINDOW_KEYS = ("within", "between", "from", "to")
EVENT_KEYS = ("event", "where", "last", *WINDOW_KEYS, "calendar")
#: The keys of an ``active_periods`` measure besides its comparator (SPEC 2.4b).
PERIOD_KEYS = ("every", "of_last", "min_count", "offset")


class MeasureParser(ComparisonParser):
    """Event matches, measures and windows."""

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
                comp, value_type, comp.pos, subject=column_subject(str(column), value_type)
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
            raw = [spec.get(k) for k in ("every", "offset")] if isinstance(spec, YMap) else []
            if window.calendar and any(in_hours(v) for v in raw):
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
        key = "within" if window.within is not None else "between"
        raw = node[key]
        if any(in_hours(v) for v in (raw if isinstance(raw, list) else [raw])):
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
                if of_type == ColumnType.STRING and kind in ("sum", "avg"):
                    self.problems.text_columns.add(("events", str(of)))
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
            plain = of in self.schema["events"] and not self._json_values("events", of)
            if not plain and self.properties is not None:
                try:  # a nested property (or JSON values): its own type, else a number
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
            if within == timedelta(0) and node.get("calendar") is not True:
                # Valid (0d is a duration), and what it means is seldom what was meant.
                self.problems.warn(
                    node.at("within"),
                    "'within': a rolling window of 0 holds no event (as_of - 0 < timestamp <= "
                    "as_of), so this condition sees none: give a positive duration, or "
                    "calendar: true for today so far",
                )
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


def measure_subject(kind: str) -> str:
    if kind in ("first_seen", "last_seen"):
        return f"{kind} is a timestamp"
    if kind in ("min", "max", "sum", "avg"):
        return f"{kind} is a value of its 'of' column"
    return f"{kind} is a number"
