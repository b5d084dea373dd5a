"""The dependency graph of tables: edges, selection, topological order, cycles.

Built once from a Tablefile; knows nothing of SQL, state or warehouses. Cycle detection is
our own iterative DFS so the error can carry the exact cycle (networkx is used only by
``check`` and drawings).
"""

from __future__ import annotations

import difflib
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tablemake.errors import CycleError, UserError
from tablemake.tablefile import Tablefile


@dataclass(frozen=True)
class TargetGraph:
    """Prerequisites of every node (sources have none) and which nodes are sources."""

    deps: Mapping[str, tuple[str, ...]]
    sources: frozenset[str]

    @property
    def targets(self) -> list[str]:
        return [name for name in self.deps if name not in self.sources]

    def dependents(self) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {name: [] for name in self.deps}
        for name, deps in self.deps.items():
            for dep in deps:
                result[dep].append(name)
        return result

    def edges(self) -> list[tuple[str, str]]:
        """(prerequisite, target) pairs in file order."""
        return [(dep, name) for name, deps in self.deps.items() for dep in deps]


def build_graph(tablefile: Tablefile) -> TargetGraph:
    deps: dict[str, tuple[str, ...]] = dict.fromkeys(tablefile.sources, ())
    deps.update({name: target.deps for name, target in tablefile.targets.items()})
    graph = TargetGraph(deps=deps, sources=frozenset(tablefile.sources))
    cycle = find_cycle(graph.deps)
    if cycle:
        raise CycleError(cycle, tablefile.where("targets", cycle[0]))
    return graph


def find_cycle(deps: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One cycle as ``[a, b, …, a]`` following prerequisite edges, or None.

    Iterative, so a 100,000-node chain cannot hit Python's recursion limit.
    """
    done: set[str] = set()
    for root in deps:
        if root in done:
            continue
        path: list[str] = [root]
        on_path = {root}
        stack = [iter(deps.get(root, ()))]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                continue
            if child in on_path:
                return [*path[path.index(child) :], child]
            if child in done:
                continue
            path.append(child)
            on_path.add(child)
            stack.append(iter(deps.get(child, ())))
    return None


def select_targets(graph: TargetGraph, names: Iterable[str]) -> list[str]:
    """The named targets and every target upstream of them, in topological order.

    Naming a source is an error: sources are not built, only read.
    """
    wanted = list(names)
    for name in wanted:
        if name in graph.sources:
            raise UserError(
                f"`{name}` is a source table, not a target: tablemake reads it but does not "
                "build it. Load it with `tablemake init-db`."
            )
        if name not in graph.deps:
            close = difflib.get_close_matches(name, graph.targets, n=1)
            hint = f" Did you mean `{close[0]}`?" if close else ""
            raise UserError(f"unknown target `{name}`: it is not declared in the Tablefile.{hint}")
    cone = upstream(graph, wanted)
    return [name for name in topological_order(graph) if name in cone and name not in graph.sources]


def upstream(graph: TargetGraph, names: Iterable[str]) -> set[str]:
    """The names and everything they depend on, transitively."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph.deps[name])
    return seen


def topological_order(graph: TargetGraph) -> list[str]:
    """Kahn's algorithm, ties broken by Tablefile order so output is stable."""
    waiting = {name: len(deps) for name, deps in graph.deps.items()}
    dependents = graph.dependents()
    ready = deque(name for name, count in waiting.items() if count == 0)
    order: list[str] = []
    while ready:
        name = ready.popleft()
        order.append(name)
        for child in dependents[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    return order
