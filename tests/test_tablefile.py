"""Tablefile loading: valid files become typed objects; every mistake names file, line, key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tablemake.errors import TablefileError
from tablemake.tablefile import load_tablefile, parse_tablefile
from tablemake.tablefile_cache import CACHE_NAME, load_tablefile_cached

GOOD = """\
[project]
name = "shop"
default = "final.products"
jobs = 4

[sources."raw.products"]
init = "db_init/products.sql"

[targets."final.products"]
deps = ["raw.products"]
duration = 0.5
"""


def _error(text: str) -> str:
    with pytest.raises(TablefileError) as caught:
        parse_tablefile(text, Path("Tablefile.toml"))
    return str(caught.value)


def test_valid_file_loads_into_typed_objects() -> None:
    tablefile = parse_tablefile(GOOD, Path("proj/Tablefile.toml"))
    assert tablefile.project.default == ("final.products",)
    assert tablefile.project.jobs == 4
    assert tablefile.warehouse.backend == "duckdb"
    target = tablefile.targets["final.products"]
    assert target.sql == "res/final/products.sql"  # default path from the name
    assert target.deps == ("raw.products",)
    assert target.duration == 0.5
    assert target.line == 9
    assert tablefile.sources["raw.products"].init == "db_init/products.sql"
    assert tablefile.root == Path("proj")


def test_toml_syntax_error_has_line_and_column() -> None:
    assert _error('[project]\nname = "x\n') == (
        "Tablefile.toml:2:10: invalid TOML: Illegal character '\\n'."
    )


def test_unknown_key_names_its_line_and_suggests() -> None:
    text = GOOD.replace("duration = 0.5", "dep = []")
    assert _error(text).startswith(
        'Tablefile.toml:11: unknown key `targets."final.products".dep` (did you mean `deps`?). '
        "Allowed here: sql, deps, duration, "
    )


def test_wrong_type_names_key_and_value() -> None:
    text = GOOD.replace("jobs = 4", 'jobs = "four"')
    assert (
        _error(text) == "Tablefile.toml:4: `project.jobs` must be a whole number >= 1, not 'four'."
    )


def test_unknown_prerequisite_is_an_error_with_suggestion() -> None:
    text = GOOD.replace('deps = ["raw.products"]', 'deps = ["raw.product"]')
    assert _error(text) == (
        'Tablefile.toml:10: `targets."final.products".deps[0]` names `raw.product`, which is '
        "neither a target nor a source (did you mean `raw.products`?). Declare raw tables under "
        '[sources."raw.product"].'
    )


@pytest.mark.parametrize("name", ["products", "raw.pro-ducts", "a.b.c", "raw.p; DROP TABLE x"])
def test_table_names_are_validated(name: str) -> None:
    text = GOOD + f'\n[targets."{name}"]\n'
    assert "a table name is `dataset.table` with letters, digits and underscores only" in _error(
        text
    )


def test_source_and_target_with_one_name_is_rejected() -> None:
    text = GOOD + '\n[targets."raw.products"]\n'
    assert "`raw.products` is declared both as a source and as a target" in _error(text)


def test_default_must_be_a_target() -> None:
    text = GOOD.replace('default = "final.products"', 'default = "final.product"')
    assert _error(text) == (
        "Tablefile.toml:3: default target `final.product` is not a declared target "
        "(did you mean `final.products`?)."
    )


def test_duplicate_prerequisite_is_rejected() -> None:
    text = GOOD.replace('deps = ["raw.products"]', 'deps = ["raw.products", "raw.products"]')
    assert "lists a name twice" in _error(text)


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(TablefileError) as caught:
        load_tablefile(tmp_path / "Tablefile.toml")
    assert "Create one with `tablemake init`" in str(caught.value)


def test_shipped_example_loads() -> None:
    tablefile = load_tablefile(Path(__file__).parent.parent / "Tablefile.toml")
    assert len(tablefile.targets) == 8
    assert len(tablefile.sources) == 7


def test_bigquery_settings_are_typed_and_checked() -> None:
    text = GOOD + '\n[warehouse.bigquery]\nchange_detection = "content"\nsnapshot_reads = false\n'
    settings = parse_tablefile(text, Path("Tablefile.toml")).warehouse.bigquery
    assert (settings.change_detection, settings.snapshot_reads) == ("content", False)
    assert parse_tablefile(GOOD, Path("Tablefile.toml")).warehouse.bigquery.snapshot_reads
    error = _error(GOOD + '\n[warehouse.bigquery]\nsnapshot_reads = "no"\n')
    assert (
        error
        == "Tablefile.toml:14: `warehouse.bigquery.snapshot_reads` must be true or false, not 'no'."
    )


def _cache_identity(root: Path) -> tuple[int, int]:
    stat = (root / ".state" / CACHE_NAME).stat()
    return stat.st_ino, stat.st_mtime_ns


CONDITIONAL = GOOD + 'only_if = "country"\n\n[params]\ncountry = "STRING"\n'


@pytest.mark.parametrize("text", [GOOD, CONDITIONAL], ids=["plain", "with a condition"])
def test_the_parsed_tablefile_is_reused_until_the_file_changes(tmp_path: Path, text: str) -> None:
    path = tmp_path / "Tablefile.toml"
    path.write_text(text)
    first = load_tablefile_cached(path)
    assert first == parse_tablefile(text, path)
    written = _cache_identity(tmp_path)
    assert load_tablefile_cached(path) == first
    assert _cache_identity(tmp_path) == written  # answered from the cache, not rewritten

    path.write_text(text.replace("jobs = 4", "jobs = 6"))  # same size, new bytes
    assert load_tablefile_cached(path).project.jobs == 6
    path.write_text(text.replace("jobs = 4", 'jobs = "x"'))  # errors are never cached away
    with pytest.raises(TablefileError, match="project.jobs"):
        load_tablefile_cached(path)


def test_a_damaged_or_unwritable_cache_only_costs_a_parse(tmp_path: Path) -> None:
    path = tmp_path / "Tablefile.toml"
    path.write_text(GOOD)
    (tmp_path / ".state").mkdir()
    (tmp_path / ".state" / CACHE_NAME).write_bytes(b"\x80\x05garbage")
    assert load_tablefile_cached(path).project.jobs == 4
    assert load_tablefile_cached(path).project.jobs == 4  # rewritten whole, then read back
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "Tablefile.toml").write_text(GOOD)
    (blocked / ".state").write_text("a file where the state directory should be")
    assert load_tablefile_cached(blocked / "Tablefile.toml").project.jobs == 4
