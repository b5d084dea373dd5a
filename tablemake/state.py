"""The ``.state/`` store: what was built from what, when, how long it took, and run history.

One SQLite file in WAL mode: each finished target is one small transaction, so a killed run
keeps every record it completed and never half-writes one, and a 10,000-target run does not
rewrite a 10,000-entry file per target. Records are keyed by the warehouse they describe
(``Backend.state_key``), so DuckDB, BigQuery and simulate keep separate histories.
This module decides nothing about staleness; ``plan`` does.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tablemake.errors import LockedError, UserError

SCHEMA_VERSION = 1
STATE_FILE = "state.sqlite"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE builds (
    warehouse TEXT NOT NULL,
    target TEXT NOT NULL,
    version TEXT NOT NULL,
    script_digest TEXT NOT NULL,
    script_text TEXT NOT NULL,
    definition TEXT NOT NULL,
    inputs TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL NOT NULL,
    rows INTEGER,
    run_id TEXT NOT NULL,
    sql TEXT NOT NULL,
    PRIMARY KEY (warehouse, target)
);
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    warehouse TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL,
    trigger TEXT NOT NULL,
    command TEXT NOT NULL
);
CREATE TABLE run_targets (
    run_id TEXT NOT NULL,
    target TEXT NOT NULL,
    status TEXT NOT NULL,
    started REAL,
    finished REAL,
    rows INTEGER,
    error TEXT,
    sql TEXT,
    PRIMARY KEY (run_id, target)
);
-- A build and its history line are written by one statement, so one autocommit
-- transaction: cheap enough for 10,000 targets a run, and never one without the other.
CREATE TRIGGER build_history AFTER INSERT ON builds BEGIN
    INSERT OR REPLACE INTO run_targets VALUES (
        NEW.run_id, NEW.target, 'built', NEW.started, NEW.finished, NEW.rows, NULL, NEW.sql);
END;
"""


@dataclass(frozen=True)
class BuildRecord:
    """The last successful build of a target: enough to decide staleness next time."""

    target: str
    version: str
    script_digest: str
    script_text: str  # kept so a later edit can be compared by meaning, not by bytes
    definition: str
    inputs: Mapping[str, str]
    started: float
    finished: float
    rows: int | None
    run_id: str

    @property
    def seconds(self) -> float:
        return self.finished - self.started


@dataclass(frozen=True)
class RunRecord:
    id: str
    warehouse: str
    started: float
    finished: float | None
    status: str
    trigger: str
    command: str


@dataclass(frozen=True)
class TargetRunRecord:
    run_id: str
    target: str
    status: str
    started: float | None
    finished: float | None
    rows: int | None
    error: str | None
    sql: str | None = None


