"""The benchmark segments (benchmarks/project.py) written by hand, the way an expert would:

- ``duckdb_sql``: one DuckDB query, one scan of the events: a single GROUP BY person_id with a
  FILTERed aggregate per measure, the last-100 quizzes as a top-N aggregate (``max_by(x, ts,
  100)``) instead of a window over all events, the 7-day login streak as a bitmask of the login
  days among the last 8 (bit k = k days before as_of's day), the current subscription as
  ``max_by(.., updated_at)``;
- ``polars_query``: the same plan as a polars lazy query.

Both return ``person_id`` plus one boolean column per segment, for the persons segctl evaluates
(created_at NULL or <= as_of), with segctl's NULL semantics (SPEC 2.2): a missing measure makes
a comparator FALSE, counts and sums of no events are 0.

Data assumptions the shortcuts rely on (true for benchmarks/generate.py data, checked by the
membership comparison): event timestamps are unique per person (so "last 100" has no ties),
quiz_completed events always carry a certification, subscriptions' updated_at are unique per
person, and the project timezone is UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.project import SEGMENTS

if TYPE_CHECKING:
    import polars as pl

NAMES = sorted(SEGMENTS)


def parse_as_of(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def duckdb_sql(data_dir: Path, as_of: str) -> str:
    moment = parse_as_of(as_of)

    def ago(days: int) -> str:
        return f"TIMESTAMPTZ '{(moment - timedelta(days=days)).isoformat()}'"

    a, today = ago(0), moment.date()

    def midnight(days: int) -> str:
        return f"TIMESTAMPTZ '{today - timedelta(days=days)} 00:00:00+00'"

    weeks = ",\n        ".join(
        f"count(*) FILTER (event = 'login' AND timestamp >= {midnight(7 * (i + 1))} "
        f"AND timestamp < {midnight(7 * i)}) AS login_week_{i}"
        for i in range(4)
    )
    files = {
        t: str(data_dir / f"{t}.parquet").replace("'", "''")
        for t in ("events", "persons", "subscriptions")
    }
    return f"""
