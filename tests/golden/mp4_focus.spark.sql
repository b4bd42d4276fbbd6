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
    `format`,
    CASE
      WHEN `event` = 'video_rendered'
      THEN ROW_NUMBER() OVER (
        PARTITION BY `person_id`, `event` = 'video_rendered'
        ORDER BY `timestamp` DESC, `event` DESC, CAST(COALESCE((
          `format` = 'mp4'
        ), FALSE) AS DOUBLE) DESC NULLS FIRST, `format` NULLS LAST
      )
    END AS `r__0`
  FROM `events`
  WHERE
    `timestamp` <= CAST('2026-11-17 00:00:00' AS TIMESTAMP)
    AND `event` IN ('video_rendered')
), `event_measures` AS (
  SELECT
    `person_id`,
    CAST(COUNT(*) FILTER(WHERE
      (
        `event` = 'video_rendered' AND `r__0` <= 2
      )
      AND COALESCE((
        `format` = 'mp4'
      ), FALSE)) AS DOUBLE) / NULLIF(COUNT(*) FILTER(WHERE
      `event` = 'video_rendered' AND `r__0` <= 2), 0) AS `m__0`
  FROM `scoped_events`
  GROUP BY
    `person_id`
), `base` AS (
  SELECT
    `p`.`person_id`,
    `p`.`person_id` AS `p__person_id`,
    `m`.`m__0` AS `m__0`
  FROM `persons_base` AS p
  LEFT JOIN `event_measures` AS m
    ON `m`.`person_id` = `p`.`person_id`
), `level_0` AS (
  SELECT
    *,
    COALESCE((
      `m__0` >= 0.6
    ), FALSE) AS `seg__mp4_focus`
  FROM `base`
)
SELECT
  `person_id`
FROM (
  SELECT
    `person_id`,
    `seg__mp4_focus` AS `mp4_focus`
  FROM `level_0`
) AS members
WHERE
  `mp4_focus`
ORDER BY
  `person_id`
