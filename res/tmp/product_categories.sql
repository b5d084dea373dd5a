SELECT
  p.id AS product_id,
  ARRAY_AGG(STRUCT(c.category_name AS categoryName) ORDER BY c.category_name) AS categories
FROM `raw.products` AS p
JOIN `raw.categories` AS c
  ON p.category_id = c.id
GROUP BY 1
