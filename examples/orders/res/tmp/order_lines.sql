SELECT
  d.order_id,
  d.product_id,
  p.name AS product,
  d.quantity,
  CAST(d.unit_price AS NUMERIC) AS unit_price,
  ROUND(CAST(d.quantity * d.unit_price * (1 - d.discount) AS NUMERIC), 2) AS amount
FROM raw.order_details AS d
JOIN raw.products AS p ON p.id = d.product_id
