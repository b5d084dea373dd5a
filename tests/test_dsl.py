"""The Python DSL: workflows compile to the same graph and plan as TOML, Python targets build,
load and go stale exactly when their code (or the project-local code they call) changes."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO, Cli, copy_example, warehouse_rows


def _plan(tm: Cli, project: Path, *args: str) -> list[tuple[str, str, tuple[str, ...]]]:
    result = tm(project, "-n", "--json", *args)
    assert result.code == 0, result.err
    return [(t["name"], t["status"], tuple(t["reasons"])) for t in result.json["targets"]]


def _dsl_twin(tmp_path: Path) -> Path:
    """The example with every [targets] entry moved into the workflow as sql(...) calls."""
    project = copy_example(tmp_path / "dsl")
    text = (project / "Tablefile.toml").read_text()
    head, _, targets = text.partition('[targets."')
    calls = []
    for block in ('[targets."' + targets).split("\n\n"):
        name = re.search(r'\[targets\."([\w.]+)"\]', block)
        if name is None:
            continue
        script = re.search(r'sql = "([^"]+)"', block)
        deps = re.search(r"deps = (\[[^\]]*\])", block)
        assert script is not None and deps is not None
        calls.append(f"sql({name.group(1)!r}, deps={deps.group(1)}, script={script.group(1)!r})")
    (project / "Tablefile.toml").write_text(head)
    workflow = (project / "workflow.py").read_text()
    workflow = workflow.replace(
        "from tablemake.dsl import target, unit_test",
        "from tablemake.dsl import sql, target, unit_test",
    )
    (project / "workflow.py").write_text(workflow + "\n" + "\n".join(calls) + "\n")
    return project


def test_dsl_and_toml_definitions_of_the_same_graph_plan_identically(
    shop: Path, tmp_path: Path, tm: Cli
) -> None:
    twin = _dsl_twin(tmp_path)
    assert "[targets." not in (twin / "Tablefile.toml").read_text()
    assert tm(shop, "graph").out == tm(twin, "graph").out
    for project in (shop, twin):
        assert tm(project, "init-db").code == 0
    assert _plan(tm, shop) == _plan(tm, twin)
    for project in (shop, twin):
        assert tm(project, "-j", "4").code == 0
        path = project / "res/tmp/variant_images.sql"
        path.write_text(f"SELECT * FROM ({path.read_text()}) WHERE TRUE\n")
    edited = _plan(tm, shop)
    assert edited == _plan(tm, twin)
    assert {name for name, status, _ in edited if status == "would-build"} == {
        "tmp.variant_images",
        "tmp.variants",
        "final.products",
    }


@pytest.fixture
def built(shop: Path, tm: Cli) -> Path:
    assert tm(shop, "init-db").code == 0
    assert tm(shop, "-j", "4").code == 0
    return shop


def test_python_target_loads_rows_that_a_sql_target_reads(built: Path) -> None:
    eur = warehouse_rows(
        built, "SELECT id, currency, purchase_price, price_eur FROM tmp.purchase_prices_eur"
    )
    assert len(eur) == 14
    assert (4, "SGD", 9.4, 6.49) in eur
    assert all(p == e for _, c, p, e in eur if c == "EUR")
    prices = warehouse_rows(
        built,
        "SELECT p.price_eur FROM tmp.item_purchase_prices, UNNEST(prices) AS u(p) "
        "WHERE sku_id = 1001 AND batch_id = 201 ORDER BY 1",
    )
    assert prices == [(3.8,), (3.82,)]
    kinds = dict(
        warehouse_rows(
            built,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'purchase_prices_eur'",
        )
    )
    assert kinds == {
        "id": "BIGINT",
        "batch_id": "BIGINT",
        "purchase_price": "DOUBLE",
        "currency": "VARCHAR",
        "price_eur": "DOUBLE",
    }


def _would_build(tm: Cli, project: Path) -> dict[str, tuple[str, ...]]:
    return {
        name: reasons for name, status, reasons in _plan(tm, project) if status == "would-build"
    }


PYTHON_CONE = {
    "tmp.purchase_prices_eur",
    "tmp.item_purchase_prices",
    "tmp.variants",
    "final.products",
}


def test_editing_the_function_or_a_local_helper_or_constant_it_uses_rebuilds(
    built: Path, tm: Cli
) -> None:
    workflow = built / "workflow.py"
    original = workflow.read_text()
    assert _would_build(tm, built) == {}

    workflow.write_text(original.replace("round(amount * ", "round(1.0 * amount * "))
    stale = _would_build(tm, built)
    assert set(stale) == PYTHON_CONE
    assert stale["tmp.purchase_prices_eur"] == ("script workflow.py:purchase_prices_eur changed",)

    workflow.write_text(original.replace('"USD": 0.92', '"USD": 0.93'))
    assert set(_would_build(tm, built)) == PYTHON_CONE

    workflow.write_text(original.replace('"batch_id": item', '"batch_id":   item'))
    assert _would_build(tm, built) == {}  # layout only
    workflow.write_text(original.replace("def to_eur", "# a comment\ndef to_eur"))
    assert _would_build(tm, built) == {}

    workflow.write_text(original.replace('"USD": 0.92', '"USD": 0.5'))
    assert tm(built).code == 0
    assert warehouse_rows(built, "SELECT price_eur FROM tmp.purchase_prices_eur WHERE id = 2") == [
        (2.08,)
    ]
    assert _would_build(tm, built) == {}


def test_a_helper_in_another_project_module_is_tracked(built: Path, tm: Cli) -> None:
    (built / "fx.py").write_text("def rate(currency):\n    return 2.0\n")
    workflow = built / "workflow.py"
    workflow.write_text(
        workflow.read_text()
        .replace("from typing import Any\n", "from typing import Any\n\nimport fx\n")
        .replace(
            "round(amount * EUR_PER_UNIT[currency], 2)", "round(amount * fx.rate(currency), 2)"
        )
    )
    assert tm(built).code == 0
    assert _would_build(tm, built) == {}
    (built / "fx.py").write_text("def rate(currency):\n    return 3.0\n")
    assert set(_would_build(tm, built)) == PYTHON_CONE


PROJECT = """\
[project]
workflow = "flow.py"

