SELECT
  o.id AS order_id,
  o.ordered_at,
  o.status,
  c.name AS customer,
  c.country,
  COUNT(l.product_id) AS line_count,
  SUM(l.quantity) AS items,
  SUM(l.amount) AS amount,
  ARRAY_AGG(STRUCT(l.product AS product, l.quantity AS quantity, l.amount AS amount) ORDER BY l.product_id) AS lines
FROM raw.orders AS o
JOIN raw.customers AS c ON c.id = o.customer_id
LEFT JOIN tmp.order_lines AS l ON l.order_id = o.id
GROUP BY o.id, o.ordered_at, o.status, c.name, c.country
