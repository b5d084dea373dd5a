"""The state store: records survive reopening; foreign or newer stores are refused, not
overwritten."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest

from tablemake.errors import UserError
from tablemake.state import STATE_FILE, BuildRecord, RunRecord, StateStore
from tablemake.state_writer import GROUP_SECONDS, StateWriter

RECORD = BuildRecord(
    target="tmp.x",
    version="v1",
    script_digest="d",
    definition="def",
    inputs={"raw.a": "s1"},
    started=10.0,
    finished=12.5,
    rows=3,
    run_id="r1",
)


def test_records_and_runs_survive_reopening(tmp_path: Path) -> None:
    with StateStore(tmp_path) as state:
        state.start_run(RunRecord("r1", "duckdb", 10.0, None, "running", "cli", "tablemake"))
        state.record_build("duckdb", RECORD, script_text="SELECT 1", sql="CREATE TABLE …")
        state.finish_run("r1", "ok")
    with StateStore(tmp_path) as state:
        assert state.builds("duckdb") == {"tmp.x": RECORD}
        assert state.builds("simulate") == {}
        assert state.builds("duckdb")["tmp.x"].seconds == 2.5
        [run] = state.runs()
        assert (run.id, run.status) == ("r1", "ok")
        [line] = state.run_targets("r1")
        assert (line.target, line.status, line.rows, line.sql) == (
            "tmp.x",
            "built",
            3,
            "CREATE TABLE …",
        )


def test_a_file_that_is_not_a_state_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text("this is not sqlite, and it is someone's data")
    with pytest.raises(UserError, match="not a tablemake state database") as caught:
        StateStore(tmp_path)
    assert "move the .state/ directory aside" in str(caught.value)
    assert (tmp_path / STATE_FILE).read_text().startswith("this is not sqlite")


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    StateStore(tmp_path).close()
    con = sqlite3.connect(tmp_path / STATE_FILE)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with pytest.raises(UserError, match="has schema 99, and this tablemake understands schema 2"):
        StateStore(tmp_path)


def test_a_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    con = sqlite3.connect(tmp_path / STATE_FILE)
    con.execute("CREATE TABLE customers (id INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(UserError, match="has no schema version"):
        StateStore(tmp_path)


def test_a_batch_commits_its_writes_together_or_not_at_all(tmp_path: Path) -> None:
    other = replace(RECORD, target="tmp.y")
    with StateStore(tmp_path) as state:
        with state.batch():
            state.record_build("duckdb", RECORD, script_text="SELECT 1", sql="CREATE TABLE …")
            state.record_build("duckdb", other, script_text="SELECT 1", sql="CREATE TABLE …")
            with StateStore(tmp_path) as reader:  # another connection sees nothing yet
                assert reader.builds("duckdb") == {}
        assert set(state.builds("duckdb")) == {"tmp.x", "tmp.y"}

        def broken_batch() -> None:
            with state.batch():
                state.record_build(
                    "duckdb",
                    replace(RECORD, version="v2"),
                    script_text="SELECT 1",
                    sql="CREATE TABLE …",
                )
                raise RuntimeError("the run broke off")

        with pytest.raises(RuntimeError):
            broken_batch()
        assert state.builds("duckdb")["tmp.x"].version == "v1"


def test_the_writer_commits_every_queued_record_before_the_run_goes_on(tmp_path: Path) -> None:
    records = [replace(RECORD, target=f"tmp.t{n}") for n in range(200)]
    with StateStore(tmp_path) as state:
        with StateWriter(state) as writer:
            for record in records:
                writer.submit(partial(_record_build, record=record))
        with StateStore(tmp_path) as reader:  # committed, as another process sees it
            assert set(reader.builds("duckdb")) == {r.target for r in records}


class _CountedStore(StateStore):
    """Counts transactions: the writer's one observable choice is how it groups writes."""

    commits = 0

    @contextmanager
    def batch(self) -> Iterator[None]:
        with super().batch():
            yield
        self.commits += 1


def test_the_writer_groups_records_that_trickle_in(tmp_path: Path) -> None:
    """Records arriving one every 2 ms (a busy -j 16 run) share transactions: committing
    each one as it came made the writer thread a CPU load of its own."""
    with _CountedStore(tmp_path) as state:
        began = time.monotonic()
        with StateWriter(state) as writer:
            for n in range(40):
                writer.submit(partial(_record_build, record=replace(RECORD, target=f"t.{n}")))
                time.sleep(0.002)
        elapsed = time.monotonic() - began
        assert len(state.builds("duckdb")) == 40
        assert state.commits <= elapsed / GROUP_SECONDS + 2, (state.commits, elapsed)


def _record_build(state: StateStore, record: BuildRecord) -> None:
    state.record_build("duckdb", record, script_text="SELECT 1", sql="SELECT 1")


def test_a_failed_write_stops_the_run_at_its_next_record(tmp_path: Path) -> None:
    """A store that can no longer record must not be written past: the next submit (or
    leaving the writer) raises the write's error, and the failed group is rolled back."""

    def broken(state: StateStore) -> None:
        state.record_build(
            "duckdb", replace(RECORD, target="tmp.lost"), script_text="SELECT 1", sql="SELECT 1"
        )
        raise UserError("the state store cannot be used: disk I/O error")

    refused_by: list[str] = []

    def record_until_refused(state: StateStore) -> None:
        with StateWriter(state) as writer:
            writer.submit(broken)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # until the writer thread has failed
                try:
                    writer.submit(lambda s: None)
                except UserError:
                    refused_by.append("submit")
                    raise
                time.sleep(0.01)

    with StateStore(tmp_path) as state:
        with pytest.raises(UserError, match="disk I/O error"):
            record_until_refused(state)
        assert refused_by == ["submit"]
        assert "tmp.lost" not in state.builds("duckdb")
