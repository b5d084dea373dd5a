"""Staleness rules, one test each, on the planner alone (no warehouse involved)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tablemake import sql
from tablemake.graph import build_graph, select_targets
from tablemake.plan import Action, Observed, Plan, plan_rebuild
from tablemake.state import BuildRecord
from tablemake.tablefile import load_tablefile

TABLEFILE = """\
[sources."raw.r"]

[targets."t.a"]
deps = ["raw.r"]

[targets."t.b"]
deps = ["t.a"]

[targets."t.c"]
deps = ["raw.r"]
"""
SCRIPTS = {
    "t.a": "SELECT id FROM `raw.r`",
    "t.b": "SELECT id FROM `t.a`",
    "t.c": "SELECT COUNT(*) AS n FROM `raw.r`",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Tablefile.toml").write_text(TABLEFILE)
    (tmp_path / "res/t").mkdir(parents=True)
    for name, text in SCRIPTS.items():
        (tmp_path / f"res/t/{name[2:]}.sql").write_text(text)
    return tmp_path


def _fresh_build(project: Path) -> tuple[dict[str, BuildRecord], dict[str, str]]:
    """Records, and the scripts built, as a complete build would have left them."""
    tablefile = load_tablefile(project / "Tablefile.toml")
    records, texts = {}, {}
    for name, target in tablefile.targets.items():
        text = texts[name] = (project / target.sql).read_text()
        records[name] = BuildRecord(
            target=name,
            version=f"v-{name}",
            script_digest=sql.text_digest(text),
            definition=target.definition,
            inputs={d: ("s1" if d == "raw.r" else f"v-{d}") for d in target.deps},
            started=0.0,
            finished=1.0,
            rows=1,
            run_id="r0",
        )
    return records, texts


def _plan(project: Path, observed: Observed, *, always: bool = False) -> Plan:
    tablefile = load_tablefile(project / "Tablefile.toml")
    graph = build_graph(tablefile)
    return plan_rebuild(
        tablefile, graph, select_targets(graph, graph.targets), observed, always=always
    )


def _stale(plan: Plan) -> dict[str, list[str]]:
    return {t.name: [str(r) for r in t.reasons] for t in plan.targets if t.action is Action.BUILD}


@pytest.fixture
def observed(project: Path) -> Observed:
    records, texts = _fresh_build(project)
    return Observed(records, {"t.a", "t.b", "t.c"}, {"raw.r": "s1"}, texts.__getitem__)


def test_everything_fresh_after_a_complete_build(project: Path, observed: Observed) -> None:
    assert _stale(_plan(project, observed)) == {}


def test_never_built(project: Path, observed: Observed) -> None:
    assert _stale(_plan(project, replace(observed, records={}))) == {
        "t.a": ["never built"],
        "t.b": ["never built"],
        "t.c": ["never built"],
    }


def test_missing_table(project: Path, observed: Observed) -> None:
    stale = _stale(_plan(project, replace(observed, existing={"t.a", "t.c"})))
    assert stale == {"t.b": ["table t.b is missing from the warehouse"]}


def test_script_meaning_changed_cascades_downstream_only(project: Path, observed: Observed) -> None:
    (project / "res/t/a.sql").write_text("SELECT id FROM `raw.r` WHERE id > 0")
    assert _stale(_plan(project, observed)) == {
        "t.a": ["script res/t/a.sql changed"],
        "t.b": ["prerequisite t.a will be rebuilt"],
    }


def test_whitespace_and_comment_edit_is_not_a_change(project: Path, observed: Observed) -> None:
    (project / "res/t/a.sql").write_text("-- note\nselect   id\nfrom `raw.r`  -- end\n")
    assert _stale(_plan(project, observed)) == {}


def test_source_data_changed(project: Path, observed: Observed) -> None:
    stale = _stale(_plan(project, replace(observed, source_versions={"raw.r": "s2"})))
    assert stale == {
        "t.a": ["source raw.r changed since the last build"],
        "t.b": ["prerequisite t.a will be rebuilt"],
        "t.c": ["source raw.r changed since the last build"],
    }


def test_prerequisite_rebuilt_since(project: Path, observed: Observed) -> None:
    records = dict(observed.records)
    records["t.a"] = replace(
        records["t.a"], version="v-newer"
    )  # e.g. built alone with `tablemake t.a`
    assert _stale(_plan(project, replace(observed, records=records))) == {
        "t.b": ["prerequisite t.a was rebuilt since"]
    }


def test_tablefile_entry_changed(project: Path, observed: Observed) -> None:
    tablefile = project / "Tablefile.toml"
    tablefile.write_text(TABLEFILE.replace('deps = ["t.a"]', 'deps = ["t.a", "raw.r"]'))
    stale = _stale(_plan(project, observed))
    assert stale["t.b"][0] == "its Tablefile entry changed (script path or prerequisites)"


def test_always_make_rebuilds_everything_selected(project: Path, observed: Observed) -> None:
    plan = _plan(project, observed, always=True)
    # nothing else is stale, and "prerequisite t.a will be rebuilt" would only repeat -B
    assert _stale(plan) == {name: ["rebuild requested (-B)"] for name in ("t.a", "t.b", "t.c")}
    assert [t.level for t in plan.to_build] == [0, 0, 1]


def test_always_make_still_names_the_other_reasons(project: Path, observed: Observed) -> None:
    (project / "res/t/c.sql").write_text("SELECT COUNT(*) AS n FROM `raw.r` WHERE id > 0")
    stale = _stale(_plan(project, observed, always=True))
    assert stale["t.c"] == ["rebuild requested (-B)", "script res/t/c.sql changed"]
