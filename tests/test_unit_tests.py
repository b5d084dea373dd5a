"""``tablemake test``: the unit tests declared next to targets run on an in-memory DuckDB,
pass on the shipped example, fail when expected rows differ, and never touch the warehouse."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.conftest import Cli


def test_the_example_ships_passing_tests_and_touches_no_warehouse(shop: Path, tm: Cli) -> None:
    result = tm(shop, "test", "--json")
    assert result.code == 0, result.out + result.err
    assert all(t["ok"] for t in result.json["tests"])
    assert not (shop / ".state").exists()
    tested = {t["target"] for t in result.json["tests"]}
    shipped = tm(shop, "-n", "--backend", "simulate", "--json").json["targets"]
    assert tested == {t["name"] for t in shipped}  # every target of the example
    human = tm(shop, "test", "tmp.purchase_prices_eur")
    assert human.code == 0
    assert human.out.splitlines() == ["PASS  prices are converted to EUR", "1 passed, 0 failed"]


def test_a_test_fails_when_expected_rows_differ(shop: Path, tm: Cli) -> None:
    workflow = shop / "workflow.py"
    workflow.write_text(
        workflow.read_text().replace('{"id": 3, "price_eur": 6.49}', '{"id": 3, "price_eur": 6.5}')
    )
    result = tm(shop, "test", "tmp.purchase_prices_eur")
    assert result.code == 1
    assert "FAIL  prices are converted to EUR" in result.out
    assert '      missing  {"id": 3, "price_eur": 6.5}' in result.out
    assert '      unexpected {"id": 3, "price_eur": 6.49}' in result.out
    assert "0 passed, 1 failed" in result.out


def test_a_test_fails_when_the_sql_changes_meaning(shop: Path, tm: Cli) -> None:
    script = shop / "res/tmp/variant_images.sql"
    script.write_text(script.read_text().replace("WHERE pic.type = 'variant'", ""))
    result = tm(shop, "test", "tmp.variant_images")
    assert result.code == 1
    assert "unexpected" in result.out


def test_a_build_error_or_an_unknown_column_fails_the_test(shop: Path, tm: Cli) -> None:
    script = shop / "res/tmp/inventory_items.sql"
    script.write_text("SELECT nope FROM `raw.inventory_items`")
    broken = tm(shop, "test", "tmp.inventory_items")
    assert broken.code == 1
    assert "the build failed" in broken.out
    script.write_text("SELECT sku_id AS sku FROM `raw.inventory_items`")
    renamed = tm(shop, "test", "tmp.inventory_items")
    assert renamed.code == 1
    assert "the table has no column sku_id, inventory_count; it has sku" in renamed.out


FLOW = """
from tablemake.dsl import param, sql, unit_test

param("min_amount", "INT64", default="0")
sql("tmp.big", deps=["raw.orders"])

unit_test(
    "tmp.big",
    given={"raw.orders": [{"id": 1, "amount": 5}, {"id": 2, "amount": 50}]},
    vars={"min_amount": "10"},
    expect=[{"id": 2}],
)
"""


def _project(tmp_path: Path, flow: str) -> Path:
    project = tmp_path / "p"
    (project / "res/tmp").mkdir(parents=True)
    (project / "Tablefile.toml").write_text(
        '[project]\nworkflow = "flow.py"\n\n[sources."raw.orders"]\n'
    )
    (project / "res/tmp/big.sql").write_text(
        "SELECT id FROM `raw.orders` WHERE amount >= @min_amount"
    )
    (project / "flow.py").write_text(textwrap.dedent(flow))
    return project


def test_tests_bind_parameters_like_a_build(tmp_path: Path, tm: Cli) -> None:
    project = _project(tmp_path, FLOW)
    assert tm(project, "test").code == 0
    (project / "flow.py").write_text(textwrap.dedent(FLOW).replace('"10"', '"1"'))
    assert tm(project, "test").code == 1


def test_mistakes_in_a_test_declaration_exit_2(tmp_path: Path, tm: Cli) -> None:
    project = _project(tmp_path, FLOW.replace('"raw.orders": [', '"raw.other": ['))
    result = tm(project, "test")
    assert result.code == 2
    assert "lacks rows for raw.orders; gives raw.other, not a prerequisite" in result.err
    assert "flow.py:7" in result.err
    unknown = tm(_project(tmp_path / "b", FLOW), "test", "tmp.nope")
    assert unknown.code == 2
    assert "no unit test is declared for `tmp.nope`" in unknown.err
