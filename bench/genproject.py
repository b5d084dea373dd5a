"""Seeded, generated tablemake projects for the benchmarks: a Tablefile, one real SQL file
per target, and the DAG and durations the bench needs to compute its reference schedules.

Two shapes, because schedulers fail in different ways on them:

- ``layered``: targets sit in layers (like staging -> intermediate -> marts) and read 1-4
  targets of the layers just above; levels are wide and regular.
- ``irregular``: each target reads 1-4 earlier targets, most of them recent, some far back;
  chains of very different lengths run side by side, which is where a level-by-level
  executor waits behind the slowest target of every level.

Durations are heavy-tailed (log-normal, capped at 20x the mean): most targets are quick and
a few are very slow, as in real warehouses.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

SOURCES = ("raw.events", "raw.users", "raw.orders", "raw.items")
SHAPES = ("layered", "irregular")


@dataclass(frozen=True)
class GeneratedProject:
    root: Path
    deps: dict[str, list[str]]  # target -> prerequisites (targets and sources), topological
    durations: dict[str, float]  # target -> seconds (the Tablefile's `duration`)

    def script(self, name: str) -> Path:
        dataset, table = name.split(".", 1)
        return self.root / "res" / dataset / f"{table}.sql"

    def downstream_count(self, name: str) -> int:
        """How many targets an edit of ``name``'s script makes stale (itself included)."""
        children = self.children
        seen = {name}
        todo = [name]
        while todo:
            for child in children[todo.pop()]:
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        return len(seen)

    @cached_property
    def children(self) -> dict[str, list[str]]:
        children: dict[str, list[str]] = {name: [] for name in self.deps}
        for name, prereqs in self.deps.items():
            for dep in prereqs:
                if dep in children:
                    children[dep].append(name)
        return children


def heavy_tailed(rng: random.Random, mean: float) -> float:
    """Log-normal with sigma 1 scaled to ``mean``, capped at 20x the mean, in ms steps."""
    if mean <= 0:
        return 0.0
    sigma = 1.0
    value = rng.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma)
    return round(min(value, 20 * mean), 3)


