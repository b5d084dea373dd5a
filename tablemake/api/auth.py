"""Bearer-token check for every request that can change something (all but GET and HEAD).

It runs before routing, so an unknown path or a wrong method is refused the same way: an
unauthenticated client learns nothing about what exists.
"""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from tablemake.api.errors import error_response

_READ_ONLY = {"GET", "HEAD"}


class BearerAuth:
    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _READ_ONLY or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        response = error_response(
            401,
            "unauthorized",
            "this server needs `Authorization: Bearer <token>` on every request but GET.",
            headers={"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        scheme, _, given = Headers(scope=scope).get("authorization", "").partition(" ")
        # compare_digest takes as long whatever the mismatch: no guessing byte by byte.
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self._expected
        )
