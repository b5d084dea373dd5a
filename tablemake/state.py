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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tablemake.errors import LockedError, UserError

SCHEMA_VERSION = 2
STATE_FILE = "state.sqlite"

_HISTORY_TRIGGER = """
-- A build and its history line are written by one statement, so one autocommit
-- transaction: cheap enough for 10,000 targets a run, and never one without the other.
CREATE TRIGGER build_history AFTER INSERT ON builds BEGIN
    INSERT OR REPLACE INTO run_targets VALUES (
        NEW.run_id, NEW.target, 'built', NEW.started, NEW.finished, NEW.rows, NULL, NEW.sql,
        NEW.attempts);
END;
"""
_SCHEMA = f"""
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
    attempts INTEGER NOT NULL DEFAULT 1,
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
    attempts INTEGER,
    PRIMARY KEY (run_id, target)
);
{_HISTORY_TRIGGER}"""
# MIGRATIONS[n] turns a schema-n store into a schema-(n+1) one. Each runs in one
# transaction with its version bump, so a store is always at exactly one version.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "ALTER TABLE builds ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE run_targets ADD COLUMN attempts INTEGER",
        "DROP TRIGGER build_history",
        _HISTORY_TRIGGER,
    ),
}


@dataclass(frozen=True)
class BuildRecord:
    """The last successful build of a target: enough to decide staleness next time."""

    target: str
    version: str
    script_digest: str  # its text is kept too (built_script): edits compare by meaning
    definition: str
    inputs: Mapping[str, str]
    started: float
    finished: float
    rows: int | None
    run_id: str
    attempts: int = 1  # tries the build took (transient errors are retried)

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
    attempts: int | None = None


