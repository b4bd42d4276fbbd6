SELECT
  "person_id"
FROM (
  WITH "persons_base" AS (
    SELECT
      "person_id"
    FROM "persons"
    WHERE
      "created_at" IS NULL OR "created_at" <= CAST('2026-11-17 00:00:00' AS TIMESTAMP)
  ), "base" AS (
    SELECT
      "p"."person_id",
      "p"."person_id" AS "p__person_id"
    FROM "persons_base" AS p
  ), "level_0" AS (
    SELECT
      *,
      COALESCE("person_id" IN (
        SELECT
          "key"
        FROM "segctl_list_5fd79ae655"
      ), FALSE) AS "seg__vip"
    FROM "base"
  )
  SELECT
    "person_id",
    "seg__vip" AS "vip"
  FROM "level_0"
) AS members
WHERE
  "vip"
ORDER BY
  "person_id"
