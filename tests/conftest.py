"""Shared fixtures: every test runs in its own temporary directory, on its own copy of the
example project, through the same entry points users have."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tablemake.cli import main

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run in tmp_path with no TABLEMAKE_* settings leaking in, and fail any test that
    writes a .state/ into the checkout."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in __import__("os").environ if n.startswith("TABLEMAKE_")]:
        monkeypatch.delenv(name)
    before = (REPO / ".state").exists()
    yield
    assert (REPO / ".state").exists() == before, "a test wrote .state/ into the checkout"


def copy_example(dest: Path) -> Path:
    """A fresh copy of the shipped example project (no state, no warehouse)."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Tablefile.toml", dest / "Tablefile.toml")
    shutil.copy(REPO / "workflow.py", dest / "workflow.py")
    for folder in ("res", "db_init"):
        shutil.copytree(REPO / folder, dest / folder)
    return dest


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "shop")


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)

    def statuses(self, status: str) -> set[str]:
        return {t["name"] for t in self.json["targets"] if t["status"] == status}


Cli = Callable[..., CliResult]


@pytest.fixture
def tm(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run the CLI in-process: ``tm(project_dir, "final.products", "-j", "4")``."""

    def run(directory: Path, *args: str) -> CliResult:
        capsys.readouterr()
        code = main(["-C", str(directory), *args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def warehouse_rows(project: Path, query: str) -> list[tuple[Any, ...]]:
    """Rows of a query on a project's DuckDB warehouse, read-only (no run may be active)."""
    with duckdb.connect(str(project / ".state" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(query).fetchall()
