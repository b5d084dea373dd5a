"""A typed Python DSL for workflows, compiled into the same ``Tablefile`` the TOML gives.

The Tablefile points to a Python file (``[project] workflow = "workflow.py"``); importing
it runs the declarations below, which add targets (Python functions and SQL scripts),
parameters and unit tests. ``compile_workflow`` merges them into the Tablefile's frozen
objects, so the graph, planner, state store and scheduler are the very ones TOML projects
use: there is no second engine. Outside ``compile_workflow`` the declarations register
nothing and ``@target`` returns the function unchanged, so the file stays importable by a
user's own tests.

    from tablemake.dsl import param, sql, target, unit_test

    param("min_price", "FLOAT64", default="0")
    sql("tmp.orders", deps=["raw.orders"])                 # res/tmp/orders.sql

    @target("tmp.fx", deps=["tmp.orders"])
    def fx(orders: list[dict], min_price: float) -> list[dict]:
        return [o for o in orders if o["price"] >= min_price]
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from tablemake.errors import TablefileError
from tablemake.graph import TargetGraph, topological_order
from tablemake.params import PARAM_TYPES, Param, is_param_name, parse_value
from tablemake.python_targets import code_fingerprint, param_arguments
from tablemake.tablefile import (
    Condition,
    PythonCode,
    Tablefile,
    Target,
    default_script_path,
    is_table_name,
)

F = TypeVar("F", bound=Callable[..., object])
Rows = list[dict[str, Any]]
# A condition: a function of runtime parameters (taken by name) returning whether to build,
# alone or with the words `-n` shows when it does not hold: ("only on weekdays", f).
When = Callable[..., bool] | tuple[str, Callable[..., bool]]


def _when(given: When | None) -> Condition | None:
    """The Tablefile's Condition for a DSL condition. A condition taking a parameter that
    has no value in this run does not hold."""
    if given is None:
        return None
    if isinstance(given, tuple):
        description, func = given
    else:
        func = given
        doc = (func.__doc__ or "").strip().splitlines()
        description = doc[0] if doc else f"condition {func.__name__} does not hold"
    names = list(inspect.signature(func).parameters)

    def holds(values: Mapping[str, object]) -> bool:
        if any(name not in values for name in names):
            return False
        return bool(func(**{name: values[name] for name in names}))

    return Condition(description, holds)


@dataclass(frozen=True)
class UnitTest:
    """Input rows for each prerequisite, the rows the target must produce, and the
    parameter values to run it with (see ``tablemake.unittests``)."""

    name: str
    target: str
    given: Mapping[str, Rows]
    expect: Rows
    vars: Mapping[str, str]
    where: str


@dataclass
class _Declarations:
    file: Path
    relative: str  # the file as the Tablefile names it: the Python targets' script path
    targets: list[tuple[Target, Callable[..., object] | None]] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    tests: list[UnitTest] = field(default_factory=list)


_current: ContextVar[_Declarations | None] = ContextVar("tablemake_dsl", default=None)


@dataclass(frozen=True)
class CompiledWorkflow:
    tablefile: Tablefile  # the TOML's declarations plus the workflow's
    tests: tuple[UnitTest, ...]


def _caller_where(file: Path) -> tuple[str, int]:
    """``file:line`` of the declaration in the workflow file, for error messages."""
    wanted = str(file.resolve())
    frame = inspect.currentframe()
    while frame is not None:  # frames only: inspect.stack() would read every source line
        if str(Path(frame.f_code.co_filename).resolve()) == wanted:
            return f"{file}:{frame.f_lineno}", frame.f_lineno
        frame = frame.f_back
    return str(file), 0


def target(
    name: str,
    *,
    deps: Sequence[str] = (),
    duration: float | None = None,
    description: str | None = None,
    partition: str | None = None,
    condition: When | None = None,
) -> Callable[[F], F]:
    """Declare a Python target: the decorated function returns the table's rows (a list of
    dicts, an Arrow table or a pandas DataFrame). Each parameter named like a prerequisite's
    table (``orders`` for ``raw.orders``) receives that table's rows as a list of dicts;
    every other parameter is a runtime parameter (``--var``), passed with its declared type.
    ``partition`` names a parameter: the target is built per value (see
    ``tablemake.partitions``). ``condition`` decides at plan time whether it is built at all
    in this run (see ``When``).
    """

    def register(func: F) -> F:
        found = _current.get()
        if found is not None:
            where, line = _caller_where(found.file)
            entry = _target(found, name, deps, duration, where=where, line=line)
            found.targets.append(
                (replace(entry, partition=partition, condition=_when(condition)), func)
            )
        return func

    del description  # documentation only, as in the TOML
    return register


def sql(
    name: str,
    *,
    deps: Sequence[str] = (),
    script: str | None = None,
    duration: float | None = None,
    description: str | None = None,
    partition: str | None = None,
    condition: When | None = None,
) -> None:
    """Declare a SQL target: one BigQuery SELECT in ``script`` (default
    ``res/<dataset>/<table>.sql``), exactly like a ``[targets."…"]`` entry."""
    found = _current.get()
    if found is None:
        return
    where, line = _caller_where(found.file)
    entry = _target(found, name, deps, duration, where=where, line=line)
    sql_path = script or default_script_path(name)
    found.targets.append(
        (replace(entry, sql=sql_path, partition=partition, condition=_when(condition)), None)
    )
    del description


def param(name: str, type: str, *, default: str | None = None) -> None:
    """Declare a runtime parameter (``--var name=value``) of a GoogleSQL type: SQL reads
    it as ``@name``, Python targets take it as an argument ``name``."""
    found = _current.get()
    if found is None:
        return
    where, _line = _caller_where(found.file)
    if not is_param_name(name) or type not in PARAM_TYPES:
        raise TablefileError(
            f"param({name!r}, {type!r}): a parameter has a plain name and one of the types "
            f"{', '.join(PARAM_TYPES)}.",
            where,
        )
    if default is not None:
        try:
            parse_value(type, default)
        except ValueError as exc:
            raise TablefileError(f"param {name}: default {default!r} {exc}.", where) from None
    found.params.append(Param(name, type, default, where))


def unit_test(
    target_name: str,
    *,
    given: Mapping[str, Rows],
    expect: Rows,
    vars: Mapping[str, str] | None = None,
    name: str | None = None,
) -> None:
    """Declare a unit test of a target (SQL or Python, from TOML or this file): ``given``
    rows for each prerequisite it reads, the ``expect``ed rows (compared as a multiset, on
    the columns they name), run by ``tablemake test`` on an in-memory DuckDB."""
    found = _current.get()
    if found is None:
        return
    where, _line = _caller_where(found.file)
    label = name or f"{target_name}#{1 + sum(t.target == target_name for t in found.tests)}"
    found.tests.append(
        UnitTest(label, target_name, dict(given), list(expect), dict(vars or {}), where)
    )


def _target(
    found: _Declarations,
    name: str,
    deps: Sequence[str],
    duration: float | None,
    *,
    where: str,
    line: int,
) -> Target:
    """A checked target entry (its script path and Python code are filled in by the caller
    and by ``compile_workflow``)."""
    if not is_table_name(name):
        raise TablefileError(f"target name {name!r} is not `dataset.table`.", where)
    bad = [d for d in deps if not isinstance(d, str) or not is_table_name(d)]
    if bad or isinstance(deps, str) or len(set(deps)) != len(deps):
        raise TablefileError(
            f"target `{name}`: deps must be distinct table names `dataset.table`, not {deps!r}.",
            where,
        )
    if any(t.name == name for t, _ in found.targets):
        raise TablefileError(f"target `{name}` is declared twice in the workflow.", where)
    return Target(name, found.relative, tuple(deps), duration, line)


@contextmanager
def _collecting(file: Path, relative: str) -> Iterator[_Declarations]:
    found = _Declarations(file, relative)
    token = _current.set(found)
    try:
        yield found
    finally:
        _current.reset(token)


def compile_workflow(tablefile: Tablefile) -> CompiledWorkflow:
    """The Tablefile with its workflow's declarations merged in (itself when it has none)."""
    if tablefile.project.workflow is None:
        return CompiledWorkflow(tablefile, ())
    relative = tablefile.project.workflow
    file = tablefile.root / relative
    if not file.is_file():
        raise TablefileError(
            f"the workflow file {relative} does not exist.", tablefile.where("project", "workflow")
        )
    with _collecting(file, relative) as found:
        _import(file)
    params = dict(tablefile.params)
    for declared in found.params:
        if declared.name in params:
            raise TablefileError(f"parameter `{declared.name}` is declared twice.", declared.where)
        params[declared.name] = declared
    targets = dict(tablefile.targets)
    for entry, func in found.targets:
        where = f"{file}:{entry.line}"
        if entry.name in targets or entry.name in tablefile.sources:
            raise TablefileError(
                f"`{entry.name}` is declared in the workflow and in the Tablefile; declare it "
                "once.",
                where,
            )
        code = None if func is None else _python_code(func, entry, params, tablefile.root, where)
        targets[entry.name] = replace(entry, python=code)
    known = targets.keys() | tablefile.sources.keys()
    workflow_targets = {entry.name for entry, _func in found.targets}
    for entry in targets.values():
        for dep in entry.deps:
            if dep not in known:
                where = (
                    f"{file}:{entry.line}"
                    if entry.name in workflow_targets
                    else tablefile.where("targets", entry.name)
                )
                raise TablefileError(
                    f"target `{entry.name}` depends on `{dep}`, which is neither a target nor "
                    "a source of the Tablefile or its workflow.",
                    where,
                )
    for name in tablefile.project.default:
        if name not in targets:
            raise TablefileError(
                f"default target `{name}` is declared neither in the Tablefile nor in its "
                "workflow.",
                tablefile.where("project", "default"),
            )
    for test in found.tests:
        if test.target not in targets:
            raise TablefileError(f"unit test of unknown target `{test.target}`.", test.where)
    merged = replace(tablefile, targets=_in_dependency_order(targets, tablefile), params=params)
    return CompiledWorkflow(merged, tuple(found.tests))


