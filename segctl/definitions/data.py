"""The ``data:`` section of segctl.yaml -> one :class:`Source` per source (SPEC 1).

``events``, ``persons``, ``subscriptions`` and ``identities`` each take a path (a file, a glob,
or a list of them) or a source mapping; ``events`` also takes a list of mappings, whose rows
are unioned. The old top-level ``data.columns`` still renames the columns of every source of
a table (a source's own ``columns`` wins).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from segctl.definitions.presets import PRESETS, Candidates, Preset
from segctl.definitions.source import Pos, Problems, YList, YMap, did_you_mean

ROLES = ("events", "persons", "subscriptions", "identities")
DATA_KEYS = (*ROLES, "columns")
UNITS = ("s", "ms", "us", "ns")
#: The keys a source mapping of each role accepts.
SOURCE_KEYS: dict[str, tuple[str, ...]] = {
    "events": (
        "path",
        "name",
        "preset",
        "columns",
        "event",
        "timestamp_unit",
        "dedupe_on",
        "anonymous_id",
    ),
    "persons": ("path", "name", "preset", "columns", "timestamp_unit", "latest_by"),
    "subscriptions": ("path", "name", "columns", "timestamp_unit"),
    "identities": ("path", "name", "preset", "columns"),
}
#: Canonical columns each role reads (what ``columns:`` may map).
CANONICAL: dict[str, tuple[str, ...]] = {
    "events": ("person_id", "event", "timestamp"),
    "persons": ("person_id", "email", "phone", "first_name", "last_name", "country", "created_at"),
    "subscriptions": ("person_id", "status", "plan", "mrr", "updated_at"),
    "identities": ("id", "person_id"),
}
#: The keys of a source mapping that name a column of their own (beside ``columns``).
COLUMN_KEYS = ("dedupe_on", "anonymous_id", "latest_by")
FORMATS_HINT = ".parquet, .csv, .tsv, .json, .jsonl, .ndjson, each optionally .gz"


@dataclass(frozen=True)
class Source:
    """One source of one role: its files and how its columns become the canonical ones."""

    role: str
    name: str  # for messages: the name given, else the path as written
    paths: tuple[str, ...]
    columns: dict[str, Candidates] = field(default_factory=dict)
    event: str | None = None
    timestamp_unit: str | None = None
    dedupe_on: Candidates = ()
    anonymous_id: Candidates = ()
    latest_by: Candidates = ()
    #: A preset's person id read row by row (:attr:`Preset.person_per_row`), unless the user
    #: named the column.
    person_per_row: bool = False
    preset: str | None = None
    where: str = ""  # the config key, like data.events[1]
    mapping: bool = False  # written as a source mapping (else a path or a list of paths)
    #: The canonical names (and ``dedupe_on``, ``anonymous_id``, ``latest_by``) whose
    #: columns the user named, over a preset's too: each must be in the data.
    given: frozenset[str] = frozenset()

    def column(self, canonical: str) -> Candidates:
        """The source column(s) read as ``canonical`` (the canonical name by default)."""
        return self.columns.get(canonical, (canonical,))


def parse_data(data: YMap, problems: Problems) -> dict[str, tuple[Source, ...]]:
    """Every source of the ``data:`` section; problems are collected, not raised."""
    _unknown(data, DATA_KEYS, "'data'", problems)
    renames = _old_columns(data, problems)
    sources: dict[str, tuple[Source, ...]] = {}
    for role in ROLES:
        if role not in data:
            if role == "events":
                problems.add(
                    data.pos,
                    "missing data.events: a file, glob, or list of files "
                    f"({FORMATS_HINT}), or a source mapping with a path",
                )
            continue
        value = data[role]
        items = _items(value, data.at(role), role, problems)
        parsed = [
            s
            for i, (item, pos) in enumerate(items)
            if (s := _source(role, item, pos, i if len(items) > 1 else None, renames, problems))
        ]
        if parsed:
            sources[role] = tuple(parsed)
    return sources


def _items(value: Any, pos: Pos, role: str, problems: Problems) -> list[tuple[Any, Pos]]:
    """The sources written under one role: a path, a list of paths, a mapping, or (events
    only) a list of sources, each a mapping or a path."""
    if isinstance(value, str) and value:
        return [(value, pos)]
    if isinstance(value, YMap):
        return [(value, value.pos)]
    if isinstance(value, YList) and value:
        if all(isinstance(v, str) and v for v in value):
            return [(list(value), pos)]  # one source over several files (as before)
        if all(isinstance(v, YMap) or (isinstance(v, str) and v) for v in value):
            # A list of sources (events), a plain path among them one source of that path.
            if role != "events" and len(value) > 1:
                problems.add(
                    pos, f"data.{role} takes one source (a path or a mapping), not a list of them"
                )
                return []
            return [(v, value.at(i)) for i, v in enumerate(value)]
    problems.add(
        pos,
        f"data.{role} must be a file, glob, or list of files, or a source mapping like "
        "{path: exports/*.parquet, columns: {person_id: user_id}}",
    )
    return []


def _source(
    role: str,
    item: Any,
    pos: Pos,
    index: int | None,
    renames: dict[str, dict[str, str]],
    problems: Problems,
) -> Source | None:
    where = f"data.{role}" + (f"[{index}]" if index is not None else "")
    base: dict[str, Candidates] = {k: (v,) for k, v in renames.get(role, {}).items()}
    if not isinstance(item, YMap):
        paths = tuple(item) if isinstance(item, list) else (item,)
        return Source(
            role, ", ".join(paths), paths, columns=base, where=where, given=frozenset(base)
        )
    _unknown(item, SOURCE_KEYS[role], where, problems)
    paths = _paths(item, where, problems)
    preset = _preset(item, role, where, problems)
    columns: dict[str, Candidates] = dict(base)
    columns.update(preset.columns)
    own = item.get("columns")
    if own is not None:
        if not isinstance(own, YMap) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in own.items()
        ):
            problems.add(
                item.at("columns"),
                f"{where}.columns must map canonical names to your column names, like "
                "{person_id: user_id, timestamp: created}",
            )
        else:
            columns.update({k: (v,) for k, v in own.items()})
    given = {*base, *(own if isinstance(own, YMap) else ()), *(k for k in COLUMN_KEYS if k in item)}
    unit = item.get("timestamp_unit", preset.timestamp_unit)
    if unit is not None and unit not in UNITS:
        problems.add(
            item.at("timestamp_unit"),
            f"{where}.timestamp_unit must be one of {', '.join(UNITS)} (seconds, milliseconds, "
            f"microseconds or nanoseconds since the Unix epoch), not {unit!r}",
        )
        unit = None
    event = item.get("event")
    if event is not None and not (isinstance(event, str) and event):
        problems.add(item.at("event"), f"{where}.event must be an event name (text)")
        event = None
    if event is not None and "event" in (own or {}):
        problems.add(
            item.at("event"), f"{where}: give either event (a constant) or columns.event, not both"
        )
    name = item.get("name")
    if name is not None and not (isinstance(name, str) and name):
        problems.add(item.at("name"), f"{where}.name must be text")
        name = None
    return Source(
        role,
        str(name) if name else ", ".join(paths),
        paths,
        columns=columns,
        event=event,
        timestamp_unit=unit,
        dedupe_on=_column_key(item, "dedupe_on", preset.dedupe_on, where, problems),
        anonymous_id=_column_key(item, "anonymous_id", preset.anonymous_id, where, problems),
        latest_by=_column_key(item, "latest_by", preset.latest_by, where, problems),
        person_per_row=preset.person_per_row and "person_id" not in given,
        preset=str(item["preset"]) if "preset" in item else None,
        where=where,
        mapping=True,
        given=frozenset(given),
    )


def _paths(item: YMap, where: str, problems: Problems) -> tuple[str, ...]:
    value = item.get("path")
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    problems.add(
        item.at("path") if "path" in item else item.pos,
        f"{where} needs a path: a file, glob, or list of files ({FORMATS_HINT})",
    )
    return ()


def _preset(item: YMap, role: str, where: str, problems: Problems) -> Preset:
    name = item.get("preset")
    if name is None:
        return Preset()
    roles = [n for n, by_role in PRESETS.items() if role in by_role]
    if name not in PRESETS:
        problems.add(
            item.at("preset"),
            f"unknown preset {name!r} in {where}{did_you_mean(str(name), list(PRESETS))} "
            f"(presets: {', '.join(PRESETS)})",
        )
        return Preset()
    if role not in PRESETS[name]:
        problems.add(
            item.at("preset"),
            f"preset '{name}' has no mapping for {role} (presets for {role}: "
            f"{', '.join(roles)}); map the columns with columns: instead",
        )
        return Preset()
    return PRESETS[name][role]


def _column_key(
    item: YMap, key: str, default: Candidates, where: str, problems: Problems
) -> Candidates:
    value = item.get(key)
    if value is None:
        return default
    if isinstance(value, str) and value:
        return (value,)
    problems.add(item.at(key), f"{where}.{key} must be a column name (text)")
    return ()


def _old_columns(data: YMap, problems: Problems) -> dict[str, dict[str, str]]:
    """``data.columns: {events: {person_id: user_id}}``, the form before source mappings."""
    renames = data.get("columns", {})
    out: dict[str, dict[str, str]] = {}
    if not isinstance(renames, dict):
        problems.add(
            data.at("columns"), "data.columns must map a table to {canonical: your_column}"
        )
        return out
    if not isinstance(renames, YMap):
        return out
    _unknown(renames, ROLES, "data.columns", problems)
    for table, mapping in renames.items():
        if table not in ROLES:
            continue
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
        ):
            problems.add(
                renames.at(table),
                f"data.columns.{table} must map canonical "
                "names to your column names, like {person_id: user_id}",
            )
            continue
        out[table] = dict(mapping)
    return out


def _unknown(node: YMap, allowed: tuple[str, ...], what: str, problems: Problems) -> None:
    for key in node:
        if key not in allowed:
            problems.add(
                node.key_at(key),
                f"unknown key '{key}' in {what}{did_you_mean(key, allowed)} "
                f"(valid keys: {', '.join(allowed)})",
            )
