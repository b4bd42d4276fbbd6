SELECT
  "person_id"
FROM (
  WITH "persons_base" AS (
    SELECT
      "person_id"
    FROM "persons"
    WHERE
      "created_at" IS NULL OR "created_at" <= CAST('2026-11-17 00:00:00' AS TIMESTAMP)
  ), "scoped_events" AS (
    SELECT
      "person_id",
      "event",
      "timestamp",
      "amount"
    FROM "events"
    WHERE
      "timestamp" <= CAST('2026-11-17 00:00:00' AS TIMESTAMP)
      AND "event" IN ('purchase', 'signup')
  ), "q__0_step0" AS (
    SELECT DISTINCT
      "e"."person_id",
      "e"."timestamp" AS "t",
      "e"."timestamp" AS "s"
    FROM "scoped_events" AS e
    WHERE
      "e"."event" = 'signup'
  ), "q__0_step1" AS (
    SELECT
      "e"."person_id",
      "e"."timestamp" AS "t",
      MAX("p"."s") AS "s"
    FROM "scoped_events" AS e
    JOIN "q__0_step0" AS p
      ON "p"."person_id" = "e"."person_id"
      AND "e"."timestamp" > "p"."t"
      AND "e"."timestamp" <= "p"."s" + INTERVAL '259200' SECOND
    WHERE
      "e"."event" = 'purchase' AND COALESCE((
        "e"."amount" >= 50
      ), FALSE)
    GROUP BY
      "e"."person_id",
      "e"."timestamp"
  ), "q__0" AS (
    SELECT DISTINCT
      "person_id"
    FROM "q__0_step1"
  ), "base" AS (
    SELECT
      "p"."person_id",
      "p"."person_id" AS "p__person_id",
      NOT "q__0"."person_id" IS NULL AS "q__0"
    FROM "persons_base" AS p
    LEFT JOIN "q__0" AS q__0
      ON "q__0"."person_id" = "p"."person_id"
  ), "level_0" AS (
    SELECT
      *,
      "q__0" AS "seg__quick_buyers"
    FROM "base"
  )
  SELECT
    "person_id",
    "seg__quick_buyers" AS "quick_buyers"
  FROM "level_0"
) AS members
WHERE
  "quick_buyers"
ORDER BY
  "person_id"
