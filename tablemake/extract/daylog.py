"""Which task of which day succeeded or failed: ``.state/pipeline.sqlite``.

Why a store of its own: the day pipeline has facts the build state does not (a day, a step,
a Postgres database that could not be reached), and keeping them apart lets the build
state stay exactly as it is. Every task is recorded as it ends, in its own transaction, so
a killed run keeps what it finished and ``status`` always shows where to resume.

A task is one table of one extract (``task`` = ``dataset.table``), or the extract as a whole
(``task`` = ``""``): the latter fails when the source cannot be read at all (database down,
malformed CSV) and succeeds only when every table of the extract did.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

EXTRACT_STEP, LOAD_STEP = "extract", "load"
SUCCEEDED, FAILED = "succeeded", "failed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    day TEXT NOT NULL, step TEXT NOT NULL, extract TEXT NOT NULL, task TEXT NOT NULL,
    status TEXT NOT NULL, detail TEXT NOT NULL, rows INTEGER, finished REAL NOT NULL,
    PRIMARY KEY (day, step, extract, task)
);
CREATE TABLE IF NOT EXISTS loaded (
    warehouse TEXT NOT NULL, tbl TEXT NOT NULL, day TEXT NOT NULL, sha256 TEXT NOT NULL,
    PRIMARY KEY (warehouse, tbl)
);
"""


@dataclass(frozen=True)
class TaskRecord:
    day: str
    step: str
    extract: str
    task: str  # ``dataset.table``, or "" for the extract as a whole
    status: str
    detail: str
    rows: int | None
    finished: float


class DayLog:
    """The store; open it for one command, under the project lock. Its SQLite connection
    belongs to the thread that opened it, so a step's workers never touch it: they hand
    their outcomes back to that thread, which records them (see ``pool.run_tasks``)."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(state_dir / "pipeline.sqlite", isolation_level=None)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> DayLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(
        self,
        day: str,
        step: str,
        extract: str,
        task: str,
        *,
        status: str,
        detail: str = "",
        rows: int | None = None,
    ) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (day, step, extract, task, status, detail, rows, time.time()),
        )

    def forget(self, day: str, step: str, extract: str, *, failed_only: bool = False) -> None:
        """Drop an extract's records of a day before redoing it (``-B``), or only its
        failures before retrying them, so a table that is gone since leaves no failure."""
        self._db.execute(
            "DELETE FROM tasks WHERE day = ? AND step = ? AND extract = ? "
            "AND (NOT ? OR status = 'failed')",
            (day, step, extract, failed_only),
        )

    def tasks(self, day: str, step: str | None = None) -> list[TaskRecord]:
        rows = self._db.execute(
            "SELECT * FROM tasks WHERE day = ? AND (? IS NULL OR step = ?) "
            "ORDER BY step = 'load', extract, task",
            (day, step, step),
        ).fetchall()
        return [TaskRecord(*row) for row in rows]

    def loaded(self, warehouse: str, table: str) -> tuple[str, str] | None:
        """(day, sha256) of the file last loaded into the table on this warehouse."""
        row = self._db.execute(
            "SELECT day, sha256 FROM loaded WHERE warehouse = ? AND tbl = ?", (warehouse, table)
        ).fetchone()
        return (str(row[0]), str(row[1])) if row else None

    def set_loaded(self, warehouse: str, table: str, day: str, sha256: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO loaded VALUES (?, ?, ?, ?)", (warehouse, table, day, sha256)
        )
