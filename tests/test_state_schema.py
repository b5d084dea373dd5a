"""The state store's schema is versioned and migrated; a damaged, foreign or newer store is
refused with what to do (exit 2, one paragraph), and left exactly as it was."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tablemake.errors import UserError
from tablemake.state import MIGRATIONS, SCHEMA_VERSION, STATE_FILE, BuildRecord, StateStore
from tests.conftest import Cli

# Schema 1 as tablemake 0.1.0 wrote it, verbatim: the starting point of the migration test.
SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE builds (
    warehouse TEXT NOT NULL, target TEXT NOT NULL, version TEXT NOT NULL,
    script_digest TEXT NOT NULL, script_text TEXT NOT NULL, definition TEXT NOT NULL,
    inputs TEXT NOT NULL, started REAL NOT NULL, finished REAL NOT NULL, rows INTEGER,
    run_id TEXT NOT NULL, sql TEXT NOT NULL, PRIMARY KEY (warehouse, target)
);
CREATE TABLE runs (
    id TEXT PRIMARY KEY, warehouse TEXT NOT NULL, started REAL NOT NULL, finished REAL,
    status TEXT NOT NULL, trigger TEXT NOT NULL, command TEXT NOT NULL
);
CREATE TABLE run_targets (
    run_id TEXT NOT NULL, target TEXT NOT NULL, status TEXT NOT NULL, started REAL,
    finished REAL, rows INTEGER, error TEXT, sql TEXT, PRIMARY KEY (run_id, target)
);
CREATE TRIGGER build_history AFTER INSERT ON builds BEGIN
    INSERT OR REPLACE INTO run_targets VALUES (
        NEW.run_id, NEW.target, 'built', NEW.started, NEW.finished, NEW.rows, NULL, NEW.sql);
END;
INSERT INTO meta VALUES ('schema_version', '1'), ('created_by', 'tablemake');
"""


def _columns(path: Path) -> dict[str, list[str]]:
    con = sqlite3.connect(path)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: [c[1] for c in con.execute(f"PRAGMA table_info({t})")] for t in tables}
    finally:
        con.close()


