"""``/{table_name}``: read a raw (source) table's rows, or append one row to it.

Only the Tablefile's sources are writable: targets are rebuilt from them, so a row written
into a target would vanish at its next build. A source is named by its full
``dataset.table`` or by its table name alone when that is unambiguous.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import QueryParams

from tablemake.api.errors import ApiError
from tablemake.api.rows import convert_row
from tablemake.errors import WarehouseError
from tablemake.tablefile import Tablefile
from tablemake.workspace import Session


def resolve_source(tablefile: Tablefile, given: str) -> str:
    if given in tablefile.sources:
        return given
    matches = sorted(name for name in tablefile.sources if name.split(".", 1)[1] == given)
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ApiError(
            404,
            "ambiguous-table",
            f"`{given}` could be any of {', '.join(matches)}; name one as dataset.table.",
        )
    raise ApiError(
        404,
        "unknown-table",
        f"`{given}` is not a raw table of this project. The raw tables are: "
        f"{', '.join(sorted(tablefile.sources))} (the dataset may be left out when the "
        "table name alone is unambiguous).",
    )


def columns_of(session: Session, name: str) -> list[tuple[str, str]]:
    columns = session.backend.table_columns(name)
    if not columns:
        raise ApiError(
            404,
            "table-missing",
            f"raw table `{name}` does not exist in the {session.backend.name} warehouse; "
            "create it with `tablemake init-db` (stop this server first) or load it.",
        )
    return columns


def read_rows(session: Session, table_name: str, limit: int) -> dict[str, Any]:
    name = resolve_source(session.workspace.tablefile, table_name)
    columns_of(session, name)
    data = session.backend.read_table(name, limit)
    rows = [dict(zip(data.columns, row, strict=True)) for row in data.rows]
    return {"table": name, "columns": list(data.columns), "rows": rows}


def append(session: Session, table_name: str, given: Mapping[str, object]) -> dict[str, Any]:
    name = resolve_source(session.workspace.tablefile, table_name)
    row = convert_row(given, columns_of(session, name))
    try:
        stored = session.backend.append_row(name, row)
    except WarehouseError as exc:  # e.g. a NOT NULL column left out, or a type we pass through
        raise ApiError(400, "row-rejected", f"the warehouse refused the row: {exc}") from None
    return {"table": name, "row": stored}


def row_from_request(query: QueryParams, body: bytes) -> dict[str, object]:
    """The row to append: from the query string or from a JSON object body, not both."""
    pairs = query.multi_items()
    if body.strip():
        if pairs:
            raise ApiError(
                400,
                "invalid-row",
                "give the row either as query parameters or as a JSON body, not both.",
            )
        return _json_object(body)
    row: dict[str, object] = {}
    for name, value in pairs:
        if name in row:
            raise ApiError(400, "invalid-row", f"column `{name}` is given more than once.")
        row[name] = value
    return row


def _json_object(body: bytes) -> dict[str, object]:
    try:
        document = json.loads(body)
    except ValueError:
        raise ApiError(400, "invalid-row", "the body is not valid JSON.") from None
    if not isinstance(document, dict):
        raise ApiError(
            400, "invalid-row", "the body must be a JSON object of column names to values."
        )
    return document
