"""What a DuckDB warehouse held when tablemake last looked, reused while its files are untouched.

Planning needs every source's version (one scan of each source table) and the tables that
exist. Asking DuckDB means importing it, opening the file and scanning every raw table, which
was most of a no-op run on the example (and grows with the raw data). So a process that
opened the warehouse and wrote no source records, as it closes it, the tables and the source
versions it knew, together with the files' identity (inode, size, modification and change
times of the database file and of its write-ahead log). It takes that identity after a
``CHECKPOINT`` while it still holds DuckDB's write lock: any later write, by any client,
changes the files, and the next plan then asks DuckDB again.

One more rule, the one git applies to its index: a record taken less than ``RACY_SECONDS``
after the files were last modified is not trusted, because a write within the same
timestamp tick (coarse on some file systems) could leave size and times as they were. Such
a record is replaced at the next look, and that one is trusted.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Collection, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

RACY_SECONDS = 2.0
Signature = list[list[int] | None]  # per file (database, WAL): inode, size, mtime, ctime


@dataclass(frozen=True)
class Seen:
    signature: Signature
    taken: float  # when the signature was taken, seconds since the epoch
    tables: frozenset[str]
    versions: Mapping[str, str | None]

    def versions_of(self, names: Collection[str]) -> dict[str, str | None] | None:
        """The recorded versions of ``names``, or None unless all were recorded."""
        if not all(name in self.versions for name in names):
            return None
        return {name: self.versions[name] for name in names}


def record_path(database: Path) -> Path:
    return database.with_name(database.name + ".seen.json")


def signature(database: Path) -> Signature:
    files: Signature = []
    for path in (database, database.with_name(database.name + ".wal")):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            files.append(None)
            continue
        files.append([st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns])
    return files


def read_seen(database: Path) -> Seen | None:
    """The record, if the files still match it and it is not racy; else None."""
    try:
        data = json.loads(record_path(database).read_text())
        seen = Seen(
            data["signature"], float(data["taken"]), frozenset(data["tables"]), data["versions"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if seen.signature != signature(database):
        return None
    latest = max((max(f[2], f[3]) for f in seen.signature if f is not None), default=0)
    if seen.taken - latest / 1e9 < RACY_SECONDS:
        return None
    return seen


def write_seen(database: Path, tables: Collection[str], versions: Mapping[str, str | None]) -> None:
    """Record the files as they are now; call it while holding DuckDB's write lock, after a
    CHECKPOINT. Written aside and renamed: a reader sees the old record or the new one."""
    taken = time.time()  # before the signature: never later than it, so never less racy
    files = signature(database)
    path = record_path(database)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    document = {
        "signature": files,
        "taken": taken,
        "tables": sorted(tables),
        "versions": dict(versions),
    }
    try:
        partial.write_text(json.dumps(document))
        partial.replace(path)
    except OSError:  # only ever saves time
        with suppress(OSError):
            partial.unlink(missing_ok=True)


def forget_seen(database: Path) -> None:
    with suppress(OSError):
        record_path(database).unlink(missing_ok=True)
