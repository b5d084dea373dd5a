"""Load Tablefile.toml into frozen, validated dataclasses.

Everything a user can get wrong in the file is caught here and reported with the file, the
line of the offending table or key, and the key path; later steps may trust these objects.
It does not look at SQL or the warehouse.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

from tablemake.errors import TablefileError
from tablemake.params import PARAM_TYPES, Param, is_param_name, parse_value

DEFAULT_FILENAME = "Tablefile.toml"
BACKEND_NAMES = ("duckdb", "bigquery", "simulate")
STATE_DIR = ".state"  # beside the Tablefile: the state store, the local warehouse, caches
EXTRACT_KINDS = ("postgres", "csv")
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_table_name(name: str) -> bool:
    """``dataset.table`` with letters, digits and underscores only: safe to quote into SQL."""
    return _TABLE_NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class Project:
    name: str
    default: tuple[str, ...]
    jobs: int
    cutoff: bool | None = None  # early cutoff; None: on for duckdb, off for bigquery
    retries: int = 2  # defaults for every target's retry policy (see tablemake.retry)
    retry_backoff: float = 1.0
    timeout: float | None = None
    workflow: str | None = None  # a Python file declaring more targets (tablemake.dsl)


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
    snapshot_reads: bool = True  # read sources FOR SYSTEM_TIME AS OF the run's start


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
    extract: str | None = None  # the [extract.<name>] whose daily load fills this table


@dataclass(frozen=True)
class Extract:
    """One ``[extract.<name>]``: a Postgres database (every table of ``schemas``) or one
    CSV file, pulled to dated local files and loaded into ``dataset`` each day."""

    name: str
    kind: str  # postgres | csv
    dataset: str
    url: str | None  # postgres: the URL itself, or
    url_env: str | None  # postgres: the environment variable holding it (keeps secrets out)
    schemas: tuple[str, ...]  # postgres
    path: str | None  # csv, relative to the Tablefile
    line: int


@dataclass(frozen=True)
class PythonCode:
    """A Python target's function (see ``tablemake.dsl``): what fingerprints it, and the
    function itself, which is called only when the target is built."""

    function: str  # `workflow.py:name`, for messages and reasons
    text: str  # its source and the sources of the project-local functions it calls
    digest: str  # hash of their syntax trees: comments and layout do not count
    params: tuple[str, ...]  # the runtime parameters it takes
    call: Callable[..., object] = field(compare=False, repr=False)


AUDIT_CHECKS = ("not_null", "unique", "accepted_values", "row_count", "query")


@dataclass(frozen=True)
class Audit:
    """One assertion on a freshly built table, checked before it is published: an entry of
    a target's ``audits`` list, e.g. ``{ check = "unique", columns = ["id"] }``."""

    check: str  # one of AUDIT_CHECKS
    columns: tuple[str, ...] = ()  # not_null, unique; accepted_values: exactly one
    values: tuple[str | int | float | bool, ...] = ()  # accepted_values
    min_rows: int = 1  # row_count
    query: str = ""  # query: BigQuery SQL returning the offending rows; {this} = the table

    def __str__(self) -> str:
        if self.check == "row_count":
            return f"row_count >= {self.min_rows}"
        if self.check == "query":
            return f"query {' '.join(self.query.split())[:60]!r}"
        return f"{self.check}({', '.join(self.columns)})"


_AUDIT_KEYS = {
    "not_null": {"columns"},
    "unique": {"columns"},
    "accepted_values": {"column", "values"},
    "row_count": {"min"},
    "query": {"sql"},
}


