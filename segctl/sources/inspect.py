"""``segctl inspect``: what segctl sees in each source, before a segment is written.

Per source: its files, rows, time range, distinct persons, events with no person (once
identities are resolved), rows removed as repeats, and the property keys found with their type
and an example, including the keys inside JSON, STRUCT and MAP columns and GA4-style key/value
records (as the dotted names a segment uses: ``properties.plan``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from segctl.sources.load import TIMESTAMPS, Loader
from segctl.sources.nested import format_path
from segctl.sources.sql import count, duck, qident
from segctl.sources.views import DUPLICATE, LATEST, RAW_TIMESTAMP, SOURCE_INDEX
from segctl.tempnames import EVENTS_STAGED_VIEW

#: Rows sampled for the keys inside nested columns.
SAMPLE = 2000
#: Nested keys listed per column at most.
MAX_KEYS = 200
_HIDDEN = (SOURCE_INDEX, DUPLICATE, LATEST, RAW_TIMESTAMP)
#: json_type() -> how a segment reads the value.
_JSON_TYPES = {
    "VARCHAR": "text",
    "BIGINT": "number",
    "UBIGINT": "number",
    "DOUBLE": "number",
    "BOOLEAN": "boolean",
    "OBJECT": "object",
    "ARRAY": "array",
    "NULL": "null",
}


@dataclass
class Property:
    name: str  # as a segment names it (dotted inside nested columns)
    type: str
    example: Any


@dataclass
class SourceReport:
    role: str
    name: str
    files: list[str]
    rows: int
    first: str | None = None  # time range of the source's timestamp column
    last: str | None = None
    persons: int | None = None
    no_person: int | None = None  # events that belong to nobody
    duplicates: int | None = None
    properties: list[Property] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "role": self.role,
            "name": self.name,
            "files": self.files,
            "rows": self.rows,
            "from": self.first,
            "to": self.last,
            "persons": self.persons,
        }
        if self.role == "events":
            out["no_person"] = self.no_person
            out["duplicates"] = self.duplicates
        out["properties"] = [
            {"name": p.name, "type": p.type, "example": p.example} for p in self.properties
        ]
        return out


def inspect(loader: Loader, con: duckdb.DuckDBPyConnection) -> list[SourceReport]:
    """A report per source of every role, in the order of segctl.yaml."""
    reports = []
    for role, staged_list in loader.staged.items():
        for staged in staged_list:
            files = [loader.display(Path(f)) for g in staged.groups for f in g.files.files]
            query = f"({duck(staged.query)})"
            stamp = TIMESTAMPS.get(role)
            report = SourceReport(role, staged.source.name, files, 0)
            described = [
                (str(r[0]), str(r[1]))
                for r in con.execute(f"DESCRIBE {duck(staged.query)}").fetchall()
                if str(r[0]) not in _HIDDEN
            ]
            names = {n for n, _ in described}
            if role == "events":
                duplicate = exp.column(DUPLICATE, quoted=True)
                kept = exp.not_(duplicate)
                no_person = exp.column("person_id").is_(exp.null())
                this_source = exp.EQ(
                    this=exp.column(SOURCE_INDEX, quoted=True),
                    expression=exp.Literal.number(staged.index),
                )
                summary = exp.select(
                    count(),
                    exp.Min(this=exp.column("timestamp")),
                    exp.Max(this=exp.column("timestamp")),
                    count(kept, distinct="person_id"),
                    count(exp.and_(kept, no_person)),
                    count(duplicate),
                ).from_(EVENTS_STAGED_VIEW)
                row = con.execute(duck(summary.where(this_source))).fetchone()
                assert row is not None
                report.rows, first, last, report.persons, report.no_person, report.duplicates = (
                    int(row[0]),
                    row[1],
                    row[2],
                    int(row[3]),
                    int(row[4]),
                    int(row[5]),
                )
            else:
                time = exp.column(stamp) if stamp in names else exp.null()
                persons = (
                    count(distinct="person_id") if "person_id" in names else exp.Literal.number(0)
                )
                summary = exp.select(
                    count(), exp.Min(this=time), exp.Max(this=time.copy()), persons
                ).from_(staged.query.subquery())
                row = con.execute(duck(summary)).fetchone()
                assert row is not None
                report.rows, first, last, report.persons = int(row[0]), row[1], row[2], int(row[3])
            report.first = _iso(first)
            report.last = _iso(last)
            report.properties = _properties(con, query, described)
            reports.append(report)
    return reports


def _properties(
    con: duckdb.DuckDBPyConnection, query: str, described: list[tuple[str, str]]
) -> list[Property]:
    found = []
    sample = f"(SELECT * FROM {query} LIMIT {SAMPLE})"
    for name, kind in described:
        column = qident(name)
        example = _first(con, f"SELECT {column} FROM {sample} WHERE {column} IS NOT NULL LIMIT 1")
        found.append(Property(name, kind, _plain(example)))
        nested: list[tuple[str, str, Any]] = []
        try:
            if kind in ("JSON", "VARCHAR"):
                nested = _json_keys(con, sample, column)
            elif kind.startswith('STRUCT("key"') and kind.endswith("[]"):
                nested = _record_keys(con, sample, column)
            elif kind.startswith(("STRUCT", "MAP")) and not kind.endswith("[]"):
                nested = _json_keys(con, sample, f"to_json({column})")
        except duckdb.Error:
            nested = []  # text that is not JSON: a plain column, no keys inside
        found.extend(Property(format_path(name, (key,)), t, v) for key, t, v in nested)
    return found


def _json_keys(
    con: duckdb.DuckDBPyConnection, sample: str, column: str
) -> list[tuple[str, str, Any]]:
    """Top-level keys of a JSON object column, with the JSON type and an example."""
    rows = con.execute(
        f"SELECT k, any_value(json_type(j -> ('$.\"' || k || '\"'))), "
        f"any_value(j ->> ('$.\"' || k || '\"')) FROM (SELECT j, unnest(json_keys(j)) AS k "
        f"FROM (SELECT TRY_CAST({column} AS JSON) AS j FROM {sample} WHERE "
        f"json_valid({column}::VARCHAR) AND json_type({column}::JSON) = 'OBJECT')) "
        f"GROUP BY k ORDER BY k LIMIT {MAX_KEYS}"
    ).fetchall()
    return [(str(k), _JSON_TYPES.get(str(t), str(t).lower()), _plain(v)) for k, t, v in rows]


def _record_keys(
    con: duckdb.DuckDBPyConnection, sample: str, column: str
) -> list[tuple[str, str, Any]]:
    """Keys of a list of key/value records (GA4's event_params), with an example value."""
    rows = con.execute(
        f"SELECT r.key, any_value(to_json(r.value)::VARCHAR) FROM (SELECT unnest({column}) AS r "
        f"FROM {sample}) GROUP BY r.key ORDER BY r.key LIMIT {MAX_KEYS}"
    ).fetchall()
    found = []
    for key, value in rows:
        slots = json.loads(value) if value else None
        if isinstance(slots, dict):  # typed slots (string_value, int_value...): the one set
            slot, value = next(((k, v) for k, v in slots.items() if v is not None), ("", None))
            kind = "text" if slot.startswith("string") else "number" if slot else "null"
        else:
            kind, value = "text", slots
        found.append((str(key), kind, _plain(value)))
    return found


def _first(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = con.execute(sql).fetchone()
    return row[0] if row else None


def _plain(value: Any) -> Any:
    """A JSON-friendly example (text for anything else)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        if isinstance(value, str) and len(value) > 80:
            return value[:77] + "..."
        return value
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return str(value)


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat() + "Z"
