"""A warehouse that only pretends: each build sleeps for the target's ``duration``.

It lets anyone watch and test the parallel schedule without a database, and it is the test
seam for failures (``[warehouse.simulate] fail = [...]``). Its "tables" are rows in its own
SQLite file, so staleness, crash safety and history behave as on a real warehouse.
Sources always exist; their version is bumped by ``init-db``.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Collection
from pathlib import Path

from sqlglot import exp

from tablemake import sql
from tablemake.backends.base import BuildRequest, BuildResult, TableRows
from tablemake.errors import UserError, WarehouseError
from tablemake.tablefile import SimulateSettings


class SimulateBackend:
    can_estimate = False
    name = "simulate"

    def __init__(self, path: Path, settings: SimulateSettings) -> None:
        self.settings = settings
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=30
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS tables (name TEXT PRIMARY KEY, version TEXT NOT NULL)"
            )
        except sqlite3.DatabaseError as exc:
            raise UserError(f"cannot open the simulated warehouse: {exc}", str(path)) from None
        self._lock = threading.Lock()

    @property
    def state_key(self) -> str:
        return "simulate"

    def ensure_datasets(self, datasets: Collection[str]) -> None:
        """Datasets need no creating in a simulation."""

    def _versions(self) -> dict[str, str]:
        with self._lock:
            return dict(self._db.execute("SELECT name, version FROM tables").fetchall())

    def existing_tables(self, names: Collection[str]) -> set[str]:
        return self._versions().keys() & set(names)

    def source_versions(self, names: Collection[str]) -> dict[str, str | None]:
        known = self._versions()
        return {name: known.get(name, "s:0") for name in names}

    def duration(self, request: BuildRequest) -> float:
        if request.duration is not None:
            return request.duration
        seeded = random.Random(f"{self.settings.seed}:{request.target}")
        return round(seeded.uniform(0.05, 0.5), 3)

    def build_table(self, request: BuildRequest) -> BuildResult:
        time.sleep(self.duration(request))
        if request.target in self.settings.fail:
            raise WarehouseError(f"simulated failure of {request.target} (warehouse.simulate.fail)")
        self._store(request.target, f"s:{request.run_id}")
        return BuildResult(rows=None, sql=request.query.sql(sql.DIALECT))

    def estimate_bytes(self, request: BuildRequest) -> int | None:
        return None  # no cost model worth showing

    def run_init_script(self, create: exp.Create, script_path: str) -> None:
        self._store(sql.created_table(create), f"s:{sql.fingerprint(create)}")

    def _store(self, name: str, version: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO tables VALUES (?, ?)", (name, version))

    def read_table(self, name: str, limit: int) -> TableRows:
        version = self._versions().get(name)
        if version is None:
            raise WarehouseError(f"table {name} does not exist in the simulated warehouse")
        return TableRows(columns=["simulated_table", "version"], rows=[(name, version)][:limit])

    def close(self) -> None:
        with self._lock:
            self._db.close()
