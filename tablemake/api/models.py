"""The shapes of the API's answers, for the OpenAPI document and for checking them.

Routes build plain dicts from the core's records (``RunReport.as_json()`` and friends);
these models only describe those dicts, so the HTTP answer and ``--json`` cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    code: str
    message: str
    run_id: str | None = None  # only with code "build-running": the run holding the slot


class ErrorBody(BaseModel):
    error: ErrorDetail


class TargetResult(BaseModel):
    name: str
    status: Literal["built", "up-to-date", "would-build", "failed", "skipped"]
    reasons: list[str]
    seconds: float | None
    rows: int | None = None
    error: str | None = None
    estimated_bytes: int | None = None
    attempts: int | None = None  # tries of a target that ran, retries included


class RunReport(BaseModel):
    ok: bool
    run_id: str | None
    backend: str
    interrupted: bool
    seconds: float
    targets: list[TargetResult]


class LastBuild(BaseModel):
    run_id: str
    started: float
    finished: float
    rows: int | None


class TargetStatus(BaseModel):
    name: str
    status: Literal["fresh", "stale"]
    reasons: list[str]
    deps: list[str]
    sql: str
    last_build: LastBuild | None


class TargetDetail(TargetStatus):
    stale_upstream: list[str]


class Node(BaseModel):
    name: str
    kind: Literal["source", "target"]


class Edge(BaseModel):
    prerequisite: str
    target: str


class Graph(BaseModel):
    nodes: list[Node]
    edges: list[Edge]


class Health(BaseModel):
    status: Literal["ok"]
    project: str
    backend: str
    pid: int
    running_run: str | None


class Run(BaseModel):
    id: str
    warehouse: str
    started: float
    finished: float | None
    status: str
    trigger: str
    command: str


class RunTarget(BaseModel):
    target: str
    status: str
    started: float | None
    finished: float | None
    rows: int | None
    error: str | None
    sql: str | None


class RunDetail(Run):
    targets: list[RunTarget]


class TableRows(BaseModel):
    table: str
    columns: list[str]
    rows: list[dict[str, Any]]


class AppendedRow(BaseModel):
    table: str
    row: dict[str, Any]
