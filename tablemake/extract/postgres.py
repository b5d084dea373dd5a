"""Read every table of the named schemas of a PostgreSQL database into parquet files.

How, and why: one read-only REPEATABLE READ transaction sees one snapshot, so the day's
tables are consistent with each other (an order never lacks its customer). Each table is
streamed out with ``COPY (SELECT …) TO STDOUT (FORMAT csv)`` into a scratch file (bounded
memory, the fastest path out of Postgres) with the session in UTC and ISO date style, so
the text is unambiguous; DuckDB then reads it with every column as text and casts each to
the type mapped from the Postgres catalog, and writes parquet. ``bytea`` travels as hex.
Each table runs in a savepoint, so one failing table does not abort the others.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias
from urllib.parse import urlsplit, urlunsplit

import duckdb
import psycopg
from psycopg import sql as pgsql

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


@contextmanager
def snapshot(url: str) -> Iterator[Connection]:
    """A connection inside one read-only repeatable-read transaction, in UTC."""
    try:
        conn = psycopg.connect(url, connect_timeout=10, autocommit=False)
    except psycopg.Error as exc:
        raise SourceError(f"cannot connect to {redacted(url)}: {first_line(exc)}") from None
    try:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            conn.execute("SET LOCAL TimeZone = 'UTC'")
            conn.execute("SET LOCAL DateStyle = 'ISO, YMD'")
            conn.execute("SET LOCAL extra_float_digits = 3")
            yield conn
    except psycopg.OperationalError as exc:
        raise SourceError(f"lost the connection to {redacted(url)}: {first_line(exc)}") from None
    finally:
        conn.close()


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
    columns = _columns(conn, table)
    scratch = dest.with_name(f".{dest.name}.{os.getpid()}.csv")
    dest.parent.mkdir(parents=True, exist_ok=True)
    selected = pgsql.SQL(", ").join(
        pgsql.SQL("encode({}, 'hex')").format(pgsql.Identifier(c.name))
        if c.duck_type == "BLOB"
        else pgsql.Identifier(c.name)
        for c in columns
    )
    query = pgsql.SQL("COPY (SELECT {} FROM {}.{}) TO STDOUT (FORMAT csv)").format(
        selected, pgsql.Identifier(table.schema), pgsql.Identifier(table.name)
    )
    try:
        with (
            conn.transaction(),
            conn.cursor() as cur,
            scratch.open("wb") as out,
            cur.copy(query) as copy,
        ):
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
