WITH `persons_base` AS (
  SELECT
    `person_id`
  FROM `persons`
  WHERE
    `created_at` IS NULL OR `created_at` <= CAST('2026-11-17 00:00:00' AS TIMESTAMP)
), `scoped_events` AS (
  SELECT
    `person_id`,
    `event`,
    `timestamp`,
    CAST(`timestamp` AS DATE) AS `day`
  FROM `events`
  WHERE
    `timestamp` <= CAST('2026-11-17 00:00:00' AS TIMESTAMP) AND `event` IN ('login')
), `streak_m__0` AS (
  SELECT
    `person_id`,
    COUNT(*) AS `value`
  FROM (
    SELECT
      `person_id`,
      `day`,
      ROW_NUMBER() OVER (PARTITION BY `person_id` ORDER BY `day` DESC) AS `rn`,
      MAX(`day`) OVER (PARTITION BY `person_id`) AS `top`
    FROM (
      SELECT DISTINCT
        `person_id`,
        `day`
      FROM `scoped_events`
      WHERE
        `event` = 'login'
    ) AS d
  ) AS r
  WHERE
    `top` >= CAST('2026-11-16' AS DATE) AND DATEDIFF(DAY, `day`, `top`) = `rn` - 1
  GROUP BY
    `person_id`
), `base` AS (
  SELECT
    `p`.`person_id`,
    `p`.`person_id` AS `p__person_id`,
    COALESCE(`m__0`.`value`, 0) AS `m__0`
  FROM `persons_base` AS p
  LEFT JOIN `streak_m__0` AS m__0
    ON `m__0`.`person_id` = `p`.`person_id`
), `level_0` AS (
  SELECT
    *,
    `m__0` >= 3 AS `seg__login_streak`
  FROM `base`
)
SELECT
  `person_id`
FROM (
  SELECT
    `person_id`,
    `seg__login_streak` AS `login_streak`
  FROM `level_0`
) AS members
WHERE
  `login_streak`
ORDER BY
  `person_id`
