"""The warehouse seam: the few operations the core needs from a warehouse.

A backend builds one table atomically from a query, says which tables exist and what
version each source's data is at, and runs init scripts. It decides nothing about what to
build. Driver errors are translated here into ``WarehouseError`` (failed statement) or
``UserError`` (unusable configuration) so the core never sees a driver's exception types.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlglot import exp


@dataclass(frozen=True)
class BuildRequest:
    """One table to (re)build: its name, its parsed query and where the query came from."""

    target: str
    query: exp.Query
    script_path: str
    run_id: str
    duration: float | None = None  # the simulate backend's stand-in for work


@dataclass(frozen=True)
class BuildResult:
    rows: int | None
    sql: str  # the statement actually sent, after translation


@dataclass(frozen=True)
class TableRows:
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]


class Backend(Protocol):
    name: str
    can_estimate: bool  # whether estimate_bytes can answer (worth parsing scripts in -n)

    @property
    def state_key(self) -> str:
        """Identifies this warehouse in the state store (e.g. ``bigquery:my-project``)."""
        ...

    def ensure_datasets(self, datasets: Collection[str]) -> None:
        """Create the datasets (schemas) the build will write into, when missing."""
        ...

    def existing_tables(self, names: Collection[str]) -> set[str]:
        """Which of these ``dataset.table`` names exist now."""
        ...

    def source_versions(self, names: Collection[str]) -> dict[str, str | None]:
        """A version string for each source's current data (None when the table is missing).

        Equal versions must mean equal data as far as the warehouse can tell; any change
        made outside tablemake must produce a different version.
        """
        ...

    def build_table(self, request: BuildRequest) -> BuildResult:
        """Replace the target's table with the query's result, atomically: on error the
        previous table is untouched. Safe to call from several threads at once."""
        ...

    def estimate_bytes(self, request: BuildRequest) -> int | None:
        """Bytes the build would scan, when the warehouse can say without running it."""
        ...

    def run_init_script(self, create: exp.Create, script_path: str) -> None: ...

    def read_table(self, name: str, limit: int) -> TableRows: ...

    def close(self) -> None: ...
