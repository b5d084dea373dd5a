"""The HTTP API as an ASGI app: parse a request, make the same core call as the CLI, answer.

``create_app`` takes an open ``Session``: whoever serves the app holds the project lock and
the one warehouse connection for the app's whole life (``server.serve`` does), so a CLI run
meanwhile fails fast naming the server's pid. Blocking work runs on worker threads, never on
the event loop. No staleness, build or storage logic lives here.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException
from starlette.routing import Route

from tablemake import __version__
from tablemake.api import models
from tablemake.api.auth import BearerAuth
from tablemake.api.builds import BuildSlot, build
from tablemake.api.errors import ApiError, install_error_handlers
from tablemake.api.tables import append, read_rows, row_from_request
from tablemake.draw import render_graph
from tablemake.history import observe_states
from tablemake.plan import Action, TargetPlan
from tablemake.runner import BuildOptions, make_plan
from tablemake.state import BuildRecord, RunRecord
from tablemake.timeline import render_run_report
from tablemake.workspace import Session


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": models.ErrorBody} for status in statuses}


_ROW_BODY = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


class _ProjectApp(FastAPI):
    """Its OpenAPI document lists this project's targets wherever a target name goes, so
    clients (and schemathesis) know the valid values; the core still checks them."""

    target_names: list[str]

    def openapi(self) -> dict[str, Any]:
        first = self.openapi_schema is None
        schema = super().openapi()
        if first and self.target_names:
            names = {"type": "string", "enum": self.target_names}
            for path, method, param, shape in [
                ("/run", "post", "target", {"type": "array", "items": names}),
                ("/targets/{name}", "get", "name", names),
            ]:
                for parameter in schema["paths"][path][method]["parameters"]:
                    if parameter["name"] == param:
                        parameter["schema"] = shape
        return schema


def create_app(session: Session, *, token: str | None = None) -> FastAPI:
    """The app for one open project; with ``token``, every request but GET and HEAD must
    carry ``Authorization: Bearer <token>``."""
    workspace = session.workspace
    app = _ProjectApp(
        title=f"tablemake: {workspace.tablefile.project.name}",
        version=__version__,
        description="Build stale warehouse tables and append rows to raw tables.",
        responses=_errors(400, 500),
    )
    app.target_names = workspace.graph.targets
    install_error_handlers(app, workspace.state_dir / "tablemake.log")
    if token:
        app.add_middleware(BearerAuth, token=token)
    slot = BuildSlot()
    _add_status_routes(app, session, slot)
    _add_run_routes(app, session, slot)
    _add_table_routes(app, session)
    return app


def _add_status_routes(app: FastAPI, session: Session, slot: BuildSlot) -> None:
    workspace = session.workspace

    @app.get("/health", response_model=models.Health)
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "project": workspace.tablefile.project.name,
            "backend": session.backend.name,
            "pid": os.getpid(),
            "running_run": slot.running,
        }

    @app.get("/graph", response_model=models.Graph)
    def graph() -> dict[str, Any]:
        deps = workspace.graph.deps
        kinds = {name: "source" if name in workspace.graph.sources else "target" for name in deps}
        return {
            "nodes": [{"name": name, "kind": kind} for name, kind in kinds.items()],
            "edges": [{"prerequisite": d, "target": t} for d, t in workspace.graph.edges()],
        }

    @app.get(
        "/graph.svg",
        response_class=Response,
        responses={200: {"content": {"image/svg+xml": {}}}},
    )
    def graph_svg() -> Response:
        """The dependency graph drawn as ``tablemake graph --format svg``, coloured by state."""
        picture = render_graph(
            workspace.graph,
            "svg",
            states=observe_states(session),
            title=workspace.tablefile.project.name,
        )
        return Response(picture, media_type="image/svg+xml")

    @app.get("/targets", response_model=list[models.TargetStatus])
    def targets() -> list[dict[str, Any]]:
        plan = make_plan(session, workspace.graph.targets)
        records = session.state.builds(session.backend.state_key)
        return [_target_status(session, t, records.get(t.name)) for t in plan.targets]

    @app.get("/targets/{name}", response_model=models.TargetDetail, responses=_errors(404))
    def target(name: str) -> dict[str, Any]:
        if name not in workspace.tablefile.targets:
            raise ApiError(
                404,
                "unknown-target",
                f"`{name}` is not a target of this project; the targets are: "
                f"{', '.join(workspace.graph.targets)}.",
            )
        plan = make_plan(session, [name])
        record = session.state.builds(session.backend.state_key).get(name)
        *upstream, this = plan.targets
        doc = _target_status(session, this, record)
        doc["stale_upstream"] = [t.name for t in upstream if t.action is Action.BUILD]
        return doc


def _target_status(
    session: Session, planned: TargetPlan, record: BuildRecord | None
) -> dict[str, Any]:
    target = session.workspace.tablefile.targets[planned.name]
    last: dict[str, object] | None = None
    if record is not None:
        last = {
            "run_id": record.run_id,
            "started": record.started,
            "finished": record.finished,
            "rows": record.rows,
        }
    return {
        "name": planned.name,
        "status": "stale" if planned.action is Action.BUILD else "fresh",
        "reasons": [str(r) for r in planned.reasons],
        "deps": list(target.deps),
        "sql": target.sql,
        "last_build": last,
    }


def _add_run_routes(app: FastAPI, session: Session, slot: BuildSlot) -> None:
    @app.post(
        "/run",
        response_model=models.RunReport,
        response_model_exclude_unset=True,  # the very document --json prints
        responses=_errors(401, 409),
    )
    def run(
        request: Request,
        *,
        target: Annotated[list[str] | None, Query(description="repeatable")] = None,
        jobs: Annotated[int | None, Query(ge=1, le=256)] = None,
        always: bool = False,
        keep_going: bool = False,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Build what is stale, in this worker thread; answers when the build is over."""
        query = f"?{request.url.query}" if request.url.query else ""
        options = BuildOptions(
            targets=tuple(target or ()),
            jobs=jobs,
            dry_run=dry_run,
            always=always,
            keep_going=keep_going,
            trigger="api",
            command=f"POST {request.url.path}{query}",
        )
        return build(session, slot, options)

    @app.get("/runs", response_model=list[models.Run])
    def runs(limit: Annotated[int, Query(ge=1, le=1000)] = 20) -> list[dict[str, Any]]:
        return [vars(r) for r in session.state.runs(limit)]

    @app.get("/runs/{run_id}", response_model=models.RunDetail, responses=_errors(404))
    def run_detail(run_id: str) -> dict[str, Any]:
        record = _recorded_run(session, run_id)
        targets = [vars(t) for t in session.state.run_targets(record.id)]
        return {**vars(record), "targets": targets}

    @app.get(
        "/runs/{run_id}/report",
        response_model=None,
        responses={**_errors(404), 200: {"content": {"text/html": {"schema": {"type": "string"}}}}},
    )
    def run_report(run_id: str) -> HTMLResponse:
        """The self-contained HTML report of a run, as ``tablemake report`` writes it."""
        record = _recorded_run(session, run_id)
        targets = session.state.run_targets(record.id)
        return HTMLResponse(render_run_report(record, targets, session.workspace.graph))


