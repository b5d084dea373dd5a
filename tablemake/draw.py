"""Pictures of the dependency graph: Graphviz DOT, Mermaid, SVG and a standalone HTML page.

Pure functions from a ``TargetGraph`` (and optionally each node's state) to text. Nodes are
coloured by state and stale ones carry their first reason, so the picture answers "what will
be rebuilt, and why" without reading. SVG is laid out by ``layout`` (no system Graphviz).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from html import escape
from itertools import pairwise

from tablemake.graph import TargetGraph, topological_order, upstream
from tablemake.layout import Layout, Point, layered_layout
from tablemake.plan import Action, Plan


class NodeStatus(Enum):
    SOURCE = "source"
    UP_TO_DATE = "up-to-date"
    STALE = "stale"
    FAILED = "failed"
    UNKNOWN = "unknown"  # no plan was made (e.g. the warehouse has no source tables yet)


@dataclass(frozen=True)
class NodeState:
    status: NodeStatus
    reason: str | None = None  # shown under the name: the first reason it is stale


# (fill, outline) per status; colour-blind safe enough because the status is also in text.
PALETTE: Mapping[NodeStatus, tuple[str, str]] = {
    NodeStatus.SOURCE: ("#e3ebf6", "#5b7190"),
    NodeStatus.UP_TO_DATE: ("#dcf2e2", "#2e7d43"),
    NodeStatus.STALE: ("#fff0c2", "#b07d00"),
    NodeStatus.FAILED: ("#fde0df", "#c62828"),
    NodeStatus.UNKNOWN: ("#f2f2f2", "#8a8a8a"),
}
EMPHASIS = "#e67e22"  # a run's critical path, here and in the timeline
FORMATS = ("dot", "mermaid", "svg", "html")
FAILED_REASON = "its last build failed"

_XMLNS = 'xmlns="http://www.w3.org/2000/svg"'
_FONT = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace"
_NAME_CHAR, _REASON_CHAR = 7.3, 6.4  # advance of one monospace glyph at 12px / 10.5px
_REASON_MAX = 46  # longer reasons are cut in the box; the full text is in its tooltip


def node_states(
    graph: TargetGraph, plan: Plan | None, failed: Collection[str] = ()
) -> dict[str, NodeState]:
    """States from a plan: FRESH is up to date, BUILD is stale with its first reason, and a
    stale target whose last attempt failed is failed. Targets not planned are unknown."""
    states = {name: NodeState(NodeStatus.UNKNOWN) for name in graph.targets}
    states.update({name: NodeState(NodeStatus.SOURCE) for name in graph.sources})
    for planned in plan.targets if plan else ():
        if planned.action is Action.FRESH:
            states[planned.name] = NodeState(NodeStatus.UP_TO_DATE)
        elif planned.name in failed:
            states[planned.name] = NodeState(NodeStatus.FAILED, FAILED_REASON)
        else:
            first = str(planned.reasons[0]) if planned.reasons else None
            states[planned.name] = NodeState(NodeStatus.STALE, first)
    return states


def render_graph(
    graph: TargetGraph,
    fmt: str,
    *,
    only: Iterable[str] = (),
    states: Mapping[str, NodeState] | None = None,
    title: str = "tablemake",
) -> str:
    """The graph (or the upstream cone of ``only``) in one of ``FORMATS``."""
    states = states or {}
    if fmt == "dot":
        return to_dot(graph, only, states=states)
    if fmt == "mermaid":
        return to_mermaid(graph, only, states=states)
    if fmt == "svg":
        return to_svg(graph, only, states=states)
    if fmt == "html":
        return to_html(graph, only, states=states, title=title)
    raise ValueError(f"unknown graph format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _nodes(graph: TargetGraph, only: Iterable[str]) -> list[str]:
    wanted = list(only)
    keep = upstream(graph, wanted) if wanted else set(graph.deps)
    return [name for name in graph.deps if name in keep]


def _state(graph: TargetGraph, states: Mapping[str, NodeState], name: str) -> NodeState:
    if name in graph.sources:
        return NodeState(NodeStatus.SOURCE)
    return states.get(name, NodeState(NodeStatus.UNKNOWN))


def to_dot(
    graph: TargetGraph, only: Iterable[str] = (), *, states: Mapping[str, NodeState] | None = None
) -> str:
    nodes = _nodes(graph, only)
    kept = set(nodes)
    lines = [
        "digraph tablemake {",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica"];',
    ]
    for name in nodes:
        state = _state(graph, states or {}, name)
        fill, line = PALETTE[state.status]
        label = _dot_quote(name + (f"\n{state.reason}" if state.reason else ""))
        shape = ', shape=cylinder, style="filled"' if name in graph.sources else ""
        lines.append(
            f'  "{name}" [label={label}, fillcolor="{fill}", color="{line}", '
            f'class="{state.status.value}"{shape}];'
        )
    lines += [f'  "{dep}" -> "{name}";' for dep, name in graph.edges() if name in kept]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_mermaid(
    graph: TargetGraph, only: Iterable[str] = (), *, states: Mapping[str, NodeState] | None = None
) -> str:
    nodes = _nodes(graph, only)
    ids = {name: f"n{i}" for i, name in enumerate(nodes)}
    lines = ["flowchart LR"]
    used: dict[NodeStatus, list[str]] = {}
    for name in nodes:
        state = _state(graph, states or {}, name)
        text = name + (f"<br/>{state.reason}" if state.reason else "")
        text = text.replace('"', "#quot;")
        lines.append(
            f'  {ids[name]}[("{text}")]' if name in graph.sources else f'  {ids[name]}["{text}"]'
        )
        used.setdefault(state.status, []).append(ids[name])
    lines += [f"  {ids[dep]} --> {ids[name]}" for dep, name in graph.edges() if name in ids]
    for status, members in used.items():
        fill, line = PALETTE[status]
        css = status.value.replace("-", "_")  # Mermaid class names cannot contain '-'
        lines.append(f"  classDef {css} fill:{fill},stroke:{line},color:#1a1a1a")
        lines.append(f"  class {','.join(members)} {css}")
    return "\n".join(lines) + "\n"


def to_svg(
    graph: TargetGraph,
    only: Iterable[str] = (),
    *,
    states: Mapping[str, NodeState] | None = None,
    path: Sequence[str] = (),
) -> str:
    """A standalone SVG: one ``g.node`` per table and one ``path.edge`` per edge; the nodes
    and edges of ``path`` (a chain, e.g. a run's critical path) are emphasised."""
    kept = set(_nodes(graph, only))
    nodes = [n for n in topological_order(graph) if n in kept]
    shown = {name: _state(graph, states or {}, name) for name in nodes}
    edges = [(dep, name) for dep, name in graph.edges() if name in kept]
    chain = set(pairwise(path))
    layout = layered_layout(nodes, edges, {n: _box_size(n, s) for n, s in shown.items()})
    legend_y = layout.height + 4
    width, height = max(layout.width, 560.0), legend_y + 34
    parts = [
        f'<svg {_XMLNS} class="tablemake-graph" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'font-family="{_FONT}">',
        '<defs><marker id="tm-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
        'markerHeight="8" markerUnits="userSpaceOnUse" orient="auto">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#7a7a7a"/></marker></defs>',
        *(_svg_edge(edge, layout, edge in chain) for edge in edges),
        *(_svg_node(name, shown[name], layout, name in path) for name in nodes),
        _svg_legend(legend_y),
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def _box_size(name: str, state: NodeState) -> tuple[float, float]:
    reason = _short(state.reason) if state.reason else ""
    width = max(len(name) * _NAME_CHAR, len(reason) * _REASON_CHAR) + 22
    return width, (42.0 if reason else 28.0)


def _short(reason: str) -> str:
    return reason if len(reason) <= _REASON_MAX else reason[: _REASON_MAX - 1] + "…"


def _svg_node(name: str, state: NodeState, layout: Layout, emphasis: bool) -> str:
    box = layout.boxes[name]
    fill, line = PALETTE[state.status]
    line, stroke = (EMPHASIS, 3.0) if emphasis else (line, 1.4)
    radius = 13 if state.status is NodeStatus.SOURCE else 6
    tip = f"{name} ({state.status.value})" + (f": {state.reason}" if state.reason else "")
    cx = box.x + box.width / 2
    name_y = box.y + (17 if state.reason else 18.5)
    texts = [f'<text x="{cx:.1f}" y="{name_y:.1f}" font-size="12">{escape(name)}</text>']
    if state.reason:
        texts.append(
            f'<text x="{cx:.1f}" y="{box.y + 33:.1f}" font-size="10.5" fill="#444">'
            f"{escape(_short(state.reason))}</text>"
        )
    return (
        f'<g class="node {state.status.value}" data-name="{escape(name)}" '
        f'text-anchor="middle"><title>{escape(tip)}</title>'
        f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" '
        f'height="{box.height:.1f}" rx="{radius}" fill="{fill}" stroke="{line}" '
        f'stroke-width="{stroke}"/>{"".join(texts)}</g>'
    )


def _svg_edge(edge: tuple[str, str], layout: Layout, emphasis: bool) -> str:
    paint = f'stroke="{EMPHASIS}" stroke-width="2.6"' if emphasis else 'stroke="#7a7a7a"'
    return (
        f'<path class="edge" data-from="{edge[0]}" data-to="{edge[1]}" '
        f'd="{_path(layout.routes[edge])}" fill="none" {paint} marker-end="url(#tm-arrow)"/>'
    )


def _path(points: tuple[Point, ...]) -> str:
    """Curves between columns, straight lines through the columns a long edge skips."""
    (x, y), rest = points[0], points[1:]
    d = [f"M{x:.1f},{y:.1f}"]
    for i, (nx, ny) in enumerate(rest):
        if i % 2:
            d.append(f"L{nx:.1f},{ny:.1f}")
        else:
            mid = (x + nx) / 2
            d.append(f"C{mid:.1f},{y:.1f} {mid:.1f},{ny:.1f} {nx:.1f},{ny:.1f}")
        x, y = nx, ny
    return " ".join(d)


def _svg_legend(y: float) -> str:
    items, x = [], 16.0
    for status, (fill, line) in PALETTE.items():
        items.append(
            f'<rect x="{x:.0f}" y="{y:.0f}" width="14" height="14" rx="3" fill="{fill}" '
            f'stroke="{line}"/><text x="{x + 20:.0f}" y="{y + 11:.0f}" font-size="11">'
            f"{status.value}</text>"
        )
        x += 34 + len(status.value) * 6.6
    return f'<g class="legend">{"".join(items)}</g>'


def embed_svg(svg: str) -> str:
    """The SVG for inlining in HTML, where the namespace is implied: the page then holds no
    URL at all, which makes "fetches nothing" checkable by a plain text search."""
    return svg.replace(f" {_XMLNS}", "", 1)


def to_html(
    graph: TargetGraph,
    only: Iterable[str] = (),
    *,
    states: Mapping[str, NodeState] | None = None,
    title: str = "tablemake",
) -> str:
    """A page that needs nothing but itself: the SVG inline, styles inline, no scripts."""
    svg = embed_svg(to_svg(graph, only, states=states))
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)} graph</title><style>{PAGE_CSS}</style></head>\n"
        f"<body><h1>{escape(title)}: dependency graph</h1>\n"
        f'<div class="graph">{svg}</div></body></html>\n'
    )


PAGE_CSS = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;"
    "color:#1a1a1a;background:#fff}h1{font-size:20px;margin:0 0 12px}"
    "h2{font-size:16px;margin:24px 0 8px}.graph{overflow-x:auto}"
    ".node:hover rect{stroke-width:2.5}"
)
