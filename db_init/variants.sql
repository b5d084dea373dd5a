CREATE OR REPLACE TABLE `raw.variants` (id INT64, name STRING, product_id INT64) AS
SELECT 1001, 'Velvet Matte Lipstick - Ruby Red', 1
UNION ALL SELECT 1002, 'Velvet Matte Lipstick - Nude Rose', 1
UNION ALL SELECT 1003, 'Velvet Matte Lipstick - Berry Plum', 1
UNION ALL SELECT 1004, 'Velvet Matte Lipstick - Coral Crush', 1
UNION ALL SELECT 1005, 'Hydra Gloss Lip Oil - Clear', 2
UNION ALL SELECT 1006, 'Hydra Gloss Lip Oil - Cherry', 2
UNION ALL SELECT 1007, 'Hydra Gloss Lip Oil - Honey', 2
UNION ALL SELECT 1008, 'Vitamin C Brightening Serum - 15 ml', 3
UNION ALL SELECT 1009, 'Vitamin C Brightening Serum - 30 ml', 3
UNION ALL SELECT 1010, 'Hyaluronic Acid Moisturizer - 50 ml', 4
UNION ALL SELECT 1011, 'Hyaluronic Acid Moisturizer - 100 ml', 4
UNION ALL SELECT 1012, 'Volume Boost Mascara - Black', 5
UNION ALL SELECT 1013, 'Volume Boost Mascara - Brown Black', 5
UNION ALL SELECT 1014, 'Precision Liquid Eyeliner - Jet Black', 6
UNION ALL SELECT 1015, 'Precision Liquid Eyeliner - Espresso', 6
UNION ALL SELECT 1016, 'Precision Liquid Eyeliner - Navy', 6
UNION ALL SELECT 1017, 'Skin Tint Foundation - Fair', 7
UNION ALL SELECT 1018, 'Skin Tint Foundation - Light', 7
UNION ALL SELECT 1019, 'Skin Tint Foundation - Medium', 7
UNION ALL SELECT 1020, 'Skin Tint Foundation - Tan', 7
UNION ALL SELECT 1021, 'Skin Tint Foundation - Deep', 7
UNION ALL SELECT 1022, 'Silk Setting Powder - Translucent', 8
UNION ALL SELECT 1023, 'Silk Setting Powder - Banana', 8
UNION ALL SELECT 1024, 'Rose Oud Eau de Parfum - 30 ml', 9
UNION ALL SELECT 1025, 'Rose Oud Eau de Parfum - 50 ml', 9
UNION ALL SELECT 1026, 'Rose Oud Eau de Parfum - 100 ml', 9
UNION ALL SELECT 1027, 'Fragrance Discovery Set - 6 x 2 ml', 10
