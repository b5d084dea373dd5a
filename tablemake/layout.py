"""A layered (Sugiyama-style) layout of a DAG, left to right, in pure Python.

Why our own: drawing SVG must not need a system Graphviz, and the graphs here are small DAGs
for which the textbook steps are enough: longest-path layers, dummy nodes on long edges (so
edges never cross a box), barycentre sweeps that keep the order with the fewest crossings,
then coordinates. Geometry only: it knows nothing of tables, colours or SVG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

Point = tuple[float, float]
Edge = tuple[str, str]

COLUMN_GAP = 70.0  # room between layers for the edges' curves
ROW_GAP = 18.0
MARGIN = 16.0
DUMMY_HEIGHT = 6.0  # a long edge's waypoint takes a thin slot, so boxes keep clear of it
_SWEEPS = 8


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    width: float
    height: float

    @property
    def middle(self) -> float:
        return self.y + self.height / 2


@dataclass(frozen=True)
class Layout:
    boxes: Mapping[str, Box]
    routes: Mapping[Edge, tuple[Point, ...]]  # from the prerequisite's right side onwards
    width: float
    height: float


def layered_layout(
    nodes: Sequence[str], edges: Sequence[Edge], sizes: Mapping[str, tuple[float, float]]
) -> Layout:
    """Lay out ``nodes`` (in topological order) with their ``sizes`` (width, height)."""
    level = _levels(nodes, edges)
    chains = _chains(edges, level)
    layers = _layers(nodes, chains, level)
    layers = _order(layers, _links(chains))
    size = {**{d: (0.0, DUMMY_HEIGHT) for c in chains.values() for d in c[1:-1]}, **sizes}
    columns = _columns(layers, size)
    middles = _middles(layers, size, _links(chains))
    boxes = {
        name: Box(
            left + (width - size[name][0]) / 2, middles[name] - size[name][1] / 2, *size[name]
        )
        for (left, width), layer in zip(columns, layers, strict=True)
        for name in layer
    }
    routes = {edge: _route(chain, boxes, columns, level) for edge, chain in chains.items()}
    right = columns[-1][0] + columns[-1][1] if columns else 0.0
    bottom = max((b.y + b.height for b in boxes.values()), default=0.0)
    shown = {name: boxes[name] for name in nodes}
    return Layout(shown, routes, right + MARGIN, bottom + MARGIN)


def _levels(nodes: Sequence[str], edges: Sequence[Edge]) -> dict[str, int]:
    """Longest path from a node without prerequisites: every edge points to a later layer."""
    preds: dict[str, list[str]] = {name: [] for name in nodes}
    for dep, name in edges:
        preds[name].append(dep)
    level: dict[str, int] = {}
    for name in nodes:
        level[name] = max((level[d] + 1 for d in preds[name]), default=0)
    return level


def _chains(edges: Sequence[Edge], level: dict[str, int]) -> dict[Edge, list[str]]:
    """Each edge as the node path it takes, with one dummy per layer it skips (their
    levels are added to ``level``)."""
    chains: dict[Edge, list[str]] = {}
    for dep, name in edges:
        dummies = [f" {dep}>{name}#{k}" for k in range(level[dep] + 1, level[name])]
        chains[(dep, name)] = [dep, *dummies, name]
    for chain in chains.values():
        for k, dummy in enumerate(chain[1:-1], start=1):
            level[dummy] = level[chain[0]] + k
    return chains


def _layers(
    nodes: Sequence[str], chains: Mapping[Edge, list[str]], level: Mapping[str, int]
) -> list[list[str]]:
    layers: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for name in [*nodes, *(d for c in chains.values() for d in c[1:-1])]:
        layers[level[name]].append(name)
    return layers


def _links(chains: Mapping[Edge, list[str]]) -> list[Edge]:
    return [(a, b) for chain in chains.values() for a, b in pairwise(chain)]


def _order(layers: list[list[str]], links: Sequence[Edge]) -> list[list[str]]:
    """Barycentre sweeps down and up; keep the ordering with the fewest crossings seen."""
    preds: dict[str, list[str]] = {n: [] for layer in layers for n in layer}
    succs: dict[str, list[str]] = {n: [] for layer in layers for n in layer}
    for a, b in links:
        succs[a].append(b)
        preds[b].append(a)
    best, best_count = [list(layer) for layer in layers], _crossings(layers, links)
    current = best
    for sweep in range(_SWEEPS):
        down = sweep % 2 == 0
        indices = range(1, len(current)) if down else range(len(current) - 2, -1, -1)
        current = [list(layer) for layer in current]
        for i in indices:
            fixed = current[i - 1] if down else current[i + 1]
            current[i] = _by_barycentre(current[i], fixed, preds if down else succs)
        count = _crossings(current, links)
        if count < best_count:
            best, best_count = current, count
    return best


def _by_barycentre(
    layer: list[str], fixed: list[str], neighbours: Mapping[str, list[str]]
) -> list[str]:
    position = {name: i for i, name in enumerate(fixed)}

    def key(item: tuple[int, str]) -> float:
        index, name = item
        near = [position[n] for n in neighbours[name]]
        # scale own index to the fixed layer's span so unconnected nodes keep their place
        own = index * max(len(fixed) - 1, 1) / max(len(layer) - 1, 1)
        return sum(near) / len(near) if near else own

    return [name for _, name in sorted(enumerate(layer), key=key)]


def _crossings(layers: Sequence[Sequence[str]], links: Sequence[Edge]) -> int:
    """Edge crossings between adjacent layers: inversions of the lower ends when the links
    are sorted by their upper ends, counted with a Fenwick tree (O(E log V))."""
    position = {name: i for layer in layers for i, name in enumerate(layer)}
    by_layer: dict[int, list[tuple[int, int]]] = {}
    layer_of = {name: k for k, layer in enumerate(layers) for name in layer}
    for a, b in links:
        by_layer.setdefault(layer_of[a], []).append((position[a], position[b]))
    total = 0
    for k, pairs in by_layer.items():
        tree = [0] * (len(layers[k + 1]) + 1)
        for seen, (_, low) in enumerate(sorted(pairs)):
            total += seen - _prefix(tree, low + 1)
            i = low + 1
            while i < len(tree):
                tree[i] += 1
                i += i & -i
    return total


def _prefix(tree: list[int], i: int) -> int:
    """How many lower ends seen so far are at positions < i (ties do not cross)."""
    total = 0
    while i > 0:
        total += tree[i]
        i -= i & -i
    return total


def _columns(
    layers: Sequence[Sequence[str]], size: Mapping[str, tuple[float, float]]
) -> list[tuple[float, float]]:
    """(left, width) of each layer's column."""
    columns: list[tuple[float, float]] = []
    left = MARGIN
    for layer in layers:
        width = max((size[name][0] for name in layer), default=0.0)
        columns.append((left, width))
        left += width + COLUMN_GAP
    return columns


