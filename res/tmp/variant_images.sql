SELECT
  v.id AS variant_id,
  ARRAY_AGG(pic.url IGNORE NULLS ORDER BY pic.id) AS images
FROM `raw.variants` AS v
JOIN `raw.pictures` AS pic
  ON pic.external_id = v.id
WHERE pic.type = 'variant'
GROUP BY 1
