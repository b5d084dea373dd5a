"""A throwaway PostgreSQL server for tests: real server binaries, a temporary data
directory, a free port on 127.0.0.1, trust authentication, stopped when done.

Why: extraction must be tested against the database it reads in production, not a mock.
The server binaries come from Debian (``postgresql``); when ``initdb``/``pg_ctl`` are
missing they are installed here with apt-get, as ``chromium.py`` does for Chromium, so a
fresh machine or CI needs no manual step. PostgreSQL refuses to run as root, so as root
the server runs as the unprivileged ``postgres`` user (created by the Debian package), or
``nobody`` when that user is missing. Like the other helpers, this module does not import
pytest and works from plain scripts.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from tests.support.apt import AptUnavailable, apt_install

PACKAGES = ("postgresql",)
_install_lock = threading.Lock()


class PostgresUnavailable(RuntimeError):
    """The server binaries are missing and could not be installed, or the server failed."""


@dataclass
class PostgresServer:
    """A running server; ``url(database)`` is a libpq URL for the ``postgres`` superuser
    role created by ``initdb -U postgres``."""

    bindir: Path
    datadir: Path
    port: int
    user: str | None  # the OS user the server runs as (None: the current user)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        """Stop at once (``immediate``): tests need no clean checkpoint."""
        _run_as(
            self.user,
            [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop"],
            timeout=60,
            check=False,
        )

    def start(self) -> None:
        """(Re)start the server on its port; used after ``stop`` to resume a test."""
        log = self.datadir / "server.log"
        options = f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=off"
        _run_as(
            self.user,
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(log),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            timeout=90,
        )


def start_postgres() -> PostgresServer:
    """Install (if needed), initialise and start a server in a fresh temporary directory."""
    bindir = ensure_postgres()
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="tablemake-pg-"))
    datadir = root / "data"
    datadir.mkdir()
    if user is not None:
        info = pwd.getpwnam(user)
        os.chown(root, info.pw_uid, info.pw_gid)
        os.chown(datadir, info.pw_uid, info.pw_gid)
    _run_as(
        user,
        [
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ],
        timeout=120,
    )
    server = PostgresServer(bindir, datadir, _free_port(), user)
    server.start()
    return server


def remove(server: PostgresServer) -> None:
    """Stop the server and delete its directory."""
    server.stop()
    shutil.rmtree(server.datadir.parent, ignore_errors=True)


def ensure_postgres() -> Path:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``, installing first."""
    with _install_lock:
        found = _find_bindir()
        if found is not None:
            return found
        _apt_install()
        found = _find_bindir()
        if found is None:
            raise PostgresUnavailable(f"apt-get installed {PACKAGES} but initdb is missing")
        return found


def _find_bindir() -> Path | None:
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


def _apt_install() -> None:
    try:
        apt_install(PACKAGES, "the PostgreSQL server")
    except AptUnavailable as exc:
        raise PostgresUnavailable(str(exc)) from None


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise PostgresUnavailable("running as root and neither `postgres` nor `nobody` exists")


def _run_as(
    user: str | None, command: list[str], *, timeout: float, check: bool = True
) -> subprocess.CompletedProcess[str]:
    full = ["runuser", "-u", user, "--", *command] if user else command
    try:
        proc = subprocess.run(
            full, capture_output=True, text=True, timeout=timeout, check=False, cwd="/"
        )
    except subprocess.TimeoutExpired:
        raise PostgresUnavailable(f"{' '.join(command)} took over {timeout:.0f} s") from None
    if check and proc.returncode != 0:
        raise PostgresUnavailable(
            f"{' '.join(command)} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
        )
    return proc


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