def _middles(
    layers: Sequence[Sequence[str]],
    size: Mapping[str, tuple[float, float]],
    links: Sequence[Edge],
) -> dict[str, float]:
    """Vertical centres: stacked in order, then each layer pulled towards its neighbours'
    mean while keeping its order and gaps, so chains run straight where they can."""
    neighbours: dict[str, list[str]] = {n: [] for layer in layers for n in layer}
    for a, b in links:
        neighbours[a].append(b)
        neighbours[b].append(a)
    middle: dict[str, float] = {}
    for layer in layers:
        middle.update(_stack(layer, size, {}))
    for _ in range(4):
        for layer in layers:
            wanted = {
                n: sum(middle[m] for m in neighbours[n]) / len(neighbours[n])
                for n in layer
                if neighbours[n]
            }
            middle.update(_stack(layer, size, wanted))
    top = min((middle[n] - size[n][1] / 2 for n in middle), default=0.0)
    return {n: y - top + MARGIN for n, y in middle.items()}


def _stack(
    layer: Sequence[str], size: Mapping[str, tuple[float, float]], wanted: Mapping[str, float]
) -> dict[str, float]:
    """Centres for one layer in order, no closer than ROW_GAP, shifted as a whole so that on
    average each node sits where it is wanted (top-aligned when nothing is wanted)."""
    placed: dict[str, float] = {}
    bottom = float("-inf")
    for name in layer:
        half = size[name][1] / 2
        y = max(wanted.get(name, bottom + ROW_GAP + half), bottom + ROW_GAP + half)
        if bottom == float("-inf"):
            y = wanted.get(name, half)
        placed[name] = y
        bottom = y + half
    pulls = [wanted[n] - placed[n] for n in layer if n in wanted]
    shift = sum(pulls) / len(pulls) if pulls else 0.0
    return {n: y + shift for n, y in placed.items()}


def _route(
    chain: Sequence[str],
    boxes: Mapping[str, Box],
    columns: Sequence[tuple[float, float]],
    level: Mapping[str, int],
) -> tuple[Point, ...]:
    """Waypoints: out of the prerequisite's right side, straight through each skipped
    column at its dummy's height, into the target's left side."""
    first, last = boxes[chain[0]], boxes[chain[-1]]
    points: list[Point] = [(first.x + first.width, first.middle)]
    for dummy in chain[1:-1]:
        left, width = columns[level[dummy]]
        points += [(left, boxes[dummy].middle), (left + width, boxes[dummy].middle)]
    points.append((last.x, last.middle))
    return tuple(points)
