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
      AND "event" IN ('purchase')
  ), "event_measures" AS (
    SELECT
      "person_id",
      SUM(CASE WHEN "event" = 'purchase' THEN "amount" END) AS "m__0"
    FROM "scoped_events"
    GROUP BY
      "person_id"
  ), "base" AS (
    SELECT
      "p"."person_id",
      "p"."person_id" AS "p__person_id",
      COALESCE("m"."m__0", 0) AS "m__0"
    FROM "persons_base" AS p
    LEFT JOIN "event_measures" AS m
      ON "m"."person_id" = "p"."person_id"
  ), "level_0" AS (
    SELECT
      *,
      "m__0" >= 500 AS "seg__big_spenders"
    FROM "base"
  )
  SELECT
    "person_id",
    "seg__big_spenders" AS "big_spenders"
  FROM "level_0"
) AS members
WHERE
  "big_spenders"
ORDER BY
  "person_id"