def _domains(count: int) -> int:
    """Real projects are many loosely linked areas (~250 tables each), not one hairball."""
    return max(1, count // 250)


def _layered_deps(rng: random.Random, names: list[str], fan: tuple[int, int]) -> list[list[str]]:
    layers = max(2, min(12, round(len(names) ** 0.5 / 2)))
    bounds = [round(len(names) * k / layers) for k in range(layers + 1)]
    window = len(names) / layers / _domains(len(names))
    result: list[list[str]] = []
    for layer in range(layers):
        start, end = bounds[layer], bounds[layer + 1]
        for index in range(start, end):
            if layer == 0:
                result.append(rng.sample(SOURCES, rng.randint(1, 2)))
                continue
            # mostly the same area of the layer just above, sometimes two layers up, rarely
            # anywhere above
            above = max(0, layer - 2) if rng.random() < 0.3 else layer - 1
            low, high = bounds[above], bounds[above + 1]
            if rng.random() < 0.95:
                centre = low + (index - start) / (end - start) * (high - low)
                low = max(low, int(centre - window / 2))
                high = min(high, max(low + 1, int(centre + window / 2)))
            pool = names[low:high]
            result.append(rng.sample(pool, min(len(pool), rng.randint(*fan))))
    return result


def _irregular_deps(rng: random.Random, names: list[str], fan: tuple[int, int]) -> list[list[str]]:
    size = len(names) / _domains(len(names))
    result: list[list[str]] = []
    for index in range(len(names)):
        first = int(index // size * size)  # the first target of this one's area
        if index - first < 4 or rng.random() < 0.02:  # fresh roots along the way
            result.append(rng.sample(SOURCES, rng.randint(1, 2)))
            continue
        picked: set[str] = set()
        for _ in range(rng.randint(*fan)):
            draw = rng.random()
            if draw < 0.8:  # recent work in the same area
                picked.add(names[rng.randrange(max(first, index - 20), index)])
            elif draw < 0.97:  # anything earlier in the area
                picked.add(names[rng.randrange(first, index)])
            else:  # a shared table of another area
                picked.add(names[rng.randrange(0, index)])
        result.append(sorted(picked))
    return result


def _script(deps: Sequence[str], index: int) -> str:
    """A plausible staging SELECT over the prerequisites: a join chain with a filter."""
    first, *rest = deps
    lines = [
        f"-- generated target {index}",
        "SELECT",
        "  a0.id,",
        # MOD keeps amounts bounded: summed down a deep chain they would overflow INT64
        "  MOD("
        + " + ".join(f"COALESCE(a{k}.amount, 0)" for k in range(len(deps)))
        + ", 1000003) AS amount,",
        f"  CONCAT('t{index}-', CAST(a0.id AS STRING)) AS label",
        f"FROM `{first}` AS a0",
    ]
    lines += [f"LEFT JOIN `{dep}` AS a{k} ON a{k}.id = a0.id" for k, dep in enumerate(rest, 1)]
    lines.append(f"WHERE a0.id % {index % 7 + 2} <> 1")
    return "\n".join(lines) + "\n"


def generate(
    root: Path,
    count: int,
    *,
    shape: str = "irregular",
    seed: int = 0,
    mean_duration: float = 0.0,
    fan: tuple[int, int] = (1, 4),
    jobs: int = 1,
) -> GeneratedProject:
    """Write a project of ``count`` targets under ``root`` (created; must not hold one)."""
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}, not {shape!r}")
    rng = random.Random(f"{seed}:{shape}:{count}")
    names = [f"{'stg' if i % 3 else 'mart'}.t{i:06d}" for i in range(count)]
    shaped = _layered_deps if shape == "layered" else _irregular_deps
    deps = dict(zip(names, shaped(rng, names, fan), strict=True))
    durations = {name: heavy_tailed(rng, mean_duration) for name in names}
    for dataset in ("stg", "mart"):
        (root / "res" / dataset).mkdir(parents=True, exist_ok=True)
    project = GeneratedProject(root, deps, durations)
    lines = [
        f'[project]\nname = "bench-{shape}-{count}"\njobs = {jobs}\n',
        '[warehouse]\nbackend = "simulate"\n',
    ]
    lines += [f'[sources."{source}"]\n' for source in SOURCES]
    for index, name in enumerate(names):
        project.script(name).write_text(_script(deps[name], index))
        quoted = ", ".join(f'"{dep}"' for dep in deps[name])
        lines.append(f'[targets."{name}"]\ndeps = [{quoted}]\nduration = {durations[name]}\n')
    (root / "Tablefile.toml").write_text("\n".join(lines))
    return project


def edit_script(project: GeneratedProject, name: str, *, meaning: bool = True) -> None:
    """Change a target's script: its meaning (a new filter constant), or only a comment."""
    path = project.script(name)
    text = path.read_text()
    if meaning:
        path.write_text(text.replace(" <> 1\n", " <> 0\n", 1))
    else:
        path.write_text("-- reviewed\n" + text)


def pick_edit(project: GeneratedProject, sample: int = 101) -> tuple[str, str]:
    """(typical, worst): among a seeded sample of targets (an edit is as likely anywhere),
    the one whose edit makes the median number of targets stale; and among the first
    targets (the roots everything grows from), the one making the most stale. Cones are
    counted one search at a time: all of them at once would need memory quadratic in size."""
    names = list(project.deps)
    rng = random.Random(len(names))
    picked = rng.sample(names, min(sample, len(names)))
    ranked = sorted((project.downstream_count(name), name) for name in picked)
    worst = max(names[:20], key=project.downstream_count)
    return ranked[len(ranked) // 2][1], worst
