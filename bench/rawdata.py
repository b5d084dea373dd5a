"""Scale the example's raw tables up, in its DuckDB warehouse, to a chosen number of products.

Every raw table is its example rows repeated ``copies`` times, each copy with every integer
column shifted by ``copy * OFFSET``. Ids and foreign keys move together, so every join of
the example pipeline matches within a copy exactly as in the example, and every table grows
by the same factor (10 example products -> 100,000 copies for 1,000,000 products).

    .venv/bin/python -m bench.rawdata PROJECT_DIR --products 1000000
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

OFFSET = 1_000_000  # larger than any integer in the example's raw rows
INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}


def scale_raw_tables(warehouse: Path, products: int, dataset: str = "raw") -> dict[str, int]:
    """Grow every table of ``dataset`` so ``products`` has at least ``products`` rows;
    returns each table's new row count. Run after ``tablemake init-db``."""
    with duckdb.connect(str(warehouse)) as con:
        base = con.execute(f'SELECT count(*) FROM "{dataset}"."products"').fetchone()
        if base is None or base[0] == 0:
            raise SystemExit("no raw.products rows: run `tablemake init-db` first")
        copies = -(-products // int(base[0]))  # ceiling
        tables = [
            row[0]
            for row in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
                "ORDER BY table_name",
                [dataset],
            ).fetchall()
        ]
        counts: dict[str, int] = {}
        for name in tables:
            columns = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                [dataset, name],
            ).fetchall()
            select = ", ".join(
                f'"{column}" + copy * {OFFSET} AS "{column}"'
                if kind in INTEGER_TYPES
                else f'"{column}"'
                for column, kind in columns
            )
            con.execute(
                f'CREATE OR REPLACE TABLE "{dataset}"."{name}" AS SELECT {select} '
                f'FROM "{dataset}"."{name}", range({copies}) AS copies(copy)'
            )
            row = con.execute(f'SELECT count(*) FROM "{dataset}"."{name}"').fetchone()
            counts[f"{dataset}.{name}"] = int(row[0]) if row else 0
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("project", type=Path, help="a copy of the example, after init-db")
    parser.add_argument("--products", type=int, default=1_000_000)
    args = parser.parse_args()
    warehouse = args.project / ".state" / "warehouse.duckdb"
    for name, count in scale_raw_tables(warehouse, args.products).items():
        print(f"{name}: {count:,} rows")


if __name__ == "__main__":
    main()
