SELECT
  p.id AS product_id,
  ARRAY_AGG(pic.url IGNORE NULLS ORDER BY pic.id) AS images
FROM `raw.products` AS p
JOIN `raw.pictures` AS pic
  ON pic.external_id = p.external_id
WHERE pic.type = 'product'
GROUP BY 1
