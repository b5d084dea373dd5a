"""The dbt twin of a tablemake project (bench/dbt_compare.py) is the same project: every
target a model, every prerequisite a ref() or source(), and each model's SQL the statement
tablemake's DuckDB backend sends, runnable on DuckDB. None of this needs dbt installed: the
models are rendered here the way dbt would (ref -> "dataset"."table") and run with duckdb.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest
import sqlglot

from bench.dbt_compare import (
    DbtProject,
    dbt_rebuilt,
    model_name,
    tablemake_rebuilt,
    translate,
    write_dbt_project,
)
from bench.engine_overhead import REPO, copy_example
from bench.genproject import SOURCES, generate
from tablemake import sql
from tablemake.graph import topological_order
from tablemake.workspace import open_workspace

REF = re.compile(r"\{\{ ref\('(\w+?)__(\w+)'\) \}\}")
SOURCE = re.compile(r"\{\{ source\('(\w+)', '(\w+)'\) \}\}")
CONFIG = re.compile(r"\{\{ config\(schema='(\w+)', alias='(\w+)'\) \}\}\n")


def rendered(text: str) -> str:
    """A model as dbt would compile it here: refs and sources as quoted tables, no config."""
    text = CONFIG.sub("", text)
    text = REF.sub(r'"\1"."\2"', text)
    text = SOURCE.sub(r'"\1"."\2"', text)
    return text.replace("{% raw %}", "").replace("{% endraw %}", "")


def normal(query: str) -> str:
    return sqlglot.parse_one(query, read="duckdb").sql("duckdb", identify=True, comments=False)


def check_twin(tm_root: Path, project: DbtProject) -> None:
    tablefile = open_workspace(tm_root).tablefile
    assert set(project.models) == set(tablefile.targets)
    assert len({m.name for m in project.models.values()}) == len(project.models)
    for name, target in tablefile.targets.items():
        model = project.models[name]
        text = project.model_file(name).read_text()
        assert text == model.text
        assert CONFIG.match(text), text[:80]
        assert CONFIG.match(text).groups() == tuple(name.split(".", 1))  # type: ignore[union-attr]
        # refs and sources are exactly the prerequisites
        refs = {f"{d}.{t}" for d, t in REF.findall(text)}
        sources = {f"{d}.{t}" for d, t in SOURCE.findall(text)}
        assert refs == set(model.refs) and sources == set(model.sources)
        assert refs | sources == set(target.deps), name
        assert refs <= set(tablefile.targets) and sources <= set(tablefile.sources)
        if target.python is None:  # the statement tablemake sends, table names aside
            script = sql.parse_script((tm_root / target.sql).read_text(), target.sql)
            assert normal(rendered(text)) == normal(script.query.sql("duckdb")), name
    listed = (project.root / "models" / "sources.yml").read_text()
    for source in tablefile.sources:
        assert f'- name: "{source.split(".", 1)[1]}"' in listed


def run_models(tm_root: Path, project: DbtProject, init: dict[str, str]) -> dict[str, int]:
    """Every model, rendered, run on an in-memory DuckDB in dependency order: row counts."""
    graph = open_workspace(tm_root).graph
    counts: dict[str, int] = {}
    with duckdb.connect(":memory:") as con:
        for statement in init.values():
            schema = re.search(r'TABLE "(\w+)"', statement)
            assert schema is not None
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema.group(1)}"')
            con.execute(statement)
        for name in [n for n in topological_order(graph) if n in project.models]:
            dataset, table_name = name.split(".", 1)
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{dataset}"')
            body = rendered(project.models[name].text)
            con.execute(f'CREATE TABLE "{dataset}"."{table_name}" AS {body}')
            row = con.execute(f'SELECT count(*) FROM "{dataset}"."{table_name}"').fetchone()
            counts[name] = row[0] if row else -1
    return counts


def test_example_becomes_a_dbt_project_that_runs(tmp_path: Path) -> None:
    tm_root = copy_example(tmp_path / "tm", REPO)
    project = write_dbt_project(tm_root, tmp_path / "dbt")
    check_twin(tm_root, project)
    # the Python target is the equivalent SQL model
    assert project.models["tmp.purchase_prices_eur"].sources == ("raw.purchase_items",)
    assert "0.92" in project.models["tmp.purchase_prices_eur"].text
    # dbt's own files name the profile, the DuckDB file and the threads
    assert "profile: tm_bench" in (project.root / "dbt_project.yml").read_text()
    profile = (project.root / "profiles.yml").read_text()
    assert "path: warehouse.duckdb" in profile and "threads: 4" in profile
    tablefile = open_workspace(tm_root).tablefile
    init = {
        name: sql.init_to_duckdb(sql.parse_init_script((tm_root / s.init).read_text(), s.init))
        for name, s in tablefile.sources.items()
        if s.init
    }
    counts = run_models(tm_root, project, init)
    assert counts["final.products"] == 10  # one row per raw product


def test_generated_project_becomes_a_dbt_project_that_runs(tmp_path: Path) -> None:
    generated = generate(tmp_path / "tm", 60, shape="irregular", seed=2)
    project = write_dbt_project(generated.root, tmp_path / "dbt", threads=2)
    check_twin(generated.root, project)
    assert "threads: 2" in (project.root / "profiles.yml").read_text()
    init = {
        source: f'CREATE TABLE "{source.replace(".", chr(34) + "." + chr(34))}" AS '
        "SELECT x AS id, x % 100 AS amount FROM range(1, 200) AS t(x)"
        for source in SOURCES
    }
    counts = run_models(generated.root, project, init)
    assert len(counts) == 60 and all(n > 0 for n in counts.values())


def test_translate_swaps_tables_only() -> None:
    text = (
        "WITH recent AS (SELECT * FROM `raw.events` WHERE label <> 'tmp.a')\n"
        "SELECT r.id, a.amount AS a FROM recent AS r JOIN `tmp.a` AS a ON a.id = r.id\n"
    )
    model = translate(text, "x.sql", "mart.b", ["tmp.a", "mart.b"], ["raw.events"])
    assert model.refs == ("tmp.a",) and model.sources == ("raw.events",)
    assert model.name == "mart__b" and model.path == Path("models/mart/mart__b.sql")
    assert "{{ ref('tmp__a') }} AS a" in model.text
    assert "FROM recent AS r" in model.text  # a CTE is not a ref
    assert "'tmp.a'" in model.text  # a string that looks like a table is left alone
    assert "{{ source('raw', 'events') }}" in model.text


def test_translate_refuses_unknown_tables_and_escapes_jinja() -> None:
    with pytest.raises(ValueError, match="neither a target nor a source"):
        translate("SELECT * FROM `tmp.nowhere`", "x.sql", "mart.b", ["mart.b"], [])
    model = translate(
        "SELECT '{{ not jinja }}' AS s FROM `raw.e`", "x.sql", "mart.b", ["mart.b"], ["raw.e"]
    )
    assert "{% raw %}" in model.text and "{{ source('raw', 'e') }}" in model.text
    assert "'{{ not jinja }}'" in rendered(model.text)


def test_model_names_are_unique_per_dataset() -> None:
    assert model_name("tmp.products") != model_name("final.products")
    assert model_name("tmp.products") == "tmp__products"


def test_rebuilt_counts(tmp_path: Path) -> None:
    (tmp_path / "target").mkdir()
    results = [
        {"unique_id": "model.p.a", "status": "success"},
        {"unique_id": "model.p.b", "status": "success"},
        {"unique_id": "model.p.c", "status": "skipped"},
        {"unique_id": "test.p.t", "status": "success"},
    ]
    (tmp_path / "target" / "run_results.json").write_text(json.dumps({"results": results}))
    assert dbt_rebuilt(tmp_path) == 2
    built = {"targets": [{"status": "built"}, {"status": "fresh"}, {"status": "built"}]}
    assert tablemake_rebuilt(json.dumps(built)) == 2
