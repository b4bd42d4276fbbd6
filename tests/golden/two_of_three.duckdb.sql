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
      "timestamp",
      "format"
    FROM "events"
    WHERE
      "timestamp" <= CAST('2026-11-17 00:00:00' AS TIMESTAMP)
      AND "event" IN ('purchase', 'video_rendered')
      AND "timestamp" > CAST('2025-11-16 23:59:59.999999' AS TIMESTAMP)
  ), "event_measures_0" AS (
    SELECT
      "person_id",
      CAST(COUNT_IF(
        "event" = 'video_rendered'
        AND COALESCE((
          "format" = 'mp4'
        ), FALSE)
        AND "timestamp" >= CAST('2026-11-10 00:00:00' AS TIMESTAMP)
      ) AS BIGINT) AS "m__0"
    FROM "scoped_events"
    WHERE
      "event" IN ('video_rendered')
    GROUP BY
      "person_id"
  ), "event_measures_1" AS (
    SELECT
      "person_id",
      CAST(COUNT_IF(
        "event" = 'purchase'
        AND "timestamp" >= CAST('2025-11-17 00:00:00' AS TIMESTAMP)
        AND "timestamp" < CAST('2026-10-18 00:00:00' AS TIMESTAMP)
      ) AS BIGINT) AS "m__1"
    FROM "scoped_events"
    WHERE
      "event" IN ('purchase')
    GROUP BY
      "person_id"
  ), "base" AS (
    SELECT
      "p"."person_id",
      "p"."person_id" AS "p__person_id",
      "p"."plan" AS "p__plan",
      COALESCE("m0"."m__0", 0) AS "m__0",
      COALESCE("m1"."m__1", 0) AS "m__1"
    FROM "persons_base" AS p
    LEFT JOIN "event_measures_0" AS m0
      ON "m0"."person_id" = "p"."person_id"
    LEFT JOIN "event_measures_1" AS m1
      ON "m1"."person_id" = "p"."person_id"
  ), "level_0" AS (
    SELECT
      *,
      (
        (
          CASE WHEN "m__0" >= 1 THEN 1 ELSE 0 END + CASE WHEN COALESCE((
            "p__plan" IN ('pro', 'premium')
          ), FALSE) THEN 1 ELSE 0 END + CASE WHEN "m__1" >= 1 THEN 1 ELSE 0 END
        ) >= 2
      ) AS "seg__two_of_three"
    FROM "base"
  )
  SELECT
    "person_id",
    "seg__two_of_three" AS "two_of_three"
  FROM "level_0"
) AS members
WHERE
  "two_of_three"
ORDER BY
  "person_id"