def _audit_problem(entry: Any) -> str | None:
    """Why one ``audits`` entry is malformed, or None."""
    if not isinstance(entry, dict) or entry.get("check") not in AUDIT_CHECKS:
        return f"each audit needs `check = ` one of {', '.join(AUDIT_CHECKS)}"
    check, allowed = entry["check"], _AUDIT_KEYS[entry["check"]]
    given = set(entry) - {"check"}
    if not allowed - {"min"} <= given <= allowed:
        return f"a `{check}` audit takes exactly {', '.join(sorted(allowed))}"
    columns = entry.get("columns", [entry.get("column", "ok")])
    if not isinstance(columns, list) or not columns or not all(map(_is_identifier, columns)):
        return f"the column(s) of a `{check}` audit must be column names"
    values = entry.get("values", ["ok"])
    if not isinstance(values, list) or not values or not all(map(_is_scalar, values)):
        return "`values` must be a non-empty list of strings or numbers"
    if _is_count(entry.get("min", 1)):
        return "`min` must be a whole number >= 0"
    query = entry.get("sql", "{this}")
    if not isinstance(query, str) or "{this}" not in query:
        return "`sql` must be a query returning the offending rows of {this}, the audited table"
    return None


def _is_audits(value: Any) -> str | None:
    if not isinstance(value, list):
        return 'must be a list of audits, e.g. [{ check = "not_null", columns = ["id"] }]'
    problems = [p for p in map(_audit_problem, value) if p]
    return f"{problems[0]}" if problems else None


def _audits(entries: list[dict[str, Any]]) -> tuple[Audit, ...]:
    return tuple(
        Audit(
            check=e["check"],
            columns=tuple(e.get("columns", [e["column"]] if "column" in e else [])),
            values=tuple(e.get("values", ())),
            min_rows=e.get("min", 1),
            query=e.get("sql", ""),
        )
        for e in entries
    )


def _is_identifier(value: Any) -> bool:
    return isinstance(value, str) and bool(_IDENTIFIER.fullmatch(value))


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float))


def _is_bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


@dataclass(frozen=True)
class Condition:
    """Whether a target is built in this run, decided at plan time from the run's parameter
    values (name -> typed value); ``description`` is what ``-n`` says when it is not."""

    description: str
    holds: Callable[[Mapping[str, object]], bool] = field(compare=False, repr=False)


@dataclass(frozen=True)
class _IsSet:
    """A named callable, not a lambda: a parsed Tablefile is pickled (tablefile_cache)."""

    param: str

    def __call__(self, values: Mapping[str, object]) -> bool:
        return self.param in values


def only_if_set(param: str) -> Condition:
    """``only_if = "country"``: build the target only when the parameter has a value."""
    return Condition(f"only if parameter {param} is set", _IsSet(param))


@dataclass(frozen=True)
class Target:
    name: str
    sql: str  # the script's path; for a Python target, the workflow file's
    deps: tuple[str, ...]
    duration: float | None
    line: int
    retries: int | None = None  # None: the [project] default
    retry_backoff: float | None = None
    timeout: float | None = None
    python: PythonCode | None = None
    partition: str | None = None  # the parameter whose values are its partitions
    partition_value: str | None = None  # set on one partition's instance (tablemake.partitions)
    condition: Condition | None = None  # None: always built when stale
    cutoff: bool | None = None  # None: the [project] setting, else the backend's default
    audits: tuple[Audit, ...] = ()
    # The fingerprint of what in the entry changes the table. Computed with the object (and
    # so kept in the cached parse, tablemake.tablefile_cache): hashing 100,000 entries was a
    # fifth of planning them. ``replace`` computes it afresh for the new object.
    definition: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "definition", _definition_fingerprint(self))

    @property
    def dataset(self) -> str:
        return self.name.split(".", 1)[0]


def _definition_fingerprint(target: Target) -> str:
    """The script path and the prerequisites (as a set: reordering them changes nothing; a
    partitioned prerequisite counts as its table, whichever partitions a run builds).
    Simulate-only keys are left out."""
    payload = json.dumps({"sql": target.sql, "deps": sorted({table_of(d) for d in target.deps})})
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def table_of(name: str) -> str:
    """The table an instance writes: ``final.daily_sales[2024-01-01]`` -> ``final.daily_sales``."""
    return name.split("[", 1)[0]


