"""Python targets: fingerprint a function, call it with its inputs, type the rows it returns.

A Python target is a function that returns rows; the backend loads them as the target's
table (``Backend.load_rows``), so Python and SQL targets share the graph, the state store,
the scheduler and the staleness rules. Nothing here knows a warehouse.

What the fingerprint covers: the function's own source and, transitively, the source of
every project-local function, class or module attribute it names (defined in a file under
the project directory, outside virtualenvs), plus the value of module-level constants made
of plain data (numbers, strings, lists, dicts…) that it names. Comments and layout do not
count (the syntax trees are compared). What it does not cover: installed libraries, data
read from files or the network, closures' captured values, and functions reached only
through an object's attributes or ``getattr``; change those and use ``-B``.
"""

from __future__ import annotations

import ast
import datetime
import decimal
import hashlib
import inspect
import textwrap
import traceback
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tablemake.errors import UserError
from tablemake.params import BoundParam

_PACKAGE = Path(__file__).resolve().parent
_SKIPPED_DIRS = frozenset({".venv", "venv", "site-packages", "dist-packages", ".tox"})
_PLAIN = (int, float, str, bool, type(None), bytes, decimal.Decimal, datetime.date)


# -- fingerprints --------------------------------------------------------------------------


def code_fingerprint(func: Callable[..., object], root: Path) -> tuple[str, str]:
    """(text, digest) of the function and the project-local code and data it names."""
    parts: dict[str, tuple[str, str]] = {}  # qualified name -> (source, normalised)
    todo: list[Any] = [func]
    while todo:
        obj = todo.pop()
        key = f"{_relative_file(obj, root)}:{obj.__qualname__}"
        if key in parts:
            continue
        source = textwrap.dedent(inspect.getsource(obj))
        parts[key] = (source, ast.dump(ast.parse(source)))
        for name, value in _named_globals(obj):
            if _is_local_code(value, root):
                todo.append(value)
            elif isinstance(value, types.ModuleType) and _is_local_file(value, root):
                todo.extend(v for v in vars(value).values() if _is_local_code(v, root))
            elif _is_plain_data(value):
                constant = f"{name} = {value!r}"
                parts[f"{key}:{name}"] = (constant, constant)
    ordered = sorted(parts.items())
    text = "\n\n".join(source for _, (source, _normal) in ordered)
    normal = "\n".join(f"{k}\n{n}" for k, (_s, n) in ordered)
    return text, hashlib.sha256(normal.encode("utf-8")).hexdigest()[:32]


def _relative_file(obj: Any, root: Path) -> str:
    """The defining file relative to the project: stable across runs and checkouts."""
    path = Path(inspect.getfile(obj)).resolve()
    return (
        path.relative_to(root.resolve()).as_posix()
        if path.is_relative_to(root.resolve())
        else path.name
    )


def _named_globals(obj: Any) -> Iterable[tuple[str, Any]]:
    """Globals a function (or a class's methods) names, in its code and nested code."""
    functions = (
        [v for v in vars(obj).values() if inspect.isfunction(v)] if inspect.isclass(obj) else [obj]
    )
    for function in functions:
        names: set[str] = set()
        codes = [function.__code__]
        while codes:
            code = codes.pop()
            names.update(code.co_names)
            codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
        module_globals = function.__globals__
        for name in sorted(names):
            if name in module_globals:
                yield name, module_globals[name]


def _is_local_code(value: Any, root: Path) -> bool:
    return (inspect.isfunction(value) or inspect.isclass(value)) and _is_local_file(value, root)


def _is_local_file(value: Any, root: Path) -> bool:
    module = inspect.getmodule(value)
    if module is None or module.__name__.split(".")[0] == "tablemake":
        return False
    try:
        path = Path(inspect.getfile(value)).resolve()
        relative = path.relative_to(root.resolve())
    except (TypeError, ValueError, OSError):
        return False
    return not _SKIPPED_DIRS & set(relative.parts)


