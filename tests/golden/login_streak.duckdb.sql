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
      CAST("timestamp" AS DATE) AS "day"
    FROM "events"
    WHERE
      "timestamp" <= CAST('2026-11-17 00:00:00' AS TIMESTAMP)
      AND "event" IN ('login')
      AND "timestamp" > CAST('2026-07-18 00:00:00' AS TIMESTAMP)
  ), "event_measures" AS (
    SELECT
      "person_id",
      BIT_OR(
        CASE
          WHEN "event" = 'login' AND DATE_DIFF('DAY', "day", CAST('2026-11-17' AS DATE)) < 120
          THEN CAST(1 AS INT128) << LEAST(DATE_DIFF('DAY', "day", CAST('2026-11-17' AS DATE)), 126)
        END
      ) AS "m__0"
    FROM "scoped_events"
    GROUP BY
      "person_id"
  ), "streak_m__0" AS (
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
        FROM (
          SELECT
            *,
            CAST("timestamp" AS DATE) AS "day"
          FROM "events"
          WHERE
            "timestamp" <= CAST('2026-11-17 00:00:00' AS TIMESTAMP)
            AND "person_id" IN (
              SELECT
                "person_id"
              FROM "event_measures"
              WHERE
                CASE
                  WHEN "m__0" & 1 = 1
                  THEN BIT_COUNT(XOR("m__0", "m__0" + 1)) - 1
                  ELSE BIT_COUNT(XOR((
                    "m__0" >> 1
                  ), (
                    "m__0" >> 1
                  ) + 1)) - 1
                END >= 119
            )
        ) AS e
        WHERE
          "event" = 'login'
      ) AS d
    ) AS r
    WHERE
      "top" >= CAST('2026-11-16' AS DATE) AND DATE_DIFF('DAY', "day", "top") = "rn" - 1
    GROUP BY
      "person_id"
  ), "base" AS (
    SELECT
      "p"."person_id",
      "p"."person_id" AS "p__person_id",
      COALESCE(
        CASE
          WHEN "m__0"."value" IS NULL
          THEN CASE
            WHEN "m"."m__0" & 1 = 1
            THEN BIT_COUNT(XOR("m"."m__0", "m"."m__0" + 1)) - 1
            ELSE BIT_COUNT(XOR((
              "m"."m__0" >> 1
            ), (
              "m"."m__0" >> 1
            ) + 1)) - 1
          END
          ELSE "m__0"."value"
        END,
        0
      ) AS "m__0"
    FROM "persons_base" AS p
    LEFT JOIN "event_measures" AS m
      ON "m"."person_id" = "p"."person_id"
    LEFT JOIN "streak_m__0" AS m__0
      ON "m__0"."person_id" = "p"."person_id"
  ), "level_0" AS (
    SELECT
      *,
      "m__0" >= 3 AS "seg__login_streak"
    FROM "base"
  )
  SELECT
    "person_id",
    "seg__login_streak" AS "login_streak"
  FROM "level_0"
) AS members
WHERE
  "login_streak"
ORDER BY
  "person_id"
