"""Early cutoff on a generated project on DuckDB: an edit that leaves a table's content
unchanged, with cutoff on and off.

The generated project (bench.genproject) gets real source data (one init script per source)
and runs on the embedded DuckDB warehouse. The edit wraps one script in
``SELECT * FROM (…) WHERE TRUE``: its meaning changes (so the target is rebuilt), its rows do
not. With cutoff on, that target is rebuilt and its dependents are not; with cutoff off, the
whole downstream cone is. Both are timed as whole processes.

    .venv/bin/python -m bench.early_cutoff [--size 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.common import stats, table, tablemake, write_json
from bench.genproject import SOURCES, GeneratedProject, generate, pick_edit

SOURCE_ROWS = 2000


def duckdb_project(root: Path, size: int, *, cutoff: bool) -> GeneratedProject:
    """A generated project moved onto DuckDB, with rows in every source."""
    project = generate(root, size, shape="irregular", seed=1)
    (root / "db_init").mkdir()
    for source in SOURCES:
        table_name = source.split(".")[1]
        (root / "db_init" / f"{table_name}.sql").write_text(
            f"CREATE OR REPLACE TABLE `{source}` (id INT64, amount INT64) AS\n"
            f"SELECT x, MOD(x * 7, 100) FROM UNNEST(GENERATE_ARRAY(1, {SOURCE_ROWS})) AS x\n"
        )
    tablefile = root / "Tablefile.toml"
    text = tablefile.read_text().replace('backend = "simulate"', 'backend = "duckdb"')
    text = text.replace("[project]\n", f"[project]\ncutoff = {str(cutoff).lower()}\n", 1)
    for source in SOURCES:
        header = f'[sources."{source}"]\n'
        text = text.replace(header, f'{header}init = "db_init/{source.split(".")[1]}.sql"\n')
    tablefile.write_text(re.sub(r"(?m)^duration = .*\n", "", text))
    return project


def _built(out: str) -> int:
    return sum(1 for t in json.loads(out)["targets"] if t["status"] == "built")


def measure(scratch: Path, size: int, runs: int, *, cutoff: bool) -> dict[str, Any]:
    root = scratch / f"cutoff-{str(cutoff).lower()}"
    project = duckdb_project(root, size, cutoff=cutoff)
    edited, _ = pick_edit(project)
    script = project.script(edited)
    original = script.read_text()
    tablemake(["init-db"], root)
    full = tablemake(["-j", "2", "--json"], root)
    seconds, built = [], set()
    for _ in range(runs):
        script.write_text(f"SELECT * FROM (\n{original.strip()}\n) WHERE TRUE\n")
        run = tablemake(["-j", "2", "--json"], root)
        seconds.append(run.seconds)
        built.add(_built(run.stdout))
        script.write_text(original)  # back: rebuilt the same way next time round
        tablemake(["-j", "2"], root)
    assert len(built) == 1, f"the same edit rebuilt different counts: {built}"
    return {
        "cutoff": cutoff,
        "edited": edited,
        "cone": project.downstream_count(edited),
        "full_build_s": full.seconds,
        "rebuilt": built.pop(),
        "seconds": stats(seconds).as_json(),
    }


def run(size: int, runs: int, out_dir: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tm-bench-cutoff-") as tmp:
        cases = [measure(Path(tmp), size, runs, cutoff=c) for c in (True, False)]
    result = {"size": size, "runs": runs, "cases": cases}
    write_json("early_cutoff", result, out_dir)
    return result


def render(result: Mapping[str, Any]) -> str:
    rows: Sequence[Sequence[object]] = [
        (
            "on" if c["cutoff"] else "off",
            c["edited"],
            c["cone"],
            c["rebuilt"],
            c["seconds"]["median"],
            c["full_build_s"],
        )
        for c in result["cases"]
    ]
    headers = ("cutoff", "edited", "cone", "rebuilt", "edit rebuild s", "full build s")
    return (
        f"{result['size']} targets on DuckDB, -j 2; an edit that keeps the table's rows "
        f"(median of {result['runs']}):\n\n{table(headers, rows)}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    print(render(run(args.size, args.runs)))


if __name__ == "__main__":
    main()
