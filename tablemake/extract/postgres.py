"""Read every table of the named schemas of a PostgreSQL database into parquet files.

How, and why: all tables of an extract are read from one snapshot, so the day's tables are
consistent with each other (an order never lacks its customer), even when several are read
at once. As ``pg_dump -j`` does, a coordinating connection opens a read-only REPEATABLE
READ transaction and exports its snapshot (``snapshot``); each worker thread's own
connection begins the same kind of transaction and imports it (``SnapshotReaders``) while
the coordinator's stays open. Each table is streamed out with ``COPY (SELECT …) TO STDOUT
(FORMAT csv)`` into a scratch file (bounded memory, the fastest path out of Postgres) with
the session in UTC and ISO date style, so the text is unambiguous; DuckDB then reads it
with every column as text and casts each to the type mapped from the Postgres catalog, and
writes parquet. ``bytea`` travels as hex. Each table runs in a savepoint, so one failing
table does not abort the others read on the same connection.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias
from urllib.parse import urlsplit, urlunsplit

import duckdb
import psycopg
from psycopg import sql as pgsql
from psycopg.pq.abc import PGcancel

from tablemake import sql
from tablemake.errors import UserError, first_line
from tablemake.extract.files import SourceError, write_parquet
from tablemake.tablefile import Extract, Tablefile

Connection: TypeAlias = "psycopg.Connection[tuple[object, ...]]"


@dataclass(frozen=True)
class PgColumn:
    name: str
    pg_type: str  # as format_type() prints it, for messages and manifests
    duck_type: str  # the DuckDB type it is cast to


@dataclass(frozen=True)
class PgTable:
    schema: str
    name: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


def database_url(extract: Extract, tablefile: Tablefile) -> str:
    """The URL from the Tablefile or from the environment variable it names."""
    if extract.url is not None:
        return extract.url
    assert extract.url_env is not None  # the Tablefile requires one of the two
    value = os.environ.get(extract.url_env)
    if not value:
        raise UserError(
            f"`extract.{extract.name}.url_env` names the environment variable "
            f"`{extract.url_env}`, which is not set; set it to the database URL, e.g. "
            f"export {extract.url_env}='postgresql://user:password@host:5432/dbname'.",
            tablefile.where("extract", extract.name),
        )
    return value


def redacted(url: str) -> str:
    """The URL without its password, for manifests and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class Snapshot:
    """What the coordinating connection exported: the snapshot and the tables in it."""

    url: str
    id: str  # as pg_export_snapshot() returned it, for SET TRANSACTION SNAPSHOT
    tables: list[PgTable]


@contextmanager
def snapshot(url: str, schemas: tuple[str, ...]) -> Iterator[Snapshot]:
    """The extract's one snapshot, with the schemas' tables as it sees them.

    The coordinating connection stays idle in its transaction until the block ends: an
    exported snapshot can be imported only while the transaction that exported it is open.
    """
    conn = _connect(url)
    try:
        try:
            _begin(conn)
            row = conn.execute("SELECT pg_export_snapshot()").fetchone()
            assert row is not None  # the function returns one row
            exported = Snapshot(url, str(row[0]), list_tables(conn, schemas))
        except psycopg.OperationalError as exc:
            raise SourceError(_lost(url, exc)) from None
        yield exported
    finally:
        conn.close()


class SnapshotReaders:
    """The workers' side: each worker thread reads its tables through a connection of its
    own, which imports the snapshot once and keeps that transaction for every table the
    thread reads. No connection is used by two threads; the coordinating thread closes
    them all when the block ends, after the workers stopped."""

    def __init__(self, exported: Snapshot) -> None:
        self._snapshot = exported
        self._mine = threading.local()
        self._opened: list[tuple[Connection, PGcancel]] = []
        self._lock = threading.Lock()  # guards _opened

    def __enter__(self) -> SnapshotReaders:
        return self

    def __exit__(self, *exc: object) -> None:
        for conn, _ in self._opened:
            conn.close()

    def cancel(self) -> None:
        """Ask the server to stop what the workers' connections run (on Ctrl-C), so that
        waiting for them is short. Through the cancel handle each worker made when it
        connected: libpq lets another thread use that handle, unlike the connection."""
        with self._lock:
            handles = [handle for _, handle in self._opened]
        for handle in handles:
            with suppress(psycopg.Error):  # could not be sent: the worker ends on its own
                handle.cancel()

    def extract_table(self, table: PgTable, dest: Path) -> tuple[int, list[list[str]]]:
        """``extract_table`` on this thread's connection. A lost connection fails this
        table alone; the thread's next table connects again."""
        conn = self._connection()
        try:
            return extract_table(conn, table, dest)
        except psycopg.OperationalError as exc:
            conn.close()
            raise SourceError(_lost(self._snapshot.url, exc)) from None

    def _connection(self) -> Connection:
        conn: Connection | None = getattr(self._mine, "conn", None)
        if conn is not None and not conn.closed:
            return conn
        url = self._snapshot.url
        conn = _connect(url)
        with self._lock:
            self._opened.append((conn, conn.pgconn.get_cancel()))
        try:
            _begin(conn, self._snapshot.id)
        except psycopg.Error as exc:
            conn.close()
            detail = f"cannot import the snapshot on {redacted(url)}: {first_line(exc)}"
            raise SourceError(detail) from None
        self._mine.conn = conn
        return conn


def _connect(url: str) -> Connection:
    try:
        return psycopg.connect(url, connect_timeout=10, autocommit=False)
    except psycopg.Error as exc:
        raise SourceError(f"cannot connect to {redacted(url)}: {first_line(exc)}") from None


