SELECT
  "person_id"
FROM (
  WITH "persons_base" AS (
    SELECT
      "person_id"
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
  ), "base" AS (
    SELECT
      "p"."person_id",
      "p"."person_id" AS "p__person_id",
      "s"."status" AS "sub__status",
      "s"."mrr" AS "sub__mrr"
    FROM "persons_base" AS p
    LEFT JOIN "current_subscription" AS s
      ON "s"."person_id" = "p"."person_id"
  ), "level_0" AS (
    SELECT
      *,
      (
        COALESCE((
          "sub__status" IN ('active', 'past_due')
        ), FALSE)
        AND COALESCE((
          "sub__mrr" >= 900
        ), FALSE)
      ) AS "seg__paying"
    FROM "base"
  )
  SELECT
    "person_id",
    "seg__paying" AS "paying"
  FROM "level_0"
) AS members
WHERE
  "paying"
ORDER BY
  "person_id"
