"""Where a day's files live, how they are written, and the manifest beside them.

Layout: ``data/postgres/<extract>/<table>/<YYYY-MM-DD>/<table>.parquet`` and
``data/csv/<name>/<YYYY-MM-DD>/<name>.parquet``, each with ``manifest.json`` beside it.
Separating by source, table and day keeps days side by side and makes a rerun of one day
touch nothing else.

Why DuckDB writes the parquet: it is already a dependency and keeps every type (DECIMAL,
DATE, TIMESTAMP WITH TIME ZONE, BLOB…). A file is written under a temporary name in the
same directory and renamed, so a reader never sees half a file; rows are written in a
fixed order by one thread, and the manifest holds no clock time, so redoing a day with
unchanged data gives byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import duckdb

from tablemake.tablefile import Extract

DATA_DIR = "data"
MANIFEST = "manifest.json"


class SourceError(Exception):
    """A source could not be read; the message says what and where, never a password.
    It fails one task (or one extract), which the day log records; it is not a usage error."""


@dataclass(frozen=True)
class Manifest:
    """What one extracted file holds; written last, so its presence means the file is whole."""

    table: str  # the warehouse table it loads into, ``dataset.table``
    source: str  # where it came from, without secrets
    day: str
    file: str  # name of the parquet file beside the manifest
    rows: int
    sha256: str
    columns: list[list[str]]  # [name, DuckDB type]


def day_dir(root: Path, extract: Extract, table: str, day: date) -> Path:
    """The directory holding one table's file and manifest for one day."""
    base = root / DATA_DIR / extract.kind / extract.name
    if extract.kind == "postgres":
        base = base / table
    return base / day.isoformat()


def parquet_name(table: str) -> str:
    return f"{table}.parquet"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_parquet(
    con: duckdb.DuckDBPyConnection, select: str, dest: Path
) -> tuple[int, list[list[str]]]:
    """Write the query's rows to ``dest`` atomically; return (rows, [[column, type]…]).

    ``con`` must be a private connection: it is switched to one thread so that the bytes
    written depend only on the rows and their order.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    temporary = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    con.execute("SET threads = 1")
    con.execute("SET preserve_insertion_order = true")
    columns = [[str(r[0]), str(r[1])] for r in con.execute(f"DESCRIBE {select}").fetchall()]
    target = str(temporary).replace("'", "''")
    try:
        row = con.execute(
            f"COPY ({select}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)"
        ).fetchone()
        os.replace(temporary, dest)
    finally:
        temporary.unlink(missing_ok=True)
    return (int(row[0]) if row else 0), columns


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Write the manifest last and atomically; sorted keys and no timestamps keep it
    byte-identical when the same day is redone."""
    text = json.dumps(asdict(manifest), indent=1, sort_keys=True) + "\n"
    temporary = directory / f".{MANIFEST}.{os.getpid()}.tmp"
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, directory / MANIFEST)


def read_manifest(directory: Path) -> Manifest | None:
    """The manifest, or None when the day's file was never completed."""
    try:
        doc = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        return Manifest(**doc)
    except (OSError, ValueError, TypeError):
        return None


def is_complete(directory: Path) -> bool:
    """A manifest exists and the file beside it still has the recorded checksum."""
    manifest = read_manifest(directory)
    if manifest is None:
        return False
    path = directory / manifest.file
    return path.exists() and sha256_of(path) == manifest.sha256