def _recorded_run(session: Session, run_id: str) -> RunRecord:
    record = session.state.run(run_id)
    if record is None:
        raise ApiError(404, "unknown-run", f"no run `{run_id}` is recorded on this project.")
    return record


def _add_table_routes(app: FastAPI, session: Session) -> None:
    @app.get("/{table_name}", response_model=models.TableRows, responses=_errors(404, 405))
    def rows(
        request: Request,
        table_name: str,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 100,
    ) -> dict[str, Any]:
        """A raw table's rows (``raw.products`` or just ``products``)."""
        _refuse_fixed_paths(request, table_name)
        return read_rows(session, table_name, limit)

    @app.post(
        "/{table_name}",
        status_code=201,
        response_model=models.AppendedRow,
        responses=_errors(401, 404, 405),
        openapi_extra=_ROW_BODY,
    )
    async def append_row(request: Request, table_name: str) -> dict[str, Any]:
        """Append one row, given as ``?column=value&…`` or as a JSON object body."""
        _refuse_fixed_paths(request, table_name)
        given = row_from_request(request.query_params, await request.body())
        return await run_in_threadpool(append, session, table_name, given)


def _refuse_fixed_paths(request: Request, segment: str) -> None:
    """``/run``, ``/health``… are endpoints, not tables: any other method on them is a 405
    (a source named like one is still reachable as ``dataset.table``)."""
    if any(isinstance(r, Route) and r.path == f"/{segment}" for r in request.app.routes):
        raise HTTPException(405)
