CREATE OR REPLACE TABLE `raw.categories` (id INT64, category_name STRING) AS
SELECT 1, 'Lips'
UNION ALL SELECT 2, 'Skincare'
UNION ALL SELECT 3, 'Eyes'
UNION ALL SELECT 4, 'Face'
UNION ALL SELECT 5, 'Fragrance'
