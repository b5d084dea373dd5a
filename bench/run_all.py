"""Run every benchmark and regenerate ``bench/RESULTS.md`` and ``bench/results/*.json``.

    .venv/bin/python -m bench.run_all            # the full set (about half an hour on 2 cores)
    .venv/bin/python -m bench.run_all --quick    # small sizes and 1 run: minutes, a smoke run

RESULTS.md is written from a template: the measured tables go between the marker lines, the
interpretation around them is kept as written (it is prose about the numbers, updated by hand
when they change their meaning).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import (
    dbt_compare,
    early_cutoff,
    engine_overhead,
    noop,
    planning_scale,
    schedule_quality,
    scheduler_overhead,
)
from bench.common import BENCH_DIR, RESULTS_DIR, machine

RESULTS_MD = BENCH_DIR / "RESULTS.md"
BEGIN, END = "<!-- measured:{name}:begin -->", "<!-- measured:{name}:end -->"


@dataclass(frozen=True)
class Bench:
    name: str
    run: Callable[[Path], dict[str, Any]]
    render: Callable[[dict[str, Any]], str]


def benches(quick: bool) -> list[Bench]:
    runs = 1 if quick else 5
    # The net makespan is the difference of two medians (build, no-op) whose fixed part,
    # ~0.3-0.5 s of start-up and planning, varies by +-20% on these VMs: 9 runs each.
    schedule_runs = 1 if quick else 9
    return [
        Bench(
            "schedule_quality",
            lambda out: schedule_quality.run(
                [60] if quick else [200, 2000],
                [2, 16] if quick else [2, 4, 16],
                schedule_runs,
                out,
            ),
            schedule_quality.render,
        ),
        Bench(
            "planning_scale",
            lambda out: planning_scale.run(
                [200, 400] if quick else [1000, 10000, 100000], runs, out
            ),
            planning_scale.render,
        ),
        Bench("noop", lambda out: noop.run(500 if quick else 10000, runs, out), noop.render),
        Bench(
            "scheduler_overhead",
            lambda out: scheduler_overhead.run(500 if quick else 10000, runs, out),
            scheduler_overhead.render,
        ),
        Bench(
            "engine_overhead",
            lambda out: engine_overhead.run(20_000 if quick else 1_000_000, runs, out),
            engine_overhead.render,
        ),
        Bench(
            "early_cutoff",
            lambda out: early_cutoff.run(100 if quick else 1000, runs, out),
            early_cutoff.render,
        ),
        Bench(
            "dbt_compare",
            lambda out: dbt_compare.run(30 if quick else 1000, runs, out),
            dbt_compare.render,
        ),
    ]


def fill(template: str, name: str, body: str) -> str:
    """Put ``body`` between the markers of ``name`` (appended with markers if missing)."""
    begin, end = BEGIN.format(name=name), END.format(name=name)
    if begin not in template:
        return f"{template.rstrip()}\n\n## {name}\n\n{begin}\n{body}\n{end}\n"
    head, rest = template.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run each")
    parser.add_argument("--only", nargs="+", help="run only these benches")
    parser.add_argument("--results", type=Path, default=RESULTS_MD)
    parser.add_argument("--json-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    template = args.results.read_text() if args.results.exists() else "# Benchmark results\n"
    info = machine()
    header = (
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {info['cpu']} "
        f"({info['cores']} cores), Python {info['python']}, DuckDB {info['duckdb']}, "
        f"sqlglot {info['sqlglot']}; load average at start {info['load_average_1min']:.2f}."
    )
    template = fill(template, "machine", header)
    for bench in benches(args.quick):
        if args.only and bench.name not in args.only:
            continue
        began = time.perf_counter()
        print(f"== {bench.name}", flush=True)
        result = bench.run(args.json_dir)
        body = bench.render(result)
        print(body, flush=True)
        took = time.perf_counter() - began
        template = fill(template, bench.name, f"{body}\n\n(bench took {took:.0f} s)")
        args.results.write_text(template)  # after each bench: a crash keeps what ran
    args.results.write_text(template)


if __name__ == "__main__":
    main()
