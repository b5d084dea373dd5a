"""Graph pictures of the example: every format parses, shows the 19 edges, and colours each
node by its state; the SVG layout keeps boxes apart and edges out of boxes."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tablemake.draw import (
    FORMATS,
    PALETTE,
    NodeState,
    NodeStatus,
    render_graph,
    to_dot,
)
from tablemake.graph import TargetGraph
from tablemake.layout import Box, layered_layout
from tablemake.workspace import open_workspace

SVG = "{http://www.w3.org/2000/svg}"
STATES = {
    "tmp.variant_images": NodeState(NodeStatus.STALE, "script res/tmp/variant_images.sql changed"),
    "tmp.variants": NodeState(NodeStatus.FAILED, "its last build failed"),
    "tmp.products": NodeState(NodeStatus.UP_TO_DATE),
}


@pytest.fixture
def graph(shop: Path) -> TargetGraph:
    return open_workspace(shop).graph


def expected_status(graph: TargetGraph, name: str) -> NodeStatus:
    if name in graph.sources:
        return NodeStatus.SOURCE
    return STATES[name].status if name in STATES else NodeStatus.UNKNOWN


def parse_dot(text: str) -> tuple[dict[str, dict[str, str]], list[tuple[str, str]]]:
    """A strict parse of the subset of DOT we write: every line must be recognised."""
    lines = text.splitlines()
    assert lines[:3] == [
        "digraph tablemake {",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica"];',
    ]
    assert lines[-1] == "}"
    nodes: dict[str, dict[str, str]] = {}
    edges: list[tuple[str, str]] = []
    for line in lines[3:-1]:
        if edge := re.fullmatch(r'  "([\w.]+)" -> "([\w.]+)";', line):
            edges.append((edge[1], edge[2]))
            continue
        node = re.fullmatch(r'  "([\w.]+)" \[(.*)\];', line)
        assert node, f"unrecognised DOT line: {line!r}"
        attrs = re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|[^,\s"]+)(?:, |$)', node[2])
        assert ", ".join(f"{k}={v}" for k, v in attrs) == node[2]
        nodes[node[1]] = {k: v.strip('"') for k, v in attrs}
    return nodes, edges


def test_dot_has_every_node_and_the_19_edges_coloured_by_state(graph: TargetGraph) -> None:
    nodes, edges = parse_dot(render_graph(graph, "dot", states=STATES))
    assert set(nodes) == set(graph.deps)
    assert len(edges) == 19
    assert set(edges) == set(graph.edges())
    for name, attrs in nodes.items():
        status = expected_status(graph, name)
        assert (attrs["fillcolor"], attrs["color"]) == PALETTE[status], name
        assert attrs["class"] == status.value
    assert nodes["tmp.variant_images"]["label"] == (
        r"tmp.variant_images\nscript res/tmp/variant_images.sql changed"
    )
    assert nodes["tmp.products"]["label"] == "tmp.products"
    assert nodes["raw.products"]["shape"] == "cylinder"


def test_dot_edges_match_the_acceptance_regex(graph: TargetGraph) -> None:
    text = to_dot(graph, states=STATES)
    found = re.findall(r'"?([\w.]+)"?\s*->\s*"?([\w.]+)"?', text)
    assert sorted(found) == sorted(graph.edges())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pydot calls old pyparsing names
def test_dot_parses_with_networkx_and_pydot(graph: TargetGraph) -> None:
    import pydot
    from networkx.drawing.nx_pydot import from_pydot

    (parsed,) = pydot.graph_from_dot_data(render_graph(graph, "dot", states=STATES))
    drawn = from_pydot(parsed)
    assert set(drawn.nodes) == set(graph.deps)
    assert drawn.number_of_edges() == 19
    assert {(u, v) for u, v, *_ in drawn.edges} == set(graph.edges())
    assert drawn.nodes["tmp.variants"]["fillcolor"] == f'"{PALETTE[NodeStatus.FAILED][0]}"'


def test_target_limits_the_picture_to_its_upstream_cone(graph: TargetGraph) -> None:
    nodes, edges = parse_dot(render_graph(graph, "dot", only=["tmp.products"]))
    assert set(nodes) == {
        "tmp.products",
        "tmp.product_categories",
        "tmp.product_images",
        "raw.products",
        "raw.categories",
        "raw.pictures",
    }
    assert len(edges) == 7


def test_mermaid_structure(graph: TargetGraph) -> None:
    lines = render_graph(graph, "mermaid", states=STATES).splitlines()
    assert lines[0] == "flowchart LR"
    ids: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    classes: dict[str, str] = {}
    for line in lines[1:]:
        if node := re.fullmatch(r'  (n\d+)(?:\[\("|\[")([\w.]+)(?:<br/>[^"]*)?(?:"\)\]|"\])', line):
            ids[node[1]] = node[2]
        elif edge := re.fullmatch(r"  (n\d+) --> (n\d+)", line):
            edges.append((ids[edge[1]], ids[edge[2]]))
        elif member := re.fullmatch(r"  class ([n\d,]+) (\w+)", line):
            classes.update(dict.fromkeys(member[1].split(","), member[2]))
        else:
            assert re.fullmatch(r"  classDef \w+ fill:#\w+,stroke:#\w+,color:#\w+", line), line
    assert set(ids.values()) == set(graph.deps)
    assert sorted(edges) == sorted(graph.edges())
    by_name = {name: classes[i] for i, name in ids.items()}
    assert by_name["tmp.variants"] == "failed"
    assert by_name["tmp.products"] == "up_to_date"
    assert by_name["raw.pictures"] == "source"
    assert '["tmp.variant_images<br/>script res/tmp/variant_images.sql changed"]' in "\n".join(
        lines
    )


def svg_boxes(root: ET.Element) -> dict[str, Box]:
    boxes = {}
    for group in root.iter(f"{SVG}g"):
        if group.get("class", "").split()[0] == "node":
            rect = group.find(f"{SVG}rect")
            assert rect is not None
            box = [float(rect.get(k, "nan")) for k in ("x", "y", "width", "height")]
            boxes[group.get("data-name", "")] = Box(*box)
    return boxes


def overlap(a: Box, b: Box) -> bool:
    return (
        a.x < b.x + b.width
        and b.x < a.x + a.width
        and a.y < b.y + b.height
        and b.y < a.y + a.height
    )


def test_svg_is_well_formed_with_a_node_per_table_and_a_path_per_edge(graph: TargetGraph) -> None:
    root = ET.fromstring(render_graph(graph, "svg", states=STATES))
    assert root.tag == f"{SVG}svg"
    boxes = svg_boxes(root)
    assert set(boxes) == set(graph.deps)
    paths = [p for p in root.iter(f"{SVG}path") if p.get("class") == "edge"]
    assert sorted((p.get("data-from"), p.get("data-to")) for p in paths) == sorted(graph.edges())
    for a, b in itertools.combinations(boxes.values(), 2):
        assert not overlap(a, b)
    width, height = float(root.get("width", 0)), float(root.get("height", 0))
    assert all(b.x >= 0 and b.y >= 0 for b in boxes.values())
    assert all(b.x + b.width <= width and b.y + b.height <= height for b in boxes.values())
    failed = next(g for g in root.iter(f"{SVG}g") if g.get("data-name") == "tmp.variants")
    assert failed.get("class") == "node failed"


def test_layout_orders_layers_to_avoid_crossings() -> None:
    # b feeds x and a feeds y: drawn in declaration order the two edges would cross
    sizes = dict.fromkeys(["a", "b", "x", "y"], (40.0, 20.0))
    layout = layered_layout(["a", "b", "x", "y"], [("b", "x"), ("a", "y")], sizes)
    boxes = layout.boxes
    assert (boxes["a"].y < boxes["b"].y) == (boxes["y"].y < boxes["x"].y)


def test_long_edges_pass_beside_boxes_not_through_them(graph: TargetGraph) -> None:
    nodes = list(graph.deps)
    layout = layered_layout(nodes, graph.edges(), dict.fromkeys(nodes, (150.0, 40.0)))
    for route in layout.routes.values():
        for (x1, y), (x2, _) in zip(route[1:-1:2], route[2:-1:2], strict=True):
            for box in layout.boxes.values():
                inside_x = box.x < x2 and x1 < box.x + box.width
                assert not (inside_x and box.y <= y <= box.y + box.height)


def test_html_embeds_the_svg_and_fetches_nothing(graph: TargetGraph) -> None:
    page = render_graph(graph, "html", states=STATES, title="shop")
    assert page.startswith("<!doctype html>")
    assert '<svg class="tablemake-graph"' in page
    assert page.count('class="node ') == len(graph.deps)
    for needle in ("http://", "https://", "<script", "<link", "@import", "src="):
        assert needle not in page


def test_every_format_renders_and_unknown_ones_are_refused(graph: TargetGraph) -> None:
    assert all(render_graph(graph, fmt) for fmt in FORMATS)
    with pytest.raises(ValueError, match="unknown graph format 'png'"):
        render_graph(graph, "png")
