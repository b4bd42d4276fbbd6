"""Load a project's segment files and features.yaml into validated definitions.

Two passes over the segment files: the first reads names (so references can be checked in any
order), the second parses rules against the data schema. Reference cycles are reported with the
whole cycle spelled out. Every problem of every file is collected and raised once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from segctl.definitions.actions import parse_actions, parse_audiences
from segctl.definitions.conditions import ConditionParser
from segctl.definitions.model import (
    MEASURES,
    EventMatch,
    Feature,
    Schema,
    Segment,
    SegmentCondition,
    segment_conditions,
)
from segctl.definitions.properties import NestedProperties
from segctl.definitions.source import (
    NAME_PATTERN,
    Pos,
    Problems,
    YList,
    YMap,
    did_you_mean,
    load_yaml,
    named_mappings,
    position_of,
)
from segctl.definitions.templates import TEMPLATES
from segctl.errors import Problem, ValueProblem

if TYPE_CHECKING:
    from segctl.definitions.destinations import Destination

RESERVED_NAMES = {"person_id"}  # the key column next to the segments in results and snapshots
SEGMENT_KEYS = (
    "name", "description", "tags", "rule", "template", "params", "exclude",
    "on_enter", "on_exit", "audiences",
)  # fmt: skip
FEATURE_KEYS = (
    "event",
    "where",
    "within",
    "between",
    "from",
    "to",
    "last",
    "measure",
    "description",
    "custom_event",
)


@dataclass(frozen=True)
class Definitions:
    """All segments (in dependency order) and features of a project."""

    segments: dict[str, Segment] = field(default_factory=dict)
    features: dict[str, Feature] = field(default_factory=dict)
    #: Found while loading, not errors: validate shows them (file:line:col, message).
    warnings: list[Problem] = field(default_factory=list, compare=False)

    def dependencies(self, name: str) -> list[str]:
        """``name`` and every segment it references, directly or not, dependencies first."""
        seen: dict[str, None] = {}

        def visit(n: str) -> None:
            for cond in segment_conditions(self.segments[n]):
                if isinstance(cond, SegmentCondition) and cond.segment not in seen:
                    visit(cond.segment)
            seen.setdefault(n, None)

        visit(name)
        return list(seen)


def segment_files(folder: Path) -> list[Path]:
    """Every ``*.yaml``/``*.yml`` below ``folder``, sorted for deterministic order."""
    return sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def expand_template(name: Any, params: Any, pos: Pos, problems: Problems) -> Any:
    """A template's rule as YAML data carrying the position of its ``template:`` key."""
    template = TEMPLATES.get(name) if isinstance(name, str) else None
    if template is None:
        problems.add(
            pos,
            f"unknown template '{name}'{did_you_mean(str(name), TEMPLATES)} "
            "(segctl templates lists them)",
        )
        return None
    if params is not None and not isinstance(params, dict):
        problems.add(
            position_of(params, pos), "'params' must be a mapping, like params: {days: 30}"
        )
        return None
    try:
        return attach(template.expand(params), pos)
    except ValueProblem as exc:
        problems.add(position_of(params, pos), str(exc))
        return None


def attach(data: Any, pos: Pos) -> Any:
    """Plain YAML data -> YMap/YList whose every position is ``pos``."""
    if isinstance(data, dict):
        out = YMap((k, attach(v, pos)) for k, v in data.items())
        out.pos, out.key_pos, out.value_pos = pos, dict.fromkeys(out, pos), dict.fromkeys(out, pos)
        return out
    if isinstance(data, list):
        items = YList(attach(v, pos) for v in data)
        items.pos, items.item_pos = pos, [pos] * len(items)
        return items
    return data


class Features(dict[str, "Feature"]):
    """The features of features.yaml by name; ``broken``: those defined with problems (said
    at their place), so that a segment naming one is not told to define it."""

    def __init__(self) -> None:
        super().__init__()
        self.broken: set[str] = set()


