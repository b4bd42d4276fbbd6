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
      "timestamp"
    FROM "events"
    WHERE
      "timestamp" <= CAST('2026-11-17 00:00:00' AS TIMESTAMP)
      AND "event" IN ('login')
      AND "timestamp" > CAST('2026-11-13 23:59:59.999999' AS TIMESTAMP)
  ), "event_measures" AS (
    SELECT
      "person_id",
      CASE
        WHEN CAST(COUNT_IF(
          "event" = 'login'
          AND "timestamp" >= CAST('2026-11-16 00:00:00' AS TIMESTAMP)
          AND "timestamp" < CAST('2026-11-17 00:00:00' AS TIMESTAMP)
        ) AS BIGINT) >= 1
        THEN 1
        ELSE 0
      END + CASE
        WHEN CAST(COUNT_IF(
          "event" = 'login'
          AND "timestamp" >= CAST('2026-11-15 00:00:00' AS TIMESTAMP)
          AND "timestamp" < CAST('2026-11-16 00:00:00' AS TIMESTAMP)
        ) AS BIGINT) >= 1
        THEN 1
        ELSE 0
      END + CASE
        WHEN CAST(COUNT_IF(
          "event" = 'login'
          AND "timestamp" >= CAST('2026-11-14 00:00:00' AS TIMESTAMP)
          AND "timestamp" < CAST('2026-11-15 00:00:00' AS TIMESTAMP)
        ) AS BIGINT) >= 1
        THEN 1
        ELSE 0
      END AS "m__0"
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
      "m__0" >= 3 AS "seg__regulars"
    FROM "base"
  )
  SELECT
    "person_id",
    "seg__regulars" AS "regulars"
  FROM "level_0"
) AS members
WHERE
  "regulars"
ORDER BY
  "person_id"
