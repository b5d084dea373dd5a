"""The graph: exact cycles, selection of the upstream cone, stable topological order."""

from __future__ import annotations

from pathlib import Path

import pytest

from tablemake.errors import CycleError, UserError
from tablemake.graph import TargetGraph, build_graph, find_cycle, select_targets, topological_order
from tablemake.tablefile import parse_tablefile


@pytest.mark.parametrize(
    ("deps", "cycle"),
    [
        ({"a": ["a"]}, ["a", "a"]),
        ({"a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
        ({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}, ["a", "b", "c", "a"]),
        ({"x": [], "a": ["x", "b"], "b": ["c"], "c": ["b"]}, ["b", "c", "b"]),
    ],
)
def test_find_cycle_returns_the_exact_cycle(deps: dict[str, list[str]], cycle: list[str]) -> None:
    assert find_cycle(deps) == cycle


def test_no_cycle_in_a_long_chain_without_recursion_limits() -> None:
    deps = {f"n{i}": [f"n{i - 1}"] if i else [] for i in range(50_000)}
    assert find_cycle(deps) is None


def test_cycle_error_names_the_tablefile_line() -> None:
    text = '[targets."t.a"]\ndeps = ["t.b"]\n\n[targets."t.b"]\ndeps = ["t.a"]\n'
    with pytest.raises(CycleError) as caught:
        build_graph(parse_tablefile(text, Path("Tablefile.toml")))
    assert str(caught.value) == (
        "Tablefile.toml:1: prerequisites form a cycle: t.a -> t.b -> t.a. "
        "Remove one of these edges from the Tablefile."
    )


GRAPH = TargetGraph(
    deps={
        "raw.r": (),
        "t.a": ("raw.r",),
        "t.b": ("t.a",),
        "t.c": ("raw.r",),
        "t.d": ("t.b", "t.c"),
    },
    sources=frozenset({"raw.r"}),
)


def test_select_returns_the_upstream_cone_in_topological_order() -> None:
    assert select_targets(GRAPH, ["t.b"]) == ["t.a", "t.b"]
    assert select_targets(GRAPH, ["t.d"]) == ["t.a", "t.c", "t.b", "t.d"]
    assert topological_order(GRAPH) == ["raw.r", "t.a", "t.c", "t.b", "t.d"]


def test_selecting_a_source_or_unknown_name_is_a_user_error() -> None:
    with pytest.raises(UserError, match="`raw.r` is a source table, not a target"):
        select_targets(GRAPH, ["raw.r"])
    with pytest.raises(UserError, match="Did you mean `t.d`"):
        select_targets(GRAPH, ["t.dd"])
