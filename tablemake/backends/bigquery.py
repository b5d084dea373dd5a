"""Google BigQuery through google-cloud-bigquery: each build is one DDL query job.

``CREATE OR REPLACE TABLE … AS`` is atomic in BigQuery (a failed job leaves the previous
table) and idempotent, so retrying it after an ambiguous failure is safe. Transient failures
are retried here with a bounded exponential backoff; every other Google error becomes a
``WarehouseError`` (a failed statement) or a ``UserError`` (credentials, configuration).
"""

from __future__ import annotations

import base64
import datetime
import decimal
import hashlib
import io
import json
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import google.auth
import requests.exceptions
from google.api_core import exceptions as api_exceptions
from google.api_core.retry import Retry
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import bigquery
from google.oauth2 import service_account

from tablemake import sql
from tablemake.backends.base import BuildRequest, BuildResult, TableRows, check_row_columns
from tablemake.errors import TransientWarehouseError, UserError, WarehouseError
from tablemake.python_targets import ColumnType, RowsToLoad
from tablemake.tablefile import BigQuerySettings

if TYPE_CHECKING:
    from sqlglot import exp

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
    holds_rows = True
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
        self._partition_lock = threading.Lock()
        self._partition_turns: dict[str, threading.Lock] = {}  # table -> one partition at once
        self._backoff = backoff
        # One client for all worker threads: google-cloud-bigquery documents Client as safe to
        # share across threads (it holds no per-request state beyond a requests session).
        self._client = bigquery.Client(
            project=settings.project,
            credentials=_credentials(settings, root),
            location=settings.location,
            client_options={"api_endpoint": settings.endpoint} if settings.endpoint else None,
        )
        self._running: dict[str, bigquery.QueryJob] = {}  # target -> its job, for interrupt

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
            f"SELECT {i} AS i, COUNT(*) AS n, BIT_XOR(FARM_FINGERPRINT(TO_JSON_STRING(t))) AS x, "
            # the sum keeps duplicated rows from cancelling out in the XOR
            f"SUM(CAST(FARM_FINGERPRINT(TO_JSON_STRING(t)) AS BIGNUMERIC)) AS s "
            f"FROM {sql.quote_table(name, 'bigquery')} AS t"
            for i, name in enumerate(names)
        )
        rows = self._query(statement, _labels(run="plan"))
        return {names[row["i"]]: [row["n"], row["x"], str(row["s"])] for row in rows}

    def snapshot_time(self, run_id: str) -> datetime.datetime | None:
        """The server's clock, not ours: a client clock ahead of it would ask for the future
        (an error), one behind it would read data older than the versions recorded."""
        if not self.settings.snapshot_reads:
            return None
        (row,) = self._query("SELECT CURRENT_TIMESTAMP() AS now", _labels(run=run_id))
        instant: datetime.datetime = row["now"]
        return instant

    def build_table(self, request: BuildRequest) -> BuildResult:
        if request.partition is not None:
            query = _source_query(request).sql("bigquery")
            return self._replace_partition(request, query, sql.parameter_names(request.query))
        statement = _build_statement(request)
        labels = _labels(target=request.target, run=request.run_id)
        self._query(statement, labels, _query_parameters(request), target=request.target)
        table = self._get_table(request.target)  # DDL jobs report no row count; tables.get does
        return BuildResult(rows=table.num_rows if table else None, sql=statement)

    def load_rows(self, request: BuildRequest, rows: Callable[[], RowsToLoad]) -> BuildResult:
        """One load job with WRITE_TRUNCATE and the inferred schema: atomic (a failed job
        leaves the previous rows) and idempotent, so it is retried like a query."""
        data = rows()
        if request.partition is not None:  # load aside, then replace the partition from there
            staging = f"{request.table}__partition_{uuid.uuid4().hex[:12]}"
            self.load_rows(replace(request, into=staging, partition=None), lambda: data)
            try:
                quoted = sql.quote_table(staging, "bigquery")
                return self._replace_partition(request, f"SELECT * FROM {quoted}", set())
            finally:
                self.drop_table(staging)
        config = bigquery.LoadJobConfig(
            schema=[_schema_field(name, kind) for name, kind in data.columns],
            source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            labels=_labels(target=request.target, run=request.run_id),
        )
        payload = "".join(
            json.dumps(
                {name: _json_value(v) for (name, _kind), v in zip(data.columns, row, strict=True)}
            )
            + "\n"
            for row in data.rows
        ).encode("utf-8")

        def attempt() -> None:
            # A resumable upload (no size given): the one every BigQuery endpoint accepts.
            job = self._client.load_table_from_file(
                io.BytesIO(payload),
                request.table,
                job_config=config,
                job_id_prefix="tablemake_load_",
            )
            job.result(retry=_NO_RETRY)

        with self._translated():
            self._retrying(attempt)
        schema = ", ".join(f"{name} {kind.googlesql()}" for name, kind in data.columns)
        return BuildResult(
            rows=len(data.rows),
            sql=f"-- load job: {len(data.rows)} rows from {request.script_path} into "
            f"{request.table} ({schema})",
        )

    def _replace_partition(self, request: BuildRequest, query: str, used: set[str]) -> BuildResult:
        """Create the table when missing (empty, with the query's columns), then one MERGE
        that deletes the partition's rows and inserts the new ones: a single DML statement,
        so atomic, with the values bound. One partition of a table at a time: concurrent
        DML on one table may abort."""
        assert request.partition is not None
        table = sql.quote_table(request.table, "bigquery")
        name = request.partition.name
        column = sql.quote_identifier(name, "bigquery")
        create = f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM ({query}) LIMIT 0"
        parameters = _query_parameters(request, used)
        labels = _labels(target=request.target, run=request.run_id)
        with self._partition_lock:
            turn = self._partition_turns.setdefault(request.table, threading.Lock())
        with turn:
            self._query(create, labels, parameters)
            columns = [
                sql.quote_identifier(c, "bigquery") for c, _ in self.table_columns(request.table)
            ]
            merge = (
                f"MERGE {table} AS t USING ({query}) AS s ON FALSE "
                f"WHEN NOT MATCHED BY SOURCE AND t.{column} = @{name} THEN DELETE "
                f"WHEN NOT MATCHED BY TARGET THEN INSERT ({', '.join(columns)}) "
                f"VALUES ({', '.join(f's.{c}' for c in columns)})"
            )
            partition = bigquery.ScalarQueryParameter(
                name, request.partition.type, request.partition.value
            )
            self._query(merge, labels, [*(p for p in parameters if p.name != name), partition])
        return BuildResult(rows=None, sql=f"{create};\n{merge}")

    def estimate_bytes(self, request: BuildRequest) -> int | None:
        """What a dry run of the build statement says it would scan. A dry run checks the
        query against today's upstream tables, which the build replaces first; so when it is
        rejected (a new column, an upstream not built yet) the estimate is unknown, not an
        error: the build itself will report a real problem."""
        statement = _build_statement(request)
        config = bigquery.QueryJobConfig(
            dry_run=True, use_query_cache=False, query_parameters=_query_parameters(request)
        )
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

    def load_file(self, name: str, path: Path) -> int:
        """One load job from the local file, replacing the table (WRITE_TRUNCATE is atomic:
        a failed job leaves the previous rows). Re-running it after an ambiguous failure
        gives the same table, so it is retried like a query. The schema is given, read from
        the file, so each column gets the type it was extracted as (a naive TIMESTAMP is a
        DATETIME, a DECIMAL a NUMERIC) rather than what inference would pick."""
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            schema=_parquet_schema(path),
            labels=_labels(target=name, run="load"),
        )

        def attempt() -> int:
            with path.open("rb") as fh:
                job = self._client.load_table_from_file(
                    fh, name, job_config=config, job_id_prefix="tablemake_load_"
                )
            job.result(retry=_NO_RETRY)
            return int(job.output_rows or 0)

        with self._translated():
            return self._retrying(attempt)

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

    def content_version(self, name: str) -> str | None:
        """Schema plus an order-independent row digest: one query that scans the table."""
        table = self._get_table(name)
        if table is None:
            return None
        return _digest([_schema(table), self._content_digests([name])[name]])

    def query_rows(self, query: exp.Query, limit: int) -> TableRows:
        rows = self._query(query.sql("bigquery"), _labels(run="audit"))
        columns = list(rows[0].keys()) if rows else []
        return TableRows(columns, [tuple(row) for row in rows[:limit]])

    def publish(self, staging: str, target: str) -> None:
        """A copy job with WRITE_TRUNCATE: atomic, and free (no bytes scanned)."""
        config = bigquery.CopyJobConfig(write_disposition="WRITE_TRUNCATE")

        def copy() -> None:
            job = self._client.copy_table(staging, target, job_config=config, retry=_NO_RETRY)
            job.result(retry=_NO_RETRY)

        with self._translated():
            self._retrying(copy)
        self.drop_table(staging)

    def drop_table(self, name: str) -> None:
        with self._translated():
            self._retrying(
                lambda: self._client.delete_table(name, not_found_ok=True, retry=_NO_RETRY)
            )

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]

    def _query(
        self,
        statement: str,
        labels: dict[str, str],
        parameters: list[bigquery.ScalarQueryParameter] | None = None,
        *,
        target: str | None = None,
    ) -> list[bigquery.Row]:
        """Run one query job to completion and return its rows (none for DDL). Parameters
        travel beside the statement, as BigQuery query parameters: values are never spliced.
        A ``target``'s current job is known to ``interrupt`` while it runs.

        A failed *poll* waits on the same job again; a job that *finished* with an error gets
        a new job id (BigQuery jobs cannot be restarted). If an insert fails ambiguously the
        statement may run twice, which is harmless for CREATE OR REPLACE and SELECT.
        """
        config = bigquery.QueryJobConfig(labels=labels, query_parameters=parameters or [])
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
                if target is not None:
                    self._running[target] = jobs[-1]
            return list(jobs[-1].result(retry=_NO_RETRY, job_retry=None))

        try:
            with self._translated():
                return self._retrying(attempt)
        finally:
            if target is not None:
                self._running.pop(target, None)

    def interrupt(self, target: str) -> None:
        """Cancel the target's running job (its timeout expired). BigQuery then fails the
        job and keeps the previous table; a job already done is left as it is."""
        job = self._running.get(target)
        if job is not None:
            with suppress(*_UNREACHABLE, api_exceptions.GoogleAPICallError):
                self._client.cancel_job(job.job_id, location=job.location, retry=_NO_RETRY)

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
            raise _error_for(exc)(_server_message(exc) + retried) from None
        except _UNREACHABLE as exc:
            where = self.settings.endpoint or "the BigQuery API"
            tries = f" after {self._attempts} attempts" if is_transient(exc) else ""
            raise _error_for(exc)(f"cannot reach {where}{tries}: {exc}") from None