class StateStore:
    """Open with ``StateStore(directory)``; use as a context manager to close it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        _make_directory(directory)
        path = directory / STATE_FILE
        self._lock = threading.RLock()
        try:
            # One connection shared by the threads of a process (the API serves requests
            # from several); every use holds self._lock.
            self._db = sqlite3.connect(
                path, isolation_level=None, timeout=30, check_same_thread=False
            )
            tables = {
                row[0]
                for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if not tables:
                self._create()
            else:
                self._check_version(path, tables)  # before any write: refuse foreign files
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a killed process; only power loss can drop the
            # newest records, which then just means a rebuild.
            self._db.execute("PRAGMA synchronous=NORMAL")
            # Small: the records are written by a thread of their own (state_writer), so a
            # checkpoint inside its commits delays no build, while what is left in the WAL
            # is checkpointed when the store closes, at the end of the run (40 MB of WAL
            # made that a tenth of a second).
            self._db.execute("PRAGMA wal_autocheckpoint=200")
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
        version = self._version() if "meta" in tables else None
        if version is None or not 1 <= version <= SCHEMA_VERSION:
            what = "has no schema version" if version is None else f"has schema {version}"
            raise UserError(
                f"the state store {what}, and this tablemake understands schema "
                f"{SCHEMA_VERSION} at most. Use the tablemake that wrote it, or move .state/ "
                "aside to start over (everything is then rebuilt once).",
                str(path),
            )
        if version < SCHEMA_VERSION:
            try:
                self._migrate()
            except sqlite3.DatabaseError as exc:
                raise UserError(
                    f"the state store could not be migrated from schema {version} to "
                    f"{SCHEMA_VERSION} ({exc}) and was left as it was. Move .state/ aside to "
                    "start over (everything is then rebuilt once), or restore it from a backup.",
                    str(path),
                ) from None

    def _version(self) -> int | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row and str(row[0]).isdigit() else None

    def _migrate(self) -> None:
        """Bring an older store up to SCHEMA_VERSION in one write transaction: another
        process migrating at the same time waits, then finds nothing left to do."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            version = self._version() or SCHEMA_VERSION
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step]:
                    self._db.execute(statement)
            self._db.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Writes made inside share one transaction: a scheduler round that settles several
        targets commits once (each commit is a WAL write and a lock round trip, which made
        up a third of a 10,000-target run). Other threads wait for the batch to end."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, statement: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        """Run one statement under the lock. Every write is a single statement, hence one
        autocommit transaction: there is no multi-statement write to leave half done."""
        with self._lock:
            try:
                return self._db.execute(statement, params).fetchall()
            except sqlite3.DatabaseError as exc:  # damage found past the first pages
                raise UserError(
                    f"the state store cannot be used: {exc}. tablemake will not write over "
                    "it: move the .state/ directory aside (everything is then rebuilt once), "
                    "or restore it from a backup.",
                    str(self.directory / STATE_FILE),
                ) from None

    # -- builds ---------------------------------------------------------------------------

    def builds(self, warehouse: str) -> dict[str, BuildRecord]:
        rows = self._query(
            "SELECT target, version, script_digest, definition, inputs, "
            "started, finished, rows, run_id, attempts FROM builds WHERE warehouse = ?",
            (warehouse,),
        )
        return {
            row[0]: BuildRecord(
                row[0],
                row[1],
                row[2],
                row[3],
                json.loads(row[4]),
                row[5],
                row[6],
                row[7],
                row[8],
                row[9],
            )
            for row in rows
        }

    def built_script(self, warehouse: str, target: str) -> str:
        """The script text of a target's last build. Asked for only when a script's digest
        changed: loading every text with ``builds`` was a tenth of planning 100,000 targets."""
        rows = self._query(
            "SELECT script_text FROM builds WHERE warehouse = ? AND target = ?",
            (warehouse, target),
        )
        return str(rows[0][0]) if rows else ""

    def record_build(
        self, warehouse: str, record: BuildRecord, *, script_text: str, sql: str
    ) -> None:
        """Store a successful build (and, by trigger, its line in the run history)."""
        self._query(
            "INSERT OR REPLACE INTO builds VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                warehouse,
                record.target,
                record.version,
                record.script_digest,
                script_text,
                record.definition,
                json.dumps(dict(record.inputs), sort_keys=True),
                record.started,
                record.finished,
                record.rows,
                record.run_id,
                sql,
                record.attempts,
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

    def record_script(self, warehouse: str, target: str, digest: str, text: str) -> None:
        """A new text of the same meaning as the last build's (a comment or layout edit):
        kept, so later plans compare against it without parsing both again."""
        self._query(
            "UPDATE builds SET script_digest = ?, script_text = ? "
            "WHERE warehouse = ? AND target = ?",
            (digest, text, warehouse, target),
        )

    def record_target_run(self, entry: TargetRunRecord) -> None:
        self._query(
            "INSERT OR REPLACE INTO run_targets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.run_id,
                entry.target,
                entry.status,
                entry.started,
                entry.finished,
                entry.rows,
                entry.error,
                entry.sql,
                entry.attempts,
            ),
        )

    def close_abandoned_runs(self) -> None:
        """Mark runs still "running" as "abandoned": called by the lock's holder, so their
        process died (SIGKILL, power loss) before it could record how they ended."""
        self._query("UPDATE runs SET status = 'abandoned' WHERE status = 'running'", ())

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
            "SELECT run_id, target, status, started, finished, rows, error, sql, attempts "
            "FROM run_targets WHERE run_id = ? ORDER BY started",
            (run_id,),
        )
        return [TargetRunRecord(*row) for row in rows]


@contextmanager
def project_lock(
    directory: Path, *, wait: float = 0.0, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the project's lock: one build per project at a time, across processes.

    flock is released by the kernel when its holder dies, so a crashed run never leaves a
    lock behind; the holder's pid, host and start time are kept in the file for the message.
    With ``wait`` > 0, a held lock is retried for that many seconds (``on_wait`` is told the
    holder once) before giving up.
    """
    import fcntl

    _make_directory(directory)
    path = directory / "lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _read_holder(fd)
            if time.monotonic() >= deadline:
                waited = f" (waited {wait:g} s)" if wait else ""
                raise LockedError(
                    f"another tablemake is working on this project ({holder}){waited}. Wait "
                    "for it to finish (--wait), or stop it; nothing was changed.",
                    str(directory.parent),
                )
            if on_wait is not None:
                on_wait(holder)
                on_wait = None
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        yield
    finally:
        os.close(fd)


def _make_directory(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot use {directory} for tablemake's state ({exc.strerror}). If a file of that "
            "name is in the way, move it aside.",
            str(directory),
        ) from None


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["started"])))
        return f"pid {int(info['pid'])} on {info['host']}, since {started}"
    except (ValueError, TypeError, KeyError, OverflowError):  # written by an older version
        return "holder unknown"
