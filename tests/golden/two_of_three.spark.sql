WITH `persons_base` AS (
  SELECT
    `person_id`,
    `plan`
  FROM `persons`
  WHERE
    `created_at` IS NULL OR `created_at` <= CAST('2026-11-17 00:00:00' AS TIMESTAMP)
), `scoped_events` AS (
  SELECT
    `person_id`,
    `event`,
    `timestamp`,
    `format`
  FROM `events`
  WHERE
    `timestamp` <= CAST('2026-11-17 00:00:00' AS TIMESTAMP)
    AND `event` IN ('purchase', 'video_rendered')
    AND `timestamp` > CAST('2025-11-16 23:59:59.999999' AS TIMESTAMP)
), `event_measures` AS (
  SELECT
    `person_id`,
    COUNT(*) FILTER(WHERE
      `event` = 'video_rendered'
      AND COALESCE((
        `format` = 'mp4'
      ), FALSE)
      AND `timestamp` >= CAST('2026-11-10 00:00:00' AS TIMESTAMP)) AS `m__0`,
    COUNT(*) FILTER(WHERE
      `event` = 'purchase'
      AND `timestamp` >= CAST('2025-11-17 00:00:00' AS TIMESTAMP)
      AND `timestamp` < CAST('2026-10-18 00:00:00' AS TIMESTAMP)) AS `m__1`
  FROM `scoped_events`
  GROUP BY
    `person_id`
), `base` AS (
  SELECT
    `p`.`person_id`,
    `p`.`person_id` AS `p__person_id`,
    `p`.`plan` AS `p__plan`,
    COALESCE(`m`.`m__0`, 0) AS `m__0`,
    COALESCE(`m`.`m__1`, 0) AS `m__1`
  FROM `persons_base` AS p
  LEFT JOIN `event_measures` AS m
    ON `m`.`person_id` = `p`.`person_id`
), `level_0` AS (
  SELECT
    *,
    (
      (
        CASE WHEN `m__0` >= 1 THEN 1 ELSE 0 END + CASE WHEN COALESCE((
          `p__plan` IN ('pro', 'premium')
        ), FALSE) THEN 1 ELSE 0 END + CASE WHEN `m__1` >= 1 THEN 1 ELSE 0 END
      ) >= 2
    ) AS `seg__two_of_three`
  FROM `base`
)
SELECT
  `person_id`
FROM (
  SELECT
    `person_id`,
    `seg__two_of_three` AS `two_of_three`
  FROM `level_0`
) AS members
WHERE
  `two_of_three`
ORDER BY
  `person_id`
