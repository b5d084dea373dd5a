"""``tablemake serve``: hold the project and serve the API until interrupted.

The project lock and the warehouse connection are taken before the port opens and kept
until the server has stopped (uvicorn lets in-flight requests, a running build included,
finish first), so the server is the project's only writer for its whole life.
"""

from __future__ import annotations

import copy
import ipaddress
import logging
import socket
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from uvicorn.config import LOGGING_CONFIG

from tablemake.api.app import create_app
from tablemake.errors import UserError
from tablemake.tablefile import BigQuerySettings
from tablemake.workspace import open_session, open_workspace

EXIT_OK, EXIT_USAGE = 0, 2
log = logging.getLogger("tablemake.api")


def serve(
    directory: Path,
    *,
    tablefile: str | None,
    backend: str | None,
    bigquery: BigQuerySettings | None,
    host: str,
    port: int,
    token: str | None,
) -> int:
    """Serve until Ctrl-C or SIGTERM. Exit codes: 0 stopped by either, 2 a usage or
    configuration error before serving (bad Tablefile, port taken, project locked)."""
    try:
        workspace = open_workspace(directory, tablefile, backend, bigquery)
        with listen(host, port) as sock, open_session(workspace) as session:
            if not token and not _is_loopback(host):
                log.warning("serving %s without a token: anyone who reaches it can build", host)
            make_server(create_app(session, token=token)).run(sockets=[sock])
    except UserError as exc:
        print(f"tablemake: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # uvicorn re-raises the stopping signal once it has shut down
        pass
    return EXIT_OK


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port, so a taken port is a one-line error, not uvicorn's exit."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}.") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}.") from None
    return sock


def make_server(app: FastAPI, *, log_level: str = "info") -> uvicorn.Server:
    """Uvicorn for a bound socket; the API's build progress is logged next to its own."""
    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config["loggers"]["tablemake"] = {"handlers": ["default"], "level": log_level.upper()}
    config = uvicorn.Config(
        app,
        log_level=log_level,
        log_config=log_config,
        ws="none",  # no websockets: nothing to import, nothing to deprecate
        lifespan="off",  # the session is opened by serve(), not by the app
    )
    return uvicorn.Server(config)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