def _is_plain_data(value: Any, depth: int = 0) -> bool:
    if depth > 4:
        return False
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(_is_plain_data(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(
            _is_plain_data(k, depth + 1) and _is_plain_data(v, depth + 1) for k, v in value.items()
        )
    return False


# -- calling -------------------------------------------------------------------------------


def input_arguments(func: Callable[..., object], deps: Sequence[str]) -> dict[str, str]:
    """Which parameter receives which prerequisite's rows: a prerequisite ``raw.orders`` is
    passed as ``orders``, or as ``raw__orders`` (needed when two share a table name)."""
    tables = [d.split(".", 1)[1] for d in deps]
    by_name = {d.replace(".", "__"): d for d in deps}
    by_name.update({t: d for t, d in zip(tables, deps, strict=True) if tables.count(t) == 1})
    return {p: by_name[p] for p in inspect.signature(func).parameters if p in by_name}


def param_arguments(func: Callable[..., object], deps: Sequence[str]) -> list[str]:
    """The function's other parameters: runtime parameters, required or with defaults."""
    inputs = input_arguments(func, deps)
    return [p for p in inspect.signature(func).parameters if p not in inputs]


def target_arguments(
    func: Callable[..., object],
    deps: Sequence[str],
    read: Callable[[str], list[dict[str, Any]]],
    params: Mapping[str, BoundParam],
) -> dict[str, Any]:
    """The function's arguments: each prerequisite's rows (read here, so a warehouse
    error is not blamed on the user's code) and each parameter's typed value; parameters
    not bound this run keep the function's defaults."""
    arguments: dict[str, Any] = {arg: read(dep) for arg, dep in input_arguments(func, deps).items()}
    for name in param_arguments(func, deps):
        if name in params:
            arguments[name] = params[name].value
    return arguments


# -- rows and their types ------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnType:
    """A GoogleSQL type: a scalar (``INT64``…), ``ARRAY`` of ``item`` or ``STRUCT`` of
    ``fields``; what the backends create the table with."""

    name: str
    item: ColumnType | None = None
    fields: tuple[tuple[str, ColumnType], ...] = ()

    def googlesql(self) -> str:
        if self.name == "ARRAY" and self.item is not None:
            return f"ARRAY<{self.item.googlesql()}>"
        if self.name == "STRUCT":
            return "STRUCT<" + ", ".join(f"{n} {t.googlesql()}" for n, t in self.fields) + ">"
        return self.name


@dataclass(frozen=True)
class RowsToLoad:
    """Rows as tuples in column order, with each column's type."""

    columns: tuple[tuple[str, ColumnType], ...]
    rows: tuple[tuple[Any, ...], ...]


def as_row_dicts(result: object, where: str) -> list[dict[str, Any]]:
    """A function's result as a list of dicts: a list (or other iterable) of dicts, or,
    duck-typed, an Arrow table (``to_pylist``) or a pandas DataFrame (``to_dict``)."""
    if hasattr(result, "to_pylist"):
        result = result.to_pylist()
    elif hasattr(result, "to_dict") and hasattr(result, "columns"):
        result = result.to_dict(orient="records")
    if isinstance(result, (str, bytes, dict)) or not isinstance(result, Iterable):
        raise UserError(
            f"returned {type(result).__name__}; a Python target returns its rows: a list of "
            "dicts, an Arrow table or a pandas DataFrame.",
            where,
        )
    rows = list(result)
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping) or not all(isinstance(k, str) for k in row):
            raise UserError(
                f"row {i} is {type(row).__name__}, not a dict of column name to value.", where
            )
    return [dict(row) for row in rows]


def rows_to_load(rows: Sequence[Mapping[str, Any]], where: str) -> RowsToLoad:
    """Type the rows' columns from their values. Columns are the first row's keys; every
    row must have exactly those. A column of only NULLs (or no rows at all) is STRING."""
    if not rows:
        raise UserError("returned no rows, so the table's columns are unknown.", where)
    names = list(rows[0])
    for i, row in enumerate(rows):
        if list(row) != names and set(row) != set(names):
            raise UserError(
                f"row {i} has columns {sorted(row)}, but row 0 has {sorted(names)}; every "
                "row needs the same columns.",
                where,
            )
    columns = tuple(
        (name, _infer([row[name] for row in rows], f"{where}: column `{name}`")) for name in names
    )
    return RowsToLoad(columns, tuple(tuple(row[n] for n in names) for row in rows))


def _infer(values: Sequence[Any], where: str) -> ColumnType:
    present = [v for v in values if v is not None]
    if not present:
        return ColumnType("STRING")
    kinds = {_scalar_kind(v, where) for v in present}
    if kinds == {"INT64", "FLOAT64"}:
        return ColumnType("FLOAT64")
    if len(kinds) > 1:
        raise UserError(f"mixes values of types {', '.join(sorted(kinds))}.", where)
    kind = kinds.pop()
    if kind == "ARRAY":
        return ColumnType("ARRAY", item=_infer([x for v in present for x in v], where))
    if kind == "STRUCT":
        keys = list(dict.fromkeys(k for v in present for k in v))
        fields = tuple((k, _infer([v.get(k) for v in present], f"{where}.{k}")) for k in keys)
        return ColumnType("STRUCT", fields=fields)
    return ColumnType(kind)


def _scalar_kind(value: Any, where: str) -> str:
    kinds: list[tuple[type | tuple[type, ...], str]] = [
        (bool, "BOOL"),
        (int, "INT64"),
        (float, "FLOAT64"),
        (decimal.Decimal, "NUMERIC"),
        (str, "STRING"),
        (bytes, "BYTES"),
        (datetime.datetime, "TIMESTAMP"),
        (datetime.date, "DATE"),
        ((list, tuple), "ARRAY"),
        (dict, "STRUCT"),
    ]
    for kind, name in kinds:
        if isinstance(value, kind):
            return name
    raise UserError(f"holds a {type(value).__name__}, which has no SQL type here.", where)


ALL_ROWS = 2**62  # read_table's limit when a Python target reads a whole prerequisite


def compute_rows(code_function: str, call: Callable[[], object]) -> RowsToLoad:
    """Run the target's function and type its rows. An exception in the user's code fails
    the target with the exception and the line of the workflow where it was raised."""
    try:
        result = call()
    except Exception as exc:  # the user's code: any failure fails this target only
        line = _user_line(exc)
        raise UserError(f"{type(exc).__name__}: {exc}{line}", code_function) from None
    return rows_to_load(as_row_dicts(result, code_function), code_function)


def _user_line(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    outside = [f for f in frames if not Path(f.filename).resolve().is_relative_to(_PACKAGE)]
    return f" (at {Path(outside[-1].filename).name}:{outside[-1].lineno})" if outside else ""
