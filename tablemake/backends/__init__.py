"""Warehouse backends, chosen by name; ``open_backend`` is the only way the core gets one."""

from __future__ import annotations

from pathlib import Path

from tablemake.backends.base import Backend, BuildRequest, BuildResult, TableRows
from tablemake.tablefile import BACKEND_NAMES, STATE_DIR, Warehouse

__all__ = ["BACKEND_NAMES", "Backend", "BuildRequest", "BuildResult", "TableRows", "open_backend"]


def open_backend(warehouse: Warehouse, root: Path) -> Backend:
    """Connect to ``warehouse.backend`` as configured; relative paths are from ``root``."""
    if warehouse.backend == "duckdb":
        from tablemake.backends.duckdb import DuckDBBackend

        return DuckDBBackend(root / warehouse.duckdb_path)
    if warehouse.backend == "simulate":
        from tablemake.backends.simulate import SimulateBackend

        return SimulateBackend(root / STATE_DIR / "simulate-sources.json", warehouse.simulate)
    if warehouse.backend == "bigquery":
        from tablemake.backends.bigquery import BigQueryBackend

        return BigQueryBackend(warehouse.bigquery, root)
    raise ValueError(f"unknown backend {warehouse.backend!r}")  # validated when loading
