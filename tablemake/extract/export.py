"""``tablemake export TABLE|--query SQL --format csv|json -o FILE``: rows as a file.

The file is written under a temporary name beside the destination and renamed, so a
reader never sees half an export, and rows are sorted so that exporting the same table
twice gives the same bytes. Values keep their meaning: decimals are written exactly
(as text in JSON, since JSON numbers are floats to most readers), dates and timestamps in
ISO 8601, bytes in base64, nested values as JSON.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import sys
from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from tablemake import sql
from tablemake.backends import TableRows
from tablemake.errors import UserError
from tablemake.tablefile import is_table_name
from tablemake.workspace import Session

FORMATS = ("csv", "json")


def write_export(data: TableRows, fmt: str, dest: Path) -> int:
    """Write the rows to ``dest`` atomically; return how many were written.

    A table has no row order, so rows are sorted by their JSON text: the same table always
    gives the same bytes, which makes exports comparable across runs and machines."""
    rows = sorted(data.rows, key=lambda row: json.dumps(list(row), default=_json_value))
    data = TableRows(data.columns, rows)
    dest.parent.mkdir(parents=True, exist_ok=True)
    temporary = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("w", encoding="utf-8", newline="") as fh:
            if fmt == "csv":
                writer = csv.writer(fh, lineterminator="\n")
                writer.writerow(data.columns)
                writer.writerows([_csv_value(v) for v in row] for row in data.rows)
            else:
                json.dump(_records(data.columns, data.rows), fh, indent=1, default=_json_value)
                fh.write("\n")
        os.replace(temporary, dest)
    finally:
        temporary.unlink(missing_ok=True)
    return len(data.rows)


ALL_ROWS = sys.maxsize  # the limit that reads every row


def read_rows(session: Session, table: str | None, query: str | None) -> TableRows:
    """Every row of the table, or of the query (one SELECT in BigQuery SQL, translated for
    the warehouse like any script); exactly one of the two is given."""
    if (table is None) == (query is None):
        raise UserError("export takes a TABLE or --query 'SELECT …', exactly one of the two.")
    backend = session.backend
    if query is not None:
        return backend.query_rows(sql.parse_script(query, "--query").query, ALL_ROWS)
    assert table is not None
    if not is_table_name(table):
        raise UserError(f"`{table}` is not a table name `dataset.table`.")
    if table not in backend.existing_tables([table]):
        raise UserError(f"table `{table}` does not exist in the {backend.name} warehouse.")
    return backend.read_table(table, ALL_ROWS)


def _records(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def _csv_value(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=_json_value)
    return _json_value(value)
