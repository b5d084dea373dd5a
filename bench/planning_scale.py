"""Scenario 2, planning scale: ``tablemake -n`` on generated projects of 1,000 / 10,000 /
100,000 targets (real SQL files, fan-in 1-4, the ``irregular`` shape), after a full
simulated build (zero durations, ``-j 8``), with one edited script.

Two edits per size: a *typical* one (the target whose edit makes the median number of
targets stale, over all targets) and the *worst* one (the target with the largest
downstream cone). Reports wall time (median, min, max), the child's peak memory, the
number of targets ``-n`` lists, and a least-squares line through (targets, seconds).

    .venv/bin/python -m bench.planning_scale [--sizes 1000 10000 100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.common import stats, table, tablemake, write_json
from bench.genproject import edit_script, generate, pick_edit


def linear_fit(points: Sequence[tuple[float, float]]) -> dict[str, float]:
    """Least squares seconds = a + b * targets, and the worst relative residual."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sxx if sxx else 0.0
    intercept = mean_y - slope * mean_x
    worst = max((abs(intercept + slope * x - y) / y for x, y in points if y), default=0.0)
    return {
        "intercept_s": intercept,
        "per_1000_targets_s": slope * 1000,
        "max_relative_residual": worst,
    }


def _dry_run(root: Path, runs: int) -> dict[str, Any]:
    seconds: list[float] = []
    cpu: list[float] = []
    peak = 0.0
    stale = 0
    for _ in range(runs):
        timed = tablemake(["-n", "--json"], root)
        seconds.append(timed.seconds)
        cpu.append(timed.cpu_seconds)
        peak = max(peak, timed.max_rss_mib)
        document = json.loads(timed.stdout)
        stale = sum(1 for t in document["targets"] if t["status"] == "would-build")
    return {
        "seconds": stats(seconds).as_json(),
        "cpu_seconds": stats(cpu).as_json(),
        "peak_rss_mib": peak,
        "stale": stale,
    }


def measure_size(scratch: Path, size: int, runs: int) -> dict[str, Any]:
    began = time.perf_counter()
    project = generate(scratch / f"plan-{size}", size, shape="irregular", seed=2)
    generated = time.perf_counter() - began
    build = tablemake(["-j", "8"], project.root)
    typical, worst = pick_edit(project)
    results: dict[str, Any] = {
        "size": size,
        "generate_s": generated,
        "full_build_s": build.seconds,
        "full_build_peak_rss_mib": build.max_rss_mib,
    }
    for label, name in (("typical", typical), ("worst", worst)):
        original = project.script(name).read_text()
        edit_script(project, name)
        results[label] = {"edited": name, **_dry_run(project.root, runs)}
        project.script(name).write_text(original)
    return results


def run(sizes: Sequence[int], runs: int, out_dir: Path | None = None) -> dict[str, Any]:
    measured: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tm-bench-plan-") as scratch:
        for size in sizes:
            measured.append(measure_size(Path(scratch), size, runs))
            typical = measured[-1]["typical"]
            print(f"{size}: -n {typical['seconds']['median']:.3f}s", flush=True)
    fits = {
        f"{label}, {measure}": linear_fit(
            [(m["size"], m[label][measure]["median"]) for m in measured]
        )
        for label in ("typical", "worst")
        for measure in ("seconds", "cpu_seconds")
    }
    result = {
        "scenario": "planning_scale",
        "runs": runs,
        "targets_s": {"10000": 2.0, "100000": 20.0},
        "target_peak_rss_mib": 1024,
        "sizes": measured,
        "fit": fits,
    }
    write_json("planning_scale", result, out_dir)
    return result


def render(result: Mapping[str, Any]) -> str:
    rows = []
    for m in result["sizes"]:
        for label in ("typical", "worst"):
            case = m[label]
            rows.append(
                (
                    m["size"],
                    label,
                    case["edited"],
                    case["stale"],
                    case["seconds"]["median"],
                    case["seconds"]["min"],
                    case["seconds"]["max"],
                    case["cpu_seconds"]["median"],
                    f"{case['peak_rss_mib']:.0f}",
                    m["full_build_s"],
                )
            )
    headers = (
        "targets",
        "edit",
        "edited script's target",
        "stale",
        "-n median s",
        "min s",
        "max s",
        "CPU s",
        "peak MiB",
        "full build -j 8 s",
    )
    fit_rows = [
        (
            label,
            f"{fit['intercept_s']:.3f}",
            f"{fit['per_1000_targets_s']:.4f}",
            f"{fit['max_relative_residual']:.2f}",
        )
        for label, fit in result["fit"].items()
    ]
    fit_table = table(("edit", "fixed s", "s per 1,000 targets", "max relative residual"), fit_rows)
    return table(headers, rows) + "\n\nLinear fit of the -n medians (wall and CPU):\n\n" + fit_table


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    print(render(run(args.sizes, args.runs)))


if __name__ == "__main__":
    main()