# in one round trip; the coordinator idles in its transaction while workers read, and a
# server limit must not end it (pg_dump sets the same)
_SESSION = (
    "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; "
    "SET LOCAL extra_float_digits = 3; SET LOCAL idle_in_transaction_session_timeout = 0"
)


def _begin(conn: Connection, snapshot_id: str | None = None) -> None:
    """Begin the connection's read-only REPEATABLE READ transaction (autocommit is off, so
    psycopg sends BEGIN with these characteristics before the first statement), importing
    the snapshot first, as Postgres requires, when one is given."""
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    if snapshot_id is not None:
        conn.execute(pgsql.SQL("SET TRANSACTION SNAPSHOT {}").format(pgsql.Literal(snapshot_id)))
    conn.execute(_SESSION)


def _lost(url: str, exc: psycopg.Error) -> str:
    return f"lost the connection to {redacted(url)}: {first_line(exc)}"


def list_tables(conn: Connection, schemas: tuple[str, ...]) -> list[PgTable]:
    """Every ordinary and partitioned table of the schemas, by schema and name."""
    found = {
        str(row[0])
        for row in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", (list(schemas),)
        )
    }
    missing = [s for s in schemas if s not in found]
    if missing:
        raise SourceError(f"the database has no schema {', '.join(missing)}")
    rows = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname = ANY(%s) "
        "ORDER BY 1, 2",
        (list(schemas),),
    ).fetchall()
    return [PgTable(str(schema), str(name)) for schema, name in rows]


def extract_table(conn: Connection, table: PgTable, dest: Path) -> tuple[int, list[list[str]]]:
    """Write one table to ``dest`` (parquet); return (rows, [[column, type]…])."""
    scratch = dest.with_name(f".{dest.name}.{os.getpid()}.csv")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with conn.transaction():  # a savepoint: a failure here leaves the transaction usable
            columns = _columns(conn, table)
            selected = pgsql.SQL(", ").join(
                pgsql.SQL("encode({}, 'hex')").format(pgsql.Identifier(c.name))
                if c.duck_type == "BLOB"
                else pgsql.Identifier(c.name)
                for c in columns
            )
            query = pgsql.SQL("COPY (SELECT {} FROM {}.{}) TO STDOUT (FORMAT csv)").format(
                selected, pgsql.Identifier(table.schema), pgsql.Identifier(table.name)
            )
            with conn.cursor() as cur, scratch.open("wb") as out, cur.copy(query) as copy:
                for block in copy:
                    out.write(block)
        return _to_parquet(scratch, columns, dest)
    except psycopg.OperationalError:
        raise
    except psycopg.Error as exc:
        raise SourceError(f"{table.qualified}: {first_line(exc)}") from None
    finally:
        scratch.unlink(missing_ok=True)


def _to_parquet(scratch: Path, columns: list[PgColumn], dest: Path) -> tuple[int, list[list[str]]]:
    as_text = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(columns)))
    casts = ", ".join(
        f"{_cast(f'c{i}', c.duck_type)} AS {sql.quote_identifier(c.name, 'duckdb')}"
        for i, c in enumerate(columns)
    )
    path = str(scratch).replace("'", "''")
    select = (
        f"SELECT {casts} FROM read_csv('{path}', columns = {{{as_text}}}, header = false, "
        "delim = ',', quote = '\"', escape = '\"', allow_quoted_nulls = false, "
        "auto_detect = false) ORDER BY ALL"
    )
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        return write_parquet(con, select, dest)
    except duckdb.Error as exc:
        raise SourceError(f"converting to parquet failed: {first_line(exc)}") from None
    finally:
        con.close()


def _cast(column: str, duck_type: str) -> str:
    if duck_type == "BLOB":
        return f"unhex({column})"
    if duck_type == "VARCHAR":
        return column
    return f"CAST({column} AS {duck_type})"


def _columns(conn: Connection, table: PgTable) -> list[PgColumn]:
    """Columns in order with their types; a domain counts as its base type."""
    rows = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
        "  CASE WHEN t.typtype = 'd' THEN b.typname ELSE t.typname END, "
        "  CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END "
        "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
        "LEFT JOIN pg_type b ON b.oid = t.typbasetype "
        "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        (pgsql.Identifier(table.schema, table.name).as_string(conn),),
    ).fetchall()
    return [
        PgColumn(str(name), str(shown), duckdb_type(str(base), int(str(typmod))))
        for name, shown, base, typmod in rows
    ]


_SIMPLE_TYPES = {
    "int2": "SMALLINT",
    "int4": "INTEGER",
    "int8": "BIGINT",
    "float4": "FLOAT",
    "float8": "DOUBLE",
    "bool": "BOOLEAN",
    "date": "DATE",
    "time": "TIME",
    "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMPTZ",
    "bytea": "BLOB",
}


def duckdb_type(pg_type: str, typmod: int) -> str:
    """The DuckDB type a Postgres column becomes.

    ``numeric(p, s)`` keeps p and s up to DuckDB's 38 digits; an unconstrained ``numeric``
    becomes DECIMAL(38, 9), BigQuery's NUMERIC, and wider ones DOUBLE. Text-like and every
    other type (json, uuid, arrays, enums, intervals…) travel as their text.
    """
    if pg_type == "numeric":
        if typmod < 4:
            return "DECIMAL(38, 9)"
        precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
        return f"DECIMAL({precision}, {scale})" if precision <= 38 else "DOUBLE"
    return _SIMPLE_TYPES.get(pg_type, "VARCHAR")
