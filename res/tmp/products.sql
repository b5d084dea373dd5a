SELECT
  p.id AS product_id,
  p.name,
  p.type,
  p.category_id,
  CAST(p.external_id AS STRING) AS external_id,
  COALESCE(pi.images, []) AS images,
  COALESCE(pc.categories, []) AS categories
FROM `raw.products` AS p
LEFT JOIN `tmp.product_images` AS pi
  ON pi.product_id = p.id
LEFT JOIN `tmp.product_categories` AS pc
  ON pc.product_id = p.id