class StateStore:
    """Open with ``StateStore(directory)``; use as a context manager to close it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / STATE_FILE
        self._lock = threading.RLock()
        try:
            # One connection shared by the threads of a process (the API serves requests
            # from several); every use holds self._lock.
            self._db = sqlite3.connect(
                path, isolation_level=None, timeout=30, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a killed process; only power loss can drop the
            # newest records, which then just means a rebuild.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA wal_autocheckpoint=10000")
            tables = {
                row[0]
                for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if not tables:
                self._create()
            else:
                self._check_version(path, tables)
        except sqlite3.DatabaseError as exc:
            raise UserError(
                f"the state store is not a tablemake state database ({exc}). tablemake will "
                "not overwrite it: move the .state/ directory aside (everything is then "
                "rebuilt once), or restore it from a backup.",
                str(path),
            ) from None

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def _create(self) -> None:
        # One script, one transaction: a store is either fully created or not at all.
        self._db.executescript(
            f"BEGIN; {_SCHEMA} INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}'),"
            " ('created_by', 'tablemake'); COMMIT;"
        )

    def _check_version(self, path: Path, tables: set[str]) -> None:
        row = None
        if "meta" in tables:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else None
        if version is None or version > SCHEMA_VERSION:
            what = "has no schema version" if version is None else f"has schema {version}"
            raise UserError(
                f"the state store {what}, and this tablemake understands schema "
                f"{SCHEMA_VERSION} at most. Use the tablemake that wrote it, or move .state/ "
                "aside to start over (everything is then rebuilt once).",
                str(path),
            )

    def _query(self, statement: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        """Run one statement under the lock. Every write is a single statement, hence one
        autocommit transaction: there is no multi-statement write to leave half done."""
        with self._lock:
            return self._db.execute(statement, params).fetchall()

    # -- builds ---------------------------------------------------------------------------

    def builds(self, warehouse: str) -> dict[str, BuildRecord]:
        rows = self._query(
            "SELECT target, version, script_digest, script_text, definition, inputs, "
            "started, finished, rows, run_id FROM builds WHERE warehouse = ?",
            (warehouse,),
        )
        return {
            row[0]: BuildRecord(
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                json.loads(row[5]),
                row[6],
                row[7],
                row[8],
                row[9],
            )
            for row in rows
        }

    def record_build(self, warehouse: str, record: BuildRecord, sql: str) -> None:
        """Store a successful build (and, by trigger, its line in the run history)."""
        self._query(
            "INSERT OR REPLACE INTO builds VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                warehouse,
                record.target,
                record.version,
                record.script_digest,
                record.script_text,
                record.definition,
                json.dumps(dict(record.inputs), sort_keys=True),
                record.started,
                record.finished,
                record.rows,
                record.run_id,
                sql,
            ),
        )

    # -- runs -----------------------------------------------------------------------------

    def start_run(self, run: RunRecord) -> None:
        self._query(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                run.id,
                run.warehouse,
                run.started,
                run.finished,
                run.status,
                run.trigger,
                run.command,
            ),
        )

    def finish_run(self, run_id: str, status: str) -> None:
        self._query(
            "UPDATE runs SET finished = ?, status = ? WHERE id = ?",
            (time.time(), status, run_id),
        )

    def record_target_run(self, entry: TargetRunRecord) -> None:
        self._query(
            "INSERT OR REPLACE INTO run_targets VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.run_id,
                entry.target,
                entry.status,
                entry.started,
                entry.finished,
                entry.rows,
                entry.error,
                entry.sql,
            ),
        )

    def runs(self, limit: int = 20) -> list[RunRecord]:
        rows = self._query(
            "SELECT id, warehouse, started, finished, status, trigger, command FROM runs "
            "ORDER BY started DESC LIMIT ?",
            (limit,),
        )
        return [RunRecord(*row) for row in rows]

    def run(self, run_id: str) -> RunRecord | None:
        rows = self._query(
            "SELECT id, warehouse, started, finished, status, trigger, command FROM runs "
            "WHERE id = ?",
            (run_id,),
        )
        return RunRecord(*rows[0]) if rows else None

    def run_targets(self, run_id: str) -> list[TargetRunRecord]:
        rows = self._query(
            "SELECT run_id, target, status, started, finished, rows, error, sql FROM run_targets "
            "WHERE run_id = ? ORDER BY started",
            (run_id,),
        )
        return [TargetRunRecord(*row) for row in rows]


@contextmanager
def project_lock(directory: Path) -> Iterator[None]:
    """Hold the project's lock: one build per project at a time, across processes.

    flock is released by the kernel when its holder dies, so a crashed run never leaves a
    lock behind; the holder's pid, host and start time are kept in the file for the message.
    """
    import fcntl

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            raise LockedError(
                f"another tablemake is working on this project ({holder}). Wait for it to "
                "finish, or stop it; nothing was changed.",
                str(directory.parent),
            ) from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        yield
    finally:
        os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        info: dict[str, Any] = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return "holder unknown"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("started", 0)))
    return f"pid {info.get('pid')} on {info.get('host')}, since {started}"
