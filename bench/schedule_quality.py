"""Scenario 1, schedule quality: how close tablemake's parallel schedule comes to the best
one possible, on seeded random DAGs run with the simulate backend (each target sleeps for
its heavy-tailed ``duration``).

For every DAG and ``-j N`` it reports tablemake's makespan net of fixed costs (median wall
time of ``tablemake -B -j N`` minus the median wall time of a run that builds nothing, i.e.
interpreter start, Tablefile load and planning), divided by

(a) the lower bound max(critical path, total work / N), not always reachable;
(b) the makespan of an ideal zero-overhead list schedule that always starts the ready
    target with the longest remaining path, computed here without sleeping;
(c) the makespan of that same list schedule run for real by bare threads that sleep each
    duration as the simulate backend does: the floor set by this machine's timers;

and the makespan of a level-by-level executor (all of level k before any of level k+1,
each level packed longest-first onto N workers), also computed here without sleeping with
the same durations: it is a model with zero overhead, which flatters it.

    .venv/bin/python -m bench.schedule_quality [--sizes 200 2000] [--jobs 2 4 16] [--runs 9]
"""

from __future__ import annotations

import argparse
import heapq
import statistics
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.common import last_run_span, stats, table, tablemake, write_json
from bench.genproject import SHAPES, generate

# Mean target duration per DAG size: small enough to keep the whole bench to minutes,
# large enough that a target's fixed cost (a thread hand-off, one SQLite write) is small.
MEAN_DURATION = {200: 0.05, 2000: 0.01}
FLOOR_RUNS = 3  # runs of the sleeping floor (c) per case: it is cheap and steady