def load_features(
    path: Path | None,
    display: str,
    schema: Schema,
    tz: ZoneInfo,
    root: Path,
    problems: Problems,
    *,
    properties: NestedProperties | None = None,
    custom_events: dict[str, EventMatch] | None = None,
) -> dict[str, Feature]:
    """Parse features.yaml (``features: {name: {event, window, measure}}``; the
    ``custom_events:`` beside it are read by :func:`load_custom_events`)."""
    if path is None:
        return {}
    doc = load_yaml(path, display, problems)
    if doc is None:
        return {}
    if isinstance(doc, YMap) and "features" not in doc and "custom_events" in doc:
        return {}  # a file may hold only custom events
    if not isinstance(doc, YMap) or not isinstance(doc.get("features"), YMap):
        problems.add(
            position_of(doc, Pos(display)),
            "features.yaml must have a 'features' mapping (or only 'custom_events'), "
            "like features: {ltv: {event: purchase, measure: {sum: amount}}}",
        )
        return {}
    for key in doc:
        if key not in ("features", "custom_events"):
            problems.add(
                doc.key_at(key),
                f"unknown key '{key}' (features.yaml has only 'features' and "
                f"'custom_events'){did_you_mean(key, ('features', 'custom_events'))}",
            )
    parser = ConditionParser(
        schema, tz, root, problems, properties=properties, custom_events=custom_events
    )
    features = Features()
    specs: YMap = doc["features"]
    example = "{event: purchase, measure: {sum: amount}}"
    for name, spec in named_mappings(specs, problems, "feature", example):
        pos = specs.key_at(name)
        parser.unknown_keys(spec, FEATURE_KEYS, f"feature '{name}'")
        measure_spec = spec.get("measure")
        kind, measure_args = _feature_measure(measure_spec, spec.at("measure"), problems)
        if kind is None:
            if "measure" not in spec:
                problems.add(
                    pos,
                    f"feature '{name}' needs 'measure': one of "
                    + ", ".join(MEASURES)
                    + " (or {sum: amount})",
                )
            continue
        measure = parser.event_measure(spec, kind, measure_args, spec.at("measure"))
        if measure is not None:
            features[name] = Feature(name, measure, str(spec.get("description", "")), pos)
    features.broken = {str(name) for name in specs} - set(features)
    return features


def _feature_measure(value: Any, pos: Pos, problems: Problems) -> tuple[str | None, YMap]:
    """``distinct_days`` / ``{sum: amount}`` / ``{share: {where: ...}}`` -> (kind, args)."""
    if value is None:
        return None, attach({}, pos)
    if isinstance(value, str) and value in MEASURES:
        return value, attach({}, pos)
    if isinstance(value, YMap) and len(value) == 1:
        kind, arg = next(iter(value.items()))
        if kind in ("sum", "avg", "min", "max") and isinstance(arg, str):
            return kind, attach({"of": arg}, value.at(kind))
        if kind in ("share", "active_periods") and isinstance(arg, YMap):
            return kind, arg
        if kind in MEASURES:
            problems.add(
                value.at(kind),
                f"'{kind}' takes "
                + ("an event property name" if kind != "share" else "{where: {...}}"),
            )
            return None, attach({}, pos)
        word = kind
    else:
        word = str(value)
    problems.add(
        pos,
        f"unknown measure '{word}'{did_you_mean(word, MEASURES)}; expected one "
        "of " + ", ".join(MEASURES) + " or {sum: property}",
    )
    return None, attach({}, pos)


def load_segments(
    folder: Path,
    root: Path,
    schema: Schema,
    features: dict[str, Feature],
    tz: ZoneInfo,
    problems: Problems,
    *,
    extra_files: list[Path] | None = None,
    destinations: dict[str, Destination] | None = None,
    properties: NestedProperties | None = None,
    custom_events: dict[str, EventMatch] | None = None,
    files: list[Path] | None = None,
) -> dict[str, Segment]:
    """Parse every segment file (or only ``files``); returns segments in dependency order."""
    if files is not None:  # a draft's preview: the files it needs (segctl.drafts)
        files = list(files)
    elif folder.is_dir():
        files = segment_files(folder.resolve())
    else:
        files = []
        problems.add(
            Pos(_display(folder, root.resolve())),
            "segments folder not found (set 'segments' in segctl.yaml)",
        )
    # Extra files (segctl preview FILE) come first and replace a project segment of the same
    # name, so a draft can be previewed next to the segments it references.
    extra = [p.resolve() for p in extra_files or []]
    if extra:
        files = extra + [p for p in files if p.resolve() not in extra]
    real_root = root.resolve()
    docs: list[tuple[str, YMap, str]] = []
    names: dict[str, Pos] = {}
    for path in files:
        display = _display(path, real_root)
        known = len(problems.items)
        doc = load_yaml(path, display, problems)
        if doc is None:
            if len(problems.items) == known:  # no syntax problem: the file holds no document
                problems.add(Pos(display, 1, 1), "empty segment file (expected name: and rule:)")
            continue
        if not isinstance(doc, YMap):
            problems.add(
                position_of(doc, Pos(display)),
                "a segment file must be a mapping with 'name' and 'rule'",
            )
            continue
        name = doc.get("name")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            where = doc.at("name") if "name" in doc else doc.pos
            problems.add(
                where,
                "missing 'name'"
                if "name" not in doc
                else f"segment name {name!r} must match [a-z][a-z0-9_]* (like power_users)",
            )
            continue
        if name in RESERVED_NAMES:
            problems.add(doc.at("name"), f"'{name}' is reserved; choose another segment name")
            continue
        if (
            name in names
            and path.resolve() not in extra
            and names[name].file in {_display(e, real_root) for e in extra}
        ):
            continue
        if name in names:
            first = names[name]
            problems.add(
                doc.at("name"), f"segment '{name}' is already defined at {first.file}:{first.line}"
            )
            continue
        names[name] = doc.at("name")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        docs.append((display, doc, digest))

    parser = ConditionParser(
        schema,
        tz,
        root,
        problems,
        features=features,
        segment_names=names,
        expand_template=lambda n, p, pos: expand_template(n, p, pos, problems),
        properties=properties,
        custom_events=custom_events,
    )
    segments: dict[str, Segment] = {}
    for display, doc, digest in docs:
        segment = _segment(doc, display, digest, parser, problems, destinations or {})
        if segment is not None:
            segments[segment.name] = segment
    return _dependency_order(segments, problems)


