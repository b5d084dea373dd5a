"""Every error the API answers has the body ``{"error": {"code": str, "message": str}}``.

The handlers map the core's exception tree the way ``cli.main`` maps it to exit codes, and
the framework's own 404, 405 and 422 onto that body. Anything unexpected is a bug: a 500
with a generic message, its traceback appended to ``.state/tablemake.log``, never sent.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Route

from tablemake.errors import UserError, WarehouseError

_HTTP_CODES = {404: "not-found", 405: "method-not-allowed"}


class ApiError(Exception):
    """An answer other than success, decided by the API itself (unknown table, busy…)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        extra: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    extra: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, **(extra or {})}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def install_error_handlers(app: FastAPI, log: Path) -> None:
    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(
            exc.status, exc.code, exc.message, extra=exc.extra, headers=exc.headers
        )

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
            message = (
                f"{request.method} is not allowed on {request.url.path}; "
                f"allowed: {headers['Allow']}."
            )
        elif exc.status_code == 404:
            message = f"nothing at {request.url.path}; the endpoints are listed at /openapi.json."
        else:
            message = str(exc.detail)
        code = _HTTP_CODES.get(exc.status_code, "http-error")
        return error_response(exc.status_code, code, message, headers=headers)

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(
            f"{' '.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        return error_response(400, "invalid-request", f"invalid request: {problems}.")

    async def user_error(request: Request, exc: Exception) -> JSONResponse:
        return error_response(400, "user-error", str(exc))

    async def warehouse_error(request: Request, exc: Exception) -> JSONResponse:
        return error_response(502, "warehouse-error", f"the warehouse failed: {exc}")

    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        _log_traceback(log, f"{request.method} {request.url.path}", exc)
        return error_response(
            500,
            "internal-error",
            "internal error (a bug in tablemake); the traceback is in the server's "
            f".state/{log.name}.",
        )

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(UserError, user_error)
    app.add_exception_handler(WarehouseError, warehouse_error)
    app.add_exception_handler(Exception, internal_error)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at this path. Starlette names only the first route
    whose path matches, but ``/{table_name}`` has two (GET and POST); and a fixed path such
    as ``/run`` is never a table, though the template matches it too."""
    path = request.url.path
    routes = [r for r in request.app.routes if isinstance(r, Route) and r.path_regex.match(path)]
    fixed = [r for r in routes if not r.param_convertors]
    return sorted({method for route in fixed or routes for method in route.methods or ()})


def _log_traceback(log: Path, what: str, exc: BaseException) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"--- {time.ctime()} tablemake serve: {what}\n")
        fh.write("".join(traceback.format_exception(exc)))
