"""Google BigQuery through google-cloud-bigquery: each build is one DDL query job.

``CREATE OR REPLACE TABLE … AS`` is atomic in BigQuery (a failed job leaves the previous
table) and idempotent, so retrying it after an ambiguous failure is safe. Transient failures
are retried here with a bounded exponential backoff; every other Google error becomes a
``WarehouseError`` (a failed statement) or a ``UserError`` (credentials, configuration).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import google.auth
import requests.exceptions
from google.api_core import exceptions as api_exceptions
from google.api_core.retry import Retry
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import bigquery
from google.oauth2 import service_account
from sqlglot import exp

from tablemake import sql
from tablemake.backends.base import BuildRequest, BuildResult, TableRows, check_row_columns
from tablemake.errors import UserError, WarehouseError
from tablemake.tablefile import BigQuerySettings

T = TypeVar("T")

# BigQuery's documented "retry this" error reasons, for API calls and for finished jobs.
TRANSIENT_REASONS = frozenset(
    {
        *("rateLimitExceeded", "backendError", "internalError", "badGateway"),
        *("jobRateLimitExceeded", "jobBackendError", "jobInternalError"),
    }
)
_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    ConnectionError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    auth_exceptions.TransportError,
    api_exceptions.ServerError,  # every 5xx: InternalServerError, BadGateway, ServiceUnavailable…
    api_exceptions.TooManyRequests,
)
_UNREACHABLE: tuple[type[BaseException], ...] = (
    *_TRANSIENT_TYPES,
    requests.exceptions.RequestException,
)
_NO_PROJECT = (
    "no BigQuery project given: pass --bq-project PROJECT, set TABLEMAKE_BQ_PROJECT, or set "
    "`project` under [warehouse.bigquery] in Tablefile.toml."
)
_NO_CREDENTIALS = (
    "found no Google credentials for BigQuery: pass --bq-key FILE (or TABLEMAKE_BQ_KEY, or "
    "`key_file` under [warehouse.bigquery]) with a service-account JSON key, or set up "
    "Application Default Credentials (`gcloud auth application-default login`)."
)
# Our own loop does the retrying: the library's defaults would retry for up to 10 minutes
# and restart jobs behind our back, so every call gets a policy that never retries.
_NO_RETRY = Retry(predicate=lambda _exc: False)
_LOOKUP_THREADS = 8  # metadata calls are tiny and latency-bound: overlap them


class BigQueryBackend:
    can_estimate = True
    name = "bigquery"

    def __init__(
        self, settings: BigQuerySettings, root: Path, *, attempts: int = 5, backoff: float = 1.0
    ) -> None:
        """``attempts`` bounds the tries of each call (the first included); the wait before
        retry n is ``backoff * 2**(n-1)`` seconds, jittered so parallel jobs spread out."""
        if not settings.project:
            raise UserError(_NO_PROJECT)
        if settings.endpoint and not re.fullmatch(r"https?://[^/\s]+/?", settings.endpoint):
            raise UserError(
                f"the BigQuery endpoint must be an http(s) URL of a server, such as "
                f"http://127.0.0.1:9050, not {settings.endpoint!r}."
            )
        self.settings = settings
        self.project = settings.project
        self._attempts = attempts
        self._backoff = backoff
        # One client for all worker threads: google-cloud-bigquery documents Client as safe to
        # share across threads (it holds no per-request state beyond a requests session).
        self._client = bigquery.Client(
            project=settings.project,
            credentials=_credentials(settings, root),
            location=settings.location,
            client_options={"api_endpoint": settings.endpoint} if settings.endpoint else None,
        )

    @property
    def state_key(self) -> str:
        return f"bigquery:{self.project}"

    def ensure_datasets(self, datasets: Collection[str]) -> None:
        for dataset in sorted(datasets):
            self._ensure_dataset(dataset)

    def _ensure_dataset(self, name: str) -> None:
        # Look before creating: writing into an existing dataset needs fewer permissions
        # than creating one, and exists_ok covers a concurrent creator.
        dataset = bigquery.Dataset(f"{self.project}.{name}")
        if self.settings.location:
            dataset.location = self.settings.location
        with self._translated():
            try:
                self._retrying(lambda: self._client.get_dataset(dataset.reference, retry=_NO_RETRY))
            except api_exceptions.NotFound:
                self._retrying(
                    lambda: self._client.create_dataset(dataset, exists_ok=True, retry=_NO_RETRY)
                )

    def existing_tables(self, names: Collection[str]) -> set[str]:
        found: set[str] = set()
        for dataset in sorted({name.split(".", 1)[0] for name in names}):
            found |= {f"{dataset}.{table}" for table in self._list_tables(dataset)}
        return found & set(names)

    def _list_tables(self, dataset: str) -> set[str]:
        def listing() -> set[str]:
            return {t.table_id for t in self._client.list_tables(dataset, retry=_NO_RETRY)}

        with self._translated():
            try:
                return self._retrying(listing)
            except api_exceptions.NotFound:
                return set()  # a missing dataset holds no tables

    def source_versions(self, names: Collection[str]) -> dict[str, str | None]:
        """Metadata mode digests what ``tables.get`` says (free); content mode digests a row
        count and an order-independent row hash (one query, scans every source)."""
        with ThreadPoolExecutor(_LOOKUP_THREADS) as pool:
            tables = dict(zip(names, pool.map(self._get_table, names), strict=True))
        present = {name: table for name, table in tables.items() if table is not None}
        if self.settings.change_detection == "content":
            contents = self._content_digests(sorted(present))
            versions = {name: [_schema(t), contents[name]] for name, t in present.items()}
        else:
            versions = {name: _metadata(t) for name, t in present.items()}
        return {name: _digest(versions[name]) if name in versions else None for name in names}

    def _get_table(self, name: str) -> bigquery.Table | None:
        with self._translated():
            try:
                return self._retrying(lambda: self._client.get_table(name, retry=_NO_RETRY))
            except api_exceptions.NotFound:
                return None

    def _content_digests(self, names: list[str]) -> dict[str, list[Any]]:
        if not names:
            return {}
        statement = " UNION ALL ".join(
            f"SELECT {i} AS i, COUNT(*) AS n, BIT_XOR(FARM_FINGERPRINT(TO_JSON_STRING(t))) AS x "
            f"FROM {sql.quote_table(name, 'bigquery')} AS t"
            for i, name in enumerate(names)
        )
        rows = self._query(statement, _labels(run="plan"))
        return {names[row["i"]]: [row["n"], row["x"]] for row in rows}

    def build_table(self, request: BuildRequest) -> BuildResult:
        statement = _build_statement(request)
        self._query(statement, _labels(target=request.target, run=request.run_id))
        table = self._get_table(request.target)  # DDL jobs report no row count; tables.get does
        return BuildResult(rows=table.num_rows if table else None, sql=statement)

    def estimate_bytes(self, request: BuildRequest) -> int | None:
        """What a dry run of the build statement says it would scan. A dry run checks the
        query against today's upstream tables, which the build replaces first; so when it is
        rejected (a new column, an upstream not built yet) the estimate is unknown, not an
        error: the build itself will report a real problem."""
        statement = _build_statement(request)
        config = bigquery.QueryJobConfig(dry_run=True, use_query_cache=False)
        with self._translated():
            try:
                job = self._retrying(
                    lambda: self._client.query(
                        statement, job_config=config, retry=_NO_RETRY, job_retry=None
                    )
                )
            except (api_exceptions.BadRequest, api_exceptions.NotFound):
                return None
        bytes_processed = job.total_bytes_processed
        return None if bytes_processed is None else int(bytes_processed)

    def run_init_script(self, create: exp.Create, script_path: str) -> None:
        statement = sql.name_struct_fields(create).sql("bigquery")
        try:
            self._query(statement, _labels(target=sql.created_table(create), run="init-db"))
        except WarehouseError as exc:
            raise WarehouseError(f"{script_path}: {exc}") from None

    def read_table(self, name: str, limit: int) -> TableRows:
        """Rows as the client decodes them: RECORD -> dict, REPEATED -> list, NUMERIC ->
        Decimal, DATE/TIMESTAMP -> date/datetime: the same Python types DuckDB returns."""

        def fetch() -> TableRows:
            table = self._client.get_table(name, retry=_NO_RETRY)
            rows = self._client.list_rows(table, max_results=limit, retry=_NO_RETRY)
            return TableRows([f.name for f in table.schema], [tuple(r.values()) for r in rows])

        with self._translated():
            return self._retrying(fetch)

    def table_columns(self, name: str) -> list[tuple[str, str]]:
        table = self._get_table(name)
        return [] if table is None else [(f.name, _googlesql_type(f)) for f in table.schema]

    def append_row(self, name: str, row: Mapping[str, object]) -> dict[str, object]:
        """A streaming insert (``tabledata.insertAll``), not DML: no SQL is written, its
        insertId makes a retried insert count once, and the row shows in the table's streaming
        buffer, which metadata change detection reads (DML would be invisible there on the
        emulator). Returned as the columns given, NULL for the rest."""
        table = self._get_table(name)
        if table is None:
            raise WarehouseError(f"table {name} does not exist in BigQuery project {self.project}")
        columns = [(f.name, _googlesql_type(f)) for f in table.schema]
        check_row_columns(name, row, columns)
        row_id = uuid.uuid4().hex
        with self._translated():
            errors = self._retrying(
                lambda: self._client.insert_rows(
                    table, [dict(row)], row_ids=[row_id], retry=_NO_RETRY
                )
            )
        if errors:
            raise WarehouseError(_first_message(errors[0].get("errors"), "the row was rejected"))
        return {column: row.get(column) for column, _ in columns}

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]

    def _query(self, statement: str, labels: dict[str, str]) -> list[bigquery.Row]:
        """Run one query job to completion and return its rows (none for DDL).

        A failed *poll* waits on the same job again; a job that *finished* with an error gets
        a new job id (BigQuery jobs cannot be restarted). If an insert fails ambiguously the
        statement may run twice, which is harmless for CREATE OR REPLACE and SELECT.
        """
        config = bigquery.QueryJobConfig(labels=labels)
        jobs: list[bigquery.QueryJob] = []

        def attempt() -> list[bigquery.Row]:
            if not jobs or jobs[-1].error_result is not None:
                jobs.append(
                    self._client.query(
                        statement,
                        job_config=config,
                        job_id_prefix="tablemake_",
                        retry=_NO_RETRY,
                        job_retry=None,
                    )
                )
            return list(jobs[-1].result(retry=_NO_RETRY, job_retry=None))

        with self._translated():
            return self._retrying(attempt)

    def _retrying(self, call: Callable[[], T]) -> T:
        for attempt in range(1, self._attempts):
            try:
                return call()
            except Exception as exc:  # narrowed by is_transient; the rest re-raised as is
                if not is_transient(exc):
                    raise
            time.sleep(self._backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.0))
        return call()  # the last attempt: its error is the one reported

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Google's exceptions end here: the core sees only tablemake's own."""
        try:
            yield
        except (auth_exceptions.RefreshError, api_exceptions.Unauthorized) as exc:
            raise UserError(f"BigQuery rejected the credentials: {_server_message(exc)}") from None
        except api_exceptions.GoogleAPICallError as exc:
            retried = f" (gave up after {self._attempts} attempts)" if is_transient(exc) else ""
            raise WarehouseError(_server_message(exc) + retried) from None
        except _UNREACHABLE as exc:
            where = self.settings.endpoint or "the BigQuery API"
            tries = f" after {self._attempts} attempts" if is_transient(exc) else ""
            raise WarehouseError(f"cannot reach {where}{tries}: {exc}") from None