WITH ev AS (
    SELECT
        person_id,
        count(*)                                                             AS n_all,
        count(*) FILTER (timestamp > {ago(7)})                               AS n_7d,
        count(*) FILTER (timestamp > {ago(30)})                              AS n_30d,
        count(*) FILTER (timestamp > {ago(90)})                              AS n_90d,
        count(*) FILTER (timestamp > {ago(90)} AND timestamp <= {ago(30)})   AS n_90_30,
        count(DISTINCT timestamp::DATE) FILTER (timestamp > {ago(30)})       AS days_30d,
        min(timestamp)                                                       AS first_seen,
        max(timestamp)                                                       AS last_seen,
        count(*) FILTER (event = 'video_rendered' AND timestamp > {ago(30)}) AS renders_30d,
        count(*) FILTER (event IN ('video_rendered', 'export') AND format IN ('mp4', 'mov')
                         AND timestamp > {ago(30)})                          AS mp4_30d,
        count(*) FILTER (event = 'export' AND format = 'gif'
                         AND timestamp > {ago(90)})                          AS gif_90d,
        count(DISTINCT timestamp::DATE)
            FILTER (event = 'quiz_completed' AND timestamp > {ago(90)})      AS quiz_days_90d,
        max_by(certification, timestamp, 100)
            FILTER (event = 'quiz_completed')                                AS last_quizzes,
        bit_or(CASE WHEN event = 'login'
                     AND timestamp >= TIMESTAMPTZ '{today - timedelta(days=7)} 00:00:00+00'
                    THEN 1 << date_diff('day', timestamp::DATE, DATE '{today}') END)
                                                                             AS login_days,
        count(*) FILTER (event = 'email_clicked' AND timestamp > {ago(30)})  AS clicks_30d,
        count(*) FILTER (event = 'email_opened' AND timestamp > {ago(30)})   AS opens_30d,
        sum(amount) FILTER (event = 'purchase')                              AS ltv,
        sum(amount) FILTER (event = 'purchase' AND timestamp > {ago(365)})   AS spend_365d,
        count(*) FILTER (event = 'purchase' AND timestamp > {ago(90)})       AS purchases_90d,
        avg(amount) FILTER (event = 'purchase')                              AS avg_basket,
        count(*) FILTER (event = 'pricing_viewed' AND timestamp > {ago(14)}) AS pricing_14d,
        -- calendar weeks ending yesterday (UTC days): login in each of the last 4
        {weeks},
        count(*) FILTER (event = 'purchase' AND timestamp >= {midnight(7)}) AS purchase_cal_7d,
        count(*) FILTER (event = 'pricing_viewed' AND timestamp >= {midnight(30)}
                         AND timestamp < {midnight(7)})                     AS pricing_cal_30_7
    FROM read_parquet('{files["events"]}')
    WHERE timestamp <= {a}
    GROUP BY person_id
),
sub AS (
    SELECT person_id, max_by({{'status': status, 'mrr': mrr}}, updated_at) AS cur
    FROM read_parquet('{files["subscriptions"]}')
    WHERE updated_at <= {a}
    GROUP BY person_id
),
seg AS (
    SELECT
        p.person_id,
        coalesce(n_7d, 0) >= 1                                            AS active_7d,
        coalesce(days_30d, 0) >= 10                                       AS engaged_30d,
        coalesce(n_30d, 0) = 0 AND coalesce(n_90_30, 0) >= 1              AS churn_risk,
        coalesce(last_seen <= {ago(90)}, false)                           AS churned,
        coalesce(last_seen <= {ago(7)} AND last_seen > {ago(30)}, false)  AS lapsing,
        coalesce(first_seen > {ago(30)}, false)                           AS new_active,
        coalesce(n_all, 0) = 0                                            AS never_active,
        coalesce(renders_30d, 0) >= 10
            AND coalesce(p.plan IN ('pro', 'premium'), false)             AS heavy_renderers,
        coalesce(renders_30d, 0) BETWEEN 1 AND 9                          AS casual_renderers,
        coalesce(mp4_30d, 0) >= 3                                         AS mp4_creators,
        coalesce(gif_90d, 0) >= 2                                         AS gif_exporters,
        coalesce(quiz_days_90d, 0) >= 5                                   AS quiz_regulars,
        coalesce(len(list_filter(last_quizzes, lambda c: c = 'aws'))
                 / len(last_quizzes) >= 0.6, false)                       AS aws_focus,
        coalesce((login_days & 127) = 127 OR (login_days & 255) = 254, false)
                                                                          AS login_streak_7d,
        coalesce(clicks_30d, 0) >= 1 AND coalesce(opens_30d, 0) >= 3      AS email_engaged,
        coalesce(ltv, 0) >= 500                                           AS high_ltv,
        coalesce(spend_365d, 0) >= 1000                                   AS big_spenders_365d,
        coalesce(purchases_90d, 0) >= 2                                   AS repeat_buyers_90d,
        coalesce(avg_basket >= 150, false)                                AS premium_basket,
        coalesce(cur.status = 'active' AND cur.mrr >= 2900, false)        AS paying,
        coalesce(cur.status = 'trialing', false)                          AS trialing,
        coalesce(p.created_at > {ago(7)}, false)                          AS new_users,
        coalesce(p.country IN ('US', 'CA'), false)
            AND coalesce(p.marketing_opt_in, false)
            AND coalesce(p.email <> '', false)                            AS reachable_na,
        coalesce(p.plan = 'trial', false) AND coalesce(pricing_14d, 0) >= 1
                                                                          AS trial_pricing_rule,
        coalesce(p.plan = 'free', false) AND coalesce(n_90d, 0) = 0
            AND coalesce(p.email <> '', false)                            AS dormant_free,
        (coalesce(login_week_0, 0) >= 1)::INT + (coalesce(login_week_1, 0) >= 1)::INT
            + (coalesce(login_week_2, 0) >= 1)::INT + (coalesce(login_week_3, 0) >= 1)::INT
            >= 3                                                          AS weekly_regulars,
        (coalesce(purchase_cal_7d, 0) >= 1)::INT
            + coalesce(p.plan IN ('pro', 'premium'), false)::INT
            + (coalesce(pricing_cal_30_7, 0) >= 1)::INT >= 2              AS buying_signals
    FROM read_parquet('{files["persons"]}') AS p
    LEFT JOIN ev USING (person_id)
    LEFT JOIN sub USING (person_id)
    WHERE p.created_at IS NULL OR p.created_at <= {a}
)
SELECT
    * EXCLUDE (trial_pricing_rule),
    trial_pricing_rule AND NOT paying          AS trial_pricing,
    high_ltv OR (paying AND heavy_renderers)   AS vip,
    paying AND churn_risk                      AS at_risk_payers
