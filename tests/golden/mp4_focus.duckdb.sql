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
      "format"
    FROM "events"
    WHERE
      "timestamp" <= CAST('2026-11-17 00:00:00' AS TIMESTAMP)
      AND "event" IN ('video_rendered')
  ), "event_measures" AS (
    SELECT
      "person_id",
      LIST_AVG(
        FLATTEN(
          ARG_MAX(
            [CAST(COALESCE((
                "format" = 'mp4'
            ), FALSE) AS DOUBLE)],
            {'t': "timestamp", 'e': "event", 'v': CAST(COALESCE((
              "format" = 'mp4'
            ), FALSE) AS DOUBLE)},
            2
          ) FILTER(WHERE
            "event" = 'video_rendered')
        )
      ) AS "m__0"
    FROM "scoped_events"
    GROUP BY
      "person_id"
  ), "base" AS (
    SELECT
      "p"."person_id",
      "p"."person_id" AS "p__person_id",
      "m"."m__0" AS "m__0"
    FROM "persons_base" AS p
    LEFT JOIN "event_measures" AS m
      ON "m"."person_id" = "p"."person_id"
  ), "level_0" AS (
    SELECT
      *,
      COALESCE((
        "m__0" >= 0.6
      ), FALSE) AS "seg__mp4_focus"
    FROM "base"
  )
  SELECT
    "person_id",
    "seg__mp4_focus" AS "mp4_focus"
  FROM "level_0"
) AS members
WHERE
  "mp4_focus"
ORDER BY
  "person_id"
