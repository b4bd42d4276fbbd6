-- segctl: 17 segment(s) at 2026-11-17T00:00:00Z (person_id and one boolean column per segment), for trino.
-- It reads these tables (segctl's canonical column names; timestamps in UTC):
--   events(person_id, event, timestamp, amount, certification)
--   persons(person_id, plan, created_at)
--   subscriptions(person_id, status, plan, mrr, updated_at)
--   segctl_list_f73d9330f1(key)
--     one row per distinct non-empty value of column 'person_id' of sample_data/lists/vip.csv, as text
-- Create them with:
--   CREATE TABLE "events" ("person_id" VARCHAR, "event" VARCHAR, "timestamp" TIMESTAMP, "amount" DOUBLE, "certification" VARCHAR);
--   CREATE TABLE "persons" ("person_id" VARCHAR, "plan" VARCHAR, "created_at" TIMESTAMP);
--   CREATE TABLE "subscriptions" ("person_id" VARCHAR, "status" VARCHAR, "plan" VARCHAR, "mrr" DOUBLE, "updated_at" TIMESTAMP);
--   CREATE TABLE "segctl_list_f73d9330f1" ("key" VARCHAR);
WITH "persons_base" AS (
  SELECT
    "person_id",
    "created_at",
    "plan"
  FROM "persons"
  WHERE
    "created_at" IS NULL OR "created_at" <= CAST('2026-11-17 00:00:00' AS TIMESTAMP)
), "current_subscription" AS (
  SELECT
    "person_id",
    "status",
    "mrr"
  FROM (
    SELECT
      "person_id",
      "status",
      "mrr",
      "updated_at",
      ROW_NUMBER() OVER (PARTITION BY "person_id" ORDER BY "updated_at" DESC, "mrr", "plan", "status") AS "rn"
    FROM "subscriptions"
    WHERE
      "updated_at" <= CAST('2026-11-17 00:00:00' AS TIMESTAMP)
  ) AS s
  WHERE
    "rn" = 1
), "scoped_events" AS (
  SELECT
    "person_id",
    "event",
    "timestamp",
    "certification",
    "amount",
    CAST("timestamp" AS DATE) AS "day",
    CASE
      WHEN "event" = 'quiz_completed'
      THEN ROW_NUMBER() OVER (
        PARTITION BY "person_id", "event" = 'quiz_completed'
        ORDER BY "timestamp" DESC, "event" DESC, CAST(CAST(COALESCE((
          "certification" = 'aws'
        ), FALSE) AS INTEGER) AS DOUBLE) DESC NULLS FIRST, "certification", "amount"
      )
    END AS "r__0"
  FROM "events"
  WHERE
    "timestamp" <= CAST('2026-11-17 00:00:00' AS TIMESTAMP)
), "event_measures" AS (
  SELECT
    "person_id",
    COUNT(*) FILTER(WHERE
      "timestamp" > CAST('2026-11-10 00:00:00' AS TIMESTAMP)) AS "m__0",
    CAST(COUNT(*) FILTER(WHERE
      (
        "event" = 'quiz_completed' AND "r__0" <= 100
      )
      AND COALESCE((
        "certification" = 'aws'
      ), FALSE)) AS DOUBLE) / NULLIF(COUNT(*) FILTER(WHERE
      "event" = 'quiz_completed' AND "r__0" <= 100), 0) AS "m__1",
    COUNT(*) FILTER(WHERE
      "event" = 'video_rendered'
      AND "timestamp" > CAST('2026-10-18 00:00:00' AS TIMESTAMP)) AS "m__2",
    COUNT(*) FILTER(WHERE
      "timestamp" > CAST('2026-10-18 00:00:00' AS TIMESTAMP)) AS "m__3",
    COUNT(*) FILTER(WHERE
      "timestamp" > CAST('2026-08-19 00:00:00' AS TIMESTAMP)
      AND "timestamp" <= CAST('2026-10-18 00:00:00' AS TIMESTAMP)) AS "m__4",
    MAX("timestamp") AS "m__5",
    COUNT(DISTINCT "day") FILTER(WHERE
      "timestamp" > CAST('2026-10-18 00:00:00' AS TIMESTAMP)) AS "m__6",
    SUM("amount") FILTER(WHERE
      "event" = 'purchase') AS "m__7",
    COUNT(*) FILTER(WHERE
      "event" = 'pricing_viewed'
      AND "timestamp" > CAST('2026-11-03 00:00:00' AS TIMESTAMP)) AS "m__9"
  FROM "scoped_events"
  GROUP BY
    "person_id"
), "streak_m__8" AS (
  SELECT
    "person_id",
    COUNT(*) AS "value"
  FROM (
    SELECT
      "person_id",
      "day",
      ROW_NUMBER() OVER (PARTITION BY "person_id" ORDER BY "day" DESC) AS "rn",
      MAX("day") OVER (PARTITION BY "person_id") AS "top"
    FROM (
      SELECT DISTINCT
        "person_id",
        "day"
      FROM "scoped_events"
    ) AS d
  ) AS r
  WHERE
    "top" >= CAST('2026-11-16' AS DATE) AND DATE_DIFF('DAY', "day", "top") = "rn" - 1
  GROUP BY
    "person_id"
), "q__0_step0" AS (
  SELECT DISTINCT
    "e"."person_id",
    "e"."timestamp" AS "t"
  FROM "scoped_events" AS e
  WHERE
    "e"."event" = 'signup'
    AND "e"."timestamp" > CAST('2026-10-18 00:00:00' AS TIMESTAMP)
), "q__0_step1" AS (
  SELECT DISTINCT
    "e"."person_id",
    "e"."timestamp" AS "t"
  FROM "scoped_events" AS e
  JOIN "q__0_step0" AS p
    ON "p"."person_id" = "e"."person_id"
    AND "e"."timestamp" > "p"."t"
    AND "e"."timestamp" <= "p"."t" + INTERVAL '604800' SECOND
  WHERE
    "e"."event" = 'purchase'
    AND "e"."timestamp" > CAST('2026-10-18 00:00:00' AS TIMESTAMP)
), "q__0" AS (
  SELECT DISTINCT
    "person_id"
  FROM "q__0_step1"
), "base" AS (
  SELECT
    "p"."person_id",
    "p"."person_id" AS "p__person_id",
    "p"."created_at" AS "p__created_at",
    "p"."plan" AS "p__plan",
    "s"."status" AS "sub__status",
    "s"."mrr" AS "sub__mrr",
    COALESCE("m"."m__0", 0) AS "m__0",
    "m"."m__1" AS "m__1",
    COALESCE("m"."m__2", 0) AS "m__2",
    COALESCE("m"."m__3", 0) AS "m__3",
    COALESCE("m"."m__4", 0) AS "m__4",
    "m"."m__5" AS "m__5",
    COALESCE("m"."m__6", 0) AS "m__6",
    COALESCE("m"."m__7", 0) AS "m__7",
    COALESCE("m"."m__9", 0) AS "m__9",
    COALESCE("m__8"."value", 0) AS "m__8",
    NOT "q__0"."person_id" IS NULL AS "q__0"
  FROM "persons_base" AS p
  LEFT JOIN "current_subscription" AS s
    ON "s"."person_id" = "p"."person_id"
  LEFT JOIN "event_measures" AS m
    ON "m"."person_id" = "p"."person_id"
  LEFT JOIN "streak_m__8" AS m__8
    ON "m__8"."person_id" = "p"."person_id"
  LEFT JOIN "q__0" AS q__0
    ON "q__0"."person_id" = "p"."person_id"
), "level_0" AS (
  SELECT
    *,
    "m__0" >= 1 AS "seg__active_users",
    COALESCE((
      "m__1" >= 0.6
    ), FALSE) AS "seg__aws_focus",
    "m__2" >= 1 AND "m__2" < 10 AS "seg__casual_users",
    (
      "m__3" = 0 AND "m__4" >= 1
    ) AS "seg__churn_risk",
    COALESCE((
      "m__5" <= CAST('2026-08-19 00:00:00' AS TIMESTAMP)
    ), FALSE) AS "seg__churned_users",
    "m__6" >= 10 AS "seg__engaged_by_feature",
    "m__7" >= 500 AS "seg__high_ltv",
    COALESCE((
      "m__5" <= CAST('2026-11-10 00:00:00' AS TIMESTAMP)
    ), FALSE)
    AND COALESCE(
      (
        "m__5" > CAST('2026-10-18 00:00:00' AS TIMESTAMP)
        AND "m__5" <= CAST('2026-11-17 00:00:00' AS TIMESTAMP)
      ),
      FALSE
    ) AS "seg__inactive_users",
    COALESCE(
      (
        "p__created_at" > CAST('2026-11-10 00:00:00' AS TIMESTAMP)
        AND "p__created_at" <= CAST('2026-11-17 00:00:00' AS TIMESTAMP)
      ),
      FALSE
    ) AS "seg__new_users",
    "q__0" AS "seg__onboarded",
    (
      COALESCE((
        "sub__status" = 'active'
      ), FALSE)
      AND COALESCE((
        "sub__mrr" >= 2900
      ), FALSE)
    ) AS "seg__paying",
    COALESCE((
      "p__plan" = 'premium'
    ), FALSE) AS "seg__plan_premium",
    COALESCE((
      "p__plan" = 'pro'
    ), FALSE) AS "seg__plan_pro",
    COALESCE("person_id" IN (
      SELECT
        "key"
      FROM "segctl_list_f73d9330f1"
    ), FALSE) AS "seg__vip",
    "m__8" >= 7 AS "seg__streak_7d"
  FROM "base"
), "level_1" AS (
  SELECT
    *,
    (
      "m__2" >= 10 AND COALESCE((
        "p__plan" IN ('pro', 'premium')
      ), FALSE)
    )
    AND NOT (
      "seg__vip"
    ) AS "seg__power_users",
    (
      COALESCE((
        "p__plan" = 'trial'
      ), FALSE) AND "m__9" >= 1
    )
    AND NOT (
      "seg__paying"
    ) AS "seg__trial_pricing"
  FROM "level_0"
)
SELECT
  "person_id",
  "seg__active_users" AS "active_users",
  "seg__aws_focus" AS "aws_focus",
  "seg__casual_users" AS "casual_users",
  "seg__churn_risk" AS "churn_risk",
  "seg__churned_users" AS "churned_users",
  "seg__engaged_by_feature" AS "engaged_by_feature",
  "seg__high_ltv" AS "high_ltv",
  "seg__inactive_users" AS "inactive_users",
  "seg__new_users" AS "new_users",
  "seg__onboarded" AS "onboarded",
  "seg__paying" AS "paying",
  "seg__plan_premium" AS "plan_premium",
  "seg__plan_pro" AS "plan_pro",
  "seg__power_users" AS "power_users",
  "seg__streak_7d" AS "streak_7d",
  "seg__trial_pricing" AS "trial_pricing",
  "seg__vip" AS "vip"
FROM "level_1"
