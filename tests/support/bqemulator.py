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
import http.client
import http.server
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    # fmt: off
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
    # fmt: on
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
        # The emulator runs every request on one shared DuckDB connection, so two requests at
        # once can read each other's results (seen: a tabledata read getting no result set,
        # rows with another query's columns). Real BigQuery has no such limit, so clients
        # stay concurrent and only the hop into the emulator is taken one at a time.
        with RecordingProxy(endpoint, serialize=True, record=False) as gateway:
            yield Emulator(endpoint=gateway.url, project=project, pid=proc.pid, log_path=log_path)
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


# -- a recording, fault-injecting proxy in front of the emulator -----------------------------


@dataclasses.dataclass(frozen=True)
class Exchange:
    """One request the proxy saw, with what it answered and when (time.monotonic)."""

    method: str
    path: str
    request: Any  # the JSON body, or None
    status: int
    response: Any  # the JSON body, or None
    started: float
    finished: float

    @property
    def is_job_insert(self) -> bool:
        return _is_job_insert(self.method, self.path)

    @property
    def target_label(self) -> str | None:
        return _target_label(self.request)


@dataclasses.dataclass
class Fault:
    """Make the next ``times`` matching requests fail with a BigQuery-style error.

    ``at`` says where: ``"insert"`` answers a job insert with ``status`` (the job never
    exists); ``"job"`` forwards the insert, then reports the job finished with the error (it
    ran and failed, as BigQuery's backendError jobs do); ``"poll"`` answers a wait for query
    results with ``status`` (the job itself is fine). ``target_label`` limits insert and job
    faults to one target's jobs.
    """

    status: int
    reason: str
    message: str
    times: int
    at: str = "insert"
    target_label: str | None = None

    def error_body(self) -> dict[str, Any]:
        error = {"reason": self.reason, "message": self.message}
        return {"error": {"code": self.status, "message": self.message, "errors": [error]}}


class RecordingProxy:
    """An HTTP proxy on 127.0.0.1 that forwards to the emulator, records every exchange, and
    can fail or slow down job inserts: real transport faults for the client under test.
    With ``serialize`` it forwards one request at a time (and ``record=False`` keeps no
    exchanges): the gateway that shields the emulator from concurrent requests."""

    def __init__(
        self,
        upstream: str,
        insert_delay: float = 0.0,
        *,
        serialize: bool = False,
        record: bool = True,
    ) -> None:
        self.upstream = urllib.parse.urlsplit(upstream)
        self.insert_delay = insert_delay
        self.record = record
        self._upstream_lock = threading.Lock() if serialize else contextlib.nullcontext()
        self.poll_delay = 0.0  # seconds to hold each wait for query results: a slow job
        # called with each job insert's JSON body as it arrives, before it is forwarded:
        # something the test does "while" that job is starting
        self.on_insert: Callable[[Any], None] | None = None
        self.faults: list[Fault] = []
        self._exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    def job_inserts(self, target_label: str | None = None) -> list[Exchange]:
        return [
            e
            for e in self.exchanges()
            if e.is_job_insert and (target_label is None or e.target_label == target_label)
        ]

    def peak_concurrent_inserts(self) -> int:
        """Most job inserts in flight at one moment (the emulator runs a query inside it)."""
        events = sorted(
            [(e.started, 1) for e in self.job_inserts()]
            + [(e.finished, -1) for e in self.job_inserts()]
        )
        peak = current = 0
        for _, step in events:
            current += step
            peak = max(peak, current)
        return peak

    def _take_fault(self, method: str, path: str, body: Any) -> Fault | None:
        if _is_job_insert(method, path):
            point = {"insert", "job"}
        elif method == "GET" and "/queries/" in path:
            point = {"poll"}
        else:
            return None
        label = _target_label(body)
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.at in point and fault.target_label in (None, label):
                    fault.times -= 1
                    return fault
        return None

    def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        try:
            with self._upstream_lock:
                conn.request(method, path, body=body or None, headers=headers)
                resp = conn.getresponse()
                return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def _handle(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        started = time.monotonic()
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        request = _json_or_none(raw)
        is_insert = _is_job_insert(handler.command, handler.path)
        fault = self._take_fault(handler.command, handler.path, request)
        headers = {"Content-Type": "application/json"}
        if fault is not None and fault.at != "job":
            status, payload = fault.status, json.dumps(fault.error_body()).encode()
        else:
            if is_insert and self.on_insert is not None:
                self.on_insert(request)
            if is_insert and self.insert_delay:
                time.sleep(self.insert_delay)
            if self.poll_delay and handler.command == "GET" and "/queries/" in handler.path:
                time.sleep(self.poll_delay)
            skip = {"host", "connection", "content-length", "accept-encoding"}
            forward = {k: v for k, v in handler.headers.items() if k.lower() not in skip}
            status, headers, payload = self._forward(handler.command, handler.path, forward, raw)
            if fault is not None:
                payload = _as_failed_job(payload, fault)
        # recorded before answering: the client may act on the answer at once (and a test
        # assert on the exchanges), so recording after would race with it
        if self.record:
            exchange = Exchange(
                handler.command,
                handler.path,
                request,
                status,
                _json_or_none(payload),
                started,
                time.monotonic(),
            )
            with self._lock:
                self._exchanges.append(exchange)
        handler.send_response(status)
        drop = {"transfer-encoding", "connection", "content-length", "content-encoding"}
        for key, value in headers.items():
            if key.lower() not in drop:
                handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy._handle(self)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the exchanges are recorded instead."""

        return Handler

    def __enter__(self) -> RecordingProxy:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _is_job_insert(method: str, path: str) -> bool:
    return method == "POST" and path.split("?", maxsplit=1)[0].endswith("/jobs")


def _target_label(body: Any) -> str | None:
    labels = (body or {}).get("configuration", {}).get("labels", {})
    return labels.get("tablemake-target") if isinstance(labels, dict) else None


def _as_failed_job(payload: bytes, fault: Fault) -> bytes:
    job = json.loads(payload)
    error = fault.error_body()["error"]["errors"][0]
    job["status"] = {"state": "DONE", "errorResult": error, "errors": [error]}
    return json.dumps(job).encode()