FROM seg
"""


def polars_query(data_dir: Path, as_of: str) -> pl.LazyFrame:
    import polars as pl

    moment = parse_as_of(as_of)

    def ago(days: int) -> pl.Expr:
        return pl.lit(moment - timedelta(days=days), pl.Datetime("us", "UTC"))

    a = ago(0)
    today = moment.date()
    ts, event = pl.col("timestamp"), pl.col("event")
    day = ts.dt.date()
    is_quiz = event == "quiz_completed"
    is_purchase = event == "purchase"
    login_recent = (event == "login") & (
        ts >= pl.lit(datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(days=7))
    )
    offset = (pl.lit(today) - day).dt.total_days()

    def midnight(days: int) -> pl.Expr:
        start = datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(days=days)
        return pl.lit(start, pl.Datetime("us", "UTC"))

    is_login = event == "login"
    weeks = [
        (is_login & (ts >= midnight(7 * (i + 1))) & (ts < midnight(7 * i)))
        .sum()
        .alias(f"login_week_{i}")
        for i in range(4)
    ]

    def count(condition: pl.Expr) -> pl.Expr:
        return condition.sum()

    ev = (
        pl.scan_parquet(data_dir / "events.parquet")
        .filter(ts <= a)
        .group_by("person_id")
        .agg(
            pl.len().alias("n_all"),
            count(ts > ago(7)).alias("n_7d"),
            count(ts > ago(30)).alias("n_30d"),
            count(ts > ago(90)).alias("n_90d"),
            count((ts > ago(90)) & (ts <= ago(30))).alias("n_90_30"),
            day.filter(ts > ago(30)).n_unique().alias("days_30d"),
            ts.min().alias("first_seen"),
            ts.max().alias("last_seen"),
            count((event == "video_rendered") & (ts > ago(30))).alias("renders_30d"),
            count(
                event.is_in(["video_rendered", "export"])
                & pl.col("format").is_in(["mp4", "mov"]).fill_null(False)
                & (ts > ago(30))
            ).alias("mp4_30d"),
            count(
                (event == "export") & (pl.col("format") == "gif").fill_null(False) & (ts > ago(90))
            ).alias("gif_90d"),
            day.filter(is_quiz & (ts > ago(90))).n_unique().alias("quiz_days_90d"),
            pl.col("certification")
            .filter(is_quiz)
            .top_k_by(ts.filter(is_quiz), 100)
            .eq("aws")
            .mean()
            .alias("aws_share"),
            pl.lit(2, pl.Int64).pow(offset.filter(login_recent)).bitwise_or().alias("login_days"),
            count((event == "email_clicked") & (ts > ago(30))).alias("clicks_30d"),
            count((event == "email_opened") & (ts > ago(30))).alias("opens_30d"),
            pl.col("amount").filter(is_purchase).sum().alias("ltv"),
            pl.col("amount").filter(is_purchase & (ts > ago(365))).sum().alias("spend_365d"),
            count(is_purchase & (ts > ago(90))).alias("purchases_90d"),
            pl.col("amount").filter(is_purchase).mean().alias("avg_basket"),
            count((event == "pricing_viewed") & (ts > ago(14))).alias("pricing_14d"),
            *weeks,
            count(is_purchase & (ts >= midnight(7))).alias("purchase_cal_7d"),
            count((event == "pricing_viewed") & (ts >= midnight(30)) & (ts < midnight(7))).alias(
                "pricing_cal_30_7"
            ),
        )
    )
    updated = pl.col("updated_at")
    sub = (
        pl.scan_parquet(data_dir / "subscriptions.parquet")
        .filter(updated <= a)
        .group_by("person_id")
        .agg(
            pl.col("status").sort_by(updated).last().alias("status"),
            pl.col("mrr").sort_by(updated).last().alias("mrr"),
        )
    )
    persons = pl.scan_parquet(data_dir / "persons.parquet").filter(
        pl.col("created_at").is_null() | (pl.col("created_at") <= a)
    )

    def zero(name: str) -> pl.Expr:
        return pl.col(name).fill_null(0)

    def no(expr: pl.Expr) -> pl.Expr:
        """A condition that is FALSE where it would be NULL."""
        return expr.fill_null(False)

    plan, mask = pl.col("plan"), pl.col("login_days")
    has_email = no(pl.col("email") != "")
    base = (
        persons.join(ev, on="person_id", how="left")
        .join(sub, on="person_id", how="left")
        .select(
            "person_id",
            (zero("n_7d") >= 1).alias("active_7d"),
            (zero("days_30d") >= 10).alias("engaged_30d"),
            ((zero("n_30d") == 0) & (zero("n_90_30") >= 1)).alias("churn_risk"),
            no(pl.col("last_seen") <= ago(90)).alias("churned"),
            no((pl.col("last_seen") <= ago(7)) & (pl.col("last_seen") > ago(30))).alias("lapsing"),
            no(pl.col("first_seen") > ago(30)).alias("new_active"),
            (zero("n_all") == 0).alias("never_active"),
            ((zero("renders_30d") >= 10) & no(plan.is_in(["pro", "premium"]))).alias(
                "heavy_renderers"
            ),
            zero("renders_30d").is_between(1, 9).alias("casual_renderers"),
            (zero("mp4_30d") >= 3).alias("mp4_creators"),
            (zero("gif_90d") >= 2).alias("gif_exporters"),
            (zero("quiz_days_90d") >= 5).alias("quiz_regulars"),
            no(pl.col("aws_share") >= 0.6).alias("aws_focus"),
            no(((mask & 127) == 127) | ((mask & 255) == 254)).alias("login_streak_7d"),
            ((zero("clicks_30d") >= 1) & (zero("opens_30d") >= 3)).alias("email_engaged"),
            (zero("ltv") >= 500).alias("high_ltv"),
            (zero("spend_365d") >= 1000).alias("big_spenders_365d"),
            (zero("purchases_90d") >= 2).alias("repeat_buyers_90d"),
            no(pl.col("avg_basket") >= 150).alias("premium_basket"),
            no((pl.col("status") == "active") & (pl.col("mrr") >= 2900)).alias("paying"),
            no(pl.col("status") == "trialing").alias("trialing"),
            no(pl.col("created_at") > ago(7)).alias("new_users"),
            (
                no(pl.col("country").is_in(["US", "CA"]))
                & no(pl.col("marketing_opt_in"))
                & has_email
            ).alias("reachable_na"),
            (no(plan == "trial") & (zero("pricing_14d") >= 1)).alias("trial_pricing_rule"),
            (no(plan == "free") & (zero("n_90d") == 0) & has_email).alias("dormant_free"),
            (pl.sum_horizontal(*((zero(f"login_week_{i}") >= 1) for i in range(4))) >= 3).alias(
                "weekly_regulars"
            ),
            (
                (zero("purchase_cal_7d") >= 1).cast(pl.Int32)
                + no(plan.is_in(["pro", "premium"])).cast(pl.Int32)
                + (zero("pricing_cal_30_7") >= 1).cast(pl.Int32)
                >= 2
            ).alias("buying_signals"),
        )
    )
    return base.with_columns(
        (pl.col("trial_pricing_rule") & ~pl.col("paying")).alias("trial_pricing"),
        (pl.col("high_ltv") | (pl.col("paying") & pl.col("heavy_renderers"))).alias("vip"),
        (pl.col("paying") & pl.col("churn_risk")).alias("at_risk_payers"),
    ).drop("trial_pricing_rule")
