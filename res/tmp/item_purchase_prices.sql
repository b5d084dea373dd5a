WITH line_items AS (
  SELECT
    pli.sku_id,
    pli.batch_purchase_id AS batch_id
  FROM `raw.purchase_line_items` AS pli
  GROUP BY 1, 2
)
SELECT
  li.sku_id,
  li.batch_id,
  ARRAY_AGG(
    STRUCT(pi.purchase_price, pi.currency, pi.price_eur)
    ORDER BY pi.currency, pi.purchase_price
  ) AS prices
FROM line_items AS li
JOIN `tmp.purchase_prices_eur` AS pi
  ON li.batch_id = pi.batch_id
GROUP BY 1, 2
