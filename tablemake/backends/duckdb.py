"""The embedded warehouse: one DuckDB file, BigQuery SQL translated by ``tablemake.sql``.

Each build is a single ``CREATE OR REPLACE TABLE … AS`` statement, which DuckDB commits
atomically, so a failed or killed build leaves the previous table. Worker threads each use
their own cursor on one shared connection (DuckDB allows concurrent writers in a process).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import duckdb
from sqlglot import exp

from tablemake import sql
from tablemake.backends.base import BuildRequest, BuildResult, TableRows, check_row_columns
from tablemake.errors import UserError, WarehouseError


class DuckDBBackend:
    can_estimate = False
    name = "duckdb"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(path))
        except duckdb.Error as exc:
            raise UserError(
                f"cannot open the DuckDB warehouse: {_first_line(exc)}. If another process "
                "(a `tablemake serve`, a notebook) holds it, stop that process or go through it.",
                str(path),
            ) from None
        self._lock = threading.Lock()

    @property
    def state_key(self) -> str:
        return "duckdb"

    @contextmanager
    def _cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:  # creating cursors is not thread-safe; using them is
            cur = self._con.cursor()
        try:
            yield cur
        except duckdb.Error as exc:
            raise WarehouseError(_first_line(exc)) from None
        finally:
            cur.close()

    def ensure_datasets(self, datasets: Collection[str]) -> None:
        with self._cursor() as cur:
            for dataset in sorted(datasets):
                schema = exp.to_identifier(dataset, quoted=True).sql("duckdb")
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")

    def existing_tables(self, names: Collection[str]) -> set[str]:
        with self._cursor() as cur:
            rows = cur.execute(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables"
            ).fetchall()
        return {row[0] for row in rows} & set(names)

    def source_versions(self, names: Collection[str]) -> dict[str, str | None]:
        """Version = digest of (schema, row count, sum of row hashes): exact for any change
        made by any client, at the cost of one scan of each source."""
        present = sorted(self.existing_tables(names))
        versions: dict[str, str | None] = dict.fromkeys(names)
        if not present:
            return versions
        parts = [
            f"SELECT {i} AS i, count(*)::VARCHAR || ':' || coalesce(sum(hash(t))::VARCHAR, '') "
            f"FROM {sql.quote_table(name, 'duckdb')} AS t"
            for i, name in enumerate(present)
        ]
        with self._cursor() as cur:
            content = dict(cur.execute(" UNION ALL ".join(parts)).fetchall())
            schemas = cur.execute(
                "SELECT table_schema || '.' || table_name, "
                "string_agg(column_name || ' ' || data_type, ',' ORDER BY ordinal_position) "
                "FROM information_schema.columns GROUP BY 1"
            ).fetchall()
        schema_of = dict(schemas)
        for i, name in enumerate(present):
            text = f"{schema_of.get(name)}|{content[i]}"
            versions[name] = "d:" + hashlib.sha256(text.encode()).hexdigest()[:24]
        return versions

    def build_table(self, request: BuildRequest) -> BuildResult:
        statement = sql.to_duckdb_ctas(request.target, request.query)
        with self._cursor() as cur:
            row = cur.execute(statement).fetchone()
        return BuildResult(rows=int(row[0]) if row else None, sql=statement)

    def estimate_bytes(self, request: BuildRequest) -> int | None:
        return None  # no cost model worth showing

    def run_init_script(self, create: exp.Create, script_path: str) -> None:
        statement = sql.init_to_duckdb(create)
        try:
            with self._cursor() as cur:
                cur.execute(statement)
        except WarehouseError as exc:
            raise WarehouseError(f"{script_path}: {exc}") from None

    def read_table(self, name: str, limit: int) -> TableRows:
        with self._cursor() as cur:
            result = cur.execute(
                f"SELECT * FROM {sql.quote_table(name, 'duckdb')} LIMIT {int(limit)}"
            )
            columns = [d[0] for d in result.description or ()]
            return TableRows(columns=columns, rows=result.fetchall())

    def table_columns(self, name: str) -> list[tuple[str, str]]:
        dataset, table = name.split(".", 1)
        with self._cursor() as cur:
            rows = cur.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                [dataset, table],
            ).fetchall()
        return [(str(column), str(kind)) for column, kind in rows]

    def append_row(self, name: str, row: Mapping[str, object]) -> dict[str, object]:
        """One INSERT on its own cursor: it commits on its own, so a build running on other
        cursors neither blocks it nor loses it (the build reads the snapshot it started with)."""
        names = check_row_columns(name, row, self.table_columns(name))
        table = sql.quote_table(name, "duckdb")
        if names:
            columns = ", ".join(exp.to_identifier(n, quoted=True).sql("duckdb") for n in names)
            marks = ", ".join("?" for _ in names)
            statement = f"INSERT INTO {table} ({columns}) VALUES ({marks}) RETURNING *"
        else:
            statement = f"INSERT INTO {table} DEFAULT VALUES RETURNING *"
        with self._cursor() as cur:
            result = cur.execute(statement, [row[n] for n in names])
            stored = result.fetchone() or ()
            columns_out = [d[0] for d in result.description or ()]
        return dict(zip(columns_out, stored, strict=True))

    def close(self) -> None:
        self._con.close()


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
