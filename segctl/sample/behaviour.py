"""The sample's events and subscriptions, planted per archetype around the anchor."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyarrow as pa

from segctl.sample.people import CURRENCY, DAY, HOUR, MINUTE, People, Person

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

SUBSCRIPTION_COLUMNS = ["person_id", "status", "plan", "mrr", "updated_at"]

FORMATS = {"mp4": 55, "mov": 20, "gif": 15, "webm": 10}
CERTIFICATIONS = ["aws", "gcp", "azure", "k8s"]
SUB_MRR = {"pro": 2900, "premium": 7900, "team": 19900}


@dataclass(frozen=True, slots=True)
class Event:
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


class Generator(People):
    """Builds persons (:class:`People`), then their events and subscriptions."""

    def __init__(self, rng: random.Random, anchor: datetime) -> None:
        super().__init__(rng, anchor)
        self.events: list[Event] = []

    def add(
        self,
        ts: datetime,
        p: Person,
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
        self.events.append(Event(ts.replace(microsecond=0), p.person_id, event, *props))

    def render(self, ts: datetime, p: Person, fmt: str | None = None) -> None:
        self.add(ts, p, "video_rendered", fmt=fmt or self.pick(FORMATS))

    def session(self, p: Person, start: datetime, hi: datetime, renders: float) -> int:
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

    def purchase(self, p: Person, ts: datetime, amount: float) -> None:
        self.add(ts, p, "purchase", amount=amount, currency=CURRENCY.get(p.country, "USD"))

    def activity(
        self, p: Person, lo: datetime, hi: datetime, prob: float, renders: float
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

    def person_events(self, p: Person) -> None:
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

    def onboarding_purchase(self, p: Person) -> None:
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

    def quizzes(self, p: Person) -> None:
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

    def big_spender(self, p: Person) -> None:
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

    def campaigns(self, people: Sequence[Person]) -> None:
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
    def subscriptions(self, p: Person) -> list[tuple[str, str, int, datetime]]:
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
