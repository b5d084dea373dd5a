"""How fast the day pipeline moves rows: extract (Postgres -> parquet), load (parquet ->
DuckDB), and the idempotent rerun, on a table of N rows with every extracted type.

Runs the real CLI as a subprocess on a copy of ``examples/orders`` against a throwaway
PostgreSQL server (tests/support/postgres.py), so interpreter start is included.

    .venv/bin/python -m bench.extract_throughput --rows 1000000 --runs 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import psycopg

from bench.common import BENCH_DIR, repeat, table, tablemake, write_json
from tests.support.postgres import remove, start_postgres

EXAMPLE = BENCH_DIR.parent / "examples" / "orders"
DAY = "2026-11-23"
BIG_TABLE = """
CREATE TABLE big_events AS
SELECT i::bigint AS id, (i % 1000)::int AS customer_id, (i * 0.01)::numeric(14, 2) AS amount,
       TIMESTAMPTZ '2026-01-01' + i * INTERVAL '1 second' AS at, md5(i::text) AS note,
       i % 3 = 0 AS flag, decode(lpad(to_hex(i), 8, '0'), 'hex') AS payload,
       DATE '2020-01-01' + (i % 2000) AS day
FROM generate_series(1, %s) AS i
"""


def run(rows: int, runs: int) -> dict[str, object]:
    server = start_postgres()
    work = Path(tempfile.mkdtemp(prefix="tablemake-bench-extract-"))
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE shop")
        with psycopg.connect(server.url("shop"), autocommit=True) as conn:
            conn.execute((EXAMPLE / "db" / "shop.sql").read_text(encoding="utf-8"))
            conn.execute(BIG_TABLE.replace("%s", str(int(rows))))
        project = work / "orders"
        shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("data", ".state"))
        os.environ["SHOP_DATABASE_URL"] = server.url("shop")
        day = ("--date", DAY)
        extract = repeat(runs, lambda: tablemake(["extract", *day, "-B"], project).seconds)
        again = repeat(runs, lambda: tablemake(["extract", *day], project).seconds)
        load = repeat(runs, lambda: tablemake(["load", *day, "-B"], project).seconds)
        size = (project / "data" / "postgres" / "shop" / "big_events" / DAY).glob("*.parquet")
        megabytes = sum(p.stat().st_size for p in size) / 1e6
    finally:
        remove(server)
        shutil.rmtree(work, ignore_errors=True)
    result: dict[str, object] = {
        "scenario": "extract_throughput",
        "rows": rows,
        "parquet_mb": round(megabytes, 1),
        "extract": extract.as_json(),
        "extract_rerun": again.as_json(),
        "load": load.as_json(),
    }
    print(
        table(
            ("step", "median s", "min s", "max s", "rows/s (median)"),
            [
                (name, f"{s.median:.2f}", f"{s.min:.2f}", f"{s.max:.2f}", f"{rows / s.median:,.0f}")
                for name, s in (("extract -B", extract), ("extract (done)", again), ("load", load))
            ],
        )
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    write_json("extract_throughput", run(args.rows, args.runs))


if __name__ == "__main__":
    main()