def _error_for(exc: BaseException) -> type[WarehouseError]:
    """Transient once our own attempts ran out: the runner may still retry the whole target
    later, under the Tablefile's ``retries``."""
    return TransientWarehouseError if is_transient(exc) else WarehouseError


def is_transient(exc: BaseException) -> bool:
    """Whether trying again may succeed: a 5xx, 429 or connection failure, or an error whose
    BigQuery reason says so (BigQuery reports some rate limits as 403 rateLimitExceeded)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return False  # a ConnectionError to requests, but a setup problem to us
    errors = getattr(exc, "errors", None) or ()
    reasons = {e.get("reason") for e in errors if isinstance(e, dict)}
    return bool(reasons & TRANSIENT_REASONS) or isinstance(exc, _TRANSIENT_TYPES)


def _query_parameters(
    request: BuildRequest, used: set[str] | None = None
) -> list[bigquery.ScalarQueryParameter]:
    """The run's parameters the statement reads (``used``, else parsed), typed as declared."""
    if used is None:
        used = sql.parameter_names(request.query) if request.params else set()
    return [
        bigquery.ScalarQueryParameter(p.name, p.type, p.value)
        for p in request.params
        if p.name in used
    ]


def _schema_field(name: str, kind: ColumnType) -> bigquery.SchemaField:
    if kind.name == "ARRAY" and kind.item is not None:
        item = _schema_field(name, kind.item)
        return bigquery.SchemaField(name, item.field_type, "REPEATED", fields=item.fields)
    fields = [_schema_field(n, k) for n, k in kind.fields]
    return bigquery.SchemaField(name, "RECORD" if fields else kind.name, fields=fields)


