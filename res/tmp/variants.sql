WITH purchases AS (
  SELECT
    ipp.sku_id,
    ARRAY_AGG(STRUCT(ipp.batch_id AS batchId, ipp.prices AS prices) ORDER BY ipp.batch_id) AS purchase_prices
  FROM `tmp.item_purchase_prices` AS ipp
  GROUP BY 1
)
SELECT
  v.id AS sku_id,
  v.name,
  v.product_id,
  COALESCE(vi.images, []) AS images,
  COALESCE(inv.inventory_count, 0) AS inventory_count,
  COALESCE(pu.purchase_prices, []) AS purchase_prices
FROM `raw.variants` AS v
LEFT JOIN `tmp.variant_images` AS vi
  ON vi.variant_id = v.id
LEFT JOIN `tmp.inventory_items` AS inv
  ON inv.sku_id = v.id
LEFT JOIN purchases AS pu
  ON pu.sku_id = v.id
