"""The example shop's Python part: one Python target and the unit tests of the targets.

Tablefile.toml points here (`[project] workflow = "workflow.py"`). `tablemake` imports this
file to learn the Python target; `tablemake test` runs the unit tests on an in-memory DuckDB.
"""

from __future__ import annotations

from typing import Any

from tablemake.dsl import target, unit_test

# What one unit of each purchase currency is worth in EUR. Fixed for the example (a real
# workflow would pull them from an API); editing a rate changes the target's fingerprint.
EUR_PER_UNIT = {"EUR": 1.0, "USD": 0.92, "SGD": 0.69}


def to_eur(amount: float, currency: str) -> float:
    return round(amount * EUR_PER_UNIT[currency], 2)


@target("tmp.purchase_prices_eur", deps=["raw.purchase_items"], duration=0.2)
def purchase_prices_eur(purchase_items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each purchase item with its price converted to EUR."""
    return [
        {
            "id": item["id"],
            "batch_id": item["batch_id"],
            "purchase_price": item["purchase_price"],
            "currency": item["currency"],
            "price_eur": to_eur(item["purchase_price"], item["currency"]),
        }
        for item in purchase_items
    ]


# -- unit tests: rows for each prerequisite, the rows expected (`tablemake test`) ---------

unit_test(
    "tmp.purchase_prices_eur",
    name="prices are converted to EUR",
    given={
        "raw.purchase_items": [
            {"id": 1, "purchase_price": 10.0, "currency": "USD", "batch_id": 201},
            {"id": 2, "purchase_price": 3.8, "currency": "EUR", "batch_id": 201},
            {"id": 3, "purchase_price": 9.4, "currency": "SGD", "batch_id": 203},
        ]
    },
    expect=[
        {"id": 1, "price_eur": 9.2},
        {"id": 2, "price_eur": 3.8},
        {"id": 3, "price_eur": 6.49},
    ],
)

unit_test(
    "tmp.item_purchase_prices",
    name="each SKU and batch lists its prices with their EUR value",
    given={
        "raw.purchase_line_items": [
            {"id": 1, "sku_id": 1001, "distribution_center": "AMS-1", "batch_purchase_id": 201},
            {"id": 2, "sku_id": 1001, "distribution_center": "SIN-2", "batch_purchase_id": 201},
        ],
        "tmp.purchase_prices_eur": [
            {
                "id": 1,
                "batch_id": 201,
                "purchase_price": 4.15,
                "currency": "USD",
                "price_eur": 3.82,
            },
            {"id": 2, "batch_id": 201, "purchase_price": 3.8, "currency": "EUR", "price_eur": 3.8},
            {"id": 3, "batch_id": 999, "purchase_price": 1.0, "currency": "EUR", "price_eur": 1.0},
        ],
    },
    expect=[
        {
            "sku_id": 1001,
            "batch_id": 201,
            "prices": [
                {"purchase_price": 3.8, "currency": "EUR", "price_eur": 3.8},
                {"purchase_price": 4.15, "currency": "USD", "price_eur": 3.82},
            ],
        }
    ],
)

unit_test(
    "tmp.inventory_items",
    name="inventory counts are kept per SKU",
    given={"raw.inventory_items": [{"sku_id": 1001, "inventory_count": 142}]},
    expect=[{"sku_id": 1001, "inventory_count": 142}],
)

unit_test(
    "tmp.product_categories",
    name="a product's categories, by name",
    given={
        "raw.products": [
            {"id": 1, "name": "Lipstick", "category_id": 2, "external_id": 5001, "type": "simple"},
            {"id": 2, "name": "Orphan", "category_id": 9, "external_id": 5002, "type": "simple"},
        ],
        "raw.categories": [{"id": 2, "category_name": "Lips"}],
    },
    expect=[{"product_id": 1, "categories": [{"categoryName": "Lips"}]}],
)

unit_test(
    "tmp.variant_images",
    name="only variant pictures, in picture order",
    given={
        "raw.variants": [{"id": 1001, "name": "Ruby", "product_id": 1}],
        "raw.pictures": [
            {"id": 2, "external_id": 1001, "type": "variant", "url": "b.jpg"},
            {"id": 1, "external_id": 1001, "type": "variant", "url": "a.jpg"},
            {"id": 3, "external_id": 1001, "type": "product", "url": "p.jpg"},
        ],
    },
    expect=[{"variant_id": 1001, "images": ["a.jpg", "b.jpg"]}],
)

unit_test(
    "tmp.variants",
    name="a variant without images, stock or purchases gets empty values",
    given={
        "raw.variants": [{"id": 1001, "name": "Ruby", "product_id": 1}],
        "tmp.variant_images": [{"variant_id": 9, "images": ["x.jpg"]}],
        "tmp.inventory_items": [{"sku_id": 9, "inventory_count": 1}],
        "tmp.item_purchase_prices": [
            {
                "sku_id": 9,
                "batch_id": 1,
                "prices": [{"purchase_price": 1.0, "currency": "EUR", "price_eur": 1.0}],
            }
        ],
    },
    expect=[
        {
            "sku_id": 1001,
            "images": [],
            "inventory_count": 0,
            "purchase_prices": [],
        }
    ],
)

unit_test(
    "tmp.product_images",
    name="only product pictures with a URL, in picture order",
    given={
        "raw.products": [
            {"id": 1, "name": "Lipstick", "category_id": 2, "external_id": 5001, "type": "simple"}
        ],
        "raw.pictures": [
            {"id": 7, "external_id": 5001, "type": "product", "url": "back.jpg"},
            {"id": 3, "external_id": 5001, "type": "product", "url": "front.jpg"},
            {"id": 4, "external_id": 5001, "type": "product", "url": None},
            {"id": 5, "external_id": 5001, "type": "variant", "url": "v.jpg"},
        ],
    },
    expect=[{"product_id": 1, "images": ["front.jpg", "back.jpg"]}],
)

unit_test(
    "tmp.products",
    name="products keep their images and categories, or get empty lists",
    given={
        "raw.products": [
            {"id": 1, "name": "Lipstick", "category_id": 2, "external_id": 5001, "type": "simple"},
            {"id": 2, "name": "Balm", "category_id": 3, "external_id": 5002, "type": "simple"},
        ],
        "tmp.product_images": [{"product_id": 1, "images": ["front.jpg"]}],
        "tmp.product_categories": [{"product_id": 1, "categories": [{"categoryName": "Lips"}]}],
    },
    expect=[
        {
            "product_id": 1,
            "external_id": "5001",
            "images": ["front.jpg"],
            "categories": [{"categoryName": "Lips"}],
        },
        {"product_id": 2, "external_id": "5002", "images": [], "categories": []},
    ],
)

unit_test(
    "final.products",
    name="one row per product with its variants and total stock",
    given={
        "tmp.products": [
            {
                "product_id": 1,
                "name": "Lipstick",
                "type": "configurable",
                "category_id": 2,
                "external_id": "5001",
                "images": ["front.jpg"],
                "categories": [{"categoryName": "Lips"}],
            }
        ],
        "tmp.variants": [
            {
                "sku_id": sku,
                "name": name,
                "product_id": 1,
                "images": [],
                "inventory_count": count,
                "purchase_prices": [],
            }
            for sku, name, count in [(1002, "Plum", 5), (1001, "Ruby", 7)]
        ],
    },
    expect=[
        {
            "id": 1,
            "total_inventory": 12,
            "variants": [
                {"skuId": 1001, "images": [], "inventoryCount": 7},
                {"skuId": 1002, "images": [], "inventoryCount": 5},
            ],
        }
    ],
)
