"""Scenario 3, no-op: ``tablemake`` when nothing is stale, as a whole process (interpreter
start included), on the example project (DuckDB, 7 sources scanned for changes, 8 targets)
and on a generated 10,000-target project (simulate). For scale it also times a bare
``python -c pass`` and ``python -c "import tablemake.cli"``, and lists the heaviest imports
of the example's no-op from ``python -X importtime``.

    .venv/bin/python -m bench.noop [--size 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.common import repeat, stats, table, tablemake, write_json
from bench.engine_overhead import REPO, copy_example
from bench.genproject import generate


def _python(args: Sequence[str], cwd: Path) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - began


def heaviest_imports(cwd: Path, count: int = 8) -> list[dict[str, Any]]:
    """Cumulative import times of the top-level packages a no-op loads."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tablemake"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    found: list[dict[str, Any]] = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split(":", 1)[1].split("|")
        top_level = not name[1:].startswith(" ")  # nested imports are indented
        if cumulative.strip().isdigit() and top_level:
            found.append({"module": name.strip(), "seconds": int(cumulative) / 1e6})
    return sorted(found, key=lambda f: -f["seconds"])[:count]


def run(size: int, runs: int, out_dir: Path | None = None, example: Path = REPO) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tm-bench-noop-") as scratch:
        shop = copy_example(Path(scratch) / "shop", example)
        tablemake(["init-db"], shop)
        tablemake([], shop)
        generated = generate(Path(scratch) / "gen", size, shape="irregular", seed=3)
        tablemake(["-j", "8"], generated.root)
        cases = {
            "python -c pass": repeat(runs, lambda: _python(["-c", "pass"], shop)),
            "python -c 'import tablemake.cli'": repeat(
                runs, lambda: _python(["-c", "import tablemake.cli"], shop)
            ),
        }
        for label, root in (
            ("example (duckdb), no-op", shop),
            (f"{size:,} targets (simulate), no-op", generated.root),
        ):
            timed = [tablemake([], root) for _ in range(runs)]
            cases[label] = stats([t.seconds for t in timed])
            cases[f"{label}: CPU (user + system)"] = stats([t.cpu_seconds for t in timed])
        imports = heaviest_imports(shop)
    result = {
        "scenario": "noop",
        "runs": runs,
        "size": size,
        "seconds": {name: s.as_json() for name, s in cases.items()},
        "targets_s": {"example": 0.5, "10000": 3.0},
        "heaviest_imports": imports,
    }
    write_json("noop", result, out_dir)
    return result


def render(result: Mapping[str, Any]) -> str:
    rows = [(name, s["median"], s["min"], s["max"]) for name, s in result["seconds"].items()]
    imports = ", ".join(f"{i['module']} {i['seconds']:.3f}s" for i in result["heaviest_imports"])
    return (
        table(("run", "median s", "min s", "max s"), rows)
        + f"\n\nHeaviest imports of the example's no-op (cumulative): {imports}."
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--example", type=Path, default=REPO, help="the example project")
    args = parser.parse_args(argv)
    print(render(run(args.size, args.runs, example=args.example)))


if __name__ == "__main__":
    main()