@dataclass(frozen=True)
class Tablefile:
    path: Path
    project: Project
    warehouse: Warehouse
    sources: Mapping[str, Source]
    targets: Mapping[str, Target]
    lines: Mapping[tuple[str, ...], int] = field(repr=False, compare=False)
    extracts: Mapping[str, Extract] = field(default_factory=dict)
    params: Mapping[str, Param] = field(default_factory=dict)

    @cached_property
    def root(self) -> Path:
        """One object, not one per call: read per target on every plan, and a path's
        string form is computed once per object."""
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


def _is_path(value: Any) -> str | None:
    """A file path: a NUL would cut it short in the C libraries that open it."""
    if _is_str(value) or "\x00" in value:
        return "must be a non-empty file path (without NUL characters)"
    return None


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
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1e9
    return None if ok else "must be a number of seconds >= 0"


def _is_count(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return None if ok else "must be a whole number >= 0"


def _is_timeout(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1e9
    return None if ok else "must be a number of seconds > 0"


_RETRY_KEYS = {
    "retries": _Key(_is_count),
    "retry_backoff": _Key(_is_seconds),
    "timeout": _Key(_is_timeout),
}


def _is_backend(value: Any) -> str | None:
    return None if value in BACKEND_NAMES else f"must be one of {', '.join(BACKEND_NAMES)}"


def _is_table(value: Any) -> str | None:
    return None if isinstance(value, dict) else "must be a table"


_TOP = {
    "project": _Key(_is_table),
    "warehouse": _Key(_is_table),
    "sources": _Key(_is_table),
    "targets": _Key(_is_table),
    "extract": _Key(_is_table),
    "params": _Key(_is_table),
}
_PROJECT = {
    "name": _Key(_is_str),
    "default": _Key(_is_default),
    "jobs": _Key(_is_positive_int),
    "cutoff": _Key(_is_bool),
    "workflow": _Key(_is_str),
    **_RETRY_KEYS,
}
_PARAM = {
    "type": _Key(
        lambda v: None if v in PARAM_TYPES else f"must be one of {', '.join(PARAM_TYPES)}"
    ),
    "default": _Key(_is_str),
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
    "key_file": _Key(_is_path),
    "endpoint": _Key(_is_str),
    "change_detection": _Key(
        lambda v: (
            None
            if v in ("metadata", "content")
            else "must be `metadata` (free) or `content` (scans each source)"
        )
    ),
    "snapshot_reads": _Key(_is_bool),
}
_DUCKDB = {"path": _Key(_is_path)}
_SIMULATE = {"seed": _Key(_is_int), "fail": _Key(_is_name_list)}
_SOURCE = {"init": _Key(_is_path), "description": _Key(_is_str)}
_EXTRACT = {
    "kind": _Key(
        lambda v: None if v in EXTRACT_KINDS else f"must be one of {', '.join(EXTRACT_KINDS)}",
        required=True,
    ),
    "url": _Key(_is_str),
    "url_env": _Key(_is_str),
    "schemas": _Key(
        lambda v: (
            None
            if isinstance(v, list) and v and all(isinstance(i, str) and i for i in v)
            else "must be a non-empty list of schema names"
        )
    ),
    "path": _Key(_is_str),
    "dataset": _Key(
        lambda v: (
            None
            if isinstance(v, str) and _IDENTIFIER.fullmatch(v)
            else "must be a dataset name (letters, digits, underscores)"
        )
    ),
    "description": _Key(_is_str),
}
_TARGET = {
    "sql": _Key(_is_path),
    "deps": _Key(_is_name_list),
    "duration": _Key(_is_seconds),
    "cutoff": _Key(_is_bool),
    "audits": _Key(_is_audits),
    "description": _Key(_is_str),
    "partition": _Key(
        lambda v: None if isinstance(v, str) and is_param_name(v) else "must be a parameter name"
    ),
    "only_if": _Key(
        lambda v: None if isinstance(v, str) and is_param_name(v) else "must be a parameter name"
    ),
    **_RETRY_KEYS,
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
            retries=entry.get("retries"),
            retry_backoff=_float_or_none(entry.get("retry_backoff")),
            timeout=_float_or_none(entry.get("timeout")),
            cutoff=entry.get("cutoff"),
            partition=entry.get("partition"),
            condition=only_if_set(entry["only_if"]) if "only_if" in entry else None,
            audits=_audits(entry.get("audits", [])),
        )
        for name, entry in _entries(doc, "targets", _TARGET, where).items()
    }
    for name in sources.keys() & targets.keys():
        raise TablefileError(
            f"`{name}` is declared both as a source and as a target; a table is one or the other.",
            where(("targets", name)),
        )
    extracts = _extracts(doc, lines, where)
    sources.update(_extracted_sources(extracts, sources, targets, where))
    if "workflow" not in project_doc:  # else tablemake.dsl checks, knowing the workflow's
        _check_references(sources, targets, where)

    default = project_doc.get("default", [])
    project = Project(
        name=project_doc.get("name", path.resolve().parent.name),
        default=(default,) if isinstance(default, str) else tuple(default),
        jobs=project_doc.get("jobs", 1),
        cutoff=project_doc.get("cutoff"),
        retries=project_doc.get("retries", 2),
        retry_backoff=float(project_doc.get("retry_backoff", 1.0)),
        timeout=_float_or_none(project_doc.get("timeout")),
        workflow=project_doc.get("workflow"),
    )
    for name in project.default:
        if name not in targets and project.workflow is None:
            raise TablefileError(
                f"default target `{name}` is not a declared target{_suggest(name, targets)}.",
                where(("project",), "default"),
            )
    warehouse = Warehouse(
        backend=warehouse_doc.get("backend", "duckdb"),
        duckdb_path=warehouse_doc.get("duckdb", {}).get("path", f"{STATE_DIR}/warehouse.duckdb"),
        simulate=SimulateSettings(
            seed=simulate_doc.get("seed", 0), fail=tuple(simulate_doc.get("fail", ()))
        ),
        bigquery=BigQuerySettings(**bigquery_doc),
    )
    params = _params(doc.get("params", {}), where)
    return Tablefile(path, project, warehouse, sources, targets, lines, extracts, params)


def _params(section: Mapping[str, Any], where: _Locator) -> dict[str, Param]:
    """``[params]``: ``name = "TYPE"`` or ``name = { type = "TYPE", default = "text" }``."""
    params: dict[str, Param] = {}
    for name, entry in section.items():
        at = where(("params",), name)
        spec = {"type": entry} if isinstance(entry, str) else entry
        if not is_param_name(name) or not isinstance(spec, dict):
            raise TablefileError(
                f"`params.{name}` must be a plain name set to a type (one of "
                f"{', '.join(PARAM_TYPES)}) or to {{ type = …, default = … }}.",
                at,
            )
        try:
            _check_keys(spec, _PARAM, ("params", name), where)
        except TablefileError as exc:  # an inline table: its own line says more than [params]
            raise TablefileError(exc.message, at) from None
        if "type" not in spec:
            raise TablefileError(f"`params.{name}.type` is required.", at)
        default = spec.get("default")
        if default is not None:
            try:
                parse_value(spec["type"], default)
            except ValueError as exc:
                raise TablefileError(f"`params.{name}.default` {default!r} {exc}.", at) from None
        params[name] = Param(name, spec["type"], default, at)
    return params


def _float_or_none(value: float | None) -> float | None:
    return None if value is None else float(value)


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
                f"`{_dotted((section,), name)}`: a table name is `dataset.table` with "
                "letters, digits and underscores only; quote it in the header, as in "
                '[targets."tmp.orders"].',
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


def _extracts(
    doc: Mapping[str, Any], lines: Mapping[tuple[str, ...], int], where: _Locator
) -> dict[str, Extract]:
    extracts: dict[str, Extract] = {}
    for name, entry in doc.get("extract", {}).items():
        key_path = ("extract", name)
        if not _IDENTIFIER.fullmatch(name):
            raise TablefileError(
                f"`extract.{name}`: an extract name has letters, digits and underscores only.",
                where(key_path),
            )
        if not isinstance(entry, dict):
            raise TablefileError(f"`extract.{name}` must be a table", where(key_path))
        _check_keys(entry, _EXTRACT, key_path, where)
        kind = entry["kind"]
        allowed = {"postgres": ("url", "url_env", "schemas"), "csv": ("path",)}[kind]
        for key in ("url", "url_env", "schemas", "path"):
            if key in entry and key not in allowed:
                raise TablefileError(
                    f"`extract.{name}.{key}` does not apply to kind = {kind!r}; "
                    f"a {kind} extract takes: {', '.join(allowed)}.",
                    where(key_path, key),
                )
        if kind == "postgres" and ("url" in entry) == ("url_env" in entry):
            raise TablefileError(
                f"`extract.{name}` needs exactly one of `url` and `url_env` (the name of an "
                "environment variable holding the URL, which keeps passwords out of the file).",
                where(key_path),
            )
        if kind == "csv" and "path" not in entry:
            raise TablefileError(
                f"`extract.{name}.path` is required for a csv extract.", where(key_path)
            )
        extracts[name] = Extract(
            name=name,
            kind=kind,
            dataset=entry.get("dataset", "raw"),
            url=entry.get("url"),
            url_env=entry.get("url_env"),
            schemas=tuple(entry.get("schemas", ["public"])) if kind == "postgres" else (),
            path=entry.get("path"),
            line=lines.get(key_path, 0),
        )
    return extracts


def _extracted_sources(
    extracts: Mapping[str, Extract],
    sources: Mapping[str, Source],
    targets: Mapping[str, Target],
    where: _Locator,
) -> dict[str, Source]:
    """The sources the extracts fill. A CSV fills ``<dataset>.<name>``. A Postgres
    database fills every table of its dataset, and which tables it has is known only when
    it is read, so each source declared in that dataset, and each prerequisite named there,
    becomes one of its sources: targets list ``raw.orders`` like any other source."""
    filled: dict[str, Source] = {}
    by_dataset: dict[str, Extract] = {}
    for extract in extracts.values():
        if extract.kind == "csv":
            name = f"{extract.dataset}.{extract.name}"
            if name in targets:
                raise TablefileError(
                    f"`extract.{extract.name}` loads `{name}`, which is also a target.",
                    where(("extract", extract.name)),
                )
            filled[name] = Source(name, None, extract.line, extract=extract.name)
            continue
        other = by_dataset.setdefault(extract.dataset, extract)
        if other is not extract:
            raise TablefileError(
                f"`extract.{extract.name}` and `extract.{other.name}` are both postgres "
                f"extracts into dataset `{extract.dataset}`; give one of them another "
                "`dataset`, so that each table has one origin.",
                where(("extract", extract.name)),
            )
        if extract.dataset in {t.dataset for t in targets.values()}:
            raise TablefileError(
                f"`extract.{extract.name}` loads every table of its database into dataset "
                f"`{extract.dataset}`, which also holds targets; give it another `dataset`.",
                where(("extract", extract.name)),
            )
    named = set(sources) | {dep for t in targets.values() for dep in t.deps}
    for name in sorted(named - filled.keys() - targets.keys()):
        extract_of = by_dataset.get(name.split(".", 1)[0])
        if extract_of is not None:
            declared = sources.get(name)
            init, line = (declared.init, declared.line) if declared else (None, extract_of.line)
            filled[name] = Source(name, init, line, extract=extract_of.name)
    return filled


def _dotted(key_path: tuple[str, ...], key: str) -> str:
    """The key path as TOML writes it: a key that is not bare is quoted with its escapes, so
    a name holding a newline or a quote cannot break the one-paragraph message."""
    parts = [p if _BARE_KEY.fullmatch(p) else json.dumps(p) for p in (*key_path, key)]
    return ".".join(parts)


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


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