def _json_value(value: object) -> object:
    """A row value as the load job's JSON: dates and decimals as text, recursively."""
    if isinstance(value, (datetime.date, decimal.Decimal)):
        return value.isoformat() if isinstance(value, datetime.date) else str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


def _source_query(request: BuildRequest) -> exp.Expr:
    """The script with STRUCT field names made explicit (BigQuery infers them; emulators may
    not, and the explicit form means the same) and its sources read as of the run's start."""
    query = request.query
    if request.as_of is not None:
        query = sql.read_as_of(query, request.as_of.tables, request.as_of.at)
    return sql.name_struct_fields(query)


def _build_statement(request: BuildRequest) -> str:
    """The one DDL statement a build sends."""
    query = _source_query(request).sql("bigquery")
    return f"CREATE OR REPLACE TABLE {sql.quote_table(request.table, 'bigquery')} AS {query}"


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


_PARQUET_TYPES = {
    "TINYINT": "INT64",
    "SMALLINT": "INT64",
    "INTEGER": "INT64",
    "BIGINT": "INT64",
    "FLOAT": "FLOAT64",
    "DOUBLE": "FLOAT64",
    "BOOLEAN": "BOOL",
    "DATE": "DATE",
    "TIME": "TIME",
    "TIMESTAMP": "DATETIME",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMP",
    "BLOB": "BYTES",
}


def _parquet_schema(path: Path) -> list[bigquery.SchemaField]:
    """The BigQuery schema of a parquet file's columns (as DuckDB reads them); a DECIMAL
    that NUMERIC cannot hold becomes BIGNUMERIC, anything else unknown STRING."""
    import duckdb

    with duckdb.connect() as con:
        columns = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    fields = []
    for name, kind, *_ in columns:
        decimal_type = re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", str(kind))
        if decimal_type:
            precision, scale = int(decimal_type.group(1)), int(decimal_type.group(2))
            numeric = scale <= 9 and precision - scale <= 29
            fields.append(bigquery.SchemaField(str(name), "NUMERIC" if numeric else "BIGNUMERIC"))
        else:
            fields.append(bigquery.SchemaField(str(name), _PARQUET_TYPES.get(str(kind), "STRING")))
    return fields


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