def _schema_1_store(directory: Path) -> Path:
    """A schema-1 store holding one run that built one target."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / STATE_FILE
    con = sqlite3.connect(path)
    con.executescript(SCHEMA_1)
    con.execute("INSERT INTO runs VALUES ('r1', 'duckdb', 1.0, 2.0, 'ok', 'cli', 'tablemake')")
    con.execute(
        "INSERT INTO builds VALUES ('duckdb', 'tmp.x', 'r1/tmp.x', 'd', 'SELECT 1', 'def', "
        "'{\"raw.a\": \"s1\"}', 1.0, 2.0, 5, 'r1', 'CREATE …')"
    )
    con.commit()
    con.close()
    return path


def test_a_schema_1_store_is_migrated_keeping_its_history(tmp_path: Path) -> None:
    path = _schema_1_store(tmp_path / "old")
    with StateStore(tmp_path / "old") as state:
        [record] = state.builds("duckdb").values()
        assert (record.target, record.rows, record.attempts) == ("tmp.x", 5, 1)
        assert dict(record.inputs) == {"raw.a": "s1"}
        [line] = state.run_targets("r1")
        assert (line.status, line.attempts) == ("built", None)  # not known before schema 2
        retried = BuildRecord(**{**record.__dict__, "run_id": "r2", "attempts": 3})
        state.record_build("duckdb", retried, script_text="SELECT 1", sql="CREATE …")
        [line] = state.run_targets("r2")
        assert (line.status, line.attempts) == ("built", 3)  # the new trigger copies it
    con = sqlite3.connect(path)
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (
        str(SCHEMA_VERSION),
    )
    con.close()
    StateStore(tmp_path / "fresh").close()
    assert _columns(path) == _columns(tmp_path / "fresh" / STATE_FILE)
    assert sorted(MIGRATIONS) == list(range(1, SCHEMA_VERSION))


def test_a_failing_migration_changes_nothing(tmp_path: Path) -> None:
    path = _schema_1_store(tmp_path)
    con = sqlite3.connect(path)
    con.execute("ALTER TABLE run_targets ADD COLUMN attempts TEXT")  # the second step clashes
    con.commit()
    con.close()
    before = _columns(path)
    with pytest.raises(UserError, match=r"could not be migrated from schema 1 to 2 \(dup"):
        StateStore(tmp_path)
    assert _columns(path) == before  # the first step was rolled back with it
    con = sqlite3.connect(path)
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("1",)
    con.close()


def test_the_cli_migrates_a_built_project_and_finds_it_up_to_date(shop: Path, tm: Cli) -> None:
    assert tm(shop, "--backend", "simulate", "tmp.products").code == 0
    path = shop / ".state" / STATE_FILE
    con = sqlite3.connect(path)  # take the store back to schema 1
    con.executescript(
        "DROP TRIGGER build_history; ALTER TABLE builds DROP COLUMN attempts;"
        "ALTER TABLE run_targets DROP COLUMN attempts;"
        "UPDATE meta SET value = '1' WHERE key = 'schema_version';"
    )
    trigger = SCHEMA_1[SCHEMA_1.index("CREATE TRIGGER") : SCHEMA_1.index("INSERT INTO meta")]
    con.executescript(trigger)
    con.close()
    result = tm(shop, "--backend", "simulate", "tmp.products", "--json")
    assert result.code == 0, result.err
    assert result.statuses("up-to-date") == {t["name"] for t in result.json["targets"]}


def _store_with_history(shop: Path, tm: Cli) -> Path:
    assert tm(shop, "--backend", "simulate", "-j", "4").code == 0
    path = shop / ".state" / STATE_FILE
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    con.close()
    return path


def _refused(tm: Cli, shop: Path, path: Path, *words: str) -> None:
    before = path.read_bytes()
    for args in (("--backend", "simulate"), ("history",)):
        result = tm(shop, *args)
        assert result.code == 2, (args, result.err)
        assert "Traceback" not in result.err and result.err.count("\n") == 1
        assert "move the .state/ directory aside" in result.err or "move .state/ aside" in (
            result.err
        )
        for word in words:
            assert word in result.err
    assert path.read_bytes() == before, "a refused store must be left as it was"


def test_garbage_over_the_header_is_refused(shop: Path, tm: Cli) -> None:
    path = _store_with_history(shop, tm)
    data = bytearray(path.read_bytes())
    data[0:100] = b"\x5a" * 100
    path.write_bytes(bytes(data))
    _refused(tm, shop, path, "not a tablemake state database")


def test_garbage_inside_the_data_pages_is_refused(shop: Path, tm: Cli) -> None:
    path = _store_with_history(shop, tm)
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    assert len(data) >= 4 * page
    for number in range(1, len(data) // page):  # every page but the first (the schema)
        data[number * page : number * page + 64] = bytes(range(64))
    path.write_bytes(bytes(data))
    _refused(tm, shop, path)


def test_a_database_of_another_tool_is_refused(shop: Path, tm: Cli) -> None:
    (shop / ".state").mkdir()
    path = shop / ".state" / STATE_FILE
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
    con.execute("INSERT INTO customers VALUES (1, 'Ada')")
    con.commit()
    con.close()
    _refused(tm, shop, path, "has no schema version")


def test_a_newer_schema_is_refused_by_the_cli(shop: Path, tm: Cli) -> None:
    path = _store_with_history(shop, tm)
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    con.commit()
    con.close()
    _refused(tm, shop, path, f"has schema {SCHEMA_VERSION + 1}", "Use the tablemake that wrote it")


def test_a_file_where_the_state_directory_should_be_is_refused(shop: Path, tm: Cli) -> None:
    (shop / ".state").write_text("not a directory")
    result = tm(shop, "--backend", "simulate")
    assert result.code == 2
    assert "If a file of that name is in the way, move it aside." in result.err
    assert (shop / ".state").read_text() == "not a directory"


@pytest.mark.parametrize("version", ["0", "-1", "two", ""])
def test_a_schema_version_that_makes_no_sense_is_refused(tmp_path: Path, version: str) -> None:
    StateStore(tmp_path).close()
    con = sqlite3.connect(tmp_path / STATE_FILE)
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
    con.commit()
    con.close()
    with pytest.raises(UserError, match="move .state/ aside"):
        StateStore(tmp_path)