def _in_dependency_order(targets: dict[str, Target], tablefile: Tablefile) -> dict[str, Target]:
    """The targets with each after its prerequisites, else in declaration order (TOML
    first): the workflow's targets may feed the TOML's. Targets on a cycle keep their
    place at the end, for ``build_graph`` to report the cycle."""
    deps = {**dict.fromkeys(tablefile.sources, ()), **{n: t.deps for n, t in targets.items()}}
    order = topological_order(TargetGraph(deps, frozenset(tablefile.sources)))
    ranked = [n for n in order if n in targets]
    ranked += [n for n in targets if n not in set(ranked)]
    return {name: targets[name] for name in ranked}


def _python_code(
    func: Callable[..., object],
    entry: Target,
    params: Mapping[str, Param],
    root: Path,
    where: str,
) -> PythonCode:
    signature = inspect.signature(func)
    taken: list[str] = []
    for name in param_arguments(func, entry.deps):
        has_default = signature.parameters[name].default is not inspect.Parameter.empty
        if name in params:
            taken.append(name)
        elif not has_default:
            raise TablefileError(
                f"function {func.__name__} of target `{entry.name}` takes `{name}`, which is "
                f"neither a prerequisite's table ({', '.join(entry.deps) or 'none'}) nor a "
                "declared parameter.",
                where,
            )
    text, digest = code_fingerprint(func, root)
    return PythonCode(f"{entry.sql}:{func.__name__}", text, digest, tuple(taken), func)


def workflow_targets(file: Path) -> dict[str, tuple[str, ...]]:
    """The targets a workflow file declares, with their prerequisites, unchecked: what
    ``tablemake init`` needs to leave them out of the sources it infers."""
    with _collecting(file, file.name) as found:
        _import(file)
    return {entry.name: entry.deps for entry, _func in found.targets}


def _import(file: Path) -> None:
    """Run the workflow file as a fresh module; its directory is importable meanwhile, so
    it can import project-local helper modules."""
    module_name = (
        "tablemake_workflow_" + hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:12]
    )
    spec = importlib.util.spec_from_file_location(module_name, file)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(file.parent))
    try:
        spec.loader.exec_module(module)
    except TablefileError:
        raise
    except Exception as exc:  # the user's code: report where it failed, no traceback
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(file)]
        line = frames[-1].lineno if frames else 0
        raise TablefileError(
            f"the workflow file failed to load: {type(exc).__name__}: {exc}", f"{file}:{line}"
        ) from None
    finally:
        sys.path.remove(str(file.parent))
