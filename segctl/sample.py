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
import math
import pathlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["EVENTS_SCHEMA", "generate", "main"]

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)

#: Arrow schema of ``events.parquet``; property columns are NULL where they do not apply.
EVENTS_SCHEMA = pa.schema(
    [
        ("person_id", pa.string()),
        ("event", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("amount", pa.float64()),  # purchase
        ("currency", pa.string()),  # purchase
        ("format", pa.string()),  # video_rendered, export
        ("certification", pa.string()),  # quiz_completed
        ("score", pa.int64()),  # quiz_completed
        ("page", pa.string()),  # pricing_viewed
        ("campaign", pa.string()),  # email_opened, email_clicked
    ]
)

PERSON_COLUMNS = [
    "person_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "country",
    "plan",
    "created_at",
    "marketing_opt_in",
    "company_size",
]
SUBSCRIPTION_COLUMNS = ["person_id", "status", "plan", "mrr", "updated_at"]

# Share of persons per archetype; "casual" takes the rest.
ARCHETYPE_SHARES: dict[str, float] = {
    "never": 0.035,
    "new": 0.025,
    "onboarding": 0.02,
    "trial": 0.06,
    "power": 0.045,
    "streaker": 0.025,
    "churning": 0.08,
    "churned": 0.10,
}
PLAN_WEIGHTS: dict[str, dict[str, int]] = {
    "never": {"free": 90, "trial": 10},
    "new": {"free": 80, "trial": 20},
    "onboarding": {"free": 30, "trial": 30, "pro": 30, "premium": 10},
    "trial": {"trial": 1},
    "power": {"free": 15, "pro": 45, "premium": 40},
    "streaker": {"free": 40, "pro": 35, "premium": 25},
    "casual": {"free": 60, "pro": 25, "premium": 15},
    "churning": {"free": 50, "pro": 35, "premium": 15},
    "churned": {"free": 85, "pro": 10, "premium": 5},
    "future": {"free": 1},
}


def _words(text: str) -> list[str]:
    return text.split()


COUNTRIES = {"US": 35, "GB": 12, "DE": 10, "IN": 10, "FR": 8, "BR": 7, "CA": 6, "AU": 5}
COUNTRIES |= {"ES": 4, "NL": 3}
CURRENCY = {"GB": "GBP", "DE": "EUR", "FR": "EUR", "ES": "EUR", "NL": "EUR"}
FIRST_NAMES = _words(
    "Mary James Anna John Sofia Lucas Emma Noah Olivia Liam Mia Ethan Priya Arjun Chloe Leon "
    "Hannah Mateo Camille Hugo Isabela Rafael Aisha Omar Grace Henry Lena Felix Zoe Daniel Maya "
    "Lukas Ines Pablo Sara Jack Amelia Ravi Julia Tom"
)
LAST_NAMES = _words(
    "Smith Johnson Brown Taylor Wilson Martin Garcia Müller Schmidt Dubois Moreau Patel Sharma "
    "Silva Santos Lee Nguyen Walker Young King Wright Lopez Hill Green Baker Adams Nelson Rossi "
    "Jansen Visser Kumar Oliveira Fischer Weber Laurent Clarke Evans Murphy Kelly Novak"
)
DOMAINS = _words(
    "gmail.com gmail.com gmail.com outlook.com yahoo.com hotmail.com proton.me "
    "example.com example.org acme.test globex.test initech.test"
)
FORMATS = {"mp4": 55, "mov": 20, "gif": 15, "webm": 10}
CERTIFICATIONS = ["aws", "gcp", "azure", "k8s"]
SUB_MRR = {"pro": 2900, "premium": 7900, "team": 19900}


@dataclass(frozen=True, slots=True)
class _Event:
    timestamp: datetime
    person_id: str
    event: str
    amount: float | None = None
    currency: str | None = None
    format: str | None = None
    certification: str | None = None
    score: int | None = None
    page: str | None = None
    campaign: str | None = None


@dataclass(slots=True)
class _Person:
    person_id: str
    archetype: str
    plan: str
    country: str
    created_at: datetime
    #: last moment the person may have (ordinary) events; None for persons without events
    active_until: datetime | None
    opt_in: bool | None
    company_size: int | None
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""
    traits: set[str] = field(default_factory=set)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Generator:
    """Holds the random source and the anchor; builds persons, events and subscriptions."""

    def __init__(self, rng: random.Random, anchor: datetime) -> None:
        self.rng = rng
        self.anchor = anchor
        self.events: list[_Event] = []

    # -- small random helpers -------------------------------------------------------------
    def pick(self, weights: dict[str, int]) -> str:
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    def between(self, lo: datetime, hi: datetime) -> datetime:
        """A whole-second instant in [lo, hi]."""
        span = max(0, int((hi - lo).total_seconds()))
        return lo + timedelta(seconds=self.rng.randint(0, span))

    def days_ago(self, lo: float, hi: float) -> datetime:
        return self.between(self.anchor - hi * DAY, self.anchor - lo * DAY)

    # -- persons ---------------------------------------------------------------------------
    def persons(self, n_persons: int) -> list[_Person]:
        labels: list[str] = []
        for archetype, share in ARCHETYPE_SHARES.items():
            labels += [archetype] * max(1, round(share * n_persons))
        labels += ["future"] * max(3, round(0.002 * n_persons))
        labels += ["casual"] * max(0, n_persons - len(labels))
        labels = labels[:n_persons]
        self.rng.shuffle(labels)
        people = [self.person(f"u{i + 1:05d}", label) for i, label in enumerate(labels)]
        self.assign_traits(people)
        return people

    def person(self, person_id: str, archetype: str) -> _Person:
        rng, anchor = self.rng, self.anchor
        until: datetime | None = anchor
        if archetype == "new":
            created = self.days_ago(1 / 24, 6.9)
        elif archetype == "onboarding":
            created = self.days_ago(8, 28)
        elif archetype == "trial":
            created = self.days_ago(2, 30)
        elif archetype == "future":
            created = self.between(anchor + 2 * HOUR, anchor + 10 * DAY)
            until = created + 5 * DAY
        elif archetype == "churning":
            until = self.days_ago(31, 89)
            created = self.between(max(until - 250 * DAY, anchor - 730 * DAY), until - 30 * DAY)
        elif archetype == "churned":
            until = self.days_ago(90, 500)
            created = self.between(max(until - 300 * DAY, anchor - 730 * DAY), until - 14 * DAY)
        else:
            created = self.days_ago(40, 730)
            if archetype == "never":
                until = None
            elif archetype == "casual" and rng.random() < 0.15:
                until = self.days_ago(8, 29)  # lapsing: active 30..7 days ago, not since
        created = created.replace(microsecond=0)
        country = self.pick(COUNTRIES)
        r = rng.random()
        opt_in = True if r < 0.6 else (False if r < 0.93 else None)
        size = None if rng.random() < 0.3 else int(math.exp(rng.uniform(0, 8)))
        p = _Person(
            person_id,
            archetype,
            self.pick(PLAN_WEIGHTS[archetype]),
            country,
            created,
            until,
            opt_in,
            size,
        )
        self.identity(p)
        return p

    def identity(self, p: _Person) -> None:
        """Names, an email with realistic blemishes, and a phone in a local or E.164 format."""
        rng = self.rng
        p.first_name, p.last_name = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        first, last = p.first_name.lower(), p.last_name.lower().replace("ü", "ue")
        number, domain = int(p.person_id[1:]), rng.choice(DOMAINS)
        email = f"{first}.{last}{number}@{domain}"
        if domain == "gmail.com" and rng.random() < 0.15:
            # Google normalises these to the same account: drop dots and the +suffix.
            tag = rng.choice(["news", "promo"])
            email = f"{first}.{last}.{number}+{tag}@gmail.com"
        r = rng.random()
        if r < 0.03:
            email = ""
        elif r < 0.06:
            email = f"{first.capitalize()}.{last.capitalize()}{number}@{domain.capitalize()}"
        elif r < 0.08:
            email = f"  {email} "
        p.email = email
        p.phone = "" if rng.random() < 0.1 else self.phone(p.country)

    def phone(self, country: str) -> str:
        rng = self.rng
        d = [str(rng.randint(0, 9)) for _ in range(8)]
        if country in ("US", "CA"):
            area, line = "555", f"01{d[1]}{d[2]}"  # 555-01xx: reserved for fiction
            return rng.choice(
                [
                    f"+1 {area}-{d[3]}{d[4]}{d[5]}-{line}",
                    f"({area}) {d[3]}{d[4]}{d[5]} {line}",
                    f"{area}.{d[3]}{d[4]}{d[5]}.{line}",
                    f"1-{area}-{d[3]}{d[4]}{d[5]}-{line}",
                ]
            )
        if country == "GB":
            tail = f"0{d[0]}{d[1]}{d[2]}"
            return rng.choice([f"+44 20 7946 {tail}", f"020 7946 {tail}"])
        formats = {
            "DE": f"+49 30 {d[0]}{d[1]}{d[2]}{d[3]}{d[4]}{d[5]}",
            "FR": f"+33 1 {d[0]}{d[1]} {d[2]}{d[3]} {d[4]}{d[5]} {d[6]}{d[7]}",
            "IN": f"+91 98{d[0]}{d[1]}{d[2]} {d[3]}{d[4]}{d[5]}{d[6]}{d[7]}",
            "BR": f"+55 11 9{d[0]}{d[1]}{d[2]}{d[3]}-{d[4]}{d[5]}{d[6]}{d[7]}",
            "AU": f"+61 2 {d[0]}{d[1]}{d[2]}{d[3]} {d[4]}{d[5]}{d[6]}{d[7]}",
            "ES": f"+34 91{d[0]} {d[1]}{d[2]}{d[3]} {d[4]}{d[5]}{d[6]}",
            "NL": f"+31 20 {d[0]}{d[1]}{d[2]} {d[3]}{d[4]}{d[5]}{d[6]}",
        }
        return formats[country]

    def assign_traits(self, people: list[_Person]) -> None:
        rng = self.rng
        active = [p for p in people if p.archetype not in ("never", "future")]
        for p in active:
            if rng.random() < 0.10:
                p.traits.add("aws_quiz" if rng.random() < 0.35 else "quiz")
            paid = p.plan in ("pro", "premium")
            recent = p.active_until is not None and p.active_until > self.anchor - 300 * DAY
            if recent and rng.random() < (0.12 if paid else 0.02):
                p.traits.add("high_ltv")
        casual = [p for p in active if p.archetype == "casual" and p.active_until == self.anchor]
        veterans = [
            p
            for p in casual
            if not p.traits & {"quiz", "aws_quiz"} and p.created_at < self.anchor - 365 * DAY
        ]
        # Persons with 100+ quizzes, where `last: 100` and the whole history disagree.
        for i, p in enumerate(rng.sample(veterans, min(4, len(veterans)))):
            p.traits.add("grind_aws_late" if i % 2 == 0 else "grind_aws_early")
        # Paid persons whose heavy usage lies only after the anchor: not power users at as_of.
        paid_casual = [p for p in casual if p.plan in ("pro", "premium") and not p.traits]
        for p in rng.sample(paid_casual, min(3, len(paid_casual))):
            p.traits.add("future_power")

    # -- events ----------------------------------------------------------------------------
    def add(
        self,
        ts: datetime,
        p: _Person,
        event: str,
        *,
        amount: float | None = None,
        currency: str | None = None,
        fmt: str | None = None,
        certification: str | None = None,
        score: int | None = None,
        page: str | None = None,
        campaign: str | None = None,
    ) -> None:
        props = (amount, currency, fmt, certification, score, page, campaign)
        self.events.append(_Event(ts.replace(microsecond=0), p.person_id, event, *props))

    def render(self, ts: datetime, p: _Person, fmt: str | None = None) -> None:
        self.add(ts, p, "video_rendered", fmt=fmt or self.pick(FORMATS))

    def session(self, p: _Person, start: datetime, hi: datetime, renders: float) -> int:
        """A login, some renders and exports, maybe a pricing view or a small purchase.

        Returns the number of ``video_rendered`` events added.
        """
        rng = self.rng
        self.add(start, p, "login")
        t = start
        n_renders = int(renders) + (1 if rng.random() < renders - int(renders) else 0)
        for i in range(n_renders):
            t += timedelta(seconds=rng.randint(60, 600))
            if t > hi:
                return i
            fmt = self.pick(FORMATS)
            self.render(t, p, fmt)
            if rng.random() < 0.3 and t + 30 * MINUTE <= hi:
                self.add(t + timedelta(seconds=rng.randint(5, 1800)), p, "export", fmt=fmt)
        pricing = 0.04 if p.plan in ("free", "trial") else 0.01
        if rng.random() < pricing and t + 40 * MINUTE <= hi:
            page = "pricing" if rng.random() < 0.8 else "pricing_enterprise"
            self.add(t + timedelta(seconds=rng.randint(30, 2400)), p, "pricing_viewed", page=page)
        if rng.random() < (0.012 if p.plan in ("pro", "premium") else 0.003) and t + HOUR <= hi:
            amount = rng.choice([9.0, 19.0, 29.0, 49.0])
            self.purchase(p, t + timedelta(seconds=rng.randint(60, 3600)), amount)
        return n_renders

    def purchase(self, p: _Person, ts: datetime, amount: float) -> None:
        self.add(ts, p, "purchase", amount=amount, currency=CURRENCY.get(p.country, "USD"))

    def activity(
        self, p: _Person, lo: datetime, hi: datetime, prob: float, renders: float
    ) -> tuple[list[datetime], int]:
        """Sessions on each day in [lo, hi] with probability ``prob``, 06:00-22:00 UTC.

        Keeping sessions inside daytime UTC keeps every session on one calendar day.
        Returns the session starts and the number of renders.
        """
        starts: list[datetime] = []
        n_renders = 0
        day = lo.replace(hour=0, minute=0, second=0, microsecond=0)
        while True:
            # Jump straight to the next active day: the days skipped are geometric(prob),
            # the same distribution as a coin flip per day, at a fraction of the cost.
            day += int(math.log(1.0 - self.rng.random()) / math.log(1.0 - prob)) * DAY
            if day > hi:
                return starts, n_renders
            start = self.between(max(day + 6 * HOUR, lo), min(day + 22 * HOUR, hi))
            if lo <= start <= hi:
                n_renders += self.session(p, start, hi, renders)
                starts.append(start)
            day += DAY

    def person_events(self, p: _Person) -> None:
        if p.active_until is None:
            return
        rng, anchor = self.rng, self.anchor
        lo, hi = p.created_at, p.active_until
        self.add(lo, p, "signup")
        a = p.archetype
        if a == "power":
            cut = anchor - 30 * DAY
            self.activity(p, lo, cut, rng.uniform(0.04, 0.15), 1.0)
            starts, renders = self.activity(
                p, cut, hi, rng.uniform(0.6, 0.95), rng.uniform(1.5, 3.0)
            )
            for _ in range(max(0, 12 - renders)):  # at least 12 renders in the last 30 days
                start = rng.choice(starts) if starts else self.days_ago(1, 29)
                self.render(start + timedelta(seconds=rng.randint(700, 3000)), p)
        elif a == "streaker":
            length = rng.randint(7, 40)
            first_day = (anchor - length * DAY).replace(hour=0, minute=0, second=0)
            self.activity(p, lo, min(hi, first_day - 2 * DAY), rng.uniform(0.02, 0.1), 0.7)
            for k in range(length):
                day = first_day + k * DAY
                self.session(p, self.between(day + 6 * HOUR, day + 22 * HOUR), hi, 0.5)
        elif a in ("new", "onboarding", "trial"):
            self.activity(p, lo + 10 * MINUTE, hi, rng.uniform(0.2, 0.5), 0.8)
            self.onboarding_purchase(p)
            if a == "trial" and rng.random() < 0.6:
                for _ in range(rng.randint(1, 4)):
                    t = self.between(max(lo, anchor - 14 * DAY), anchor - HOUR)
                    page = "pricing" if rng.random() < 0.8 else "pricing_enterprise"
                    self.add(t, p, "pricing_viewed", page=page)
        elif a == "future":
            for _ in range(rng.randint(1, 5)):
                self.session(p, self.between(lo + HOUR, hi), hi + HOUR, 1.0)
        else:  # casual, churning, churned
            prob = rng.uniform(0.08, 0.25) if a == "churning" else rng.uniform(0.01, 0.07)
            self.activity(p, lo + 10 * MINUTE, hi, prob, 0.8)
        self.quizzes(p)
        if "high_ltv" in p.traits:
            self.big_spender(p)
        if "future_power" in p.traits:
            for _ in range(rng.randint(12, 18)):
                self.render(self.between(anchor + HOUR, anchor + 3 * DAY), p)
        elif hi == anchor and rng.random() < 0.02:  # a little activity after the anchor
            for _ in range(rng.randint(1, 3)):
                t = self.between(anchor + HOUR, anchor + 5 * DAY)
                self.session(p, t, anchor + 6 * DAY, 1.0)

    def onboarding_purchase(self, p: _Person) -> None:
        rng = self.rng
        room = (self.anchor - HOUR - p.created_at) / DAY
        if (p.archetype == "onboarding" and rng.random() < 0.75) or (
            p.archetype == "new" and rng.random() < 0.2
        ):
            gap = rng.uniform(1 / 12, min(6.5, room))
        elif p.archetype == "onboarding" and room > 8.5:
            gap = rng.uniform(8, min(20, room))  # bought, but too late for max_gap: 7d
        else:
            return
        self.purchase(p, p.created_at + gap * DAY, rng.choice([29.0, 49.0, 79.0, 99.0]))

    def quizzes(self, p: _Person) -> None:
        rng = self.rng
        lo, hi = p.created_at + HOUR, p.active_until or self.anchor
        grind = next((t for t in p.traits if t.startswith("grind")), None)
        if grind == "grind_aws_late":  # 90 gcp then 70 aws: last 100 are 70% aws, all 44%
            certs = ["gcp"] * 90 + ["aws"] * 70
        elif grind == "grind_aws_early":  # 140 aws then 60 gcp: last 100 are 40% aws, all 70%
            certs = ["aws"] * 140 + ["gcp"] * 60
        elif "aws_quiz" in p.traits:
            n = rng.randint(3, 25)
            n_aws = rng.randint(math.ceil(0.65 * n), n)
            certs = ["aws"] * n_aws + rng.choices(CERTIFICATIONS[1:], k=n - n_aws)
            rng.shuffle(certs)
        elif "quiz" in p.traits:
            certs = rng.choices(CERTIFICATIONS, k=rng.randint(1, 20))
        else:
            return
        times = sorted(self.between(lo, hi) for _ in certs)
        for ts, cert in zip(times, certs, strict=True):
            score = min(100, max(0, round(rng.gauss(72, 15))))
            self.add(ts, p, "quiz_completed", certification=cert, score=score)

    def big_spender(self, p: _Person) -> None:
        """Purchases summing to at least 500 within the last 365 days of the anchor."""
        hi = p.active_until or self.anchor
        lo = max(p.created_at + HOUR, self.anchor - 360 * DAY)
        total = 0.0
        for _ in range(self.rng.randint(4, 12)):
            amount = self.rng.choice([49.0, 79.0, 99.0, 149.0, 199.0, 299.0])
            self.purchase(p, self.between(lo, hi), amount)
            total += amount
        if total < 500 and self.rng.random() < 0.85:  # the rest are near misses
            self.purchase(p, self.between(lo, hi), 299.0)

    def campaigns(self, people: Sequence[_Person]) -> None:
        """Biweekly newsletters (every 8th one a promo) to opted-in persons while active."""
        rng = self.rng
        sends = [self.anchor - 728 * DAY + 10 * HOUR + k * 14 * DAY for k in range(52)]
        names = [
            f"{'promo' if k % 8 == 7 else 'newsletter'}_{s:%Y_%m_%d}" for k, s in enumerate(sends)
        ]
        for p in people:
            if p.opt_in is not True or p.active_until is None:
                continue
            open_rate = rng.uniform(0.1, 0.5)
            for sent, name in zip(sends, names, strict=True):
                if not p.created_at < sent < p.active_until or rng.random() >= open_rate:
                    continue
                opened = self.between(sent, min(sent + 3 * DAY, p.active_until))
                self.add(opened, p, "email_opened", campaign=name)
                if rng.random() < 0.35 and opened + HOUR <= p.active_until:
                    self.add(
                        opened + timedelta(seconds=rng.randint(5, 3600)),
                        p,
                        "email_clicked",
                        campaign=name,
                    )

    # -- subscriptions ---------------------------------------------------------------------
    def subscriptions(self, p: _Person) -> list[tuple[str, str, int, datetime]]:
        """(status, plan, mrr, updated_at) rows; trialing -> active -> maybe past_due/canceled."""
        rng, anchor = self.rng, self.anchor
        if p.archetype in ("never", "future"):
            return []
        if p.plan == "trial":
            return [
                (
                    "trialing",
                    rng.choice(["pro", "premium"]),
                    0,
                    p.created_at + rng.uniform(0, 1) * DAY,
                )
            ]
        ex_paid = p.plan == "free" and p.archetype in ("churning", "churned")
        if not (p.plan in ("pro", "premium") or (ex_paid and rng.random() < 0.35)):
            return []
        plan = p.plan if p.plan != "free" else rng.choice(["pro", "premium"])
        if plan == "premium" and (p.company_size or 0) >= 50 and rng.random() < 0.5:
            plan = "team"
        until = p.active_until or anchor
        span = (until - p.created_at) / DAY
        start = p.created_at + rng.uniform(0, min(1.0, span * 0.1)) * DAY
        active = start + min(14.0, max(span * 0.5, 0.2)) * DAY
        if p.archetype in ("onboarding", "new"):
            active = start + rng.uniform(0.5, min(7.0, max(0.6, span - 0.1))) * DAY
        rows = [("trialing", plan, 0, start), ("active", plan, SUB_MRR[plan], active)]
        if plan == "premium" and rng.random() < 0.15:  # upgraded from pro
            rows = [
                ("trialing", "pro", 0, start),
                ("active", "pro", SUB_MRR["pro"], active),
                ("active", "premium", SUB_MRR["premium"], self.between(active, until)),
            ]
        last = rows[-1][3]
        if ex_paid:
            rows.append(("canceled", rows[-1][1], 0, self.between(until, until + 20 * DAY)))
        elif rng.random() < 0.08:
            due = self.between(last, until)
            rows.append(("past_due", rows[-1][1], rows[-1][2], due))
            if rng.random() < 0.6:
                rows.append(("active", rows[-1][1], rows[-1][2], self.between(due, until)))
        elif rng.random() < 0.02:  # cancels just after the anchor: not yet at as_of
            rows.append(("canceled", rows[-1][1], 0, self.between(anchor + HOUR, anchor + 9 * DAY)))
        return rows


def _write_csv(path: pathlib.Path, header: list[str], rows: Sequence[Sequence[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _events_table(events: list[_Event]) -> pa.Table:
    events.sort(key=lambda e: (e.timestamp, e.person_id, e.event))
    columns = {name: [getattr(e, name) for e in events] for name in EVENTS_SCHEMA.names}
    return pa.Table.from_pydict(columns, schema=EVENTS_SCHEMA)


def _lists(gen: _Generator, people: list[_Person]) -> tuple[list[str], list[str]]:
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

    Returns:
        Paths keyed ``persons``, ``events``, ``subscriptions``, ``vip`` and ``suppressed``.

    >>> paths = generate(pathlib.Path("out"), anchor=datetime(2026, 11, 17))  # doctest: +SKIP
    """
    if anchor is None:
        anchor = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    elif anchor.tzinfo is None:
        anchor = anchor.replace(tzinfo=UTC)
    anchor = anchor.astimezone(UTC)
    gen = _Generator(random.Random(seed), anchor)
    people = gen.persons(n_persons)
    for p in people:
        gen.person_events(p)
    gen.campaigns(people)
    subs: list[tuple[str, str, str, int, str]] = []
    for p in people:
        for status, plan, mrr, ts in gen.subscriptions(p):
            subs.append((p.person_id, status, plan, mrr, _iso(ts)))
    vip, suppressed = _lists(gen, people)

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


if __name__ == "__main__":
    raise SystemExit(main())
