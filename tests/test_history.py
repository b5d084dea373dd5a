"""Run history, per-target logs and graph states, read back from real runs of the example."""

from __future__ import annotations

from pathlib import Path

import pytest

from tablemake.draw import NodeState, NodeStatus
from tablemake.errors import UserError
from tablemake.history import (
    find_run,
    format_history,
    format_log,
    format_seconds,
    last_failed,
    observe_states,
    run_history,
    target_log,
)
from tablemake.state import StateStore
from tablemake.workspace import open_session, open_workspace
from tests.conftest import Cli


@pytest.fixture
def built(shop: Path, tm: Cli) -> Path:
    """The example built once on DuckDB."""
    assert tm(shop, "init-db").code == 0
    assert tm(shop, "final.products").code == 0
    return shop


def fail_variants(shop: Path) -> None:
    with (shop / "Tablefile.toml").open("a", encoding="utf-8") as tablefile:
        tablefile.write('\n[warehouse.simulate]\nfail = ["tmp.variants"]\n')


def test_history_counts_a_duckdb_build(built: Path) -> None:
    with StateStore(built / ".state") as state:
        (run,) = run_history(state)
    assert (run.built, run.failed, run.skipped) == (9, 0, 0)
    assert (run.trigger, run.status, run.warehouse) == ("cli", "ok", "duckdb")
    assert run.seconds is not None and run.seconds > 0
    lines = format_history([run]).splitlines()
    assert lines[0].split() == [
        "run",
        "started",
        "duration",
        "built",
        "failed",
        "skipped",
        "trigger",
        "status",
    ]
    assert lines[1].split()[0] == run.id
    assert lines[1].split()[-5:] == ["9", "0", "0", "cli", "ok"]


def test_log_shows_the_translated_sql_and_the_answer(built: Path) -> None:
    with StateStore(built / ".state") as state:
        log = target_log(state, "final.products")
    assert log.entry.status == "built"
    assert log.entry.rows is not None and log.entry.rows > 0
    assert log.entry.sql is not None
    assert 'CREATE OR REPLACE TABLE "final"."products"' in log.entry.sql
    text = format_log(log)
    assert text.splitlines()[:2] == [
        f"final.products in run {log.run.id} (cli, duckdb)",
        "status:   built",
    ]
    assert f"rows:     {log.entry.rows}" in text
    assert '  CREATE OR REPLACE TABLE "final"."products"' in text


def test_newest_run_first_and_log_of_a_given_run(built: Path, tm: Cli) -> None:
    assert tm(built, "-B", "tmp.products").code == 0
    with StateStore(built / ".state") as state:
        newest, first = run_history(state)
        assert (newest.built, first.built) == (3, 9)
        assert target_log(state, "final.products").run.id == first.id
        assert target_log(state, "tmp.products").run.id == newest.id
        assert find_run(state).id == newest.id
        assert find_run(state, first.id[:-2]).id == first.id
        with pytest.raises(UserError) as missing:
            target_log(state, "final.products", newest.id)
    assert str(missing.value) == (
        f"`final.products` was not part of run {newest.id}; `tablemake history` lists the runs."
    )


def test_unknown_run_and_empty_history(shop: Path) -> None:
    with StateStore(shop / ".state") as state:
        assert run_history(state) == []
        assert format_history([]) == "no runs recorded yet\n"
        with pytest.raises(UserError, match="no run is recorded yet"):
            find_run(state)
        with pytest.raises(UserError) as unknown:
            find_run(state, "nope")
    assert str(unknown.value) == "no run `nope` is recorded; `tablemake history` lists the runs."


def test_failed_and_skipped_targets_are_counted(shop: Path, tm: Cli) -> None:
    fail_variants(shop)
    assert tm(shop, "--backend", "simulate", "-j", "4").code == 1
    with StateStore(shop / ".state") as state:
        (run,) = run_history(state)
        log = target_log(state, "tmp.variants")
        assert last_failed(state, "simulate") == {"tmp.variants"}
        assert last_failed(state, "duckdb") == set()
    assert (run.built, run.failed, run.skipped, run.status) == (7, 1, 1, "failed")
    assert log.entry.error is not None
    assert "simulated failure of tmp.variants" in log.entry.error
    assert "error:    res/tmp/variants.sql: simulated failure" in format_log(log)


def test_graph_states_follow_the_plan(built: Path) -> None:
    script = built / "res" / "tmp" / "variant_images.sql"
    script.write_text(script.read_text() + "\nLIMIT 1000000\n")
    with open_session(open_workspace(built)) as session:
        states = observe_states(session)
    assert states["raw.pictures"] == NodeState(NodeStatus.SOURCE)
    assert states["tmp.products"] == NodeState(NodeStatus.UP_TO_DATE)
    assert states["tmp.variant_images"] == NodeState(
        NodeStatus.STALE, "script res/tmp/variant_images.sql changed"
    )
    assert states["tmp.variants"] == NodeState(
        NodeStatus.STALE, "prerequisite tmp.variant_images will be rebuilt"
    )


def test_graph_states_mark_the_last_failure(shop: Path, tm: Cli) -> None:
    fail_variants(shop)
    tm(shop, "--backend", "simulate")
    with open_session(open_workspace(shop, backend="simulate")) as session:
        states = observe_states(session)
    assert states["tmp.variants"] == NodeState(NodeStatus.FAILED, "its last build failed")
    assert states["final.products"] == NodeState(NodeStatus.STALE, "never built")
    assert states["tmp.products"] == NodeState(NodeStatus.UP_TO_DATE)


def test_graph_states_before_the_sources_exist_are_unknown(shop: Path) -> None:
    with open_session(open_workspace(shop)) as session:
        states = observe_states(session, ["tmp.products"])
    assert states["tmp.products"] == NodeState(NodeStatus.UNKNOWN)
    assert states["raw.products"] == NodeState(NodeStatus.SOURCE)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0.5, "0.50s"), (59.994, "59.99s"), (75, "1m15s"), (3725, "1h02m")],
)
def test_format_seconds(seconds: float | None, text: str) -> None:
    assert format_seconds(seconds) == text
