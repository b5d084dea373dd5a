"""Scenario 4, engine overhead: the example pipeline on DuckDB with its raw tables scaled to
>= 1,000,000 products (``bench.rawdata``), rebuilt in full by ``tablemake -B -j 1`` and
``-j 2``, versus a plain Python script that runs the very same statements with the duckdb
module, one after the other.

The statements are the ones tablemake sent, read back from its run history (``sql`` of each
target in the state store), in the order a ``-j 1`` run started them; so both sides execute
identical SQL and the difference is tablemake's own cost: start-up, loading, planning
(including the scan of every source that detects changes made by any client), scheduling
and the state writes. Both are timed as whole processes, interpreter start included.

    .venv/bin/python -m bench.engine_overhead [--products 1000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.common import stats, table, tablemake, write_json
from bench.rawdata import scale_raw_tables

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_PARTS = ("Tablefile.toml", "res", "db_init", "workflow.py")  # those that exist

_DIRECT = """
import json, sys, duckdb
statements = json.load(open(sys.argv[2]))
con = duckdb.connect(sys.argv[1])
con.execute("SET enable_progress_bar = false")
for statement in statements:
    con.execute(statement)
con.close()
"""


def copy_example(destination: Path, example: Path = REPO) -> Path:
    destination.mkdir(parents=True)
    for part in EXAMPLE_PARTS:
        source = example / part
        if source.is_dir():
            shutil.copytree(source, destination / part)
        elif source.exists():
            shutil.copy2(source, destination / part)
    return destination


# The example's one Python target, as the SQL it equals (workflow.py's EUR_PER_UNIT). A Python
# target moves every row through the interpreter, which at a million products measures Python,
# not tablemake's overhead over the engine; so this bench runs the example as SQL only.
_PYTHON_TARGET = "tmp.purchase_prices_eur"
_PYTHON_TARGET_SQL = """SELECT
  pi.id,
  pi.batch_id,
  pi.purchase_price,
  pi.currency,
  ROUND(pi.purchase_price * CASE pi.currency
    WHEN 'EUR' THEN 1.0 WHEN 'USD' THEN 0.92 WHEN 'SGD' THEN 0.69 END, 2) AS price_eur
FROM `raw.purchase_items` AS pi
"""


def sql_only(root: Path) -> None:
    """Replace the example's workflow (its Python target) by the equivalent SQL target."""
    tablefile = root / "Tablefile.toml"
    lines = tablefile.read_text().splitlines()
    kept = [line for line in lines if not re.match(r"\s*workflow\s*=", line)]
    if len(kept) == len(lines):
        return  # no workflow: already SQL only
    kept += ["", f'[targets."{_PYTHON_TARGET}"]', 'deps = ["raw.purchase_items"]']
    tablefile.write_text("\n".join(kept) + "\n")
    (root / "res" / "tmp" / "purchase_prices_eur.sql").write_text(_PYTHON_TARGET_SQL)


def sent_statements(root: Path) -> list[str]:
    """The statements of the newest run, in the order they started."""
    with sqlite3.connect(root / ".state" / "state.sqlite") as db:
        rows = db.execute(
            "SELECT sql FROM run_targets WHERE run_id = "
            "(SELECT id FROM runs ORDER BY started DESC LIMIT 1) AND status = 'built' "
            "ORDER BY started"
        ).fetchall()
    return [row[0] for row in rows]


def direct(root: Path, statements_file: Path) -> float:
    began = time.perf_counter()
    warehouse = root / ".state" / "warehouse.duckdb"
    command = [sys.executable, "-c", _DIRECT, str(warehouse), str(statements_file)]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"the direct run failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - began


def run(
    products: int, runs: int, out_dir: Path | None = None, example: Path = REPO
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tm-bench-engine-") as scratch:
        root = copy_example(Path(scratch) / "shop", example)
        sql_only(root)
        tablemake(["init-db"], root)
        began = time.perf_counter()
        counts = scale_raw_tables(root / ".state" / "warehouse.duckdb", products)
        generated = time.perf_counter() - began
        tablemake(["-B", "-j", "1"], root)  # warm-up, and the statements to replay
        statements = sent_statements(root)
        statements_file = Path(scratch) / "statements.json"
        statements_file.write_text(json.dumps(statements))
        times: dict[str, list[float]] = {"direct": [], "tablemake -j 1": [], "tablemake -j 2": []}
        for _ in range(runs):  # interleaved, so drifting load hits all three alike
            times["direct"].append(direct(root, statements_file))
            times["tablemake -j 1"].append(tablemake(["-B", "-j", "1"], root).seconds)
            times["tablemake -j 2"].append(tablemake(["-B", "-j", "2"], root).seconds)
        noop_s = stats([tablemake([], root).seconds for _ in range(runs)])
    summary = {name: stats(values).as_json() for name, values in times.items()}
    base = summary["direct"]["median"]
    result = {
        "scenario": "engine_overhead",
        "runs": runs,
        "products": products,
        "raw_rows": counts,
        "generate_s": generated,
        "statements": len(statements),
        "seconds": summary,
        "noop_s": noop_s.as_json(),
        "ratio_j1": summary["tablemake -j 1"]["median"] / base,
        "ratio_j2": summary["tablemake -j 2"]["median"] / base,
        "target_ratio_j1": 1.10,
    }
    write_json("engine_overhead", result, out_dir)
    return result


def render(result: Mapping[str, Any]) -> str:
    base = result["seconds"]["direct"]["median"]
    rows = [
        (name, s["median"], s["min"], s["max"], f"{s['median'] / base:.3f}")
        for name, s in result["seconds"].items()
    ]
    noop = result["noop_s"]
    rows.append(("tablemake no-op (nothing stale)", noop["median"], noop["min"], noop["max"], ""))
    raw = ", ".join(f"{name} {count:,}" for name, count in result["raw_rows"].items())
    return table(("run", "median s", "min s", "max s", "vs direct"), rows) + f"\n\nRaw rows: {raw}."


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--products", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--example", type=Path, default=REPO, help="the example project")
    args = parser.parse_args(argv)
    print(render(run(args.products, args.runs, example=args.example)))


if __name__ == "__main__":
    main()
