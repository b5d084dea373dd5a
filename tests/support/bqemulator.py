"""Run a local BigQuery REST emulator (PyPI ``bqemulator``) for tests.

Why: tablemake talks to BigQuery through google-cloud-bigquery; the
emulator lets the test suite exercise that real client path (REST jobs,
tables, datasets) offline. The emulator lives in its own virtualenv
(``.venv-bqemu/``), installed by ``scripts/setup-bqemulator``, so its pinned
DuckDB/sqlglot never clash with the project's own dependencies.

This module deliberately does not import pytest: a session fixture wraps
:func:`running_emulator`, and it can also be used from plain scripts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # keep google-cloud-bigquery optional at import time
    from google.cloud import bigquery

REPO_ROOT = Path(__file__).resolve().parents[2]
SETUP_SCRIPT = REPO_ROOT / "scripts" / "setup-bqemulator"
DEFAULT_PROJECT = "tablemake-test"
DEFAULT_STARTUP_TIMEOUT = 60.0
SETUP_TIMEOUT = 900.0


class EmulatorError(RuntimeError):
    """The emulator could not be installed or did not come up."""


@dataclasses.dataclass(frozen=True)
class Emulator:
    """Handle to a running emulator: what a client needs to reach it."""

    endpoint: str
    """Base REST URL, e.g. ``http://127.0.0.1:40123`` (use as ``api_endpoint``)."""
    project: str
    """Default project id the emulator was started with."""
    pid: int
    """Process id (also the process-group id) of the emulator."""
    log_path: Path
    """File that receives the emulator's stdout and stderr."""


def venv_dir() -> Path:
    """Where the emulator's virtualenv is; ``BQEMU_VENV`` overrides, as in the script."""
    return Path(os.environ.get("BQEMU_VENV") or REPO_ROOT / ".venv-bqemu")


def ensure_installed() -> Path:
    """Run the setup script (a fast no-op once done) and return the launcher.

    Always calling the script, rather than checking for files here, keeps one
    source of truth for "is it set up" (the script's stamp file).
    """
    try:
        proc = subprocess.run(
            ["bash", str(SETUP_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=SETUP_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise EmulatorError(f"{SETUP_SCRIPT} timed out after {SETUP_TIMEOUT:.0f}s") from exc
    if proc.returncode != 0:
        raise EmulatorError(
            f"{SETUP_SCRIPT} failed with exit code {proc.returncode}:\n"
            f"{_tail(proc.stdout + proc.stderr)}"
        )
    launcher = venv_dir() / "bin" / "bqemulator-offline"
    if not launcher.exists():
        raise EmulatorError(f"{SETUP_SCRIPT} succeeded but {launcher} is missing")
    return launcher


def free_port() -> int:
    """Ask the kernel for a free TCP port on 127.0.0.1.

    There is a small race between closing the probe socket and the emulator
    binding it; a start failure reports the log, and callers may retry.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(text: str, lines: int = 40) -> str:
    """Last ``lines`` lines of ``text``: enough to see why a start failed."""
    return "\n".join(text.splitlines()[-lines:])


def _read_tail(path: Path, lines: int = 40) -> str:
    """Tail of a log file, tolerant of a missing or undecodable file."""
    try:
        return _tail(path.read_text(errors="replace"), lines)
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"


def _rest_ready(endpoint: str, project: str) -> bool:
    """True once the REST API answers a real BigQuery route.

    A bare TCP connect is not enough: uvicorn may accept before the app's
    startup (DuckDB + extension load) is done. Any HTTP status means the
    app is serving; connection errors mean "not yet".
    """
    url = f"{endpoint}/bigquery/v2/projects/{project}/datasets"
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(200 <= resp.status < 500)
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def _kill_group(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Stop the emulator's whole process group: SIGTERM, then SIGKILL.

    The group (not just the pid) because the launcher is a shell ``exec`` and
    uvicorn may spawn helpers; nothing may outlive the test session.
    """
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def running_emulator(
    project: str = DEFAULT_PROJECT,
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
    log_dir: Path | None = None,
) -> Iterator[Emulator]:
    """Install if needed, start the emulator on free ports, yield, then kill it.

    The emulator is ephemeral (in-memory DuckDB), so every call starts from an
    empty warehouse. Its output goes to ``bqemulator.log`` in ``log_dir`` (a
    fresh temp dir by default, kept afterwards so failures can be inspected).
    Raises :class:`EmulatorError` with the log tail if it does not come up in
    ``startup_timeout`` seconds or exits early.
    """
    launcher = ensure_installed()
    log_root = log_dir if log_dir is not None else Path(tempfile.mkdtemp(prefix="bqemu-"))
    log_root.mkdir(parents=True, exist_ok=True)
    log_path = log_root / "bqemulator.log"
    rest_port, grpc_port = free_port(), free_port()
    while grpc_port == rest_port:
        grpc_port = free_port()
    cmd = [
        str(launcher),
        "start",
        "--rest-host", "127.0.0.1",
        "--rest-port", str(rest_port),
        "--grpc-host", "127.0.0.1",
        "--grpc-port", str(grpc_port),
        "--project", project,
        "--ephemeral",
        "--log-format", "json",
    ]
    endpoint = f"http://127.0.0.1:{rest_port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=log_root,  # bqemulator reads a .env in its cwd; keep the repo's out
            start_new_session=True,  # own process group, killed as a whole
        )
    try:
        deadline = time.monotonic() + startup_timeout
        while not _rest_ready(endpoint, project):
            if proc.poll() is not None:
                raise EmulatorError(
                    f"bqemulator exited with code {proc.returncode} during startup "
                    f"(log {log_path}):\n{_read_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise EmulatorError(
                    f"bqemulator did not answer on {endpoint} within {startup_timeout:.1f}s "
                    f"(log {log_path}):\n{_read_tail(log_path)}"
                )
            time.sleep(0.2)
        yield Emulator(endpoint=endpoint, project=project, pid=proc.pid, log_path=log_path)
    finally:
        _kill_group(proc)


def make_client(endpoint: str, project: str) -> bigquery.Client:
    """A google-cloud-bigquery Client aimed at the emulator, with no credentials.

    Anonymous credentials stop the client from looking for real Google
    credentials (which the test machines do not have).
    """
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(
        project=project,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=endpoint),
    )