def is_transient(exc: BaseException) -> bool:
    """Whether trying again may succeed: a 5xx, 429 or connection failure, or an error whose
    BigQuery reason says so (BigQuery reports some rate limits as 403 rateLimitExceeded)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return False  # a ConnectionError to requests, but a setup problem to us
    errors = getattr(exc, "errors", None) or ()
    reasons = {e.get("reason") for e in errors if isinstance(e, dict)}
    return bool(reasons & TRANSIENT_REASONS) or isinstance(exc, _TRANSIENT_TYPES)


def _build_statement(request: BuildRequest) -> str:
    """The one DDL statement a build sends, with STRUCT field names made explicit (BigQuery
    infers them; emulators may not, and the explicit form means the same)."""
    query = sql.name_struct_fields(request.query).sql("bigquery")
    return f"CREATE OR REPLACE TABLE {sql.quote_table(request.target, 'bigquery')} AS {query}"


def _credentials(settings: BigQuerySettings, root: Path) -> Credentials:
    """A key file, else Application Default Credentials, else anonymous for an endpoint
    (an emulator): resolved here so a missing or broken one is a clear UserError."""
    if settings.key_file:
        path = root / settings.key_file
        try:
            credentials: Credentials = service_account.Credentials.from_service_account_file(
                str(path)
            )  # type: ignore[no-untyped-call]
        except OSError as exc:
            raise UserError(
                f"cannot read the BigQuery key file: {exc.strerror}.", str(path)
            ) from None
        except (ValueError, auth_exceptions.GoogleAuthError) as exc:
            raise UserError(
                f"the BigQuery key file is not a service-account JSON key: {exc}.", str(path)
            ) from None
        return credentials
    try:
        with _quiet("google.auth._default"):  # it logs each place it looked; we explain below
            credentials, _ = google.auth.default()
    except auth_exceptions.DefaultCredentialsError:
        if settings.endpoint:
            return AnonymousCredentials()  # type: ignore[no-untyped-call]
        raise UserError(_NO_CREDENTIALS) from None
    return credentials


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _labels(*, run: str, target: str | None = None) -> dict[str, str]:
    """Job labels, so a project's job history and bill can be filtered by target and run."""
    labels = {"tablemake-run": run}
    if target is not None:
        labels["tablemake-target"] = target
    return {key: _label_value(value) for key, value in labels.items()}


