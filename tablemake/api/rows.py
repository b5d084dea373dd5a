"""Turn what an HTTP client sent (query-string text or JSON values) into values of each
column's SQL type, before the warehouse sees them.

Converting here makes a bad value a 400 that names the column, the type and the value,
rather than a driver's error about a statement. The backend then binds the results as query
parameters. Types this module does not know (arrays, structs, JSON…) pass through as sent,
for the warehouse to accept or refuse.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence

from tablemake.api.errors import ApiError

_SIGNED_BITS = {
    "TINYINT": 8,
    "SMALLINT": 16,
    "INTEGER": 32,
    "INT": 32,
    "BIGINT": 64,
    "INT64": 64,
    "HUGEINT": 128,
}
_UNSIGNED_BITS = {"UTINYINT": 8, "USMALLINT": 16, "UINTEGER": 32, "UBIGINT": 64}
_INTEGER_RANGES = {
    **{name: (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) for name, bits in _SIGNED_BITS.items()},
    **{name: (0, 2**bits - 1) for name, bits in _UNSIGNED_BITS.items()},
}
_FLOAT32_MAX = 3.4028234663852886e38
_DOUBLES = {"DOUBLE", "FLOAT64", "FLOAT8"}
_SINGLES = {"FLOAT", "REAL", "FLOAT4"}  # 32-bit in DuckDB (BigQuery reports FLOAT64)
_TEXTS = {"VARCHAR", "STRING", "TEXT", "CHAR", "BPCHAR"}
_BOOLEANS = {"BOOLEAN", "BOOL"}
_DECIMALS = {"DECIMAL", "NUMERIC", "BIGNUMERIC"}
_TIMESTAMPS = {"TIMESTAMP", "DATETIME", "TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE"}
_INTEGER_TEXT = re.compile(r"\s*[+-]?\d+\s*")
_TRUE, _FALSE = {"true", "t", "1", "yes"}, {"false", "f", "0", "no"}


class _Refused(ValueError):
    """The value does not convert; the caller names column, type and value."""


def convert_row(
    given: Mapping[str, object], columns: Sequence[tuple[str, str]]
) -> dict[str, object]:
    """Each given value as its column's type; names the table lacks are left for the backend
    to refuse (it alone decides what may be quoted into SQL). JSON null is NULL."""
    types = dict(columns)
    converted: dict[str, object] = {}
    for name, value in given.items():
        kind = types.get(name)
        if kind is None or value is None:
            converted[name] = value
            continue
        try:
            converted[name] = _converter(kind)(value)
        except (_Refused, ValueError, ArithmeticError):
            shown = json.dumps(value, default=str)
            raise ApiError(
                400, "bad-value", f"column `{name}` is {kind}: cannot store the value {shown}."
            ) from None
    return converted


def _converter(kind: str) -> Callable[[object], object]:
    base = kind.upper().split("(", 1)[0].strip()
    if base in _INTEGER_RANGES:
        low, high = _INTEGER_RANGES[base]
        return lambda value: _bounded(_to_int(value), low, high)
    if base in _DOUBLES or base in _SINGLES:
        limit = _FLOAT32_MAX if base in _SINGLES else math.inf
        return lambda value: _to_float(value, limit)
    if base in _DECIMALS:
        return lambda value: _to_decimal(value, kind)
    if base in _TEXTS:
        return _text
    if base in _BOOLEANS:
        return _to_bool
    if base == "DATE":
        return lambda value: dt.date.fromisoformat(_text(value).strip())
    if base == "TIME":
        return lambda value: dt.time.fromisoformat(_text(value).strip())
    if base in _TIMESTAMPS:
        return lambda value: dt.datetime.fromisoformat(_text(value).strip())
    return lambda value: value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise _Refused
    return value


def _to_int(value: object) -> int:
    if isinstance(value, bool):
        raise _Refused
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
        return int(value)
    raise _Refused


def _bounded(value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise _Refused
    return value


def _to_float(value: object, limit: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Refused
    number = float(value)
    # JSON cannot carry NaN or infinities back, and a 32-bit column cannot hold more.
    if not math.isfinite(number) or abs(number) > limit:
        raise _Refused
    return number


def _to_decimal(value: object, kind: str) -> decimal.Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Refused
    number = decimal.Decimal(str(value).strip())
    if not number.is_finite():
        raise _Refused
    digits = re.fullmatch(r"[^(]*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)\s*", kind)
    if digits:  # DECIMAL(p, s) holds p - s digits before the point
        whole = int(digits.group(1)) - int(digits.group(2) or 0)
        if abs(number) >= 10**whole:
            raise _Refused
    return number


def _to_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    word = _text(value).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise _Refused
