"""Load Tablefile.toml into frozen, validated dataclasses.

Everything a user can get wrong in the file is caught here and reported with the file, the
line of the offending table or key, and the key path; later steps may trust these objects.
It does not look at SQL or the warehouse.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

from tablemake.errors import TablefileError

DEFAULT_FILENAME = "Tablefile.toml"
BACKEND_NAMES = ("duckdb", "bigquery", "simulate")
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*")


def is_table_name(name: str) -> bool:
    """``dataset.table`` with letters, digits and underscores only: safe to quote into SQL."""
    return _TABLE_NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class Project:
    name: str
    default: tuple[str, ...]
    jobs: int


@dataclass(frozen=True)
class SimulateSettings:
    seed: int = 0
    fail: tuple[str, ...] = ()


@dataclass(frozen=True)
class BigQuerySettings:
    project: str | None = None
    location: str | None = None
    key_file: str | None = None  # service-account JSON; else Application Default Credentials
    endpoint: str | None = None  # an emulator or proxy; anonymous credentials without a key
    change_detection: str = "metadata"  # how source changes are seen: metadata | content


@dataclass(frozen=True)
class Warehouse:
    backend: str
    duckdb_path: str
    simulate: SimulateSettings
    bigquery: BigQuerySettings


@dataclass(frozen=True)
class Source:
    name: str
    init: str | None
    line: int


@dataclass(frozen=True)
class Target:
    name: str
    sql: str
    deps: tuple[str, ...]
    duration: float | None
    line: int

    @property
    def dataset(self) -> str:
        return self.name.split(".", 1)[0]


@dataclass(frozen=True)
class Tablefile:
    path: Path
    project: Project
    warehouse: Warehouse
    sources: Mapping[str, Source]
    targets: Mapping[str, Target]
    lines: Mapping[tuple[str, ...], int] = field(repr=False, compare=False)

    @property
    def root(self) -> Path:
        return self.path.parent

    def where(self, *key_path: str) -> str:
        """``file:line`` of the closest table header or key for a key path."""
        for n in range(len(key_path), 0, -1):
            line = self.lines.get(tuple(key_path[:n]))
            if line:
                return f"{self.path}:{line}"
        return str(self.path)


# -- schema as data --------------------------------------------------------------------------

Check = Callable[[Any], str | None]  # returns a complaint, or None when the value is fine


@dataclass(frozen=True)
class _Key:
    check: Check
    required: bool = False


def _is_str(value: Any) -> str | None:
    return None if isinstance(value, str) and value else "must be a non-empty string"


def _is_table_name(value: Any) -> str | None:
    if not isinstance(value, str) or not is_table_name(value):
        return "must be a table name `dataset.table` (letters, digits, underscores)"
    return None


def _is_name_list(value: Any) -> str | None:
    if not isinstance(value, list):
        return "must be a list of table names"
    for i, item in enumerate(value):
        if _is_table_name(item):
            return f"item {i} ({item!r}) is not a table name `dataset.table`"
    if len(set(value)) != len(value):
        return "lists a name twice"
    return None


def _is_default(value: Any) -> str | None:
    return _is_table_name(value) if isinstance(value, str) else _is_name_list(value)


def _is_positive_int(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    return None if ok else "must be a whole number >= 1"


def _is_int(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool)
    return None if ok else "must be a whole number"


def _is_seconds(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
    return None if ok else "must be a number of seconds >= 0"


def _is_backend(value: Any) -> str | None:
    return None if value in BACKEND_NAMES else f"must be one of {', '.join(BACKEND_NAMES)}"


def _is_table(value: Any) -> str | None:
    return None if isinstance(value, dict) else "must be a table"


_TOP = {
    "project": _Key(_is_table),
    "warehouse": _Key(_is_table),
    "sources": _Key(_is_table),
    "targets": _Key(_is_table),
}
_PROJECT = {
    "name": _Key(_is_str),
    "default": _Key(_is_default),
    "jobs": _Key(_is_positive_int),
}
_WAREHOUSE = {
    "backend": _Key(_is_backend),
    "duckdb": _Key(_is_table),
    "simulate": _Key(_is_table),
    "bigquery": _Key(_is_table),
}
_BIGQUERY = {
    "project": _Key(_is_str),
    "location": _Key(_is_str),
    "key_file": _Key(_is_str),
    "endpoint": _Key(_is_str),
    "change_detection": _Key(
        lambda v: (
            None
            if v in ("metadata", "content")
            else "must be `metadata` (free) or `content` (scans each source)"
        )
    ),
}
_DUCKDB = {"path": _Key(_is_str)}
_SIMULATE = {"seed": _Key(_is_int), "fail": _Key(_is_name_list)}
_SOURCE = {"init": _Key(_is_str), "description": _Key(_is_str)}
_TARGET = {
    "sql": _Key(_is_str),
    "deps": _Key(_is_name_list),
    "duration": _Key(_is_seconds),
    "description": _Key(_is_str),
}


def load_tablefile(path: Path) -> Tablefile:
    """Read and validate a Tablefile; raise ``TablefileError`` naming file, line and key."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TablefileError(
            f"no {path.name} here. Create one with `tablemake init`, or point to it with -f/-C.",
            str(path),
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TablefileError(f"cannot read the Tablefile: {exc}", str(path)) from None
    return parse_tablefile(text, path)


