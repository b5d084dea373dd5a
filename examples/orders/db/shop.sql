-- A small shop database for the daily-extraction example: nine tables covering the types
-- tablemake carries over (integers, numerics, dates, timestamps, text, booleans, bytea).
-- Deterministic: loading it twice gives the same rows.
DROP TABLE IF EXISTS shipments, payments, orders, product_images, products, suppliers,
    categories, employees, customers CASCADE;

CREATE TABLE customers (
    id          integer PRIMARY KEY,
    name        text NOT NULL,
    email       varchar(200) UNIQUE,
    country     char(2) NOT NULL,
    signed_up   date NOT NULL,
    is_business boolean NOT NULL DEFAULT false
);
INSERT INTO customers
SELECT i, 'Customer ' || i, 'customer' || i || '@example.com',
       (ARRAY['DE', 'FR', 'PL', 'US', 'GB'])[1 + i % 5],
       DATE '2024-01-01' + i * 7, i % 4 = 0
FROM generate_series(1, 20) AS i;

CREATE TABLE employees (
    id         smallint PRIMARY KEY,
    name       text NOT NULL,
    hired_on   date NOT NULL,
    salary     numeric(10, 2) NOT NULL,
    manager_id smallint REFERENCES employees (id),
    active     boolean NOT NULL
);
INSERT INTO employees VALUES
    (1, 'Ada Lovelace', '2019-03-01', 7200.00, NULL, true),
    (2, 'Grace Hopper', '2020-06-15', 6100.50, 1, true),
    (3, 'Alan Turing', '2021-01-10', 5900.25, 1, false),
    (4, 'Edsger Dijkstra', '2022-09-05', 5400.75, 2, true);

CREATE TABLE categories (
    id   integer PRIMARY KEY,
    name text NOT NULL
);
INSERT INTO categories VALUES (1, 'Lipstick'), (2, 'Mascara'), (3, 'Skin care');

CREATE TABLE suppliers (
    id      integer PRIMARY KEY,
    name    text NOT NULL,
    country char(2) NOT NULL
);
INSERT INTO suppliers VALUES (1, 'Rouge & Co', 'FR'), (2, 'Lash Works', 'DE');

CREATE TABLE products (
    id          integer PRIMARY KEY,
    name        text NOT NULL,
    category_id integer NOT NULL REFERENCES categories (id),
    supplier_id integer NOT NULL REFERENCES suppliers (id),
    price       numeric(8, 2) NOT NULL,
    weight_kg   double precision,
    launched    date
);
INSERT INTO products
SELECT i, 'Product ' || i, 1 + i % 3, 1 + i % 2, 4.99 + i * 1.25, 0.05 * i,
       DATE '2023-05-01' + i * 30
FROM generate_series(1, 12) AS i;

CREATE TABLE product_images (
    product_id integer NOT NULL REFERENCES products (id),
    position   smallint NOT NULL,
    mime_type  text NOT NULL,
    image      bytea NOT NULL,
    PRIMARY KEY (product_id, position)
);
INSERT INTO product_images
SELECT p, n, 'image/png', decode('89504e470d0a1a0a' || lpad(to_hex(p * 16 + n), 8, '0'), 'hex')
FROM generate_series(1, 12) AS p, generate_series(1, 2) AS n;

CREATE TABLE orders (
    id          bigint PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers (id),
    employee_id smallint REFERENCES employees (id),
    ordered_at  timestamptz NOT NULL,
    status      text NOT NULL,
    note        text
);
INSERT INTO orders
SELECT i, 1 + i % 20, CASE WHEN i % 5 = 0 THEN NULL ELSE 1 + i % 4 END,
       TIMESTAMPTZ '2026-11-01 08:00:00+00' + i * INTERVAL '7 hours 13 minutes',
       (ARRAY['paid', 'shipped', 'delivered', 'cancelled'])[1 + i % 4],
       CASE WHEN i % 7 = 0 THEN 'gift, wrap "nicely"' WHEN i % 11 = 0 THEN '' END
FROM generate_series(1, 40) AS i;

CREATE TABLE payments (
    id       bigint PRIMARY KEY,
    order_id bigint NOT NULL REFERENCES orders (id),
    amount   numeric(12, 2) NOT NULL,
    fee_rate numeric,
    paid_on  date NOT NULL,
    captured timestamp NOT NULL
);
INSERT INTO payments
SELECT i, i, 19.90 + i * 3.15, 0.0145, DATE '2026-11-01' + i / 4,
       TIMESTAMP '2026-11-01 09:30:00' + i * INTERVAL '7 hours 13 minutes'
FROM generate_series(1, 40) AS i
WHERE i % 4 <> 3;

CREATE TABLE shipments (
    id         integer PRIMARY KEY,
    order_id   bigint NOT NULL REFERENCES orders (id),
    carrier    text NOT NULL,
    shipped_on date,
    delivered  boolean
);
INSERT INTO shipments
SELECT i, i, (ARRAY['DHL', 'UPS', 'La Poste'])[1 + i % 3], DATE '2026-11-02' + i / 3,
       CASE WHEN i % 4 = 2 THEN true WHEN i % 4 = 1 THEN false END
FROM generate_series(1, 40) AS i
WHERE i % 4 IN (1, 2);
