"""Runtime parameters: ``--var`` values are typed, bound as query parameters (never spliced),
passed to Python targets as typed arguments, and part of each using target's fingerprint."""

from __future__ import annotations

import datetime
import textwrap
from pathlib import Path

import pytest

from tablemake.params import Param, bind_values, parse_value, used_in_text
from tests.conftest import Cli, warehouse_rows

TABLEFILE = """\
[project]
workflow = "flow.py"

[params]
run_date = "DATE"
country = { type = "STRING", default = "SG" }

[sources."raw.sales"]
init = "db_init/sales.sql"

[targets."tmp.daily"]
deps = ["raw.sales"]

[targets."tmp.all_sales"]
deps = ["raw.sales"]
"""
SALES = (
    "CREATE OR REPLACE TABLE `raw.sales` (day DATE, country STRING, amount INT64) AS "
    "SELECT DATE '2024-01-01', 'SG', 10 UNION ALL SELECT DATE '2024-01-02', 'SG', 20 "
    "UNION ALL SELECT DATE '2024-01-02', 'FR', 5"
)
DAILY = (
    "SELECT day, country, SUM(amount) AS amount FROM `raw.sales` "
    "WHERE day = @run_date AND country = @country GROUP BY 1, 2"
)
FLOW = """
from tablemake.dsl import target

@target("tmp.typed", deps=["tmp.daily"])
def typed(daily, run_date, country, limit: int = 3):
    return [{
        "run_date": run_date,
        "kind": type(run_date).__name__,
        "next_day": run_date.toordinal() + 1,
        "country": country,
        "limit": limit,
        "rows": len(daily),
    }]
"""


@pytest.fixture
def project(tmp_path: Path, tm: Cli) -> Path:
    project = tmp_path / "p"
    (project / "db_init").mkdir(parents=True)
    (project / "res/tmp").mkdir(parents=True)
    (project / "Tablefile.toml").write_text(TABLEFILE)
    (project / "db_init/sales.sql").write_text(SALES)
    (project / "res/tmp/daily.sql").write_text(DAILY)
    (project / "res/tmp/all_sales.sql").write_text("SELECT * FROM `raw.sales`")
    (project / "flow.py").write_text(textwrap.dedent(FLOW))
    assert tm(project, "init-db").code == 0
    return project


def test_values_are_bound_and_typed_and_part_of_the_fingerprint(project: Path, tm: Cli) -> None:
    first = tm(project, "--var", "run_date=2024-01-02", "--json")
    assert first.code == 0, first.err
    assert warehouse_rows(project, "SELECT * FROM tmp.daily") == [
        (datetime.date(2024, 1, 2), "SG", 20)
    ]
    assert warehouse_rows(project, "SELECT * FROM tmp.typed") == [
        (datetime.date(2024, 1, 2), "date", 738888, "SG", 3, 1)
    ]
    same = tm(project, "--var", "run_date=2024-01-02", "--json")
    assert same.statuses("up-to-date") == {"tmp.daily", "tmp.typed", "tmp.all_sales"}

    other = tm(project, "--var", "run_date=2024-01-02", "--var", "country=FR", "-n", "--json")
    reasons = {t["name"]: t["reasons"] for t in other.json["targets"]}
    assert reasons["tmp.daily"] == ["parameter country=FR differs from the last build's"]
    assert reasons["tmp.all_sales"] == []  # does not use a parameter: not stale
    assert other.statuses("would-build") == {"tmp.daily", "tmp.typed"}
    assert tm(project, "--var", "run_date=2024-01-02", "--var", "country=FR").code == 0
    assert warehouse_rows(project, "SELECT amount FROM tmp.daily") == [(5,)]

    why = tm(project, "why", "tmp.daily", "--var", "run_date=2024-01-01")
    assert "parameter run_date=2024-01-01 differs from the last build's" in why.out


@pytest.mark.parametrize(
    "value",
    ["SG' OR '1'='1", "SG'; DROP TABLE raw.sales; --", 'SG" OR 1=1 --', "SG\\' OR 1=1"],
)
def test_an_injection_attempt_stays_a_value(project: Path, tm: Cli, value: str) -> None:
    result = tm(project, "tmp.daily", "--var", "run_date=2024-01-02", "--var", f"country={value}")
    assert result.code == 0, result.err
    assert warehouse_rows(project, "SELECT * FROM tmp.daily") == []
    assert warehouse_rows(project, "SELECT COUNT(*) FROM raw.sales") == [(3,)]
    log = tm(project, "log", "tmp.daily")
    assert "$run_date" in log.out
    assert value not in log.out  # the statement carries a placeholder, not the value


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "target `tmp.daily` uses parameter `run_date`, which has no value: pass --var"),
        (("--var", "run_date=tomorrow"), "--var run_date='tomorrow' is not a date YYYY-MM-DD"),
        (("--var", "day=2024-01-01"), "no parameter `day` is declared (declared: country,"),
    ],
)
def test_missing_undeclared_or_mistyped_values_exit_2(
    project: Path, tm: Cli, args: tuple[str, ...], message: str
) -> None:
    result = tm(project, "-n", *args)
    assert result.code == 2
    assert message in result.err


def test_a_malformed_var_is_a_usage_error(project: Path, tm: Cli) -> None:
    with pytest.raises(SystemExit) as exit_info:
        tm(project, "--var", "no-equals-sign")
    assert exit_info.value.code == 2


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ('run_date = "DATETIME"', "`params.run_date.type` must be one of STRING, INT64"),
        ('n = { type = "INT64", default = "x" }', "`params.n.default` 'x' is not a whole number"),
        ('n = { type = "INT64", dflt = "1" }', "unknown key `params.n.dflt`"),
    ],
)
def test_bad_param_declarations_name_the_line(
    tmp_path: Path, tm: Cli, params: str, message: str
) -> None:
    (tmp_path / "Tablefile.toml").write_text(f"[params]\n{params}\n")
    result = tm(tmp_path, "-n")
    assert result.code == 2
    assert "Tablefile.toml:2:" in result.err
    assert message in result.err


def test_typed_values() -> None:
    assert parse_value("DATE", "2024-01-02") == datetime.date(2024, 1, 2)
    assert parse_value("INT64", "7") == 7
    assert parse_value("FLOAT64", "0.5") == 0.5
    assert parse_value("BOOL", "yes") is True
    declared = {"flag": Param("flag", "BOOL", "false"), "n": Param("n", "INT64")}
    bound = bind_values(declared, {})
    assert list(bound) == ["flag"] and bound["flag"].text == "false"
    assert bind_values(declared, {"n": "3"})["n"].text == "3"
    assert used_in_text("SELECT @n, @other -- @flag", declared) == ["flag", "n"]
