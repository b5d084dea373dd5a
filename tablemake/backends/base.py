"""The warehouse seam: the few operations the core needs from a warehouse.

A backend builds one table atomically from a query, says which tables exist and what
version each source's data is at, and runs init scripts. It decides nothing about what to
build. Driver errors are translated here into ``WarehouseError`` (failed statement) or
``UserError`` (unusable configuration) so the core never sees a driver's exception types.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tablemake import sql
from tablemake.errors import UserError

if TYPE_CHECKING:
    from sqlglot import exp
from tablemake.params import BoundParam
from tablemake.python_targets import RowsToLoad


@dataclass(frozen=True)
class SourceSnapshot:
    """Sources a build reads as they were at one instant, the same for every target of a
    run: rows that arrive while the run goes on are left for the next run."""

    at: datetime
    tables: frozenset[str]


@dataclass(frozen=True)
class BuildRequest:
    """One table to (re)build: its name, its script's text and where the text came from."""

    target: str
    text: str
    script_path: str
    run_id: str
    duration: float | None = None  # the simulate backend's stand-in for work
    into: str | None = None  # write this table instead of the target (audits' staging)
    params: tuple[BoundParam, ...] = ()  # bound as query parameters (@name), never spliced
    # One partition (tablemake.partitions): replace only the rows whose column named like
    # the parameter holds its value, keeping the table's other partitions.
    partition: BoundParam | None = None
    as_of: SourceSnapshot | None = None  # on warehouses that can read the past (BigQuery)

    @property
    def table(self) -> str:
        """The table the build writes."""
        return self.into or self.target

    @cached_property
    def query(self) -> exp.Query:
        """The parsed script, on first use only: a backend that never looks at the SQL
        (simulate) costs no parse, which keeps 10,000-target runs fast."""
        return sql.parse_script(self.text, self.script_path).query


@dataclass(frozen=True)
class BuildResult:
    rows: int | None
    sql: str  # the statement actually sent, after translation
    content: str | None = None  # the new table's content digest, when early cutoff is on


@dataclass(frozen=True)
class TableRows:
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]


class Backend(Protocol):
    name: str
    can_estimate: bool  # whether estimate_bytes can answer (worth parsing scripts in -n)
    holds_rows: bool  # whether tables hold real rows (audits and early cutoff need them)

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

    def snapshot_time(self, run_id: str) -> datetime | None:
        """The warehouse's current time, when its queries can read tables as of a past
        instant and that is wanted; else None. Asked after ``source_versions``, so a run's
        targets read no older data than the versions it records for them."""
        ...

    def build_table(self, request: BuildRequest) -> BuildResult:
        """Replace the target's table with the query's result, atomically: on error the
        previous table is untouched. Safe to call from several threads at once."""
        ...

    def estimate_bytes(self, request: BuildRequest) -> int | None:
        """Bytes the build would scan, when the warehouse can say without running it."""
        ...

    def load_rows(self, request: BuildRequest, rows: Callable[[], RowsToLoad]) -> BuildResult:
        """Replace the table with the rows a Python target computes, atomically. ``rows``
        is called only by warehouses that hold data (simulate just sleeps)."""
        ...

    def run_init_script(self, create: exp.Create, script_path: str) -> None: ...

    def load_file(self, name: str, path: Path) -> int:
        """Replace the table with the rows of a local parquet file, atomically; return the
        number of rows. Used by the daily ``load`` step; the table stays a source."""
        ...

    def read_table(self, name: str, limit: int) -> TableRows: ...

    def table_columns(self, name: str) -> list[tuple[str, str]]:
        """The table's columns in order, each with its SQL type as the warehouse names it
        (GoogleSQL names on BigQuery); empty when the table does not exist."""
        ...

    def append_row(self, name: str, row: Mapping[str, object]) -> dict[str, object]:
        """Insert one row and return it as stored; columns not given are NULL.

        Names are checked with ``check_row_columns``; values are bound as query parameters,
        never spliced into SQL. Safe from several threads at once, also during a build.
        """
        ...

    def content_version(self, name: str) -> str | None:
        """A digest of the table's schema and rows, independent of row order: equal digests
        mean equal contents (early cutoff). None when the table does not exist."""
        ...

    def query_rows(self, query: exp.Query, limit: int) -> TableRows:
        """Run a read-only query (an audit), given as an expression in BigQuery's dialect."""
        ...

    def publish(self, staging: str, target: str) -> None:
        """Replace ``target`` by ``staging`` atomically: readers see the old table or the
        new one, never neither. ``staging`` is gone afterwards."""
        ...

    def drop_table(self, name: str) -> None:
        """Drop the table if it exists."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Interruptible(Protocol):
    """A backend that can stop a running build (used when a target's ``timeout`` expires)."""

    def interrupt(self, target: str) -> None:
        """Ask the warehouse to stop the build of ``target`` now running, if any; the
        build then fails in its own thread. Safe to call from any thread."""
        ...


def check_row_columns(
    name: str, row: Mapping[str, object], columns: Sequence[tuple[str, str]]
) -> list[str]:
    """The row's column names in table order, after refusing any the table lacks: names
    are quoted into the INSERT, so only the warehouse's own may pass."""
    known = [column for column, _ in columns]
    for given in row:
        if given not in known:
            raise UserError(
                f"table `{name}` has no column `{given}`; its columns are: {', '.join(known)}."
            )
    return [column for column in known if column in row]
