"""A small, obviously-correct reference evaluator of the segment language (SPEC section 2).

It works on segment definitions as ``yaml.safe_load`` returns them (plain dicts and lists) and on
in-memory data (lists of dicts, ``None`` for NULL). It is deliberately naive: every condition is
evaluated for one person at a time by walking that person's rows, so that each rule of the
language can be checked against the SPEC by reading a few lines. The differential test
(``test_differential.py``) compares the compiled SQL with it on generated data.

Templates (SPEC 2.5) are not supported: the differential test does not generate them.

>>> from datetime import UTC, datetime
>>> segments = {"buyers": {"name": "buyers", "rule": {"event": "purchase", "count": {"gte": 1}}}}
>>> evaluate(segments, persons=[{"person_id": "p1"}, {"person_id": "p2"}],
...          events=[{"person_id": "p1", "event": "purchase",
...                   "timestamp": datetime(2026, 1, 1, tzinfo=UTC)}],
...          subscriptions=[], as_of=datetime(2026, 2, 1, tzinfo=UTC))
{'buyers': {'p1'}}
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo

Row: TypeAlias = dict[str, Any]
"""One row of data (person, event, subscription, list entry): column -> value, None is NULL."""

Node: TypeAlias = dict[str, Any]
"""A parsed YAML mapping (a condition, a comparator, a window ...)."""

__all__ = ["Evaluator", "as_utc", "evaluate", "parse_duration", "resolve_identities"]

MEASURES = (
    "count", "distinct_days", "sum", "avg", "min", "max",
    "first_seen", "last_seen", "streak", "share", "active_periods",
)  # fmt: skip
AGGREGATES = ("sum", "avg", "min", "max")
PERIOD_KEYS = ("every", "of_last", "min_count", "offset")
WINDOW_KEYS = ("within", "between", "from", "to")
CONDITION_KINDS = (
    "all", "any", "not", "property", "event", "feature", "subscription", "segment",
    "sequence", "list", "template", "at_least", "custom_event",
)  # fmt: skip

_DURATION = re.compile(r"^(\d+)([hdwy])$")
_UNITS = {
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
    "y": timedelta(days=365),
}


def evaluate(
    segments: dict[str, Node],
    persons: list[Row],
    events: list[Row],
    subscriptions: list[Row],
    as_of: datetime,
    timezone: str = "UTC",
    features: dict[str, Node] | None = None,
    lists: dict[str, list[Row]] | None = None,
    custom_events: dict[str, Node] | None = None,
) -> dict[str, set[str]]:
    """Members (person ids) of every segment at ``as_of``.

    Args:
        segments: segment name -> the whole parsed segment file (``rule``, optional ``exclude``).
        persons: person rows, each with ``person_id`` and optional ``created_at`` etc.
        events: event rows with ``person_id``, ``event``, ``timestamp`` and properties.
        subscriptions: rows with ``person_id``, ``status``, ``plan``, ``mrr``, ``updated_at``.
        as_of: the evaluation time (a naive value means UTC).
        timezone: the project timezone (day boundaries, bare dates in rules).
        features: the ``features:`` mapping of features.yaml (name -> definition).
        lists: list file (as written in ``list: {file: ...}``) -> its rows.
        custom_events: the ``custom_events:`` mapping of features.yaml (name -> definition).
    """
    evaluator = Evaluator(
        segments, persons, events, subscriptions, as_of, timezone, features or {}, lists or {}
    )
    evaluator.custom_events = custom_events or {}
    return {name: evaluator.members(name) for name in segments}


def resolve_identities(
    events: list[Row], identities: Sequence[Row] = (), dedupe_on: str | None = None
) -> list[Row]:
    """The events as segctl counts them (SPEC 1, "Data sources"), from raw event rows.

    - ``dedupe_on``: rows repeating an earlier row's value of that column are dropped (a NULL
      value is never a repeat);
    - identities: every ``identities`` row (``id``, ``person_id``) and every event row carrying
      both a ``person_id`` and an ``anonymous_id`` links the two, for all time; an event with no
      person id belongs to the person its anonymous id is linked to (the smallest person id when
      it is linked to several); an id that is itself a person id is never remapped;
    - an event that belongs to no person, or has no event name, is not counted.
    """
    seen: set[Any] = set()
    kept = []
    for row in events:
        key = row.get(dedupe_on) if dedupe_on else None
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        kept.append(row)
    links = [(r["id"], r["person_id"]) for r in identities if r["id"] and r["person_id"]]
    links += [
        (r["anonymous_id"], r["person_id"])
        for r in kept
        if r.get("anonymous_id") and r.get("person_id") and r["anonymous_id"] != r["person_id"]
    ]
    persons = {person for _, person in links}
    linked: dict[str, set[str]] = {}
    for anonymous_id, person in links:
        linked.setdefault(anonymous_id, set()).add(person)
    resolved = []
    for row in kept:
        person = row.get("person_id") or None
        if person is None and row.get("anonymous_id") not in persons:
            person = min(linked.get(row.get("anonymous_id"), {None}) - {None}, default=None)
        if person is None or row.get("event") is None:
            continue
        resolved.append({**row, "person_id": person})
    return resolved


def parse_duration(text: str) -> timedelta:
    """``"30d"`` -> 30 days; units h, d, w and y (365 days)."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not a duration: {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime (naive values are UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class Evaluator:
    """Evaluates conditions for one person at a time; see :func:`evaluate`."""

    def __init__(
        self,
        segments: dict[str, Node],
        persons: list[Row],
        events: list[Row],
        subscriptions: list[Row],
        as_of: datetime,
        timezone: str,
        features: dict[str, Node],
        lists: dict[str, list[Row]],
    ) -> None:
        self.segments = segments
        self.as_of = as_utc(as_of)
        self.tz = ZoneInfo(timezone)
        self.features = features
        self.lists = lists
        # Persons created after as_of are not evaluated at all (SPEC 2.3).
        all_persons = [_normalise(p) for p in persons]
        self.persons = [
            p for p in all_persons if p.get("created_at") is None or p["created_at"] <= self.as_of
        ]
        # Events after as_of are ignored everywhere (SPEC 2.3).
        self.events_by_person: dict[str, list[Row]] = {}
        for event in map(_normalise, events):
            if event["timestamp"] is not None and event["timestamp"] <= self.as_of:
                self.events_by_person.setdefault(event["person_id"], []).append(event)
        self.subscription_rows: dict[str, list[Row]] = {}
        for row in map(_normalise, subscriptions):
            self.subscription_rows.setdefault(row["person_id"], []).append(row)
        self._memo: dict[tuple[str, str], bool] = {}
        self._in_progress: list[str] = []
        self.custom_events: dict[str, Node] = {}

    # ---- segments --------------------------------------------------------------------------

    def members(self, name: str) -> set[str]:
        return {p["person_id"] for p in self.persons if self.is_member(name, p)}

    def is_member(self, name: str, person: Row) -> bool:
        """The rule holds and no exclusion does."""
        key = (name, person["person_id"])
        if key not in self._memo:
            if name in self._in_progress:
                cycle = [*self._in_progress[self._in_progress.index(name) :], name]
                raise ValueError("segment cycle: " + " -> ".join(cycle))
            self._in_progress.append(name)
            segment = self.segments[name]
            if "template" in segment:
                raise NotImplementedError("the reference evaluator does not expand templates")
            matches = self.holds(segment["rule"], person)
            excluded = any(self.holds(c, person) for c in segment.get("exclude") or [])
            self._in_progress.pop()
            self._memo[key] = matches and not excluded
        return self._memo[key]

    # ---- conditions ------------------------------------------------------------------------

    def holds(self, condition: Node, person: Row) -> bool:
        """Whether ``condition`` is TRUE for ``person`` (never unknown)."""
        kinds = [k for k in condition if k in CONDITION_KINDS]
        if len(kinds) != 1:
            raise ValueError(f"a condition needs exactly one kind: {condition!r}")
        kind = kinds[0]
        if kind == "all":
            return all(self.holds(c, person) for c in condition["all"])
        if kind == "any":
            return any(self.holds(c, person) for c in condition["any"])
        if kind == "not":
            return not self.holds(condition["not"], person)
        if kind == "property":
            comparator = _without(condition, "property")
            return self.compare(read(person, condition["property"], comparator), comparator)
        if kind == "event":
            return self.event_condition(condition, person)
        if kind == "feature":
            value = self.feature_value(condition["feature"], person)
            return self.compare(value, _without(condition, "feature"))
        if kind == "subscription":
            current = self.current_subscription(person)
            return all(
                self.compare(current.get(column), comparator)
                for column, comparator in condition["subscription"].items()
            )
        if kind == "segment":
            return self.is_member(condition["segment"], person)
        if kind == "sequence":
            return self.sequence(condition["sequence"], person)
        if kind == "list":
            return self.in_list(condition["list"], person)
        if kind == "at_least":
            held = sum(1 for c in condition["of"] if self.holds(c, person))
            return held >= int(condition["at_least"])
        if kind == "custom_event":
            return self.event_condition(condition, person)
        raise NotImplementedError("the reference evaluator does not expand templates")

    def event_condition(self, condition: Node, person: Row) -> bool:
        measures = [k for k in condition if k in MEASURES]
        if len(measures) != 1:
            raise ValueError(f"an event condition needs exactly one measure: {condition!r}")
        kind = measures[0]
        spec = condition[kind]
        if kind == "active_periods":
            value = self.active_periods(condition, spec, person)
            comparator = {k: v for k, v in spec.items() if k not in PERIOD_KEYS}
            return self.compare(value, comparator)
        events = self.matching_events(condition, person)
        value = self.measure(kind, spec, events)
        own_parameters = {"sum": "of", "avg": "of", "min": "of", "max": "of", "share": "where"}
        comparator = _without(spec, own_parameters.get(kind, ""))
        return self.compare(value, comparator)

    def active_periods(self, condition: Node, spec: Node, person: Row) -> int:
        """SPEC 2.4b: how many of the last ``of_last`` periods hold ``min_count`` events.

        Each event is put in its period by arithmetic: rolling, period i holds the events
        i*every <= (as_of - offset) - ts < (i+1)*every; calendar, it holds the local days d
        with i*every <= (D - offset) - d < (i+1)*every, where D is as_of's local day.
        """
        every = parse_duration(spec["every"])
        offset = parse_duration(spec.get("offset", "0d"))
        per_period = [0] * spec["of_last"]
        for event in self.events_by_person.get(person["person_id"], []):
            if not self.event_matches(condition, event):
                continue
            if condition.get("calendar"):
                end_day = self.local_day(self.as_of) - offset
                back = (end_day - self.local_day(event["timestamp"])).days
                index = back // every.days if back >= 0 else -1
            else:
                back_time = (self.as_of - offset) - event["timestamp"]
                index = back_time // every if back_time >= timedelta(0) else -1
            if 0 <= index < len(per_period):
                per_period[index] += 1
        return sum(1 for n in per_period if n >= spec.get("min_count", 1))

    def feature_value(self, name: str, person: Row) -> Any:
        """A features.yaml entry: ``measure`` is a measure name or ``{sum: amount}``."""
        definition = self.features[name]
        measure = definition["measure"]
        if isinstance(measure, str):
            kind, spec = measure, {}
        elif "active_periods" in measure:
            return self.active_periods(definition, measure["active_periods"], person)
        else:
            ((kind, of),) = measure.items()
            spec = {"of": of}
        if kind == "share":
            raise ValueError("a share feature is not defined by the SPEC")
        return self.measure(kind, spec, self.matching_events(definition, person))

    def current_subscription(self, person: Row) -> Row:
        """The row with the latest ``updated_at <= as_of``; ``{}`` (all NULL) when none."""
        rows = [
            r
            for r in self.subscription_rows.get(person["person_id"], [])
            if r["updated_at"] is not None and r["updated_at"] <= self.as_of
        ]
        if not rows:
            return {}
        return max(rows, key=lambda r: r["updated_at"])

    def in_list(self, spec: Node, person: Row) -> bool:
        rows = self.lists[spec["file"]]
        key = spec.get("key", "person_id")
        if key == "person_id":
            return any(row["person_id"] == person["person_id"] for row in rows)
        if key == "email":
            email = person.get("email")
            if email is None:
                return False
            return any(
                row["email"] is not None and _email(row["email"]) == _email(email) for row in rows
            )
        raise ValueError(f"unknown list key {key!r}")

    # ---- events ----------------------------------------------------------------------------

    def matching_events(self, spec: Node, person: Row) -> list[Row]:
        """Events matching ``event`` + ``where`` + window, then the ``last`` N of them."""
        events = [
            e
            for e in self.events_by_person.get(person["person_id"], [])
            if self.event_matches(spec, e) and self.in_window(spec, e["timestamp"])
        ]
        if "last" in spec:
            events = sorted(events, key=lambda e: e["timestamp"], reverse=True)[: spec["last"]]
        return events

    def event_matches(self, spec: Node, event: Row) -> bool:
        """Name (a name, a list of names or "*") and every ``where`` comparator; a custom
        event is its definition's name and ``where``, and then the condition's ``where``."""
        if "custom_event" in spec:
            definition = self.custom_events[spec["custom_event"]]
            return self.event_matches(definition, event) and self.where(
                spec.get("where") or {}, event
            )
        names = spec["event"]
        if names != "*":
            wanted = [names] if isinstance(names, str) else names
            if event["event"] not in wanted:
                return False
        return self.where(spec.get("where") or {}, event)

    def where(self, where: Node, event: Row) -> bool:
        return all(
            self.compare(read(event, column, comparator), comparator)
            for column, comparator in where.items()
        )

    def in_window(self, spec: Node, ts: datetime) -> bool:
        """SPEC 2.3; every event here is already <= as_of."""
        if spec.get("calendar"):
            return self.in_calendar_window(spec, ts)
        if "within" in spec:
            return self.as_of - parse_duration(spec["within"]) < ts <= self.as_of
        if "between" in spec:
            far, near = (parse_duration(d) for d in spec["between"])
            return self.as_of - far < ts <= self.as_of - near
        if "from" in spec and ts < self.timestamp(spec["from"]):
            return False
        return not ("to" in spec and ts >= self.timestamp(spec["to"]))

    def in_calendar_window(self, spec: Node, ts: datetime) -> bool:
        """SPEC 2.4b, compared as local dates: ``within: Nd`` holds the days D-N .. D (up to
        as_of), ``between: [F, N]`` the days D-F .. D-N-1, D being as_of's local day."""
        today = self.local_day(self.as_of)
        day = self.local_day(ts)
        if "within" in spec:
            return today - parse_duration(spec["within"]) <= day
        far, near = (parse_duration(d) for d in spec["between"])
        return today - far <= day < today - near

    def measure(self, kind: str, spec: Node, events: list[Row]) -> Any:
        """The value of a measure over the matching events (SPEC 2.4)."""
        timestamps = [e["timestamp"] for e in events]
        if kind == "count":
            return len(events)
        if kind == "distinct_days":
            return len({self.local_day(ts) for ts in timestamps})
        if kind == "streak":
            return self.streak({self.local_day(ts) for ts in timestamps})
        if kind == "first_seen":
            return min(timestamps, default=None)
        if kind == "last_seen":
            return max(timestamps, default=None)
        if kind in AGGREGATES:
            values = [read(e, spec["of"], None) for e in events]
            present = [v for v in values if v is not None]
            if kind == "sum":
                return sum(present)  # 0 over no events or only NULLs
            if not present:
                return None
            if kind == "avg":
                return sum(present) / len(present)
            return min(present) if kind == "min" else max(present)
        if kind == "share":
            if not events:
                return None
            hits = [e for e in events if self.where(spec["where"], e)]
            return len(hits) / len(events)
        raise ValueError(f"unknown measure {kind!r}")

    def streak(self, days: set[date]) -> int:
        """Consecutive days ending on as_of's local day, or on the day before."""
        today = self.local_day(self.as_of)
        if today in days:
            day = today
        elif today - timedelta(days=1) in days:
            day = today - timedelta(days=1)
        else:
            return 0
        length = 0
        while day in days:
            length += 1
            day -= timedelta(days=1)
        return length

    def sequence(self, spec: Node, person: Row) -> bool:
        """Events e1..en matching the steps, with t1 < t2 < ... and gaps <= max_gap."""
        steps = spec["steps"]
        max_gap = parse_duration(spec["max_gap"]) if "max_gap" in spec else None
        max_span = parse_duration(spec["max_span"]) if "max_span" in spec else None
        events = [
            e
            for e in self.events_by_person.get(person["person_id"], [])
            if self.in_window(spec, e["timestamp"])
        ]

        def found_from(step: int, previous: datetime | None, first: datetime | None) -> bool:
            if step == len(steps):
                return True
            for event in events:
                ts = event["timestamp"]
                if not self.event_matches(steps[step], event):
                    continue
                if previous is not None and not ts > previous:
                    continue
                if previous is not None and max_gap is not None and ts - previous > max_gap:
                    continue
                if first is not None and max_span is not None and ts - first > max_span:
                    continue
                if found_from(step + 1, ts, first or ts):
                    return True
            return False

        return found_from(0, None, None)

    def sequence_reached(self, spec: Node, person: Row) -> int:
        """How many of the steps the person reached in order: the longest first steps that
        are a sequence of their own (``explain``'s value of a sequence)."""
        steps = spec["steps"]
        return next(
            k for k in range(len(steps), -1, -1)
            if self.sequence({**spec, "steps": steps[:k]}, person)
        )  # fmt: skip

    # ---- comparators -----------------------------------------------------------------------

    def compare(self, value: Any, comparator: Node) -> bool:
        """Every key of the comparator holds (SPEC 2.2)."""
        if not comparator:
            raise ValueError("empty comparator")
        return all(self.test(op, arg, value) for op, arg in comparator.items())

    def test(self, op: str, arg: Any, value: Any) -> bool:
        """One comparator key; NULL is FALSE except for ne, not_in and is_set: false."""
        if op == "is_set":
            present = value is not None and value != ""
            return present if arg else not present
        if value is None:
            return op in ("ne", "not_in")
        if isinstance(value, datetime):
            return self.test_timestamp(op, arg, value)
        if op not in _TESTS:
            raise TypeError(f"{op!r} applies to timestamps only, not to {value!r}")
        return _TESTS[op](value, arg)

    def test_timestamp(self, op: str, arg: Any, value: datetime) -> bool:
        if op == "within":
            return self.as_of - parse_duration(arg) < value <= self.as_of
        if op == "older_than":
            return value <= self.as_of - parse_duration(arg)
        if op == "before":
            return value < self.timestamp(arg)
        if op == "after":
            return value >= self.timestamp(arg)
        if op in ("in", "not_in", "between"):
            bounds = [self.timestamp(a) for a in arg]
            return _TESTS[op](value, bounds)
        if op in ("contains", "starts_with", "ends_with", "regex"):
            raise TypeError(f"{op!r} does not apply to a timestamp")
        return _TESTS[op](value, self.timestamp(arg))

    # ---- time ------------------------------------------------------------------------------

    def timestamp(self, literal: Any) -> datetime:
        """A literal as an aware datetime: a bare date is midnight in the project timezone,
        a datetime without an offset is UTC."""
        if isinstance(literal, str):
            text = literal.strip()
            literal = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        if isinstance(literal, datetime):
            return as_utc(literal)
        if isinstance(literal, date):
            return datetime(literal.year, literal.month, literal.day, tzinfo=self.tz)
        raise TypeError(f"not a date or timestamp: {literal!r}")

    def local_day(self, ts: datetime) -> date:
        return ts.astimezone(self.tz).date()


