"""``tablemake test``: run the unit tests declared next to targets on an in-memory DuckDB.

Each test gets a fresh in-memory warehouse, never the project's: its ``given`` rows become
the prerequisites' tables (column types inferred from the values, as for Python targets),
the target is built exactly as a real build would build it (same SQL translation, same
parameter binding, same Python call), and its rows are compared with ``expect``: as a
multiset (order does not matter), on the columns the expected rows name.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tablemake.backends.base import BuildRequest
from tablemake.backends.duckdb import DuckDBBackend
from tablemake.dsl import UnitTest
from tablemake.errors import UserError, WarehouseError
from tablemake.params import bind_values
from tablemake.plan import read_script
from tablemake.python_targets import ALL_ROWS, RowsToLoad, rows_to_load
from tablemake.runner import build_target
from tablemake.tablefile import Tablefile


@dataclass(frozen=True)
class TestOutcome:
    name: str
    target: str
    ok: bool
    details: tuple[str, ...] = ()  # why it failed: the differing rows, or the error

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "target": self.target, "ok": self.ok, "details": self.details}


def select_tests(tests: Sequence[UnitTest], targets: Sequence[str]) -> list[UnitTest]:
    """The tests of the named targets (all tests when none is named)."""
    known = {t.target for t in tests}
    for name in targets:
        if name not in known:
            raise UserError(
                f"no unit test is declared for `{name}`; tests exist for: "
                f"{', '.join(sorted(known)) or 'no target'}."
            )
    return [t for t in tests if not targets or t.target in targets]


def run_unit_test(tablefile: Tablefile, test: UnitTest) -> TestOutcome:
    target = tablefile.targets[test.target]
    missing = [d for d in target.deps if d not in test.given]
    extra = [d for d in test.given if d not in target.deps]
    if missing or extra:
        problem = f"lacks rows for {', '.join(missing)}" if missing else ""
        if extra:
            problem += ("; " if problem else "") + f"gives {', '.join(extra)}, not a prerequisite"
        raise UserError(
            f"unit test {test.name} {problem} (prerequisites of `{target.name}`: "
            f"{', '.join(target.deps) or 'none'}).",
            test.where,
        )
    try:
        params = bind_values(tablefile.params, test.vars)
    except ValueError as exc:
        raise UserError(f"unit test {test.name}: {exc}", test.where) from None
    text = target.python.text if target.python else read_script(tablefile, target)
    backend = DuckDBBackend(Path(":memory:"))
    try:
        backend.ensure_datasets({name.split(".", 1)[0] for name in [*target.deps, target.name]})
        for dep, rows in test.given.items():
            where = f"{test.where}: given rows of {dep}"
            backend.load_rows(BuildRequest(dep, "", where, "unit-test"), _given(rows, where))
        request = BuildRequest(
            target.name, text, target.sql, "unit-test", params=tuple(params.values())
        )
        build_target(backend, target, request)
        table = backend.read_table(target.name, ALL_ROWS)
    except (UserError, WarehouseError) as exc:
        return TestOutcome(test.name, test.target, False, (f"the build failed: {exc}",))
    finally:
        backend.close()
    actual = [dict(zip(table.columns, row, strict=True)) for row in table.rows]
    return _compare(test, actual)


def _given(rows: Sequence[Mapping[str, Any]], where: str) -> Callable[[], RowsToLoad]:
    data = rows_to_load(rows, where)
    return lambda: data


def _compare(test: UnitTest, actual: list[dict[str, Any]]) -> TestOutcome:
    columns = list(dict.fromkeys(k for row in test.expect for k in row))
    have = set(actual[0]) if actual else set(columns)
    absent = [c for c in columns if c not in have]
    if absent:
        return TestOutcome(
            test.name,
            test.target,
            False,
            (f"the table has no column {', '.join(absent)}; it has {', '.join(sorted(have))}",),
        )
    expected = Counter(_canonical(row, columns) for row in test.expect)
    got = Counter(_canonical(row, columns) for row in actual)
    if expected == got:
        return TestOutcome(test.name, test.target, True)
    details = [f"missing  {row}" for row in sorted((expected - got).elements())]
    details += [f"unexpected {row}" for row in sorted((got - expected).elements())]
    return TestOutcome(test.name, test.target, False, tuple(details))


def _canonical(row: Mapping[str, Any], columns: Sequence[str]) -> str:
    """One row on the compared columns as stable text: floats to 9 significant digits,
    dates as ISO text, so ``1.1 + 2.2`` equals ``3.3`` and a DATE equals its text."""
    return json.dumps({c: _plain(row.get(c)) for c in columns}, sort_keys=True, default=str)


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if value is not None and not isinstance(value, (str, int, bool)):
        try:
            return _plain(float(value))  # Decimal
        except (TypeError, ValueError):
            return str(value)
    return value
