"""Early cutoff and write-audit-publish, end to end on the example project and a real DuckDB
file: what is rebuilt, what is published, what a failed audit leaves behind."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from tests.conftest import Cli, CliResult, warehouse_rows

UNLESS = "would build unless upstream output is unchanged"
CUT_OFF = "prerequisites rebuilt with unchanged content: not rebuilt (early cutoff)"
PRODUCTS = "res/tmp/products.sql"


def built_everything(run: CliResult) -> bool:
    return run.statuses("built") == {t["name"] for t in run.json["targets"]}


def set_project(project: Path, key: str, value: str) -> None:
    tablefile = project / "Tablefile.toml"
    text = re.sub(rf"(?m)^{key} = .*\n", "", tablefile.read_text())
    tablefile.write_text(text.replace("[project]\n", f"[project]\n{key} = {value}\n", 1))


def add_to_target(project: Path, target: str, line: str) -> None:
    tablefile = project / "Tablefile.toml"
    header = f'[targets."{target}"]\n'
    tablefile.write_text(tablefile.read_text().replace(header, header + line + "\n", 1))


def rows(project: Path, table: str) -> list[tuple[object, ...]]:
    return warehouse_rows(project, f"SELECT * FROM {table} ORDER BY ALL")


def tables(project: Path) -> set[str]:
    with duckdb.connect(str(project / ".state" / "warehouse.duckdb"), read_only=True) as con:
        found = con.execute("SELECT schema_name || '.' || table_name FROM duckdb_tables()")
        return {name for (name,) in found.fetchall()}


@pytest.fixture
def built(shop: Path, tm: Cli) -> Path:
    set_project(shop, "cutoff", "true")
    assert tm(shop, "init-db").code == 0
    assert built_everything(tm(shop, "-j", "4", "--json"))
    return shop


def rewrite(project: Path, script: str, new_body: str) -> None:
    (project / script).write_text(new_body)


def test_an_edit_that_keeps_the_rows_rebuilds_one_table(built: Path, tm: Cli) -> None:
    body = (built / PRODUCTS).read_text().strip()
    rewrite(built, PRODUCTS, f"SELECT * FROM (\n{body}\n) WHERE TRUE\n")

    planned = tm(built, "-n", "--json").json
    reasons = {t["name"]: t["reasons"] for t in planned["targets"]}
    assert reasons["tmp.products"] == [f"script {PRODUCTS} changed"]
    assert reasons["final.products"] == ["prerequisite tmp.products will be rebuilt", UNLESS]

    run = tm(built, "-j", "4", "--json")
    assert run.code == 0
    assert run.statuses("built") == {"tmp.products"}
    final = next(t for t in run.json["targets"] if t["name"] == "final.products")
    assert final["status"] == "up-to-date" and final["reasons"] == [CUT_OFF]
    assert tm(built, "-q").code == 0  # and nothing is stale afterwards


def test_an_edit_that_changes_the_rows_rebuilds_the_cone(built: Path, tm: Cli) -> None:
    body = (built / PRODUCTS).read_text().strip()
    rewrite(built, PRODUCTS, f"SELECT * FROM (\n{body}\n) WHERE product_id > 1\n")
    run = tm(built, "-j", "4", "--json")
    assert run.statuses("built") == {"tmp.products", "final.products"}
    assert tm(built, "-q").code == 0


def test_cutoff_can_be_turned_off_per_target(built: Path, tm: Cli) -> None:
    add_to_target(built, "tmp.products", "cutoff = false")
    body = (built / PRODUCTS).read_text().strip()
    rewrite(built, PRODUCTS, f"SELECT * FROM (\n{body}\n) WHERE TRUE\n")
    planned = tm(built, "-n", "--json").json
    final = next(t for t in planned["targets"] if t["name"] == "final.products")
    assert final["reasons"] == ["prerequisite tmp.products will be rebuilt"]
    assert tm(built, "--json").statuses("built") == {"tmp.products", "final.products"}


def test_the_shipped_example_keeps_cutoff_off(shop: Path, tm: Cli) -> None:
    """Make-like by choice (see its Tablefile): an edit rebuilds the whole cone."""
    assert tm(shop, "init-db").code == 0
    assert built_everything(tm(shop, "--json"))
    body = (shop / PRODUCTS).read_text().strip()
    rewrite(shop, PRODUCTS, f"SELECT * FROM (\n{body}\n) WHERE TRUE\n")
    assert tm(shop, "--json").statuses("built") == {"tmp.products", "final.products"}


def test_passing_audits_publish_the_table(shop: Path, tm: Cli) -> None:
    add_to_target(
        shop,
        "tmp.products",
        'audits = [{ check = "unique", columns = ["product_id"] },'
        ' { check = "not_null", columns = ["product_id", "name"] },'
        ' { check = "accepted_values", column = "type", values = ["configurable", "simple"] },'
        ' { check = "row_count", min = 10 },'
        ' { check = "query", sql = "SELECT * FROM {this} WHERE product_id < 0" }]',
    )
    assert tm(shop, "init-db").code == 0
    assert built_everything(tm(shop, "--json"))
    assert len(rows(shop, "tmp.products")) == 10
    assert not any(name.endswith("__tablemake_staging") for name in tables(shop))
    audited = tm(shop, "audit", "--json")
    assert audited.code == 0
    assert [a["passed"] for a in audited.json["audits"]] == [True] * 5


def test_a_failing_audit_keeps_the_previous_table_and_stops_dependents(shop: Path, tm: Cli) -> None:
    assert tm(shop, "init-db").code == 0
    assert built_everything(tm(shop, "--json"))
    before = rows(shop, "tmp.products")
    add_to_target(
        shop,
        "tmp.products",
        'audits = [{ check = "accepted_values", column = "type", values = ["configurable"] }]',
    )  # `simple` is not accepted; audits are not part of the definition: -B rebuilds

    run = tm(shop, "-B", "--json")
    assert run.code == 1
    products = next(t for t in run.json["targets"] if t["name"] == "tmp.products")
    assert products["status"] == "failed"
    assert "audit accepted_values(type) failed: 1 offending rows" in products["error"]
    assert "type='simple'" in products["error"]
    assert "final.products" in run.statuses("skipped")  # others may be, once a build failed
    assert rows(shop, "tmp.products") == before
    assert not any(name.endswith("__tablemake_staging") for name in tables(shop))

    audited = tm(shop, "audit", "tmp.products")
    assert audited.code == 1
    assert "FAILED  tmp.products  accepted_values(type)" in audited.out
    assert "0 of 1 audits passed" in audited.out


def test_audits_are_validated_in_the_tablefile(shop: Path, tm: Cli) -> None:
    add_to_target(shop, "tmp.products", 'audits = [{ check = "unique" }]')
    result = tm(shop, "-n")
    assert result.code == 2
    assert "Tablefile.toml:" in result.err
    assert '`targets."tmp.products".audits` a `unique` audit takes exactly columns' in result.err
