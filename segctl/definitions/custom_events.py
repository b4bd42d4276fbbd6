"""Custom events: an event (a name, a list or ``"*"``) with a ``where``, defined once under
``custom_events:`` in features.yaml and used like an event (SPEC 2.4b) — PostHog's "actions".

>>> # features.yaml
>>> # custom_events:
>>> #   pricing_view: {event: $pageview, where: {url: {contains: /pricing}}}
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from segctl.definitions.conditions import ConditionParser
from segctl.definitions.model import EventMatch, Schema
from segctl.definitions.properties import NestedProperties
from segctl.definitions.source import Problems, YMap, load_yaml, named_mappings

#: The keys of one custom event definition.
CUSTOM_EVENT_KEYS = ("event", "where", "description")


def load_custom_events(
    path: Path | None,
    display: str,
    schema: Schema,
    tz: ZoneInfo,
    root: Path,
    problems: Problems,
    *,
    properties: NestedProperties | None = None,
) -> dict[str, EventMatch]:
    """The ``custom_events:`` of features.yaml (name -> the events it matches).

    A file that does not read as YAML is reported by :func:`~segctl.definitions.loader.
    load_features`, which reads the same file; it is not reported twice here.
    """
    if path is None:
        return {}
    doc = load_yaml(path, display, Problems())
    if not isinstance(doc, YMap) or "custom_events" not in doc:
        return {}
    specs = doc["custom_events"]
    if not isinstance(specs, YMap):
        problems.add(
            doc.at("custom_events"),
            "'custom_events' must be a mapping, like custom_events: "
            "{pricing_view: {event: $pageview, where: {url: {contains: /pricing}}}}",
        )
        return {}
    parser = ConditionParser(schema, tz, root, problems, properties=properties)
    found: dict[str, EventMatch] = {}
    example = "{event: $pageview, where: {url: {contains: /pricing}}}"
    for name, spec in named_mappings(specs, problems, "custom event", example):
        parser.unknown_keys(spec, CUSTOM_EVENT_KEYS, f"custom event '{name}'")
        if "custom_event" in spec:
            continue  # reported above: a definition names events, not other custom events
        match = parser.event_match(spec)
        # A definition with problems (said) still stands for its name, matching nothing: its
        # uses are not said to be unknown as well (the run stops on its problems anyway).
        names, where = (match.names, match.where) if match is not None else ((), ())
        found[name] = EventMatch(names, where, custom=name)
    return found
