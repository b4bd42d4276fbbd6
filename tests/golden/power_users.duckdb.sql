SELECT
  "person_id"
FROM (
  WITH "persons_base" AS (
    SELECT
      "person_id",
      "plan"
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
      AND "event" IN ('video_rendered')
      AND "timestamp" > CAST('2026-10-18 00:00:00' AS TIMESTAMP)
  ), "event_measures" AS (
    SELECT
      "person_id",
      CAST(COUNT_IF(
        "event" = 'video_rendered'
        AND "timestamp" > CAST('2026-10-18 00:00:00' AS TIMESTAMP)
      ) AS BIGINT) AS "m__0"
    FROM "scoped_events"
    GROUP BY
      "person_id"
  ), "base" AS (
    SELECT
      "p"."person_id",
      "p"."person_id" AS "p__person_id",
      "p"."plan" AS "p__plan",
      COALESCE("m"."m__0", 0) AS "m__0"
    FROM "persons_base" AS p
    LEFT JOIN "event_measures" AS m
      ON "m"."person_id" = "p"."person_id"
  ), "level_0" AS (
    SELECT
      *,
      (
        "m__0" >= 3 AND COALESCE((
          "p__plan" IN ('pro', 'premium')
        ), FALSE)
      ) AS "seg__power_users"
    FROM "base"
  )
  SELECT
    "person_id",
    "seg__power_users" AS "power_users"
  FROM "level_0"
) AS members
WHERE
  "power_users"
ORDER BY
  "person_id"
