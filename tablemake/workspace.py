"""A project opened for work: its Tablefile, graph and chosen warehouse, and the
``session`` that holds the project lock, the state store and a backend connection.

Every client (CLI, API, DSL) opens projects through here, so they share one locking and
configuration story.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from tablemake.backends import BACKEND_NAMES, Backend, open_backend
from tablemake.dsl import compile_workflow
from tablemake.errors import UserError
from tablemake.faults import faults_from_env, with_faults
from tablemake.graph import TargetGraph, build_graph
from tablemake.state import StateStore, project_lock
from tablemake.tablefile import (
    DEFAULT_FILENAME,
    STATE_DIR,
    BigQuerySettings,
    Tablefile,
    Warehouse,
)
from tablemake.tablefile_cache import load_tablefile_cached


@dataclass(frozen=True)
class Workspace:
    tablefile: Tablefile
    graph: TargetGraph
    warehouse: Warehouse  # the Tablefile's, with command-line and environment overrides

    @property
    def backend_name(self) -> str:
        return self.warehouse.backend

    @property
    def state_dir(self) -> Path:
        return self.tablefile.root / STATE_DIR

    def default_targets(self) -> list[str]:
        return list(self.tablefile.project.default or self.graph.targets)


@dataclass(frozen=True)
class Session:
    workspace: Workspace
    state: StateStore
    backend: Backend


def open_workspace(
    directory: Path,
    tablefile: str | None = None,
    backend: str | None = None,
    bigquery: BigQuerySettings | None = None,
) -> Workspace:
    """Load the project. Each warehouse setting comes from the argument when given, else
    its ``TABLEMAKE_*`` environment variable, else the Tablefile's ``[warehouse]``."""
    loaded = compile_workflow(
        load_tablefile_cached(directory / (tablefile or DEFAULT_FILENAME))
    ).tablefile
    name = backend or os.environ.get("TABLEMAKE_BACKEND") or loaded.warehouse.backend
    if name not in BACKEND_NAMES:
        raise UserError(
            f"unknown backend `{name}`; choose one of {', '.join(BACKEND_NAMES)}.",
            "TABLEMAKE_BACKEND",
        )
    given = bigquery or BigQuerySettings()
    configured = loaded.warehouse.bigquery

    def setting(key: str, env: str) -> str | None:
        value: str | None = getattr(given, key) or os.environ.get(f"TABLEMAKE_BQ_{env}")
        return value or getattr(configured, key)

    settings = replace(
        configured,
        project=setting("project", "PROJECT"),
        location=setting("location", "LOCATION"),
        key_file=setting("key_file", "KEY"),
        endpoint=setting("endpoint", "ENDPOINT"),
    )
    warehouse = replace(loaded.warehouse, backend=name, bigquery=settings)
    return Workspace(loaded, build_graph(loaded), warehouse)


@contextmanager
def open_session(
    workspace: Workspace, *, wait: float = 0.0, on_wait: Callable[[str], None] | None = None
) -> Iterator[Session]:
    """Lock the project (waiting up to ``wait`` seconds for another holder to finish, and
    telling ``on_wait`` who it is), then open the state store and the warehouse."""
    faults = faults_from_env()
    lock = project_lock(workspace.state_dir, wait=wait, on_wait=on_wait)
    with lock, StateStore(workspace.state_dir) as state:
        state.close_abandoned_runs()  # we hold the lock: a run still "running" is dead
        backend = open_backend(workspace.warehouse, workspace.tablefile.root)
        if faults is not None:
            backend = with_faults(backend, faults)
        try:
            yield Session(workspace, state, backend)
        finally:
            backend.close()
