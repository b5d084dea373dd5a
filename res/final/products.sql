WITH product_variants AS (
  SELECT
    v.product_id,
    ARRAY_AGG(
      STRUCT(v.sku_id AS skuId, v.images AS images, v.inventory_count AS inventoryCount)
      ORDER BY v.sku_id
    ) AS variants,
    CAST(SUM(v.inventory_count) AS INT64) AS total_inventory
  FROM `tmp.variants` AS v
  GROUP BY 1
)
SELECT
  p.product_id AS id,
  p.name,
  p.type,
  p.categories,
  p.images,
  COALESCE(pv.total_inventory, 0) AS total_inventory,
  COALESCE(pv.variants, []) AS variants
FROM `tmp.products` AS p
LEFT JOIN product_variants AS pv
  ON pv.product_id = p.product_id
