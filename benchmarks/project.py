"""The benchmark project: segctl.yaml plus 27 mixed segment files over the generated data.

The segments cover every construct the benchmark compares (counts in windows, sums, avg,
first/last seen, distinct_days, where filters, properties, subscriptions, segment references,
exclude, not, a streak, a share over the last N events, calendar windows, active_periods and
at_least). ``benchmarks/handwritten.py``
implements exactly these definitions by hand; keep the two in step.
"""

from __future__ import annotations

from pathlib import Path

AS_OF = "2026-11-17T00:00:00Z"

SEGMENTS: dict[str, str] = {
    # ---- activity windows ----------------------------------------------------------------
    "active_7d": """
description: Any event in the last 7 days
rule: {event: "*", within: 7d, count: {gte: 1}}
""",
    "engaged_30d": """
description: Active on 10 or more distinct days of the last 30
rule: {event: "*", within: 30d, distinct_days: {gte: 10}}
""",
    "churn_risk": """
description: Silent for 30 days after being active in the 60 days before
rule:
  all:
    - {event: "*", within: 30d, count: {eq: 0}}
    - {event: "*", between: [90d, 30d], count: {gte: 1}}
""",
    "churned": """
description: Last seen more than 90 days ago
rule: {event: "*", last_seen: {older_than: 90d}}
""",
    "lapsing": """
description: Last seen between 7 and 30 days ago
rule: {event: "*", last_seen: {older_than: 7d, within: 30d}}
""",
    "new_active": """
description: First event ever within the last 30 days
rule: {event: "*", first_seen: {within: 30d}}
""",
    "never_active": """
description: No event at all, ever (includes persons without events)
rule: {event: "*", count: {eq: 0}}
""",
    # ---- product usage -------------------------------------------------------------------
    "heavy_renderers": """
description: 10+ renders in 30 days on a paid plan
rule:
  all:
    - {event: video_rendered, within: 30d, count: {gte: 10}}
    - {property: plan, in: [pro, premium]}
""",
    "casual_renderers": """
description: Between 1 and 9 renders in the last 30 days
rule: {event: video_rendered, within: 30d, count: {gte: 1, lt: 10}}
""",
    "mp4_creators": """
description: 3+ mp4/mov renders or exports in the last 30 days
rule:
  event: [video_rendered, export]
  where: {format: {in: [mp4, mov]}}
  within: 30d
  count: {gte: 3}
""",
    "gif_exporters": """
description: 2+ gif exports in the last 90 days
rule:
  event: export
  where: {format: {eq: gif}}
  within: 90d
  count: {gte: 2}
""",
    "quiz_regulars": """
description: Quizzes on 5+ distinct days of the last 90
rule: {event: quiz_completed, within: 90d, distinct_days: {gte: 5}}
""",
    "aws_focus": """
description: At least 60% of the last 100 quizzes were AWS
rule:
  event: quiz_completed
  last: 100
  share: {where: {certification: {eq: aws}}, gte: 0.6}
""",
    "login_streak_7d": """
description: Logged in on 7+ consecutive days, up to today or yesterday
rule: {event: login, streak: {gte: 7}}
""",
    "email_engaged": """
description: Opened 3+ emails and clicked one in the last 30 days
rule:
  all:
    - {event: email_clicked, within: 30d, count: {gte: 1}}
    - {event: email_opened, within: 30d, count: {gte: 3}}
""",
    # ---- money ---------------------------------------------------------------------------
    "high_ltv": """
description: Lifetime purchases of 500 or more
rule: {event: purchase, sum: {of: amount, gte: 500}}
""",
    "big_spenders_365d": """
description: 1000 or more spent in the last year
rule: {event: purchase, within: 365d, sum: {of: amount, gte: 1000}}
""",
    "repeat_buyers_90d": """
description: Two or more purchases in the last 90 days
rule: {event: purchase, within: 90d, count: {gte: 2}}
""",
    "premium_basket": """
description: Average purchase of 150 or more (all time)
rule: {event: purchase, avg: {of: amount, gte: 150}}
""",
    "paying": """
description: Current subscription active at 29/month or more
rule:
  subscription:
    status: {eq: active}
    mrr: {gte: 2900}
""",
    "trialing": """
description: Current subscription is a trial
rule:
  subscription:
    status: {in: [trialing]}
""",
    # ---- person properties ---------------------------------------------------------------
    "new_users": """
description: Created in the last 7 days
rule: {property: created_at, within: 7d}
""",
    "reachable_na": """
description: North America, opted in, with an email
rule:
  all:
    - {property: country, in: [US, CA]}
    - {property: marketing_opt_in, eq: true}
    - {property: email, is_set: true}
""",
    # ---- SPEC 2.4b: calendar windows, active_periods, at_least ---------------------------
    "weekly_regulars": """
description: Logged in during 3 of the last 4 calendar weeks (weeks ending yesterday)
rule:
  event: login
  calendar: true
  active_periods: {every: 7d, of_last: 4, offset: 1d, gte: 3}
""",
    "buying_signals": """
description: Two of three buying signals, on calendar days
rule:
  at_least: 2
  of:
    - {event: purchase, within: 7d, calendar: true, count: {gte: 1}}
    - {property: plan, in: [pro, premium]}
    - {event: pricing_viewed, between: [30d, 7d], calendar: true, count: {gte: 1}}
""",
    # ---- references, exclude, not --------------------------------------------------------
    "trial_pricing": """
description: Trial plan and viewed pricing in the last 14 days, unless already paying
rule:
  all:
    - {property: plan, eq: trial}
    - {event: pricing_viewed, within: 14d, count: {gte: 1}}
exclude:
  - segment: paying
""",
    "vip": """
description: High LTV, or paying heavy renderers
rule:
  any:
    - segment: high_ltv
    - all:
        - segment: paying
        - segment: heavy_renderers
""",
    "at_risk_payers": """
description: Paying but at risk of churning
rule:
  all:
    - segment: paying
    - segment: churn_risk
""",
    "dormant_free": """
description: Free plan and nothing in the last 90 days
rule:
  all:
    - {property: plan, eq: free}
    - not: {event: "*", within: 90d, count: {gte: 1}}
exclude:
  - {property: email, is_set: false}
""",
}

CONFIG = """\
# Generated by benchmarks/evaluate.py: the benchmark project over the generated data.
data:
  events: ../events.parquet
  persons: ../persons.parquet
  subscriptions: ../subscriptions.parquet
segments: segments/
state: .segctl/
timezone: UTC
"""


def write_project(data_dir: Path) -> Path:
    """Write (or refresh) ``data_dir/project`` and return it."""
    root = data_dir / "project"
    segments = root / "segments"
    segments.mkdir(parents=True, exist_ok=True)
    wanted = {f"{name}.yaml" for name in SEGMENTS}
    for stale in segments.glob("*.yaml"):
        if stale.name not in wanted:
            stale.unlink()
    (root / "segctl.yaml").write_text(CONFIG)
    for name, body in SEGMENTS.items():
        (segments / f"{name}.yaml").write_text(f"name: {name}\n{body.lstrip()}")
    return root
