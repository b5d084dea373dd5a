"""The benchmarks keep running: each one, at a tiny size and one run, against the real CLI.

Timings are not asserted (speed is what ``bench/`` measures, on quiet machines); the JSON
each bench writes is, so a bench that rots fails here rather than on the day it is needed.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import engine_overhead, noop, planning_scale, schedule_quality, scheduler_overhead
from bench.genproject import edit_script, generate, pick_edit
from bench.run_all import fill


def _stats_ok(stats: dict[str, float]) -> bool:
    return stats["min"] <= stats["median"] <= stats["max"] and stats["runs"] >= 1


def _written(out: Path, name: str) -> dict:  # type: ignore[type-arg]
    document = json.loads((out / f"{name}.json").read_text())
    assert document["scenario"] == name
    assert document["machine"]["cores"] >= 1
    return document  # type: ignore[no-any-return]


def test_generated_project_is_a_dag_with_scripts(tmp_path: Path) -> None:
    project = generate(tmp_path / "p", 120, shape="layered", seed=5, mean_duration=0.1)
    seen: set[str] = set()
    for name, deps in project.deps.items():  # topological: prerequisites come first
        assert 1 <= len(deps) <= 4
        assert all(d in seen or d.startswith("raw.") for d in deps)
        assert project.script(name).read_text().count("FROM") == 1
        seen.add(name)
    assert max(project.durations.values()) <= 20 * 0.1
    typical, worst = pick_edit(project)
    assert project.downstream_count(worst) >= project.downstream_count(typical)
    before = project.script(typical).read_text()
    edit_script(project, typical)
    assert project.script(typical).read_text() != before


def test_schedule_quality_models(tmp_path: Path) -> None:
    deps = {"a": ["raw.x"], "b": ["raw.x"], "c": ["a"], "d": ["b", "c"]}
    seconds = {"a": 1.0, "b": 3.0, "c": 1.0, "d": 1.0}
    assert schedule_quality.lower_bound(deps, seconds, 2) == 4.0
    assert schedule_quality.list_schedule(deps, seconds, 2) == 4.0
    # levels: {a, b} then {c} then {d}: 3 + 1 + 1
    assert schedule_quality.level_by_level(deps, seconds, 2) == 5.0
    assert schedule_quality.list_schedule(deps, seconds, 1) == 6.0


def test_the_sleeping_floor_sleeps_the_list_schedule(tmp_path: Path) -> None:
    """Run for real, the schedule keeps the dependencies: never shorter than the ideal."""
    deps = {"a": ["raw.x"], "b": ["raw.x"], "c": ["a"], "d": ["b", "c"]}
    seconds = {"a": 0.05, "b": 0.15, "c": 0.05, "d": 0.05}
    ideal = schedule_quality.list_schedule(deps, seconds, 2)  # 0.2: b, then d
    assert ideal <= schedule_quality.sleeping_list_schedule(deps, seconds, 2) < ideal + 1.0
    one_by_one = schedule_quality.sleeping_list_schedule(deps, seconds, 1)
    assert one_by_one >= sum(seconds.values())


def test_schedule_quality_runs(tmp_path: Path) -> None:
    result = schedule_quality.run([30], [2], 1, tmp_path)
    case = _written(tmp_path, "schedule_quality")["cases"][0]
    assert case == json.loads(json.dumps(result["cases"][0]))
    assert case["lower_bound"] <= case["ideal_list"] <= case["level_by_level"]
    assert case["ideal_list"] <= case["sleeping_floor"]
    assert _stats_ok(case["tablemake"]["build"]) and _stats_ok(case["tablemake"]["span"])
    assert "net/(b)" in schedule_quality.render(result)


def test_planning_scale_runs(tmp_path: Path) -> None:
    result = planning_scale.run([100, 200], 1, tmp_path)
    sizes = _written(tmp_path, "planning_scale")["sizes"]
    assert [s["size"] for s in sizes] == [100, 200]
    for size in sizes:
        assert 1 <= size["typical"]["stale"] <= size["worst"]["stale"] <= size["size"]
        assert size["worst"]["peak_rss_mib"] > 0
    assert len(result["fit"]) == 4
    assert "Linear fit" in planning_scale.render(result)


def test_noop_runs(tmp_path: Path) -> None:
    result = noop.run(100, 1, tmp_path)
    seconds = _written(tmp_path, "noop")["seconds"]
    assert len(seconds) == 6 and all(_stats_ok(s) for s in seconds.values())
    assert result["heaviest_imports"], "python -X importtime output was not understood"


def test_scheduler_overhead_runs(tmp_path: Path) -> None:
    result = scheduler_overhead.run(100, 1, tmp_path)
    written = _written(tmp_path, "scheduler_overhead")
    assert _stats_ok(written["wall_s"]) and written["span_s"]["median"] >= 0
    assert "schedule span" in scheduler_overhead.render(result)


def test_engine_overhead_runs(tmp_path: Path) -> None:
    result = engine_overhead.run(2_000, 1, tmp_path)
    written = _written(tmp_path, "engine_overhead")
    assert written["raw_rows"]["raw.products"] >= 2_000
    assert written["statements"] >= 1
    assert set(written["seconds"]) == {"direct", "tablemake -j 1", "tablemake -j 2"}
    assert "vs direct" in engine_overhead.render(result)


def test_results_template_keeps_prose() -> None:
    text = "# R\n\nintro\n<!-- measured:x:begin -->\nold\n<!-- measured:x:end -->\nafter\n"
    filled = fill(text, "x", "new")
    assert "old" not in filled and "new" in filled and "intro" in filled and "after" in filled
    assert "<!-- measured:y:begin -->\nbody" in fill(filled, "y", "body")
