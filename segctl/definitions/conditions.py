"""Parse conditions (SPEC 2.1-2.4b) against the data schema.

The :class:`ConditionParser` walks the YAML of one rule and returns typed conditions, recording
every problem it finds (with its position and a suggested fix) instead of stopping at the first.
Whatever could not be parsed comes back as ``None`` and is never compiled: a run with problems
stops before any data is scanned. It stands on the readers of what a condition holds:
:mod:`~segctl.definitions.measures` (event matches, measures, windows),
:mod:`~segctl.definitions.comparisons` (comparators) and :mod:`~segctl.definitions.parsing`
(problems, mappings and column types).
"""

from __future__ import annotations

from typing import Any

from segctl.definitions.comparisons import COMPARATORS, column_subject
from segctl.definitions.measures import (
    EVENT_KEYS,
    PERIOD_KEYS,
    WINDOW_KEYS,
    MeasureParser,
    measure_subject,
)
from segctl.definitions.model import (
    AGGREGATES,
    MEASURES,
    All,
    AnyOf,
    AtLeast,
    ColumnTest,
    Condition,
    EventCondition,
    EventMatch,
    FeatureCondition,
    ListCondition,
    Not,
    PropertyCondition,
    SegmentCondition,
    SequenceCondition,
    SubscriptionCondition,
    measure_type,
)
from segctl.definitions.source import (
    Pos,
    YList,
    YMap,
    did_you_mean,
    known_hint,
    position_of,
)

KINDS = (
    "all", "any", "not", "property", "event", "feature", "subscription", "segment",
    "sequence", "list", "template", "at_least", "custom_event",
)  # fmt: skip


class ConditionParser(MeasureParser):
    """Parses conditions for the segments and features of one project."""

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
        self.unknown_keys(node, ("property", *COMPARATORS), "a property condition", operators=True)
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
            subject=column_subject(str(node["property"]), value_type),
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
        skip: tuple[str, ...] = (
            ("of",) if kind in AGGREGATES else ("where",) if kind == "share" else ()
        )
        if kind == "active_periods":
            skip = PERIOD_KEYS
        if measure is None:  # its problems are said; the comparator's too, where its type is
            if kind not in ("min", "max"):  # known without the measure (all problems at once)
                subject = measure_subject(kind)
                self.comparator(spec, measure_type(kind), spec.pos, skip=skip, subject=subject)
            return None
        comparator = self.comparator(
            spec, self.measure_type(measure), spec.pos, skip=skip, subject=measure_subject(kind)
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
        self.unknown_keys(node, ("feature", *COMPARATORS), "a feature condition", operators=True)
        name = node["feature"]
        feature = self.features.get(name) if isinstance(name, str) else None
        if feature is None:
            if name in getattr(self.features, "broken", ()):
                message = f"feature '{name}' has problems in features.yaml (said there): fix them"
            else:
                hint = known_hint(
                    str(name), self.features, "features", "define it in features.yaml"
                )
                message = f"unknown feature '{name}'{hint}"
            self.error(node.at("feature"), message)
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
                f"unknown segment '{name}'{known_hint(str(name), self.segment_names, 'segments')}",
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
