"""A warehouse that only pretends: each build sleeps for the target's ``duration``.

It lets anyone watch and test the parallel schedule without a database, and it is the test
seam for failures (``[warehouse.simulate] fail = [...]``). Built tables live only in the
state store's records (kept under the ``simulate`` key), so a build writes nothing here and
10,000 zero-second targets cost no more than the scheduler and the state store. Sources
always exist; ``init-db`` records their columns and versions in a small JSON file, and an
appended row bumps the version, as new data would on a real warehouse.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
from collections.abc import Callable, Collection, Mapping
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tablemake import sql
from tablemake.backends.base import BuildRequest, BuildResult, TableRows, check_row_columns
from tablemake.errors import UserError, WarehouseError
from tablemake.python_targets import RowsToLoad
from tablemake.tablefile import SimulateSettings

if TYPE_CHECKING:
    from sqlglot import exp


class SimulateBackend:
    can_estimate = False
    holds_rows = False  # so no audits and no early cutoff: there are no rows to look at
    name = "simulate"

    def __init__(self, sources_file: Path, settings: SimulateSettings) -> None:
        self.settings = settings
        self.sources_file = sources_file
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}
        try:
            self._sources: dict[str, dict[str, Any]] = json.loads(sources_file.read_text())
        except FileNotFoundError:
            self._sources = {}
        except (OSError, ValueError) as exc:
            raise UserError(
                f"cannot read the simulated sources: {exc}", str(sources_file)
            ) from None

    @property
    def state_key(self) -> str:
        return "simulate"

    def ensure_datasets(self, datasets: Collection[str]) -> None:
        """Datasets need no creating in a simulation."""

    def existing_tables(self, names: Collection[str]) -> set[str]:
        """A simulated table cannot be dropped behind tablemake's back: all exist."""
        return set(names)

    def source_versions(self, names: Collection[str]) -> dict[str, str | None]:
        with self._lock:
            return {name: self._sources.get(name, {}).get("version", "s:0") for name in names}

    def snapshot_time(self, run_id: str) -> None:
        """No data: nothing to read as of an instant."""

    def duration(self, request: BuildRequest) -> float:
        if request.duration is not None:
            return request.duration
        seeded = random.Random(f"{self.settings.seed}:{request.target}")
        return round(seeded.uniform(0.05, 0.5), 3)

    def build_table(self, request: BuildRequest) -> BuildResult:
        # A sleep that ``interrupt`` can cut short: waiting to take a lock that is held, which
        # ``interrupt`` releases. (An Event's wait overshoots by twice as much, ~0.3 ms on a
        # 2-core VM: it waits on a lock of its own, then takes its Condition's lock again.
        # A schedule of 10 ms targets should measure the scheduler, not the sleep.)
        stop = threading.Lock()
        stop.acquire()
        self._building[request.target] = stop
        try:
            if stop.acquire(timeout=self.duration(request)):
                raise WarehouseError(f"the simulated build of {request.target} was interrupted")
        finally:
            self._building.pop(request.target, None)
        if request.target in self.settings.fail:
            raise WarehouseError(f"simulated failure of {request.target} (warehouse.simulate.fail)")
        return BuildResult(rows=None, sql=request.text)

    def interrupt(self, target: str) -> None:
        stop = self._building.get(target)
        if stop is not None and stop.locked():
            with suppress(RuntimeError):  # released by another interrupt meanwhile
                stop.release()

    def load_rows(self, request: BuildRequest, rows: Callable[[], RowsToLoad]) -> BuildResult:
        """A Python target is simulated like any other: its function is not called."""
        return self.build_table(request)

    def estimate_bytes(self, request: BuildRequest) -> int | None:
        return None  # nothing is scanned

    def run_init_script(self, create: exp.Create, script_path: str) -> None:
        from sqlglot import exp

        schema = create.this
        columns = [
            [c.name, c.args["kind"].sql("bigquery")]
            for c in (schema.expressions if isinstance(schema, exp.Schema) else [])
            if isinstance(c, exp.ColumnDef)
        ]
        with self._lock:
            self._sources[sql.created_table(create)] = {
                "version": f"s:{sql.fingerprint(create)}",
                "columns": columns,
                "appended": 0,
            }
            self._save()

    def load_file(self, name: str, path: Path) -> int:
        """Nothing is stored: the file's digest becomes the source's version."""
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:24]
        with self._lock:
            self._sources[name] = {"version": f"s:file:{digest}", "columns": [], "appended": 0}
            self._save()
        return 0

    def _save(self) -> None:
        self.sources_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.sources_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(self._sources, indent=1, sort_keys=True))
        os.replace(temporary, self.sources_file)

    def read_table(self, name: str, limit: int) -> TableRows:
        with self._lock:
            version = self._sources.get(name, {}).get("version", "built by the simulation")
        return TableRows(columns=["simulated_table", "version"], rows=[(name, version)][:limit])

    def table_columns(self, name: str) -> list[tuple[str, str]]:
        with self._lock:
            return [(c, t) for c, t in self._sources.get(name, {}).get("columns", [])]

    def append_row(self, name: str, row: Mapping[str, object]) -> dict[str, object]:
        """Nothing is stored but the count: the row changes the source's version."""
        columns = self.table_columns(name)
        check_row_columns(name, row, columns)
        with self._lock:
            source = self._sources[name]
            source["appended"] += 1
            source["version"] = f"{source['version'].split('+')[0]}+{source['appended']}"
            self._save()
        return {column: row.get(column) for column, _ in columns}

    def content_version(self, name: str) -> str | None:
        return None

    def query_rows(self, query: exp.Query, limit: int) -> TableRows:
        raise WarehouseError("the simulate backend holds no rows to query")

    def publish(self, staging: str, target: str) -> None:
        """Nothing to swap: simulated builds write nothing."""

    def drop_table(self, name: str) -> None:
        """Nothing to drop: simulated builds write nothing."""

    def close(self) -> None:
        """Nothing is held open."""
