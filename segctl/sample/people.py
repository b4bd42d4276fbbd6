"""The sample's persons: archetypes, plans, names, emails, phones and traits."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)

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


@dataclass(slots=True)
class Person:
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


class People:
    """Holds the random source and the anchor; builds persons (their identity, plan and traits)."""

    def __init__(self, rng: random.Random, anchor: datetime) -> None:
        self.rng = rng
        self.anchor = anchor

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
    def persons(self, n_persons: int) -> list[Person]:
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

    def person(self, person_id: str, archetype: str) -> Person:
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
        p = Person(
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

    def identity(self, p: Person) -> None:
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

    def assign_traits(self, people: list[Person]) -> None:
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
