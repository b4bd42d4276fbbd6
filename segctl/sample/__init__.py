"""Deterministic sample data: persons, events, subscriptions and two static lists.

The generator plants behavioural archetypes relative to an *anchor* time (the ``as_of`` the
example project is evaluated at), so that every example segment has members:

- ``power``: paid plan (a few on free), 10+ ``video_rendered`` in the 30 days before the anchor;
- ``casual``: a few sessions a month, some of them lapsing (last seen 8-29 days ago);
- ``streaker``: a ``login`` every day for 7-40 days, ending the day before the anchor;
- ``churning``: active earlier, silent for 31-89 days; ``churned``: silent for 90+ days;
- ``new``: created in the last 7 days; ``onboarding``: created 8-28 days ago, most of them
  purchasing within 7 days of signing up;
- ``trial``: on the trial plan, most of them viewed pricing in the last 14 days;
- ``never``: persons without a single event; ``future``: created after the anchor.

Traits cut across archetypes: quiz takers (some AWS-focused, a few with 100+ quizzes whose last
100 differ from their whole history), high-LTV purchasers (purchases summing to 500+ in 365d),
and a few persons whose only heavy usage lies after the anchor. Every person with events has a
``signup`` event at ``created_at``. Nothing depends on the clock or on global random state: the
output is a function of ``(n_persons, seed, anchor)``.

Regenerate the committed sample with::

    python -m segctl.sample sample_data --anchor 2026-11-17
"""

from __future__ import annotations

import argparse
import csv
import pathlib
import random
from collections.abc import Sequence
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq

from segctl.sample.behaviour import EVENTS_SCHEMA, SUBSCRIPTION_COLUMNS, Event, Generator
from segctl.sample.people import PERSON_COLUMNS, Person

__all__ = ["EVENTS_SCHEMA", "Generator", "generate", "main"]


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_csv(path: pathlib.Path, header: list[str], rows: Sequence[Sequence[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _events_table(events: list[Event]) -> pa.Table:
    events.sort(key=lambda e: (e.timestamp, e.person_id, e.event))
    columns = {name: [getattr(e, name) for e in events] for name in EVENTS_SCHEMA.names}
    return pa.Table.from_pydict(columns, schema=EVENTS_SCHEMA)


def _lists(gen: Generator, people: list[Person]) -> tuple[list[str], list[str]]:
    """VIP person ids (mostly power users and big spenders) and suppressed emails."""
    rng = gen.rng
    power = [p.person_id for p in people if p.archetype == "power"]
    big = [p.person_id for p in people if "high_ltv" in p.traits and p.archetype != "power"]
    rest = [p.person_id for p in people if p.archetype in ("casual", "streaker", "churning")]
    vip = rng.sample(power, min(12, len(power))) + rng.sample(big, min(8, len(big)))
    vip += rng.sample([r for r in rest if r not in vip], min(10, len(rest)))
    with_email = [p for p in people if p.email.strip()]
    chosen = rng.sample(with_email, min(19, len(with_email)))
    # Some entries differ in case from persons.csv; matching must be case-insensitive.
    suppressed = [
        p.email.strip().upper() if i % 3 == 0 else p.email.strip().lower()
        for i, p in enumerate(chosen)
    ]
    suppressed.append("former.customer@example.com")  # not a known person
    return sorted(vip), suppressed


def generate(
    out_dir: pathlib.Path,
    *,
    n_persons: int = 3000,
    seed: int = 7,
    anchor: datetime | None = None,
    past_only: bool = False,
) -> dict[str, pathlib.Path]:
    """Write the sample data set into ``out_dir`` and return the written paths.

    The output depends only on ``(n_persons, seed, anchor)``. ``anchor`` is the moment the
    archetypes are planted around (evaluate at ``as_of=anchor``); naive values are UTC, and
    ``None`` means today at 00:00 UTC.

    Args:
        out_dir: folder to write into; created if missing (lists go to ``out_dir/lists``).
        n_persons: number of persons.
        seed: seed of the ``random.Random`` that drives every choice.
        anchor: reference time of the planted archetypes.
        past_only: leave out what lies after the anchor (persons created, events,
            subscription changes), for data that must not hold the future: ``segctl init
            --sample`` anchors at the moment it runs.

    Returns:
        Paths keyed ``persons``, ``events``, ``subscriptions``, ``vip`` and ``suppressed``.

    >>> paths = generate(pathlib.Path("out"), anchor=datetime(2026, 11, 17))  # doctest: +SKIP
    """
    if anchor is None:
        anchor = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    elif anchor.tzinfo is None:
        anchor = anchor.replace(tzinfo=UTC)
    anchor = anchor.astimezone(UTC)
    gen = Generator(random.Random(seed), anchor)
    people = gen.persons(n_persons)
    for p in people:
        gen.person_events(p)
    gen.campaigns(people)
    subs: list[tuple[str, str, str, int, str]] = []
    for p in people:
        for status, plan, mrr, ts in gen.subscriptions(p):
            subs.append((p.person_id, status, plan, mrr, _iso(ts)))
    vip, suppressed = _lists(gen, people)
    if past_only:
        people = [p for p in people if p.created_at <= anchor]
        gen.events = [e for e in gen.events if e.timestamp <= anchor]
        subs = [s for s in subs if s[4] <= _iso(anchor)]

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "persons": out_dir / "persons.csv",
        "events": out_dir / "events.parquet",
        "subscriptions": out_dir / "subscriptions.csv",
        "vip": out_dir / "lists" / "vip.csv",
        "suppressed": out_dir / "lists" / "suppressed.csv",
    }
    person_rows = [
        (
            p.person_id,
            p.email,
            p.phone,
            p.first_name,
            p.last_name,
            p.country,
            p.plan,
            _iso(p.created_at),
            "" if p.opt_in is None else str(p.opt_in).lower(),
            "" if p.company_size is None else p.company_size,
        )
        for p in people
    ]
    _write_csv(paths["persons"], PERSON_COLUMNS, person_rows)
    _write_csv(paths["subscriptions"], SUBSCRIPTION_COLUMNS, subs)
    _write_csv(paths["vip"], ["person_id"], [(v,) for v in vip])
    _write_csv(paths["suppressed"], ["email"], [(s,) for s in suppressed])
    pq.write_table(_events_table(gen.events), paths["events"], compression="zstd")
    return paths


def _parse_anchor(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 date or time: {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m segctl.sample OUT_DIR [--seed N] [--persons N] [--anchor T]``."""
    parser = argparse.ArgumentParser(
        prog="python -m segctl.sample",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("out_dir", type=pathlib.Path, help="folder to write the files into")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--persons", type=int, default=3000, help="number of persons")
    parser.add_argument(
        "--anchor",
        type=_parse_anchor,
        default=None,
        help="as_of the archetypes are planted around (default: today, UTC)",
    )
    args = parser.parse_args(argv)
    paths = generate(args.out_dir, n_persons=args.persons, seed=args.seed, anchor=args.anchor)
    for name, path in paths.items():
        print(f"{name:>13}: {path}")
    return 0
