"""Conditional targets: a condition evaluated at plan time leaves a target (and what needs
it) out of the run, shown as skipped with its reason in ``-n`` and in the run's outcome."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.conftest import Cli

TABLEFILE = """\
[project]
workflow = "flow.py"

[params]
run_date = "DATE"
country = "STRING"

[sources."raw.orders"]
init = "db_init/orders.sql"

[targets."tmp.by_country"]
deps = ["raw.orders"]
only_if = "country"

[targets."final.report"]
deps = ["tmp.by_country"]
"""
FLOW = """
from tablemake.dsl import target

@target(
    "tmp.weekday_rows",
    deps=["raw.orders"],
    condition=("only on weekdays", lambda run_date: run_date.weekday() < 5),
)
def weekday_rows(orders, run_date):
    return [{"day": run_date, "n": len(orders)}]

def is_january(run_date):
    '''only in January'''
    return run_date.month == 1

@target("tmp.january", condition=is_january)
def january():
    return [{"ok": True}]
"""


@pytest.fixture
def project(tmp_path: Path, tm: Cli) -> Path:
    project = tmp_path / "p"
    (project / "db_init").mkdir(parents=True)
    (project / "res/tmp").mkdir(parents=True)
    (project / "res/final").mkdir(parents=True)
    (project / "Tablefile.toml").write_text(TABLEFILE)
    (project / "db_init/orders.sql").write_text(
        "CREATE OR REPLACE TABLE `raw.orders` (id INT64, country STRING) AS "
        "SELECT 1, 'SG' UNION ALL SELECT 2, 'FR'"
    )
    (project / "res/tmp/by_country.sql").write_text(
        "SELECT id FROM `raw.orders` WHERE country = @country"
    )
    (project / "res/final/report.sql").write_text("SELECT COUNT(*) AS n FROM `tmp.by_country`")
    (project / "flow.py").write_text(textwrap.dedent(FLOW))
    assert tm(project, "init-db").code == 0
    return project


def test_dry_run_shows_skipped_targets_with_their_reasons(project: Path, tm: Cli) -> None:
    saturday = tm(project, "-n", "--var", "run_date=2024-02-03")
    assert saturday.code == 0, saturday.err
    lines = [line.strip() for line in saturday.out.splitlines()]
    assert "Nothing to do: 0 selected targets are up to date, 4 left out." in saturday.out
    assert "tmp.weekday_rows  skipped: only on weekdays" in lines
    assert any(
        line.startswith("tmp.by_country")
        and line.endswith("skipped: only if parameter country is set")
        for line in lines
    )
    assert any(
        line.startswith("final.report")
        and line.endswith("skipped: prerequisite tmp.by_country is skipped")
        for line in lines
    )
    assert any(line.startswith("tmp.january") and "only in January" in line for line in lines)


def test_a_run_builds_what_holds_and_reports_the_rest_skipped(project: Path, tm: Cli) -> None:
    run = tm(project, "--var", "run_date=2024-01-03", "--var", "country=SG", "--json")
    assert run.code == 0, run.err
    assert run.statuses("built") == {
        "tmp.weekday_rows",
        "tmp.january",
        "tmp.by_country",
        "final.report",
    }
    weekend = tm(project, "--var", "run_date=2024-02-03", "--json")
    assert weekend.code == 0, weekend.err
    assert weekend.statuses("skipped") == {
        "tmp.weekday_rows",
        "tmp.january",
        "tmp.by_country",
        "final.report",
    }
    reasons = {t["name"]: t["reasons"] for t in weekend.json["targets"]}
    assert reasons["tmp.weekday_rows"] == ["skipped: only on weekdays"]
    why = tm(project, "why", "tmp.by_country")
    assert "tmp.by_country is left out of this run: skipped: only if parameter country is set" in (
        why.out
    )


def test_a_condition_that_raises_is_a_usage_error(project: Path, tm: Cli) -> None:
    (project / "flow.py").write_text(
        textwrap.dedent(FLOW).replace("run_date.month == 1", "run_date.month / 0 == 1")
    )
    result = tm(project, "-n", "--var", "run_date=2024-01-03")
    assert result.code == 2
    assert "the condition of target `tmp.january` failed: ZeroDivisionError" in result.err