# Comparators on a non-NULL value. Exact and case-sensitive except the three substring tests.
_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda v, a: v == a,
    "ne": lambda v, a: v != a,
    "gt": lambda v, a: v > a,
    "gte": lambda v, a: v >= a,
    "lt": lambda v, a: v < a,
    "lte": lambda v, a: v <= a,
    "between": lambda v, a: a[0] <= v <= a[1],
    "in": lambda v, a: v in a,
    "not_in": lambda v, a: v not in a,
    "contains": lambda v, a: str(a).lower() in v.lower(),
    "starts_with": lambda v, a: v.lower().startswith(str(a).lower()),
    "ends_with": lambda v, a: v.lower().endswith(str(a).lower()),
    "regex": lambda v, a: re.search(a, v) is not None,  # (?i), (?s), (?m) as Python reads them
}


# ---- nested properties (SPEC 1) -------------------------------------------------------------


class JSONValue(str):
    """The JSON text of a column of JSON values (a top-level NDJSON key whose lines mix
    numbers and text; Parquet's JSON type): read as a nested JSON value is."""


def read(row: Row, name: str, comparator: Node | None) -> Any:
    """The value ``name`` names in ``row``: a column, or a dotted path into one (JSON text, a
    record, a map, a list of key/value records), read as its comparator asks: against a
    boolean as a boolean, against a number (or as ``of:``, ``comparator`` None) as a number,
    otherwise as text. A missing key, or a value of another kind, is missing (None). A
    column of JSON values reads so too."""
    keys: list[str] = []
    if name in row or ("." not in name and '"' not in name):
        value = row.get(name)
        if not isinstance(value, JSONValue):
            return value
    else:
        column, *keys = split_path(name)
        value = row.get(column)
    in_json = isinstance(value, JSONValue)
    if in_json:
        value = json.loads(value)
    for key in keys:
        if isinstance(value, str) and not in_json:  # JSON text (a string inside it is text)
            value, in_json = json.loads(value), True
        if isinstance(value, dict):
            value = _one_value(value.get(key))
        elif isinstance(value, list) and not in_json:  # key/value records: the first with key
            found = [r for r in value if r.get("key") == key]
            value = _one_value(found[0].get("value")) if found else None
        else:
            value = None
    values = [] if comparator is None else _compared_values(comparator)
    if any(isinstance(v, bool) for v in values):
        return as_boolean(value)
    if comparator is None or any(isinstance(v, int | float) for v in values):
        return as_number(value)
    return as_text(value)