def parse_tablefile(text: str, path: Path) -> Tablefile:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TablefileError(_toml_message(exc), _toml_where(exc, path)) from None
    lines = _header_lines(text)
    where = _Locator(path, lines, text)

    _check_keys(doc, _TOP, (), where)
    project_doc = doc.get("project", {})
    _check_keys(project_doc, _PROJECT, ("project",), where)
    warehouse_doc = doc.get("warehouse", {})
    _check_keys(warehouse_doc, _WAREHOUSE, ("warehouse",), where)
    _check_keys(warehouse_doc.get("duckdb", {}), _DUCKDB, ("warehouse", "duckdb"), where)
    simulate_doc = warehouse_doc.get("simulate", {})
    _check_keys(simulate_doc, _SIMULATE, ("warehouse", "simulate"), where)
    bigquery_doc = warehouse_doc.get("bigquery", {})
    _check_keys(bigquery_doc, _BIGQUERY, ("warehouse", "bigquery"), where)

    sources = {
        name: Source(name=name, init=entry.get("init"), line=lines.get(("sources", name), 0))
        for name, entry in _entries(doc, "sources", _SOURCE, where).items()
    }
    targets = {
        name: Target(
            name=name,
            sql=entry.get("sql", default_script_path(name)),
            deps=tuple(entry.get("deps", ())),
            duration=float(entry["duration"]) if "duration" in entry else None,
            line=lines.get(("targets", name), 0),
        )
        for name, entry in _entries(doc, "targets", _TARGET, where).items()
    }
    for name in sources.keys() & targets.keys():
        raise TablefileError(
            f"`{name}` is declared both as a source and as a target; a table is one or the other.",
            where(("targets", name)),
        )
    _check_references(sources, targets, where)

    default = project_doc.get("default", [])
    project = Project(
        name=project_doc.get("name", path.resolve().parent.name),
        default=(default,) if isinstance(default, str) else tuple(default),
        jobs=project_doc.get("jobs", 1),
    )
    for name in project.default:
        if name not in targets:
            raise TablefileError(
                f"default target `{name}` is not a declared target{_suggest(name, targets)}.",
                where(("project",), "default"),
            )
    warehouse = Warehouse(
        backend=warehouse_doc.get("backend", "duckdb"),
        duckdb_path=warehouse_doc.get("duckdb", {}).get("path", ".state/warehouse.duckdb"),
        simulate=SimulateSettings(
            seed=simulate_doc.get("seed", 0), fail=tuple(simulate_doc.get("fail", ()))
        ),
        bigquery=BigQuerySettings(**bigquery_doc),
    )
    return Tablefile(path, project, warehouse, sources, targets, lines)


def default_script_path(name: str) -> str:
    dataset, table = name.split(".", 1)
    return f"res/{dataset}/{table}.sql"


def _entries(
    doc: Mapping[str, Any], section: str, schema: Mapping[str, _Key], where: _Locator
) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    for name, entry in doc.get(section, {}).items():
        key_path = (section, name)
        if not is_table_name(name):
            raise TablefileError(
                f"`{section}.{name}`: a table name is `dataset.table` with letters, digits and "
                'underscores only; quote it in the header, as in [targets."tmp.orders"].',
                where(key_path),
            )
        if not isinstance(entry, dict):
            raise TablefileError(f'`{section}."{name}"` must be a table', where(key_path))
        _check_keys(entry, schema, key_path, where)
        entries[name] = entry
    return entries


