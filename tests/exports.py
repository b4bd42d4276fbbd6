"""Small, deterministic exports in each tool's documented schema (docs/data.md), from one truth.

:func:`truth` draws persons and their events: each person has an anonymous id (a device or
cookie), their first events are anonymous (no user id), and once identified their events carry
both ids; some persons are never identified (their events belong to nobody), some are
identified only by an identify call (Segment's ``identifies``), and exports repeat some rows.
Each writer encodes the same truth as a tool writes it; the tests compute the expected members
from the truth in plain Python and compare with what segctl reads.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

EVENTS = ("Signed Up", "Video Rendered", "Purchase")
FORMATS = ("mp4", "gif", "webm")
START = datetime(2026, 10, 1, tzinfo=UTC)


@dataclass
class Event:
    event_id: str
    name: str
    at: datetime
    anonymous: bool  # sent before the person was identified (no user id on the row)
    properties: dict[str, object]


@dataclass
class Person:
    user_id: str
    anonymous_id: str
    events: list[Event] = field(default_factory=list)
    identified: str = "events"  # "events" (rows carry both ids), "identify" (a call), "never"
    plan: str = "free"

    @property
    def known(self) -> bool:
        return self.identified != "never"


@dataclass
class Truth:
    persons: list[Person]
    repeats: list[tuple[Person, Event]]  # rows an export writes twice

    def events_of(self, person: Person) -> list[Event]:
        return person.events

    def count(self, person: Person, name: str) -> int:
        return sum(e.name == name for e in person.events)

    def ignored(self) -> int:
        """Events that belong to nobody once identities are resolved."""
        return sum(len(p.events) for p in self.persons if not p.known)

    def rows(self) -> int:
        return sum(len(p.events) for p in self.persons) + len(self.repeats)


def truth(seed: int = 7, persons: int = 14) -> Truth:
    """The persons and events every writer encodes (deterministic for a seed)."""
    rng = random.Random(seed)
    found: list[Person] = []
    for i in range(persons):
        mode = "never" if i % 5 == 4 else ("identify" if i % 5 == 3 else "events")
        person = Person(f"u{i:02d}", f"anon-{i:02d}-{rng.randrange(16**6):06x}", identified=mode)
        person.plan = rng.choice(["free", "pro"])
        at = START + timedelta(hours=rng.randrange(200))
        anonymous_first = rng.randrange(0, 4)
        for k in range(rng.randrange(1, 9)):
            at += timedelta(minutes=rng.randrange(5, 3000))
            name = rng.choice(EVENTS)
            anonymous = mode != "events" or k < anonymous_first
            props: dict[str, object] = {
                "format": rng.choice(FORMATS),
                "amount": rng.randrange(1, 50),
            }
            event_id = f"{person.user_id}-{k}-{rng.randrange(16**8):08x}"
            person.events.append(Event(event_id, name, at, anonymous, props))
        if mode == "events" and all(e.anonymous for e in person.events):
            person.events[-1].anonymous = False  # identified at least once
        found.append(person)
    repeats = [(p, e) for p in found for e in p.events if rng.random() < 0.15]
    return Truth(found, repeats)


def _rows(t: Truth) -> list[tuple[Person, Event]]:
    rows = [(p, e) for p in t.persons for e in p.events] + t.repeats
    return sorted(rows, key=lambda r: (r[1].at, r[1].event_id))


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _ndjson(path: Path, lines: list[dict[str, object]]) -> None:
    text = "".join(json.dumps(line) + "\n" for line in lines)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode(), mtime=0))
    else:
        path.write_text(text)


# ---- writers: each returns the person id the tool's export gives a truth person --------------


def posthog_person_id(person: Person) -> str:
    """PostHog's person_id is a UUID of the person (the distinct ids are merged into it)."""
    return f"0190a000-0000-7000-8000-{int(person.user_id[1:]):012d}"