def _segment(
    doc: YMap,
    display: str,
    digest: str,
    parser: ConditionParser,
    problems: Problems,
    destinations: dict[str, Destination],
) -> Segment | None:
    parser.unknown_keys(doc, SEGMENT_KEYS, "a segment file")
    if ("rule" in doc) == ("template" in doc):
        problems.add(
            doc.pos,
            "a segment needs exactly one of 'rule' or 'template'"
            + (" (found both)" if "rule" in doc else ""),
        )
        return None
    if "params" in doc and "template" not in doc:
        problems.add(doc.key_at("params"), "'params' goes with 'template'")
    if "rule" in doc:
        rule = parser.condition(doc["rule"], doc.at("rule"))
    else:
        expanded = expand_template(doc["template"], doc.get("params"), doc.at("template"), problems)
        rule = parser.condition(expanded, doc.at("template")) if expanded is not None else None
    exclude = doc.get("exclude", [])
    excluded = []
    if not isinstance(exclude, list):
        problems.add(doc.at("exclude"), "'exclude' takes a list of conditions")
    else:
        excluded = [
            parser.condition(item, exclude.at(i))
            for i, item in enumerate(exclude)
            if isinstance(exclude, YList)
        ]
    tags = doc.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        problems.add(doc.at("tags"), "'tags' takes a list of words, like tags: [engagement]")
        tags = []
    description = doc.get("description", "")
    if not isinstance(description, str):
        problems.add(doc.at("description"), "'description' must be text")
    on_enter = parse_actions(
        doc.get("on_enter"), doc.at("on_enter"), destinations, problems, "on_enter", parser.root
    )
    on_exit = parse_actions(
        doc.get("on_exit"), doc.at("on_exit"), destinations, problems, "on_exit", parser.root
    )
    audiences = parse_audiences(
        doc.get("audiences"), doc.at("audiences"), destinations, problems, str(doc.get("name", ""))
    )
    if rule is None or any(e is None for e in excluded):
        return None
    return Segment(
        name=doc["name"],
        rule=rule,
        exclude=tuple(e for e in excluded if e is not None),
        description=description if isinstance(description, str) else "",
        tags=tuple(tags),
        file=display,
        source_hash=digest,
        pos=doc.pos,
        on_enter=on_enter,
        on_exit=on_exit,
        audiences=audiences,
    )


def _dependency_order(segments: dict[str, Segment], problems: Problems) -> dict[str, Segment]:
    """Segments sorted so that each comes after those it references; cycles are problems."""
    order: dict[str, Segment] = {}
    state: dict[str, str] = {}
    reported: set[frozenset[str]] = set()

    def refs(name: str) -> list[SegmentCondition]:
        return [c for c in segment_conditions(segments[name]) if isinstance(c, SegmentCondition)]

    def visit(name: str, path: list[str]) -> None:
        state[name] = "visiting"
        for ref in refs(name):
            if ref.segment not in segments:
                continue  # the referenced segment failed to parse; already reported
            if state.get(ref.segment) == "visiting":
                trail = [*path, name]  # a segment may reference itself: a -> a
                cycle = [*trail[trail.index(ref.segment) :], ref.segment]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    problems.add(ref.pos, "segment references form a cycle: " + " -> ".join(cycle))
            elif ref.segment not in state:
                visit(ref.segment, [*path, name])
        state[name] = "done"
        order[name] = segments[name]

    for name in sorted(segments):
        if name not in state:
            visit(name, [])
    return order


def _display(path: Path, real_root: Path) -> str:
    """``path`` relative to the project's resolved root when inside it. A file found below
    that root is displayed without resolving it: a ``realpath`` per file was a quarter of
    loading 1,000 segments."""
    if path.is_absolute() and ".." not in path.parts and path.is_relative_to(real_root):
        return str(path.relative_to(real_root))
    try:
        return str(path.resolve().relative_to(real_root))
    except ValueError:
        return str(path)
