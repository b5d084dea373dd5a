"""The embedded warehouse: one DuckDB file, BigQuery SQL translated by ``tablemake.sql``.

Each build is a single ``CREATE OR REPLACE TABLE … AS`` statement, which DuckDB commits
atomically, so a failed or killed build leaves the previous table. Worker threads each use
their own cursor on one shared connection (DuckDB allows concurrent writers in a process).
The file is opened only when needed: while it is untouched since tablemake last looked, a
plan is answered from that look (``tablemake.backends.duckdb_seen``), and a run with
nothing to build never imports DuckDB.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from tablemake import sql
from tablemake.backends.base import BuildRequest, BuildResult, TableRows, check_row_columns
from tablemake.backends.duckdb_seen import Seen, forget_seen, read_seen, write_seen
from tablemake.errors import TransientWarehouseError, UserError, WarehouseError, first_line
from tablemake.python_targets import RowsToLoad

if TYPE_CHECKING:
    import duckdb
    from sqlglot import exp


class DuckDBBackend:
    can_estimate = False
    holds_rows = True
    name = "duckdb"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._building: dict[str, duckdb.DuckDBPyConnection] = {}  # target -> its cursor
        self._partition_locks: dict[str, threading.Lock] = {}  # table -> one partition at once
        self._seen: Seen | None = None  # the last look, while the file has not been opened
        self._seen_read = path.name == ":memory:"  # nothing to record for an in-memory one
        self._known_versions: dict[str, str | None] = {}  # source versions read from DuckDB
        self._carried_versions: dict[str, str | None] = {}  # the last look's, still true
        self._sources_written = False

    def _connection(self) -> duckdb.DuckDBPyConnection:
        """The connection, opened on first use (call with ``self._lock`` held)."""
        if self._con is None:
            import duckdb

            try:
                self._con = duckdb.connect(str(self.path))
            except duckdb.Error as exc:
                raise UserError(
                    f"cannot open the DuckDB warehouse: {first_line(exc)}. If another process "
                    "(a `tablemake serve`, a notebook) holds it, stop that process or go "
                    "through it.",
                    str(self.path),
                ) from None
            # Holding the write lock now, no one else can change the file: what the last look
            # recorded and is still true stays true until this process writes a source.
            if self.path.name != ":memory:":
                seen = read_seen(self.path)
                self._carried_versions = dict(seen.versions) if seen else {}
        return self._con

    def _last_look(self) -> Seen | None:
        """The record of the last look, only until the file is opened here."""
        if self._con is not None:
            return None
        if not self._seen_read:
            self._seen, self._seen_read = read_seen(self.path), True
        return self._seen

    @property
    def state_key(self) -> str:
        return "duckdb"

    @contextmanager
    def _cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        import duckdb

        with self._lock:  # creating cursors is not thread-safe; using them is
            cur = self._connection().cursor()
        try:
            yield cur
        except duckdb.TransactionException as exc:  # a write-write conflict: may pass
            raise TransientWarehouseError(first_line(exc)) from None
        except duckdb.Error as exc:
            raise WarehouseError(first_line(exc)) from None
        finally:
            cur.close()

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor inside one transaction: committed when the block ends, rolled back
        (and the error raised) when a statement fails."""
        import duckdb

        with self._cursor() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except duckdb.Error:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def ensure_datasets(self, datasets: Collection[str]) -> None:
        with self._cursor() as cur:
            for dataset in sorted(datasets):
                schema = sql.quote_identifier(dataset, "duckdb")
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")

    def existing_tables(self, names: Collection[str]) -> set[str]:
        seen = self._last_look()
        return set(names) & (seen.tables if seen is not None else self._tables_now())

    def _tables_now(self) -> set[str]:
        """Every table in the file, asked of DuckDB (opening it if needed)."""
        with self._cursor() as cur:
            rows = cur.execute(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables"
            ).fetchall()
        return {row[0] for row in rows}

    def source_versions(self, names: Collection[str]) -> dict[str, str | None]:
        """Version = digest of (schema, row count, sum of row hashes): exact for any change
        made by any client, at the cost of one scan of each source (unless the file is
        untouched since the last look recorded them)."""
        seen = self._last_look()
        recorded = None if seen is None else seen.versions_of(names)
        if recorded is not None:
            return recorded
        present = sorted(self._tables_now() & set(names))
        versions: dict[str, str | None] = dict.fromkeys(names)
        if present:
            versions.update(self._scan_versions(present))
        self._known_versions.update(versions)
        return versions

    def _scan_versions(self, present: list[str]) -> dict[str, str]:
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
        return {
            name: _content_digest(schema_of.get(name), content[i]) for i, name in enumerate(present)
        }

    def snapshot_time(self, run_id: str) -> None:
        """DuckDB keeps no past versions of a table. A row appended during a run may be read
        by some targets; none is recorded as having seen it (the versions are from before)."""

    def build_table(self, request: BuildRequest) -> BuildResult:
        statement = sql.to_duckdb_ctas(request.table, request.query)
        used = sql.parameter_names(request.query)
        values = {p.name: p.value for p in request.params if p.name in used}
        if request.partition is not None:
            query, table = request.query.sql("duckdb"), sql.quote_table(request.table, "duckdb")
            return self._replace_partition(
                request,
                f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM ({query}) WHERE false",
                f"INSERT INTO {table} BY NAME SELECT * FROM ({query})",
                create_params=values or None,
                insert_params=values or None,
            )
        with self._cursor() as cur:
            self._building[request.target] = cur
            try:
                row = cur.execute(statement, values or None).fetchone()
            finally:
                self._building.pop(request.target, None)
        return BuildResult(rows=int(row[0]) if row else None, sql=statement)

    def interrupt(self, target: str) -> None:
        """Stop the target's statement: DuckDB rolls it back, the previous table stays."""
        cursor = self._building.get(target)
        if cursor is not None:
            import duckdb

            # The statement may have finished and closed its cursor meanwhile: nothing to stop.
            with suppress(duckdb.Error):
                cursor.interrupt()

    def estimate_bytes(self, request: BuildRequest) -> int | None:
        return None  # no cost model worth showing

    def load_rows(self, request: BuildRequest, rows: Callable[[], RowsToLoad]) -> BuildResult:
        """Create the table with the inferred column types and insert the rows, bound, in
        one transaction: readers see the previous table until it commits. Each column is
        bound as one list and unnested (``executemany`` costs about 1 ms a row; this loads
        10,000 rows in a fifth of a second)."""
        data = rows()
        names = [sql.quote_identifier(name, "duckdb") for name, _ in data.columns]
        columns = ", ".join(
            f"{name} {sql.translate_type(kind.googlesql(), 'duckdb')}"
            for name, (_, kind) in zip(names, data.columns, strict=True)
        )
        table = sql.quote_table(request.table, "duckdb")
        create = f"CREATE OR REPLACE TABLE {table} ({columns})"
        unnested = ", ".join(f"unnest($c{i})" for i in range(len(names)))
        insert = f"INSERT INTO {table} ({', '.join(names)}) SELECT {unnested}"
        values = {f"c{i}": [row[i] for row in data.rows] for i in range(len(names))}
        if request.partition is not None:
            return self._replace_partition(
                request,
                f"CREATE TABLE IF NOT EXISTS {table} ({columns})",
                insert,
                insert_params=values,
            )
        with self._transaction() as cur:
            cur.execute(create)
            cur.execute(insert, values)
        count = len(data.rows)
        return BuildResult(rows=count, sql=f"{create};\n{insert}; -- {count} rows")

    def _replace_partition(
        self,
        request: BuildRequest,
        create: str,
        insert: str,
        *,
        create_params: Mapping[str, object] | None = None,
        insert_params: Mapping[str, object] | None = None,
    ) -> BuildResult:
        """Run ``create`` (if the table is missing), delete the partition's rows, then
        ``insert`` its new ones, in one transaction. Builds of one table's partitions take
        turns (they would conflict); other tables build meanwhile."""
        assert request.partition is not None
        table = sql.quote_table(request.table, "duckdb")
        column = sql.quote_identifier(request.partition.name, "duckdb")
        delete = f"DELETE FROM {table} WHERE {column} = ?"
        with self._lock:
            turn = self._partition_locks.setdefault(request.table, threading.Lock())
        with turn, self._transaction() as cur:
            cur.execute(create, create_params)
            cur.execute(delete, [request.partition.value])
            found = cur.execute(insert, insert_params).fetchone()
            count = int(found[0]) if found else None
        return BuildResult(rows=count, sql=f"{create};\n{delete};\n{insert}")

    def run_init_script(self, create: exp.Create, script_path: str) -> None:
        statement = sql.init_to_duckdb(create)
        self._sources_written = True
        try:
            with self._cursor() as cur:
                cur.execute(statement)
        except WarehouseError as exc:
            raise WarehouseError(f"{script_path}: {exc}") from None

    def load_file(self, name: str, path: Path) -> int:
        """DuckDB reads parquet itself; one CREATE OR REPLACE keeps the load atomic."""
        source = str(path).replace("'", "''")
        statement = (
            f"CREATE OR REPLACE TABLE {sql.quote_table(name, 'duckdb')} AS "
            f"SELECT * FROM read_parquet('{source}')"
        )
        self._sources_written = True
        with self._cursor() as cur:
            row = cur.execute(statement).fetchone()
        return int(row[0]) if row else 0

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
            columns = ", ".join(sql.quote_identifier(n, "duckdb") for n in names)
            marks = ", ".join("?" for _ in names)
            statement = f"INSERT INTO {table} ({columns}) VALUES ({marks}) RETURNING *"
        else:
            statement = f"INSERT INTO {table} DEFAULT VALUES RETURNING *"
        self._sources_written = True
        with self._cursor() as cur:
            result = cur.execute(statement, [row[n] for n in names])
            stored = result.fetchone() or ()
            columns_out = [d[0] for d in result.description or ()]
        return dict(zip(columns_out, stored, strict=True))

    def content_version(self, name: str) -> str | None:
        """The same digest as ``source_versions``, for one table and without listing all."""
        dataset, table = name.split(".", 1)
        with self._cursor() as cur:
            (schema,) = cur.execute(
                "SELECT string_agg(column_name || ' ' || data_type, ',' ORDER BY column_index) "
                "FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?",
                [dataset, table],
            ).fetchone() or (None,)
            if schema is None:
                return None
            (content,) = cur.execute(
                "SELECT count(*)::VARCHAR || ':' || coalesce(sum(hash(t))::VARCHAR, '') "
                f"FROM {sql.quote_table(name, 'duckdb')} AS t"
            ).fetchone() or ("",)
        return _content_digest(schema, content)

    def query_rows(self, query: exp.Query, limit: int) -> TableRows:
        with self._cursor() as cur:
            result = cur.execute(query.sql("duckdb"))
            columns = [d[0] for d in result.description or ()]
            return TableRows(columns=columns, rows=result.fetchmany(limit))

    def publish(self, staging: str, target: str) -> None:
        """Drop and rename in one transaction: DuckDB readers keep their snapshot, so they
        see the old table or the new one."""
        new_name = sql.quote_identifier(target.split(".", 1)[1], "duckdb")
        with self._transaction() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {sql.quote_table(target, 'duckdb')}")
            cur.execute(f"ALTER TABLE {sql.quote_table(staging, 'duckdb')} RENAME TO {new_name}")

    def drop_table(self, name: str) -> None:
        with self._cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {sql.quote_table(name, 'duckdb')}")

    def close(self) -> None:
        """Close the file, first recording what it holds for the next plan (see
        ``duckdb_seen``), unless this process wrote a source: its versions are then unknown."""
        if self._con is None:
            return
        import duckdb

        try:
            if self.path.name == ":memory:":
                return
            if self._sources_written:
                forget_seen(self.path)
                return
            with suppress(duckdb.Error, WarehouseError):  # no record: only ever saves time
                self._con.execute("CHECKPOINT")
                versions = {**self._carried_versions, **self._known_versions}
                write_seen(self.path, self._tables_now(), versions)
        finally:
            self._con.close()


def _content_digest(schema: str | None, content: str) -> str:
    return "d:" + hashlib.sha256(f"{schema}|{content}".encode()).hexdigest()[:24]
