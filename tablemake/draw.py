"""Text drawings of the dependency graph: Graphviz DOT and Mermaid.

Pure functions from a ``TargetGraph`` to text; sources are drawn apart from targets so a
reader sees at a glance where data enters.
"""

from __future__ import annotations

from collections.abc import Iterable

from tablemake.graph import TargetGraph, upstream


def _nodes(graph: TargetGraph, only: Iterable[str]) -> list[str]:
    wanted = list(only)
    keep = upstream(graph, wanted) if wanted else set(graph.deps)
    return [name for name in graph.deps if name in keep]


def to_dot(graph: TargetGraph, only: Iterable[str] = ()) -> str:
    nodes = _nodes(graph, only)
    kept = set(nodes)
    lines = ["digraph tablemake {", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
    for name in nodes:
        shape = ", shape=cylinder" if name in graph.sources else ""
        lines.append(f'  "{name}" [label="{name}"{shape}];')
    lines += [f'  "{dep}" -> "{name}";' for dep, name in graph.edges() if name in kept]
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(graph: TargetGraph, only: Iterable[str] = ()) -> str:
    nodes = _nodes(graph, only)
    ids = {name: f"n{i}" for i, name in enumerate(nodes)}
    lines = ["flowchart LR"]
    for name in nodes:
        lines.append(
            f'  {ids[name]}[("{name}")]' if name in graph.sources else f'  {ids[name]}["{name}"]'
        )
    lines += [f"  {ids[dep]} --> {ids[name]}" for dep, name in graph.edges() if name in ids]
    return "\n".join(lines) + "\n"