def _children(deps: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    children: dict[str, list[str]] = {name: [] for name in deps}
    for name, prereqs in deps.items():
        for dep in prereqs:
            if dep in children:
                children[dep].append(name)
    return children


def remaining_paths(
    deps: Mapping[str, Sequence[str]], durations: Mapping[str, float]
) -> dict[str, float]:
    """Duration plus the longest chain after it (``deps`` is in topological order)."""
    children = _children(deps)
    rank: dict[str, float] = {}
    for name in reversed(list(deps)):
        rank[name] = durations[name] + max((rank[c] for c in children[name]), default=0.0)
    return rank


def lower_bound(
    deps: Mapping[str, Sequence[str]], durations: Mapping[str, float], jobs: int
) -> float:
    critical = max(remaining_paths(deps, durations).values())
    return max(critical, sum(durations.values()) / jobs)


def list_schedule(
    deps: Mapping[str, Sequence[str]], durations: Mapping[str, float], jobs: int
) -> float:
    """Makespan of the ideal list schedule: longest remaining path first, no overhead."""
    children = _children(deps)
    rank = remaining_paths(deps, durations)
    waiting = {name: sum(1 for d in prereqs if d in deps) for name, prereqs in deps.items()}
    ready = [(-rank[name], name) for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []
    now = 0.0
    while ready or running:
        while ready and len(running) < jobs:
            _, name = heapq.heappop(ready)
            heapq.heappush(running, (now + durations[name], name))
        now, name = heapq.heappop(running)
        for child in children[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, (-rank[child], child))
    return now


def sleeping_list_schedule(
    deps: Mapping[str, Sequence[str]], durations: Mapping[str, float], jobs: int
) -> float:
    """The ideal list schedule run for real, as a floor: ``jobs`` threads that each take
    the ready target with the longest remaining path under one lock and sleep its duration
    the way the simulate backend does, and nothing else (no plan, no records, no events).
    Its excess over (b) is what this machine's timers and thread wake-ups cost any
    scheduler that sleeps; tablemake's excess over it is tablemake's own."""
    children = _children(deps)
    rank = remaining_paths(deps, durations)
    waiting = {name: sum(1 for d in prereqs if d in deps) for name, prereqs in deps.items()}
    ready = [(-rank[name], name) for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    changed = threading.Condition()
    left = [len(deps)]  # not yet finished

    def work() -> None:
        done: str | None = None
        while True:
            with changed:
                if done is not None:
                    left[0] -= 1
                    for child in children[done]:
                        waiting[child] -= 1
                        if waiting[child] == 0:
                            heapq.heappush(ready, (-rank[child], child))
                            changed.notify()
                    if not left[0]:
                        changed.notify_all()
                while not ready and left[0]:
                    changed.wait()
                if not ready:
                    return
                _, done = heapq.heappop(ready)
            asleep = threading.Lock()
            asleep.acquire()
            asleep.acquire(timeout=durations[done])

    workers = [threading.Thread(target=work) for _ in range(jobs)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.perf_counter() - started


def level_by_level(
    deps: Mapping[str, Sequence[str]], durations: Mapping[str, float], jobs: int
) -> float:
    """Makespan when level k+1 starts only after all of level k, each level packed
    longest-first (LPT) onto ``jobs`` workers, with no overhead."""
    level: dict[str, int] = {}
    for name, prereqs in deps.items():
        level[name] = max((level[d] + 1 for d in prereqs if d in level), default=0)
    by_level: dict[int, list[float]] = {}
    for name, depth in level.items():
        by_level.setdefault(depth, []).append(durations[name])
    total = 0.0
    for depth in sorted(by_level):
        workers = [0.0] * jobs
        for seconds in sorted(by_level[depth], reverse=True):
            heapq.heapreplace(workers, workers[0] + seconds)
        total += max(workers)
    return total


def measure_case(root: Path, jobs: int, runs: int) -> dict[str, Any]:
    """No-op, build, no-op, build, ..., no-op: each build is netted against the mean of the
    no-ops just before and after it, and ``net`` is the median of those differences.

    The fixed part of both runs (~0.3-0.5 s of start-up and planning, all CPU) varies by
    up to +-30% with this VM's CPU speed, which drifts over seconds: a difference of two
    medians taken over the whole case (``net_of_medians``, also reported) carries that
    drift into the net, while a build's neighbours ran at about its own speed."""
    noops = [tablemake([], root).seconds]
    builds: list[float] = []
    spans: list[float] = []
    for _ in range(runs):
        builds.append(tablemake(["-B", "-j", str(jobs)], root).seconds)
        spans.append(last_run_span(root))
        noops.append(tablemake([], root).seconds)
    nets = [
        build - (before + after) / 2
        for build, before, after in zip(builds, noops[:-1], noops[1:], strict=True)
    ]
    noop, build, span = stats(noops), stats(builds), stats(spans)
    return {
        "noop": noop.as_json(),
        "build": build.as_json(),
        "span": span.as_json(),
        "nets": nets,
        "net": statistics.median(nets),
        "net_of_medians": build.median - noop.median,
    }


def run(
    sizes: Sequence[int], jobs_list: Sequence[int], runs: int, out_dir: Path | None = None
) -> dict[str, Any]:
    cases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tm-bench-sq-") as scratch:
        for size in sizes:
            for shape in SHAPES:
                mean = MEAN_DURATION.get(size, 0.05)
                project = generate(
                    Path(scratch) / f"{shape}-{size}", size, shape=shape, seed=1, mean_duration=mean
                )
                tablemake(["-j", str(max(jobs_list))], project.root)  # first build: records
                for jobs in jobs_list:
                    measured = measure_case(project.root, jobs, runs)
                    bound = lower_bound(project.deps, project.durations, jobs)
                    ideal = list_schedule(project.deps, project.durations, jobs)
                    levels = level_by_level(project.deps, project.durations, jobs)
                    floor = statistics.median(
                        sleeping_list_schedule(project.deps, project.durations, jobs)
                        for _ in range(FLOOR_RUNS)
                    )
                    net = measured["net"]
                    cases.append(
                        {
                            "size": size,
                            "shape": shape,
                            "jobs": jobs,
                            "mean_duration": mean,
                            "total_work": sum(project.durations.values()),
                            "lower_bound": bound,
                            "ideal_list": ideal,
                            "level_by_level": levels,
                            "sleeping_floor": floor,
                            "floor_vs_ideal": floor / ideal,
                            "tablemake": measured,
                            "tablemake_vs_bound": net / bound,
                            "tablemake_vs_ideal": net / ideal,
                            "span_vs_ideal": measured["span"]["median"] / ideal,
                            "ideal_vs_bound": ideal / bound,
                            "levels_vs_ideal": levels / ideal,
                            "levels_vs_bound": levels / bound,
                        }
                    )
                    print(_row_text(cases[-1]), flush=True)
    result = {"scenario": "schedule_quality", "runs": runs, "target": 1.05, "cases": cases}
    write_json("schedule_quality", result, out_dir)
    return result


def _row_text(case: Mapping[str, Any]) -> str:
    return (
        f"{case['size']} {case['shape']} -j{case['jobs']}: net {case['tablemake']['net']:.3f}s "
        f"ideal {case['ideal_list']:.3f}s -> {case['tablemake_vs_ideal']:.3f}x"
    )


def render(result: Mapping[str, Any]) -> str:
    rows = [
        (
            c["size"],
            c["shape"],
            c["jobs"],
            c["total_work"],
            c["lower_bound"],
            c["ideal_list"],
            c["level_by_level"],
            c["sleeping_floor"],
            f"{c['floor_vs_ideal']:.3f}",
            c["tablemake"]["build"]["median"],
            c["tablemake"]["noop"]["median"],
            c["tablemake"]["net"],
            f"{min(c['tablemake']['nets']):.3f}-{max(c['tablemake']['nets']):.3f}",
            f"{c['tablemake_vs_ideal']:.3f}",
            f"{c['tablemake']['net_of_medians'] / c['ideal_list']:.3f}",
            c["tablemake"]["span"]["median"],
            f"{c['span_vs_ideal']:.3f}",
            f"{c['tablemake_vs_bound']:.3f}",
            f"{c['ideal_vs_bound']:.3f}",
            f"{c['levels_vs_ideal']:.3f}",
        )
        for c in result["cases"]
    ]
    headers = (
        "targets",
        "shape",
        "-j",
        "work s",
        "(a) bound s",
        "(b) ideal s",
        "levels s",
        "(c) sleeping floor s",
        "(c)/(b)",
        "build wall s",
        "no-op wall s",
        "tablemake net s",
        "net range s",
        "net/(b)",
        "(build - no-op medians)/(b)",
        "in-run span s",
        "span/(b)",
        "net/(a)",
        "(b)/(a)",
        "levels/(b)",
    )
    return table(headers, rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--jobs", type=int, nargs="+", default=[2, 4, 16])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args(argv)
    print(render(run(args.sizes, args.jobs, args.runs)))


if __name__ == "__main__":
    main()
