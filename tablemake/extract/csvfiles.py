"""Read one CSV file (comma-separated, ``"``-quoted, a header row) into a parquet file.

Why two passes: DuckDB's dialect sniffer, given a malformed file, can silently pick a
wrong dialect or header and load garbage. So the file is first checked row by row with
Python's ``csv`` module — a row with the wrong number of fields, or a broken quote, is
reported with the file and line — and only then DuckDB reads it with the dialect fixed,
inferring each column's type (a value that does not fit its column is reported with its
line, too).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import duckdb

from tablemake.extract.files import SourceError, write_parquet

_DUCKDB_LINE = re.compile(r"CSV Error on Line: (\d+)")
_CONVERTING = re.compile(r"Error when converting column .*")


def check_csv(path: Path, shown: str) -> list[str]:
    """The header's column names, after checking every row has as many fields."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh, strict=True)
            header = next(reader, None)
            if header is None:
                raise SourceError(f"{shown}: the file is empty; it needs a header row")
            _check_header(header, shown)
            for row in reader:
                if len(row) != len(header):
                    raise SourceError(
                        f"{shown}:{reader.line_num}: malformed row: {len(row)} fields, but the "
                        f"header has {len(header)}"
                    )
    except csv.Error as exc:
        raise SourceError(f"{shown}:{reader.line_num}: malformed row: {exc}") from None
    except UnicodeDecodeError as exc:
        raise SourceError(f"{shown}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise SourceError(f"{shown}: cannot read the file: {exc.strerror}") from None
    return header


def _check_header(header: list[str], shown: str) -> None:
    for i, name in enumerate(header, start=1):
        if not name.strip():
            raise SourceError(f"{shown}:1: column {i} of the header has no name")
    if len(set(header)) != len(header):
        twice = sorted({n for n in header if header.count(n) > 1})
        raise SourceError(f"{shown}:1: the header names {', '.join(twice)} twice")


def extract_csv(path: Path, shown: str, dest: Path) -> tuple[int, list[list[str]]]:
    """Write the CSV's rows, in file order, to ``dest``; return (rows, [[column, type]…])."""
    check_csv(path, shown)
    source = str(path).replace("'", "''")
    select = (
        f"SELECT * FROM read_csv('{source}', header = true, delim = ',', quote = '\"', "
        "escape = '\"', sample_size = -1)"
    )
    con = duckdb.connect()
    try:
        return write_parquet(con, select, dest)
    except duckdb.Error as exc:
        raise SourceError(_describe(exc, shown)) from None
    finally:
        con.close()


def _describe(exc: duckdb.Error, shown: str) -> str:
    text = str(exc)
    line = _DUCKDB_LINE.search(text)
    detail = _CONVERTING.search(text)
    if line:
        return f"{shown}:{line.group(1)}: {detail.group(0) if detail else text.splitlines()[0]}"
    return f"{shown}: {text.strip().splitlines()[0]}"
