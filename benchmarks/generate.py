"""Deterministic large benchmark data: persons, events and subscriptions as Parquet.

    python -m benchmarks.generate                                   # 1M persons, 10M events
    python -m benchmarks.generate --persons 5000000 --events 50000000

The output is a pure function of ``(persons, events, seed)`` and GENERATOR_VERSION: every random
draw is a counter-based hash (splitmix64) of (seed, stream name, row index), computed with numpy
on whole chunks, so there are no Python loops over rows, no global random state, and no
dependence on the numpy/duckdb version. Files are cached in ``benchmarks/data/<params>/`` and
reused when present (``--force`` regenerates).

Shape of the data (relative to ANCHOR, the as_of the benchmark evaluates at):

- persons: ``person_id`` (text ``u00000001``), ``email`` (3% NULL, 1% empty), ``country``,
  ``plan`` (free/trial/pro/premium), ``created_at`` (timestamptz; ~1% in the week before the
  anchor, ~1% after it), ``marketing_opt_in`` (5% NULL).
- events: ``person_id``, ``event``, ``timestamp`` (timestamptz UTC, strictly increasing: the
  file is in time order like an append-only log, 540 days before the anchor to 7 days after
  it, denser towards the anchor), ``amount`` (purchase only; multiples of 0.5, so float sums are
  exact and order-independent), ``format`` (video_rendered/export), ``certification``
  (quiz_completed; each person has a favourite that changes every 120 days). Persons are drawn
  from a heavy-tailed distribution (the top 1% produce ~29% of the events; 3% never act and
  ~2% more get no event by chance),
  each with a persona (creator, learner, shopper, casual) that sets their event mix.
- subscriptions: a status history (trialing -> active -> canceled/past_due/active) for most paid
  and trial persons and some free ones; ``mrr`` in cents, ``updated_at`` strictly increasing
  per person, some of it after the anchor.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

GENERATOR_VERSION = 3
DATA_ROOT = Path(__file__).resolve().parent / "data"
ANCHOR = datetime(2026, 11, 17, tzinfo=UTC)
DEFAULT_PERSONS = 1_000_000
DEFAULT_EVENTS = 10_000_000
DEFAULT_SEED = 42
CHUNK = 1 << 20  # rows per generated chunk, and per Parquet row group

US_PER_DAY = 86_400 * 1_000_000
EVENTS_START = ANCHOR - timedelta(days=540)
EVENTS_END = ANCHOR + timedelta(days=7)
PERSONS_START = ANCHOR - timedelta(days=760)
PERSONS_END = ANCHOR + timedelta(days=3)

EVENT_NAMES = [
    "login",
    "video_rendered",
    "export",
    "email_opened",
    "email_clicked",
    "quiz_completed",
    "purchase",
    "pricing_viewed",
    "signup",
]
# persona -> weight of each event name (same order as EVENT_NAMES)
PERSONAS = {
    "creator": [25, 40, 15, 8, 2, 3, 3, 3, 1],
    "learner": [30, 5, 2, 10, 3, 45, 2, 2, 1],
    "shopper": [30, 10, 5, 15, 8, 2, 20, 9, 1],
    "casual": [50, 10, 3, 20, 5, 5, 2, 4, 1],
}
PERSONA_WEIGHTS = [25, 20, 15, 40]
FORMATS = {"mp4": 55, "mov": 20, "gif": 15, "webm": 10}
CERTIFICATIONS = ["aws", "gcp", "azure", "k8s"]
COUNTRIES = {"US": 30, "GB": 10, "DE": 10, "IN": 12, "FR": 8, "BR": 8, "CA": 6, "AU": 5}
COUNTRIES |= {"ES": 5, "NL": 6}
PLANS = {"free": 55, "trial": 10, "pro": 25, "premium": 10}
DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "proton.me", "example.com", "acme.test"]

PERSONS_SCHEMA = pa.schema(
    [
        ("person_id", pa.string()),
        ("email", pa.string()),
        ("country", pa.string()),
        ("plan", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("marketing_opt_in", pa.bool_()),
    ]
)
EVENTS_SCHEMA = pa.schema(
    [
        ("person_id", pa.string()),
        ("event", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("amount", pa.float64()),
        ("format", pa.string()),
        ("certification", pa.string()),
    ]
)
SUBSCRIPTIONS_SCHEMA = pa.schema(
    [
        ("person_id", pa.string()),
        ("status", pa.string()),
        ("plan", pa.string()),
        ("mrr", pa.int64()),
        ("updated_at", pa.timestamp("us", tz="UTC")),
    ]
)

# ---- counter-based randomness ------------------------------------------------------------

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


class Stream:
    """Independent pseudo-random values per row index: splitmix64(key + (index+1) * gamma)."""

    def __init__(self, seed: int, name: str) -> None:
        digest = hashlib.blake2b(f"{seed}/{name}".encode(), digest_size=8).digest()
        self.key = np.uint64(int.from_bytes(digest, "little"))

    def bits(self, index: np.ndarray) -> np.ndarray:
        z = (index.astype(np.uint64) + np.uint64(1)) * _GAMMA + self.key  # wraps mod 2**64
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))

    def uniform(self, index: np.ndarray) -> np.ndarray:
        """Floats in [0, 1)."""
        return (self.bits(index) >> np.uint64(11)).astype(np.float64) * (2.0**-53)

    def choice(self, index: np.ndarray, weights: list[int] | dict[str, int]) -> np.ndarray:
        """Indices into ``weights`` drawn with those weights."""
        w = np.asarray(list(weights.values()) if isinstance(weights, dict) else weights, float)
        cumulative = np.cumsum(w / w.sum())[:-1]
        return np.searchsorted(cumulative, self.uniform(index), side="right")


def _us(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000


def _take(values: list[str], indices: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """A plain string array: values[indices], NULL where mask is True."""
    return pc.take(pa.array(values, pa.string()), pa.array(indices, pa.int32(), mask=mask))


def _chunks(total: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, CHUNK):
        yield start, min(total, start + CHUNK)


# ---- tables ------------------------------------------------------------------------------


class Generator:
    def __init__(self, persons: int, events: int, seed: int) -> None:
        if persons < 1 or events < 0:
            raise ValueError("need at least one person and a non-negative number of events")
        self.persons, self.events, self.seed = persons, events, seed
        self.width = max(8, len(str(persons)))
        self.person_ids: pa.Array | None = None
        self.cumulative_activity: np.ndarray | None = None

    def stream(self, name: str) -> Stream:
        return Stream(self.seed, name)

    def ids(self, index: np.ndarray) -> pa.Array:
        text = pc.cast(pa.array(index + 1, pa.int64()), pa.string())
        return pc.binary_join_element_wise("u", pc.utf8_lpad(text, self.width, "0"), "")

    def activity(self, person: np.ndarray) -> np.ndarray:
        """Heavy-tailed activity weights: Pareto(alpha=1.3) capped at 2000, and 0 (no events
        at all) for 3% of persons. The top 1% of persons produce ~29% of the events, the
        busiest one ~500x the median."""
        u = np.maximum(self.stream("activity").uniform(person), 1e-12)
        weight = np.minimum(u ** (-1 / 1.3), 2000.0)
        return np.where(self.stream("inactive").uniform(person) < 0.03, 0.0, weight)

    def personas(self, person: np.ndarray) -> np.ndarray:
        return self.stream("persona").choice(person, PERSONA_WEIGHTS)

    def plans(self, person: np.ndarray) -> np.ndarray:
        return self.stream("plan").choice(person, PLANS)

    def created_us(self, person: np.ndarray) -> np.ndarray:
        start, end = _us(PERSONS_START), _us(PERSONS_END)
        u = self.stream("created_at").uniform(person)
        offset: np.ndarray = np.floor((end - start) * np.sqrt(u)).astype(np.int64)
        return start + offset

    # persons -------------------------------------------------------------------------

    def persons_chunk(self, lo: int, hi: int) -> pa.Table:
        person = np.arange(lo, hi, dtype=np.int64)
        ids = self.ids(person)
        u_email = self.stream("email").uniform(person)
        domain = _take(DOMAINS, self.stream("domain").choice(person, [40, 20, 10, 10, 10, 10]))
        email = pc.binary_join_element_wise(
            "user", pc.cast(pa.array(person + 1), pa.string()), "@", domain, ""
        )
        email = pc.if_else(pa.array(u_email < 0.01), pa.scalar("", pa.string()), email)
        email = pc.if_else(pa.array(u_email > 0.97), pa.scalar(None, pa.string()), email)
        country = _take(list(COUNTRIES), self.stream("country").choice(person, COUNTRIES))
        plan = _take(list(PLANS), self.plans(person))
        created = pa.array(self.created_us(person), PERSONS_SCHEMA.field("created_at").type)
        u_opt = self.stream("opt_in").uniform(person)
        opt_in = pa.array(u_opt < 0.6, mask=(u_opt > 0.95))
        return pa.Table.from_arrays(
            [ids, email, country, plan, created, opt_in], schema=PERSONS_SCHEMA
        )

    # events --------------------------------------------------------------------------

    def events_chunk(self, lo: int, hi: int) -> pa.Table:
        assert self.person_ids is not None
        row = np.arange(lo, hi, dtype=np.int64)
        # Stratified draws through an increasing quantile function: strictly increasing
        # timestamps, density growing quadratically towards the end of the range (~15% of the
        # events fall in the 30 days before the anchor).
        start, end = _us(EVENTS_START), _us(EVENTS_END)
        u = (row + self.stream("time").uniform(row)) / max(self.events, 1)
        ts = start + np.floor((end - start) * np.cbrt(u)).astype(np.int64)
        # Each event's person, drawn in proportion to the persons' activity weights.
        assert self.cumulative_activity is not None
        target = self.stream("person").uniform(row) * self.cumulative_activity[-1]
        person = np.minimum(
            np.searchsorted(self.cumulative_activity, target, side="right"), self.persons - 1
        ).astype(np.int64)
        persona = self.personas(person)
        cumulative = np.array(
            [np.cumsum(np.asarray(w, float) / sum(w))[:-1] for w in PERSONAS.values()]
        )
        u_event = self.stream("event").uniform(row)
        event = (u_event[:, None] >= cumulative[persona]).sum(axis=1)
        name = np.asarray(EVENT_NAMES)
        is_purchase = name[event] == "purchase"
        is_media = np.isin(name[event], ["video_rendered", "export"])
        is_quiz = name[event] == "quiz_completed"

        amount_u = self.stream("amount").uniform(row)
        amount = 0.5 * (9 + np.floor(amount_u**3 * 991))  # 4.5 .. 500, exact in binary
        fmt = self.stream("format").choice(row, FORMATS)
        epoch = (ts - start) // (120 * US_PER_DAY)
        favourite = self.stream("favourite").bits(person * 64 + epoch) % np.uint64(4)
        other = self.stream("certification").choice(row, [1, 1, 1, 1])
        loyal = self.stream("loyal").uniform(row) < 0.65
        certification = np.where(loyal, favourite.astype(np.int64), other)

        return pa.Table.from_arrays(
            [
                pc.take(self.person_ids, pa.array(person)),
                _take(EVENT_NAMES, event),
                pa.array(ts, EVENTS_SCHEMA.field("timestamp").type),
                pa.array(amount, pa.float64(), mask=~is_purchase),
                _take(list(FORMATS), fmt, ~is_media),
                _take(CERTIFICATIONS, certification, ~is_quiz),
            ],
            schema=EVENTS_SCHEMA,
        )

    # subscriptions -------------------------------------------------------------------

    def subscriptions_chunk(self, lo: int, hi: int) -> pa.Table:
        person = np.arange(lo, hi, dtype=np.int64)
        plan = np.asarray(list(PLANS))[self.plans(person)]
        u_sub = self.stream("subscribed").uniform(person)
        subscribed = np.where(plan == "free", u_sub < 0.12, u_sub < 0.95)
        rows = (
            1
            + (self.stream("sub_rows_2").uniform(person) < 0.7)
            + (self.stream("sub_rows_3").uniform(person) < 0.35)
        ) * subscribed
        who = np.repeat(person, rows)
        first = np.repeat(np.cumsum(rows) - rows, rows)
        step = np.arange(len(who)) - first  # 0, 1, 2 within each person
        key = who * 4 + step
        plan_of = np.repeat(plan, rows)
        sub_plan = np.where(plan_of == "premium", "premium", "pro")
        mrr_full = np.where(sub_plan == "premium", 9900, 2900)
        mrr_full = np.where(self.stream("discount").uniform(key) < 0.15, 1900, mrr_full)
        final = self.stream("final_status").choice(key, [40, 20, 40])  # canceled/past_due/active
        status = np.where(
            step == 0,
            "trialing",
            np.where(step == 1, "active", np.asarray(["canceled", "past_due", "active"])[final]),
        )
        mrr = np.where(np.isin(status, ["trialing", "canceled"]), 0, mrr_full)
        offset_days = step * 30 + 1 + self.stream("sub_gap").uniform(key) * 28
        updated = np.repeat(self.created_us(person), rows) + (offset_days * US_PER_DAY).astype(
            np.int64
        )
        return pa.Table.from_arrays(
            [
                self.ids(who),
                pa.array(status, pa.string()),
                pa.array(sub_plan, pa.string()),
                pa.array(mrr, pa.int64()),
                pa.array(updated, SUBSCRIPTIONS_SCHEMA.field("updated_at").type),
            ],
            schema=SUBSCRIPTIONS_SCHEMA,
        )

    # files ---------------------------------------------------------------------------

    def write(self, folder: Path) -> dict[str, int]:
        folder.mkdir(parents=True, exist_ok=True)
        counts: dict[str, int] = {}
        self.person_ids = pa.concat_arrays(
            [self.ids(np.arange(lo, hi, dtype=np.int64)) for lo, hi in _chunks(self.persons)]
        )
        self.cumulative_activity = np.cumsum(self.activity(np.arange(self.persons)))
        jobs = [
            ("persons", PERSONS_SCHEMA, self.persons, self.persons_chunk),
            ("subscriptions", SUBSCRIPTIONS_SCHEMA, self.persons, self.subscriptions_chunk),
            ("events", EVENTS_SCHEMA, self.events, self.events_chunk),
        ]
        for table, schema, total, make in jobs:
            counts[table] = 0
            with pq.ParquetWriter(folder / f"{table}.parquet", schema, compression="snappy") as out:
                for lo, hi in _chunks(total):
                    chunk = make(lo, hi)
                    out.write_table(chunk, row_group_size=CHUNK)
                    counts[table] += chunk.num_rows
        return counts


# ---- cache -------------------------------------------------------------------------------


def _short(n: int) -> str:
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def data_dir(persons: int, events: int, seed: int) -> Path:
    return DATA_ROOT / f"p{_short(persons)}_e{_short(events)}_s{seed}"


def manifest_params(persons: int, events: int, seed: int) -> dict[str, object]:
    return {
        "generator_version": GENERATOR_VERSION,
        "persons": persons,
        "events": events,
        "seed": seed,
        "anchor": ANCHOR.isoformat().replace("+00:00", "Z"),
    }


def ensure_data(
    persons: int = DEFAULT_PERSONS,
    events: int = DEFAULT_EVENTS,
    seed: int = DEFAULT_SEED,
    *,
    force: bool = False,
    log: bool = True,
) -> Path:
    """The folder holding persons/events/subscriptions.parquet, generated if not cached."""
    folder = data_dir(persons, events, seed)
    params = manifest_params(persons, events, seed)
    manifest = folder / "manifest.json"
    if not force and manifest.is_file():
        found = json.loads(manifest.read_text())
        if found.get("params") == params:
            if log:
                print(f"data: reusing {folder}", file=sys.stderr)
            return folder
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    if log:
        print(
            f"data: generating {persons:,} persons and {events:,} events in {folder} ...",
            file=sys.stderr,
        )
    started = time.perf_counter()
    counts = Generator(persons, events, seed).write(tmp)
    seconds = time.perf_counter() - started
    sizes = {p.name: p.stat().st_size for p in sorted(tmp.glob("*.parquet"))}
    document = {"params": params, "rows": counts, "bytes": sizes, "seconds": round(seconds, 1)}
    (tmp / "manifest.json").write_text(json.dumps(document, indent=2) + "\n")
    # Keep anything else in the folder (the benchmark project, members files) only if the data
    # is unchanged; otherwise start clean.
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    if log:
        total = sum(sizes.values()) / 2**20
        print(f"data: wrote {counts} ({total:,.0f} MiB) in {seconds:.1f}s", file=sys.stderr)
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.generate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--persons", type=int, default=DEFAULT_PERSONS)
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--force", action="store_true", help="regenerate even if cached")
    args = parser.parse_args(argv)
    print(ensure_data(args.persons, args.events, args.seed, force=args.force))


if __name__ == "__main__":
    main()