[sources."raw.orders"]
init = "db_init/orders.sql"

[targets."tmp.totals"]
deps = ["tmp.orders_py"]
"""
ORDERS = (
    "CREATE OR REPLACE TABLE `raw.orders` (id INT64, amount FLOAT64) AS "
    "SELECT 1, 2.5 UNION ALL SELECT 2, 4.0"
)


def _project(tmp_path: Path, flow: str, tablefile: str = PROJECT) -> Path:
    project = tmp_path / "p"
    (project / "db_init").mkdir(parents=True)
    (project / "res/tmp").mkdir(parents=True)
    (project / "Tablefile.toml").write_text(tablefile)
    (project / "db_init/orders.sql").write_text(ORDERS)
    (project / "res/tmp/totals.sql").write_text("SELECT SUM(doubled) AS total FROM tmp.orders_py")
    (project / "flow.py").write_text(textwrap.dedent(flow))
    return project


def test_python_reads_sql_and_sql_reads_python_and_results_can_be_duck_typed(
    tmp_path: Path, tm: Cli
) -> None:
    project = _project(
        tmp_path,
        """
        from tablemake.dsl import sql, target

        class ArrowLike:  # what pyarrow.Table offers
            def __init__(self, rows):
                self.rows = rows
            def to_pylist(self):
                return self.rows

        class FrameLike:  # what pandas.DataFrame offers
            columns = ["n"]
            def to_dict(self, orient):
                assert orient == "records"
                return [{"n": 7}]

        @target("tmp.orders_py", deps=["raw.orders"])
        def orders_py(orders):
            return ArrowLike([{"id": o["id"], "doubled": o["amount"] * 2} for o in orders])

        sql("tmp.big", deps=["tmp.totals"], script="res/tmp/big.sql")

        @target("final.report", deps=["tmp.big"])
        def report(big):
            return [{"total": big[0]["total"], "label": "ok"}]

        @target("final.frame")
        def frame():
            return FrameLike()
        """,
    )
    (project / "res/tmp/big.sql").write_text("SELECT total FROM tmp.totals WHERE total > 1")
    assert tm(project, "init-db").code == 0
    result = tm(project, "--json")
    assert result.code == 0, result.err
    assert result.statuses("built") == {
        "tmp.orders_py",
        "tmp.totals",
        "tmp.big",
        "final.report",
        "final.frame",
    }
    assert warehouse_rows(project, "SELECT * FROM final.report") == [(13.0, "ok")]
    assert warehouse_rows(project, "SELECT * FROM final.frame") == [(7,)]
    assert tm(project, "check").code == 0


@pytest.mark.parametrize(
    ("flow", "message"),
    [
        ("import nope\n", "flow.py:1: the workflow file failed to load: ModuleNotFoundError"),
        (
            "from tablemake.dsl import target\n"
            "@target('tmp.orders_py', deps=['raw.missing'])\ndef f(missing):\n    return []\n",
            "depends on `raw.missing`, which is neither a target nor a source",
        ),
        (
            "from tablemake.dsl import target\n"
            "@target('tmp.orders_py', deps=['raw.orders'])\ndef f(orders, day):\n    return []\n",
            "flow.py:2: function f of target `tmp.orders_py` takes `day`, which is neither",
        ),
        (
            "from tablemake.dsl import target\n@target('raw.orders')\ndef f():\n    return []\n",
            "`raw.orders` is declared in the workflow and in the Tablefile",
        ),
        (
            "from tablemake.dsl import target\n@target('orders')\ndef f():\n    return []\n",
            "flow.py:2: target name 'orders' is not `dataset.table`",
        ),
    ],
)
def test_workflow_mistakes_are_one_paragraph_and_exit_2(
    tmp_path: Path, tm: Cli, flow: str, message: str
) -> None:
    project = _project(tmp_path, flow)
    result = tm(project, "-n")
    assert result.code == 2
    assert message in result.err
    assert "Traceback" not in result.err


def test_a_failing_or_malformed_python_target_fails_only_itself(tmp_path: Path, tm: Cli) -> None:
    project = _project(
        tmp_path,
        """
        from tablemake.dsl import target

        @target("tmp.orders_py", deps=["raw.orders"])
        def orders_py(orders):
            return [{"id": o["id"], "doubled": o["amount"] / 0} for o in orders]

        @target("tmp.bad_shape")
        def bad_shape():
            return {"not": "rows"}

        @target("tmp.mixed")
        def mixed():
            return [{"a": 1}, {"a": "x"}]

        @target("tmp.fine")
        def fine():
            return [{"a": 1}]
        """,
    )
    assert tm(project, "init-db").code == 0
    result = tm(project, "-k", "--json")
    assert result.code == 1
    by_name = {t["name"]: t for t in result.json["targets"]}
    assert by_name["tmp.fine"]["status"] == "built"
    assert by_name["tmp.totals"]["status"] == "skipped"
    error = by_name["tmp.orders_py"]["error"]
    assert error.startswith("flow.py:orders_py: ZeroDivisionError: float division by zero")
    assert "(at flow.py:6)" in error
    assert "returned dict" in by_name["tmp.bad_shape"]["error"]
    assert "mixes values of types INT64, STRING" in by_name["tmp.mixed"]["error"]
    assert "Traceback" not in result.err


def test_simulate_never_calls_the_function(tmp_path: Path, tm: Cli) -> None:
    project = _project(
        tmp_path,
        """
        from tablemake.dsl import target

        @target("tmp.orders_py", deps=["raw.orders"], duration=0.01)
        def orders_py(orders):
            raise RuntimeError("must not run on simulate")
        """,
    )
    result = tm(project, "--backend", "simulate", "--json")
    assert result.code == 0, result.err
    assert result.statuses("built") == {"tmp.orders_py", "tmp.totals"}


def test_the_shipped_example_declares_its_python_target_in_workflow_py() -> None:
    text = (REPO / "Tablefile.toml").read_text()
    assert 'workflow = "workflow.py"' in text
    assert '@target("tmp.purchase_prices_eur"' in (REPO / "workflow.py").read_text()