def _check_keys(
    entry: Mapping[str, Any],
    schema: Mapping[str, _Key],
    key_path: tuple[str, ...],
    where: _Locator,
) -> None:
    for key, value in entry.items():
        spec = schema.get(key)
        if spec is None:
            raise TablefileError(
                f"unknown key `{_dotted(key_path, key)}`{_suggest(key, schema)}. "
                f"Allowed here: {', '.join(schema)}.",
                where(key_path, key),
            )
        complaint = spec.check(value)
        if complaint:
            raise TablefileError(
                f"`{_dotted(key_path, key)}` {complaint}, not {value!r}.", where(key_path, key)
            )
    for key, spec in schema.items():
        if spec.required and key not in entry:
            raise TablefileError(f"`{_dotted(key_path, key)}` is required.", where(key_path))


def _check_references(
    sources: Mapping[str, Source], targets: Mapping[str, Target], where: _Locator
) -> None:
    known = sources.keys() | targets.keys()
    for target in targets.values():
        for i, dep in enumerate(target.deps):
            if dep not in known:
                raise TablefileError(
                    f'`targets."{target.name}".deps[{i}]` names `{dep}`, which is neither a '
                    f"target nor a source{_suggest(dep, known)}. Declare raw tables under "
                    f'[sources."{dep}"].',
                    where(("targets", target.name), "deps"),
                )


def _dotted(key_path: tuple[str, ...], key: str) -> str:
    parts = [f'"{p}"' if "." in p else p for p in (*key_path, key)]
    return ".".join(parts)


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


class _Locator:
    """Maps a key path to ``file:line``, from table headers and key lines found in the text."""

    def __init__(self, path: Path, headers: Mapping[tuple[str, ...], int], text: str) -> None:
        self.path = path
        self.headers = headers
        self.text_lines = text.splitlines()

    def __call__(self, key_path: tuple[str, ...], key: str | None = None) -> str:
        start = 0
        for n in range(len(key_path), 0, -1):
            start = self.headers.get(tuple(key_path[:n]), 0)
            if start:
                break
        if key is not None:
            pattern = re.compile(rf"""\s*["']?{re.escape(key)}["']?\s*=""")
            for number in range(start + 1, len(self.text_lines) + 1):
                text = self.text_lines[number - 1]
                if number > start + 1 and text.lstrip().startswith("["):
                    break
                if pattern.match(text):
                    return f"{self.path}:{number}"
        return f"{self.path}:{start}" if start else str(self.path)


_SIMPLE_HEADER = re.compile(r'\[\s*(\w+)\s*(?:\.\s*(?:"([\w.]*)"|(\w+))\s*)?\]\s*(?:#.*)?')


def _header_lines(text: str) -> dict[tuple[str, ...], int]:
    """Line number of every ``[a."b.c"]`` header, keyed by its parsed key path.

    The usual shapes are matched by a regex (10,000 targets load fast); anything else is
    parsed by tomllib itself, so quoting rules stay TOML's, not ours.
    """
    headers: dict[tuple[str, ...], int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped.startswith("[") or stripped.startswith("[["):
            continue
        simple = _SIMPLE_HEADER.fullmatch(stripped)
        if simple:
            key_path = [simple.group(1)] + [g for g in simple.group(2, 3) if g is not None]
        else:
            key_path = _parsed_header(stripped)
        headers.setdefault(tuple(key_path), number)
    return headers


def _parsed_header(line: str) -> list[str]:
    try:
        node: Any = tomllib.loads(line)
    except tomllib.TOMLDecodeError:
        return []
    key_path: list[str] = []
    while isinstance(node, dict) and len(node) == 1:
        key, node = next(iter(node.items()))
        key_path.append(key)
    return key_path


def _toml_message(exc: tomllib.TOMLDecodeError) -> str:
    message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
    return f"invalid TOML: {message}."


def _toml_where(exc: tomllib.TOMLDecodeError, path: Path) -> str:
    # Python 3.11's TOMLDecodeError carries the position only in its message.
    match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
    return f"{path}:{match.group(1)}:{match.group(2)}" if match else str(path)
