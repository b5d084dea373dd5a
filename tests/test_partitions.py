"""Partitioned targets: a backfill builds exactly the missing or stale partitions, each
partition is recorded on its own, and partitions replace only their own rows."""

from __future__ import annotations

import datetime
import textwrap
from pathlib import Path

import pytest

from tablemake.state import StateStore
from tests.conftest import Cli, warehouse_rows

TABLEFILE = """\
[project]
workflow = "flow.py"

[params]
run_date = "DATE"
region = "STRING"

[sources."raw.sales"]
init = "db_init/sales.sql"

[targets."final.daily_sales"]
deps = ["raw.sales"]
partition = "run_date"

[targets."final.total"]
deps = ["final.daily_sales"]
"""
SALES = (
    "CREATE OR REPLACE TABLE `raw.sales` (day DATE, amount INT64) AS "
    "SELECT DATE '2024-01-01', 10 UNION ALL SELECT DATE '2024-01-02', 20 "
    "UNION ALL SELECT DATE '2024-01-03', 5 UNION ALL SELECT DATE '2024-01-05', 1"
)
FLOW = """
from tablemake.dsl import target

@target("final.daily_py", deps=["raw.sales"], partition="run_date")
def daily_py(sales, run_date):
    return [{"run_date": run_date, "n": sum(1 for s in sales if s["day"] == run_date)}]
"""
DAYS = ["2024-01-01", "2024-01-02", "2024-01-03"]


@pytest.fixture
def project(tmp_path: Path, tm: Cli) -> Path:
    project = tmp_path / "p"
    (project / "db_init").mkdir(parents=True)
    (project / "res/final").mkdir(parents=True)
    (project / "Tablefile.toml").write_text(TABLEFILE)
    (project / "db_init/sales.sql").write_text(SALES)
    (project / "res/final/daily_sales.sql").write_text(
        "SELECT @run_date AS run_date, COALESCE(SUM(amount), 0) AS amount "
        "FROM `raw.sales` WHERE day = @run_date"
    )
    (project / "res/final/total.sql").write_text(
        "SELECT SUM(amount) AS total, COUNT(*) AS days FROM `final.daily_sales`"
    )
    (project / "flow.py").write_text(textwrap.dedent(FLOW))
    assert tm(project, "init-db").code == 0
    return project


def _day(text: str) -> datetime.date:
    return datetime.date.fromisoformat(text)


def test_a_backfill_builds_exactly_the_missing_partitions(project: Path, tm: Cli) -> None:
    first = tm(project, "--from", DAYS[0], "--to", DAYS[-1], "-j", "4", "--json")
    assert first.code == 0, first.err
    instances = {f"final.daily_sales[{d}]" for d in DAYS} | {f"final.daily_py[{d}]" for d in DAYS}
    assert first.statuses("built") == instances | {"final.total"}
    assert warehouse_rows(project, "SELECT * FROM final.total") == [(35, 3)]

    again = tm(project, "--from", "2024-01-01", "--to", "2024-01-05", "-j", "4", "--json")
    assert again.code == 0, again.err
    new = {"2024-01-04", "2024-01-05"}
    assert again.statuses("built") == (
        {f"final.daily_sales[{d}]" for d in new} | {f"final.daily_py[{d}]" for d in new}
    ) | {"final.total"}
    assert warehouse_rows(project, "SELECT * FROM final.daily_sales ORDER BY 1") == [
        (_day("2024-01-01"), 10),
        (_day("2024-01-02"), 20),
        (_day("2024-01-03"), 5),
        (_day("2024-01-04"), 0),
        (_day("2024-01-05"), 1),
    ]
    assert warehouse_rows(project, "SELECT n FROM final.daily_py ORDER BY run_date") == [
        (1,),
        (1,),
        (1,),
        (0,),
        (1,),
    ]
    with StateStore(project / ".state") as state:
        records = state.builds("duckdb")
    assert {f"final.daily_sales[2024-01-0{i}]" for i in range(1, 6)} <= records.keys()
    assert "final.daily_sales" not in records

    third = tm(project, "--from", "2024-01-02", "--to", "2024-01-04", "--json")
    assert third.code == 0
    assert third.statuses("built") == set()  # every partition in range is fresh


def test_one_partition_from_a_var_and_stale_partitions_rebuild_in_place(
    project: Path, tm: Cli
) -> None:
    assert tm(project, "--from", DAYS[0], "--to", DAYS[-1]).code == 0
    single = tm(project, "final.daily_sales", "--var", "run_date=2024-01-02", "--json")
    assert single.statuses("up-to-date") == {"final.daily_sales[2024-01-02]"}

    script = project / "res/final/daily_sales.sql"
    script.write_text(script.read_text().replace("SUM(amount)", "SUM(amount) * 2"))
    plan = tm(project, "final.daily_sales", "--from", "2024-01-02", "--to", "2024-01-03", "-n")
    assert "final.daily_sales[2024-01-02]  script res/final/daily_sales.sql changed" in plan.out
    assert "2024-01-01" not in plan.out
    assert tm(project, "final.daily_sales", "--var", "run_date=2024-01-02").code == 0
    assert warehouse_rows(project, "SELECT amount FROM final.daily_sales ORDER BY run_date") == [
        (10,),
        (40,),  # only this partition was replaced
        (5,),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "2024-01-03", "--to", "2024-01-01"), "--to 2024-01-01 is before --from"),
        (("--to", "2024-01-01"), "--to needs --from"),
        (("--from", "2024-01-01", "--to", "2054-01-01"), "more than 10000 days"),
    ],
)
def test_bad_spans_exit_2(project: Path, tm: Cli, args: tuple[str, ...], message: str) -> None:
    result = tm(project, "-n", *args)
    assert result.code == 2
    assert message in result.err


def test_only_date_partitions_take_a_span(project: Path, tm: Cli) -> None:
    tablefile = project / "Tablefile.toml"
    tablefile.write_text(
        tablefile.read_text().replace('partition = "run_date"', 'partition = "region"')
    )
    result = tm(project, "final.daily_sales", "-n", "--from", "2024-01-01")
    assert result.code == 2
    assert "`final.daily_sales` is partitioned by `region`, a STRING" in result.err


def test_simulate_plans_and_records_partitions_too(project: Path, tm: Cli) -> None:
    result = tm(project, "--backend", "simulate", "--from", DAYS[0], "--to", DAYS[1], "--json")
    assert result.code == 0, result.err
    assert len(result.statuses("built")) == 5
    again = tm(project, "--backend", "simulate", "--from", DAYS[0], "--to", DAYS[1], "-q")
    assert again.code == 0


def test_why_explains_one_partition(project: Path, tm: Cli) -> None:
    assert tm(project, "final.daily_sales", "--var", "run_date=2024-01-02").code == 0
    fresh = tm(project, "why", "final.daily_sales", "--var", "run_date=2024-01-02")
    assert fresh.out.startswith("final.daily_sales[2024-01-02] is up to date: built 20")
    stale = tm(project, "why", "final.daily_sales", "--var", "run_date=2024-01-03")
    assert stale.out.splitlines() == [
        "final.daily_sales[2024-01-03] is stale and would be rebuilt because:",
        "  - never built",
    ]
