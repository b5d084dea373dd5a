"""The run report of a real simulated ``-j 4`` build of the example: every target with its
timings, worker slots that never overlap, the critical path marked, and a browser draws it."""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from unittest.mock import patch

import pytest

from tablemake.cli import main
from tablemake.errors import UserError
from tablemake.graph import TargetGraph
from tablemake.history import format_seconds
from tablemake.state import RunRecord, StateStore, TargetRunRecord
from tablemake.timeline import assign_slots, critical_path, render_run_report, report_for_run
from tablemake.workspace import open_workspace
from tests.conftest import REPO, copy_example
from tests.support.chromium import dump_dom, screenshot

EXPECTED_CRITICAL = [
    "tmp.purchase_prices_eur",
    "tmp.item_purchase_prices",
    "tmp.variants",
    "final.products",
]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example built once with ``--backend simulate -j 4`` (about 1.3 s of sleeps)."""
    shop = copy_example(tmp_path_factory.mktemp("simulated") / "shop")
    # the CLI records sys.argv as the run's command: make it what a user would have typed
    with patch.object(sys, "argv", ["tablemake", "--backend", "simulate", "-j", "4"]):
        assert main(["-C", str(shop), "--backend", "simulate", "-j", "4", "--json"]) == 0
    return shop


def read_run(shop: Path) -> tuple[RunRecord, list[TargetRunRecord], TargetGraph]:
    with StateStore(shop / ".state") as state:
        run = state.runs(1)[0]
        return run, state.run_targets(run.id), open_workspace(shop).graph


def row(page: str, target: str) -> str:
    found = re.search(rf'<tr class="[^"]*" data-target="{re.escape(target)}">(.*?)</tr>', page)
    assert found, f"no table row for {target}"
    return found[1]


def test_report_lists_every_target_with_its_timings(simulated: Path) -> None:
    run, targets, graph = read_run(simulated)
    page = render_run_report(run, targets, graph)
    assert {t.target for t in targets} == set(graph.targets)
    for entry in targets:
        assert entry.started is not None and entry.finished is not None
        cells = row(page, entry.target)
        assert f"<td>{format_seconds(entry.finished - entry.started)}</td>" in cells
        assert f"<td>+{format_seconds(entry.started - run.started)}</td>" in cells
        assert '<span class="status built">built</span>' in cells
    assert page.count('<g class="bar built') == 9
    assert f"<h1>Run {run.id} " in page
    assert '<div class="fact built"><span>built</span><b>9</b></div>' in page
    assert '<div class="fact trigger"><span>trigger</span><b>cli</b></div>' in page
    for needle in ("http://", "https://", "<script", "<link", "src="):
        assert needle not in page


def test_worker_slots_never_overlap_and_fit_in_j(simulated: Path) -> None:
    _, targets, _ = read_run(simulated)
    slots = assign_slots(targets)
    assert set(slots) == {t.target for t in targets}
    assert max(slots.values()) < 4
    for slot in set(slots.values()):
        spans = sorted(
            (t.started or 0.0, t.finished or 0.0) for t in targets if slots[t.target] == slot
        )
        assert all(end <= start for (_, end), (start, _) in pairwise(spans))


def test_critical_path_is_marked(simulated: Path) -> None:
    run, targets, graph = read_run(simulated)
    assert critical_path(targets, graph) == EXPECTED_CRITICAL
    page = render_run_report(run, targets, graph)
    marked = re.findall(r'<g class="bar built critical" data-target="([\w.]+)">', page)
    assert marked == EXPECTED_CRITICAL  # bars are in start order
    rows = re.findall(r'<tr class="critical" data-target="([\w.]+)">', page)
    assert rows == EXPECTED_CRITICAL
    assert all("<td>★</td>" in row(page, name) for name in rows)


def record(
    target: str, start: float | None, end: float | None, status: str = "built"
) -> TargetRunRecord:
    return TargetRunRecord("r", target, status, start, end, None, None)


def test_slots_are_the_lowest_free_worker() -> None:
    records = [
        record("a", 0, 1),
        record("b", 0, 2),
        record("c", 1, 3),
        record("d", 2, 2.5),
        record("e", 2.5, 4),
        record("skipped", None, None, "skipped"),
    ]
    assert assign_slots(records) == {"a": 0, "b": 1, "c": 0, "d": 1, "e": 1}


def test_critical_path_follows_the_longest_dependent_chain() -> None:
    graph = TargetGraph(
        deps={"s": (), "a": ("s",), "b": ("s",), "c": ("a", "b"), "d": ("b",)},
        sources=frozenset({"s"}),
    )
    records: Sequence[TargetRunRecord] = [
        record("a", 0, 1),
        record("b", 0, 3),
        record("c", 3, 4),
        record("d", 3, 3.5),
    ]
    assert critical_path(records, graph) == ["b", "c"]


def test_failed_run_shows_the_error(shop: Path) -> None:
    with (shop / "Tablefile.toml").open("a", encoding="utf-8") as tablefile:
        tablefile.write('\n[warehouse.simulate]\nfail = ["tmp.variants"]\n')
    assert main(["-C", str(shop), "--backend", "simulate", "-j", "4", "--json"]) == 1
    graph = open_workspace(shop).graph
    with StateStore(shop / ".state") as state:
        page = report_for_run(state, graph)
        with pytest.raises(UserError, match="no run `nope` is recorded"):
            report_for_run(state, graph, "nope")
    assert '<span class="status failed">failed</span></h1>' in page
    assert '<div class="fact failed bad"><span>failed</span><b>1</b></div>' in page
    assert "simulated failure of tmp.variants" in row(page, "tmp.variants")
    assert '<span class="status skipped">skipped</span>' in row(page, "final.products")
    assert page.count('<g class="bar failed') == 1


@pytest.mark.timeout(1500)  # the first call may apt-get install Chromium
def test_chromium_draws_the_timeline(simulated: Path, tmp_path: Path) -> None:
    """Renders the report headless; keeps the screenshot in tmp_path as the test artifact.
    With UPDATE_REPORT_SCREENSHOT=1 it also refreshes docs/report.png for the README."""
    run, targets, graph = read_run(simulated)
    page = tmp_path / "report.html"
    page.write_text(render_run_report(run, targets, graph), encoding="utf-8")
    dom = dump_dom(page)
    assert len(re.findall(r'<g class="bar built', dom)) == 9
    assert dom.count("<rect") >= 9 + len(graph.deps)
    png = screenshot(page, tmp_path / "report.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")) == (1400, 900)
    assert len(data) > 40_000  # a blank page is a few kB; the drawn report is far more
    if os.environ.get("UPDATE_REPORT_SCREENSHOT") == "1":
        shutil.copy(png, REPO / "docs" / "report.png")