def split_path(name: str) -> list[str]:
    """``properties."app.version".x`` -> ["properties", "app.version", "x"]."""
    parts, current, quoted = [], "", False
    for char in name:
        if char == '"':
            quoted = not quoted
        elif char == "." and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def _one_value(value: Any) -> Any:
    """A record of typed slots (GA4: string_value, int_value...) holds the one slot set."""
    if isinstance(value, dict) and value and all(k.endswith("_value") for k in value):
        return next((v for v in value.values() if v is not None), None)
    return value


def _compared_values(comparator: Node) -> list[Any]:
    values: list[Any] = []
    for op in ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "between"):
        arg = comparator.get(op)
        values.extend(arg if isinstance(arg, list) else [] if arg is None else [arg])
    return values


def as_number(value: Any) -> float | None:
    """A number, or a string that is one written plainly (-12, 2.5, 1e3); else missing."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _plain_number(value):
        return float(value)
    return None


def _plain_number(text: str) -> bool:
    """An optional minus, digits, optional decimals, an optional exponent; nothing else."""
    marker = "e" if "e" in text else "E"
    mantissa, has_exponent, exponent = text.partition(marker)
    whole, has_fraction, fraction = mantissa.removeprefix("-").partition(".")
    if not _digits(whole) or (has_fraction and not _digits(fraction)):
        return False
    if has_exponent:
        return _digits(exponent[1:] if exponent[:1] in ("+", "-") else exponent)
    return True


def _digits(text: str) -> bool:
    return text != "" and all(c in "0123456789" for c in text)


def as_boolean(value: Any) -> bool | None:
    """true and "true" alike (and false); anything else is missing."""
    if value is True or value == "true":
        return True
    if value is False or value == "false":
        return False
    return None


def as_text(value: Any) -> str | None:
    """Text as it is; a number or boolean as its JSON text (2.5, 3, true)."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _without(node: Node, key: str) -> Node:
    return {k: v for k, v in node.items() if k != key}


def _normalise(row: Row) -> Row:
    """A copy with every datetime as an aware UTC value."""
    return {k: as_utc(v) if isinstance(v, datetime) else v for k, v in row.items()}


def _email(text: str) -> str:
    return text.strip().lower()