def write_posthog(t: Truth, folder: Path) -> Path:
    """The events export as CSV (PostHog's file download): properties as a JSON column;
    anonymous rows have the anonymous distinct_id and no person_id yet, the $identify row links
    the anonymous distinct_id to the person."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "posthog_events.csv"
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["uuid", "event", "properties", "timestamp", "distinct_id", "person_id",
                      "elements_chain", "created_at"])  # fmt: skip
        for person, event in _rows(t):
            identified = person.known and not event.anonymous
            properties = {
                **event.properties,
                "$current_url": f"https://app.example.com/{event.name}",
            }
            out.writerow([
                event.event_id,
                event.name,
                json.dumps(properties),
                _iso(event.at),
                person.user_id if identified else person.anonymous_id,
                posthog_person_id(person) if identified else "",
                "",
                _iso(event.at + timedelta(seconds=2)),
            ])  # fmt: skip
        for person in t.persons:  # $identify: sent with the anonymous id, merged into the person
            if person.known:
                at = person.events[0].at + timedelta(seconds=1)
                anon = json.dumps({"$anon_distinct_id": person.anonymous_id})
                person_id = posthog_person_id(person)
                out.writerow([f"identify-{person.user_id}", "$identify", anon, _iso(at),
                              person.anonymous_id, person_id, "", _iso(at)])  # fmt: skip
    return path


def write_segment_warehouse(t: Truth, folder: Path) -> tuple[Path, Path]:
    """The warehouse tables ``tracks`` and ``identifies`` as Parquet (snake_case columns)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = _rows(t)
    tracks = pa.table({
        "id": [e.event_id for _, e in rows],
        "anonymous_id": [p.anonymous_id for p, _ in rows],
        "user_id": [None if (e.anonymous or not p.known) else p.user_id for p, e in rows],
        "event": [e.name.lower().replace(" ", "_") for _, e in rows],
        "event_text": [e.name for _, e in rows],
        "timestamp": pa.array([e.at for _, e in rows], pa.timestamp("us", tz="UTC")),
        "received_at": pa.array([e.at + timedelta(seconds=1) for _, e in rows],
                                pa.timestamp("us", tz="UTC")),
        "context_library_name": ["analytics.js"] * len(rows),
    })  # fmt: skip
    identified = [p for p in t.persons if p.known]
    identifies = pa.table({
        "id": [f"identify-{p.user_id}" for p in identified],
        "anonymous_id": [p.anonymous_id for p in identified],
        "user_id": [p.user_id for p in identified],
        "email": [f"{p.user_id}@example.com" for p in identified],
        "plan": [p.plan for p in identified],
        "timestamp": pa.array([p.events[0].at for p in identified], pa.timestamp("us", tz="UTC")),
    })  # fmt: skip
    pq.write_table(tracks, folder / "tracks.parquet")
    pq.write_table(identifies, folder / "identifies.parquet")
    return folder / "tracks.parquet", folder / "identifies.parquet"


def write_segment_archive(t: Truth, folder: Path) -> Path:
    """Segment's raw JSON archive: one message per line, camelCase keys, track and identify."""
    folder.mkdir(parents=True, exist_ok=True)
    lines: list[dict[str, object]] = []
    for person, event in _rows(t):
        message: dict[str, object] = {
            "type": "track",
            "event": event.name,
            "messageId": event.event_id,
            "anonymousId": person.anonymous_id,
            "properties": event.properties,
            "timestamp": _iso(event.at),
            "receivedAt": _iso(event.at + timedelta(seconds=1)),
            "context": {"library": {"name": "analytics.js"}},
        }
        if person.known and not event.anonymous:
            message["userId"] = person.user_id
        lines.append(message)
    for person in t.persons:
        if person.known:
            lines.append({
                "type": "identify", "messageId": f"identify-{person.user_id}",
                "userId": person.user_id, "anonymousId": person.anonymous_id,
                "traits": {"plan": person.plan}, "timestamp": _iso(person.events[0].at),
            })  # fmt: skip
    # As Segment's S3 destination names them: segment-logs/<source id>/<day received, in
    # ms>/<ms>.<id>.gz, gzipped NDJSON with no .json in the name.
    path = folder / "segment-logs/Hy2FPqtY9y/1793491200000/1793494800000.e1f2a3b4.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    _ndjson(path, lines)
    return path


