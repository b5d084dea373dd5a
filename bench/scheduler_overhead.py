"""Scenario 5, scheduler overhead: a full build of 10,000 zero-duration targets (simulate
backend, ``-j 8``) from an empty state store, end to end as a process. Nothing is slept, so
the wall time is all tablemake: start-up, loading, planning, scheduling, one state write
per target and the report. Also reports the schedule's own span (first start to last
finish, from the run history) and the child's CPU time.

    .venv/bin/python -m bench.scheduler_overhead [--size 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.common import last_run_span, stats, table, tablemake, write_json
from bench.genproject import generate


def run(size: int, runs: int, out_dir: Path | None = None) -> dict[str, Any]:
    walls: list[float] = []
    cpus: list[float] = []
    spans: list[float] = []
    peaks: list[float] = []
    with tempfile.TemporaryDirectory(prefix="tm-bench-sched-") as scratch:
        project = generate(Path(scratch) / "gen", size, shape="irregular", seed=4)
        for _ in range(runs):
            shutil.rmtree(project.root / ".state", ignore_errors=True)
            timed = tablemake(["-j", "8"], project.root)
            walls.append(timed.seconds)
            cpus.append(timed.cpu_seconds)
            peaks.append(timed.max_rss_mib)
            spans.append(last_run_span(project.root))
    result = {
        "scenario": "scheduler_overhead",
        "runs": runs,
        "size": size,
        "jobs": 8,
        "wall_s": stats(walls).as_json(),
        "cpu_s": stats(cpus).as_json(),
        "span_s": stats(spans).as_json(),
        "peak_rss_mib": max(peaks),
        "target_s": 5.0,
    }
    write_json("scheduler_overhead", result, out_dir)
    return result


def render(result: Mapping[str, Any]) -> str:
    rows = [
        (label, result[key]["median"], result[key]["min"], result[key]["max"])
        for label, key in (
            ("wall, whole process", "wall_s"),
            ("CPU (user + system)", "cpu_s"),
            ("schedule span (first start to last finish)", "span_s"),
        )
    ]
    return table((f"{result['size']:,} targets, -j 8", "median s", "min s", "max s"), rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    print(render(run(args.size, args.runs)))


if __name__ == "__main__":
    main()