def _label_value(value: str) -> str:
    """BigQuery label values: at most 63 lowercase letters, digits, ``_`` and ``-``."""
    return re.sub(r"[^a-z0-9_-]", "-", value.lower())[:63]


_GOOGLESQL = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "RECORD": "STRUCT"}


def _googlesql_type(field: bigquery.SchemaField) -> str:
    """The column's type as GoogleSQL writes it (the API still answers in legacy names)."""
    kind = _GOOGLESQL.get(field.field_type or "", field.field_type or "")
    if kind == "STRUCT":
        kind = f"STRUCT<{', '.join(f'{f.name} {_googlesql_type(f)}' for f in field.fields)}>"
    return f"ARRAY<{kind}>" if field.mode == "REPEATED" else kind


def _schema(table: bigquery.Table) -> list[Any]:
    return [field.to_api_repr() for field in table.schema]


def _metadata(table: bigquery.Table) -> list[Any]:
    buffer = table.streaming_buffer
    return [
        table.modified.isoformat() if table.modified else None,
        table.num_rows,
        table.etag,
        [buffer.estimated_rows, str(buffer.oldest_entry_time)] if buffer else None,
        _schema(table),
    ]


def _digest(parts: list[Any]) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return "bq:" + hashlib.sha256(text.encode()).hexdigest()[:24]


def _server_message(exc: Exception) -> str:
    """The server's own words: the first error's message, plus the job id when a job ran and
    failed (to find it in the console), without the client's "reason:… Location:…" tail."""
    fallback = getattr(exc, "message", None) or str(exc)
    message = _first_message(getattr(exc, "errors", None), str(fallback))
    job = getattr(exc, "query_job", None)
    if job is not None and job.error_result is not None:  # the job ran, and failed
        return f"{message} (job {job.job_id})"
    return message


def _first_message(errors: Any, fallback: str) -> str:
    """The first ``message`` of a BigQuery ``errors`` list (API, job or insertAll errors)."""
    for error in errors or ():
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return fallback
