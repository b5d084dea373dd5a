SELECT
  CAST(ii.sku_id AS INT64) AS sku_id,
  CAST(ii.inventory_count AS INT64) AS inventory_count
FROM `raw.inventory_items` AS ii