def write_amplitude(t: Truth, folder: Path) -> Path:
    """The Export API's gzipped NDJSON (``export_*.json.gz``)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines: list[dict[str, object]] = []
    for person, event in _rows(t):
        identified = person.identified == "events" and not event.anonymous
        lines.append({
            "$insert_id": event.event_id,
            "amplitude_id": 1000 + int(person.user_id[1:]),
            "user_id": person.user_id if identified else None,
            "device_id": person.anonymous_id,
            "event_type": event.name,
            "event_time": event.at.strftime("%Y-%m-%d %H:%M:%S.%f"),
            "server_upload_time": (event.at + timedelta(seconds=3)).strftime(
                "%Y-%m-%d %H:%M:%S.%f"
            ),
            "event_properties": event.properties,
            "user_properties": {"plan": person.plan},
            "platform": "Web",
            "uuid": f"uuid-{event.event_id}",
        })  # fmt: skip
    path = folder / "export_2026-10-01_0#0.json.gz"
    _ndjson(path, lines)
    return path


def write_mixpanel(t: Truth, folder: Path) -> Path:
    """The raw export API's NDJSON (simplified ID merge: $user_id and $device_id)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines: list[dict[str, object]] = []
    for person, event in _rows(t):
        identified = person.identified == "events" and not event.anonymous
        properties: dict[str, object] = {
            "time": int(event.at.timestamp()),
            "distinct_id": person.user_id if identified else f"$device:{person.anonymous_id}",
            "$device_id": person.anonymous_id,
            "$insert_id": event.event_id,
            "mp_lib": "web",
            **event.properties,
        }
        if identified:
            properties["$user_id"] = person.user_id
        lines.append({"event": event.name, "properties": properties})
    path = folder / "mixpanel-export.jsonl"
    _ndjson(path, lines)
    return path


def write_ga4(t: Truth, folder: Path) -> Path:
    """The BigQuery export (``events_YYYYMMDD``) as Parquet: event_params as key/value records."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = _rows(t)
    value = pa.struct([("string_value", pa.string()), ("int_value", pa.int64()),
                       ("float_value", pa.float64()), ("double_value", pa.float64())])  # fmt: skip
    params = pa.list_(pa.struct([("key", pa.string()), ("value", value)]))
    table = pa.table({
        "event_date": [e.at.strftime("%Y%m%d") for _, e in rows],
        "event_timestamp": [int(e.at.timestamp() * 1_000_000) for _, e in rows],
        "event_name": [e.name.lower().replace(" ", "_") for _, e in rows],
        "event_params": pa.array([
            [{"key": "format", "value": {"string_value": e.properties["format"], "int_value": None,
                                         "float_value": None, "double_value": None}},
             {"key": "amount", "value": {"string_value": None, "int_value": e.properties["amount"],
                                         "float_value": None, "double_value": None}}]
            for _, e in rows], params),
        "user_id": [p.user_id if p.identified == "events" and not e.anonymous else None
                    for p, e in rows],
        "user_pseudo_id": [p.anonymous_id for p, _ in rows],
        "platform": ["WEB"] * len(rows),
    })  # fmt: skip
    path = folder / "events_20261001.parquet"
    pq.write_table(table, path)
    return path


def write_ga4_ndjson(t: Truth, folder: Path) -> Path:
    """The BigQuery export extracted as NEWLINE_DELIMITED_JSON (``bq extract``): the same
    rows as :func:`write_ga4`, INT64 values as JSON strings (as BigQuery writes them), unset
    slots left out, event_params a JSON array of key/value records."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "events_20261001.json"
    with path.open("w") as out:
        for person, e in _rows(t):
            anonymous = person.identified != "events" or e.anonymous
            row = {
                "event_date": e.at.strftime("%Y%m%d"),
                "event_timestamp": str(int(e.at.timestamp() * 1_000_000)),
                "event_name": e.name.lower().replace(" ", "_"),
                "event_params": [
                    {"key": "format", "value": {"string_value": e.properties["format"]}},
                    {"key": "amount", "value": {"int_value": str(e.properties["amount"])}},
                ],
                "user_id": None if anonymous else person.user_id,
                "user_pseudo_id": person.anonymous_id,
                "platform": "WEB",
            }
            out.write(json.dumps(row) + "\n")
    return path


def write_stripe_charges(t: Truth, folder: Path) -> Path:
    """Stripe's charges as a CSV: ``created`` in epoch seconds, ``customer`` the person."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "charges.csv"
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["id", "customer", "amount", "currency", "status", "created"])
        for person, event in _rows(t):
            if event.name == "Purchase" and person.known:
                amount = int(str(event.properties["amount"])) * 100
                out.writerow([f"ch_{event.event_id}", person.user_id, amount, "usd", "succeeded",
                              int(event.at.timestamp())])  # fmt: skip
    return path
