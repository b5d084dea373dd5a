"""Plans answered from the last look at an untouched DuckDB file, and every write seen."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tablemake.backends import duckdb_seen
from tablemake.backends.duckdb import DuckDBBackend

SOURCES = ["raw.a", "raw.b"]


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA raw")
    con.execute("CREATE TABLE raw.a AS SELECT range AS x FROM range(10)")
    con.execute("CREATE TABLE raw.b AS SELECT 'b' AS y")
    con.close()
    return path


@pytest.fixture
def not_racy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trust a record at once (the real rule waits two seconds after the last write)."""
    monkeypatch.setattr(duckdb_seen, "RACY_SECONDS", 0.0)


def _look(path: Path) -> tuple[dict[str, str | None], set[str], bool]:
    """Source versions and existing tables as a plan sees them, and whether it opened the file."""
    backend = DuckDBBackend(path)
    try:
        versions = backend.source_versions(SOURCES)
        tables = backend.existing_tables({*SOURCES, "tmp.t"})
        return versions, tables, backend._con is not None
    finally:
        backend.close()


def _outside(path: Path, statement: str) -> None:
    con = duckdb.connect(str(path))  # another client: a notebook, a loader
    con.execute(statement)
    con.close()


@pytest.mark.usefixtures("not_racy")
def test_an_untouched_warehouse_is_planned_without_opening_it(warehouse: Path) -> None:
    first = _look(warehouse)
    assert first[2]  # nothing recorded yet: DuckDB was asked
    assert _look(warehouse) == (first[0], first[1], False)
    assert first[1] == {"raw.a", "raw.b"}
    assert all(first[0].values())


@pytest.mark.usefixtures("not_racy")
@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO raw.a VALUES (99)",
        "UPDATE raw.b SET y = 'c'",
        "DROP TABLE raw.b",
        "CREATE TABLE tmp_t AS SELECT 1 AS z",  # any write at all, even to another table
    ],
)
def test_any_outside_write_makes_the_plan_ask_duckdb_again(warehouse: Path, statement: str) -> None:
    before = _look(warehouse)
    _look(warehouse)  # now recorded
    _outside(warehouse, statement)
    versions, tables, opened = _look(warehouse)
    assert opened
    if statement.startswith(("INSERT", "UPDATE", "DROP")):
        assert (versions, tables) != before[:2]


def test_a_record_taken_right_after_a_write_is_not_trusted(warehouse: Path) -> None:
    """The real two-second rule: the record's files were written just before it was taken."""
    _look(warehouse)
    assert _look(warehouse)[2]


@pytest.mark.usefixtures("not_racy")
def test_a_write_between_the_plan_and_the_build_is_not_recorded_away(warehouse: Path) -> None:
    """A plan answered from the record, then another client writes, then this run opens
    the file to build: the record it leaves must not vouch for the old versions."""
    _look(warehouse)
    _look(warehouse)
    backend = DuckDBBackend(warehouse)
    planned = backend.source_versions(SOURCES)
    assert backend._con is None
    _outside(warehouse, "INSERT INTO raw.a VALUES (99)")
    backend.ensure_datasets({"tmp"})  # the build opens the file
    backend.close()
    versions, _, _ = _look(warehouse)
    assert versions["raw.a"] != planned["raw.a"]


@pytest.mark.usefixtures("not_racy")
def test_a_process_that_writes_a_source_leaves_no_record(warehouse: Path) -> None:
    _look(warehouse)
    backend = DuckDBBackend(warehouse)
    backend.append_row("raw.b", {"y": "new"})
    backend.close()
    assert not duckdb_seen.record_path(warehouse).exists()
    versions, _, opened = _look(warehouse)
    assert opened and versions["raw.b"] is not None
