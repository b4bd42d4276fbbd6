SELECT
  "person_id"
FROM (
  WITH "persons_base" AS (
    SELECT
      "person_id",
      "country"
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
      SUM(CASE WHEN "event" = 'purchase' THEN "amount" END) AS "m__0",
      CAST(COUNT_IF("event" = 'purchase' AND "timestamp" > CAST('2026-10-18 00:00:00' AS TIMESTAMP)) AS BIGINT) AS "m__1"
    FROM "scoped_events"
    GROUP BY
      "person_id"
  ), "base" AS (
    SELECT
      "p"."person_id",
      "p"."person_id" AS "p__person_id",
      "p"."country" AS "p__country",
      COALESCE("m"."m__0", 0) AS "m__0",
      COALESCE("m"."m__1", 0) AS "m__1"
    FROM "persons_base" AS p
    LEFT JOIN "event_measures" AS m
      ON "m"."person_id" = "p"."person_id"
  ), "level_0" AS (
    SELECT
      *,
      "m__0" >= 500 AS "seg__big_spenders",
      COALESCE("person_id" IN (
        SELECT
          "key"
        FROM "segctl_list_5fd79ae655"
      ), FALSE) AS "seg__vip"
    FROM "base"
  ), "level_1" AS (
    SELECT
      *,
      (
        "seg__big_spenders" OR "m__1" >= 1
      )
      AND NOT (
        "seg__vip" OR COALESCE((
          "p__country" = 'FR'
        ), FALSE)
      ) AS "seg__spenders_not_vip"
    FROM "level_0"
  )
  SELECT
    "person_id",
    "seg__spenders_not_vip" AS "spenders_not_vip"
  FROM "level_1"
) AS members
WHERE
  "spenders_not_vip"
ORDER BY
  "person_id"
