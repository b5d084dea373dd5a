"""The BigQuery backend against a real BigQuery REST API server: the ``bqemulator`` emulator,
started once per session. Each test uses its own project id on it, so none sees another's
tables. Faults and concurrency are observed through a recording proxy in front of it."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from google.api_core import exceptions as api_exceptions

from tablemake.backends.base import BuildRequest, BuildResult
from tablemake.backends.bigquery import BigQueryBackend, is_transient
from tablemake.errors import UserError, WarehouseError
from tablemake.tablefile import BigQuerySettings
from tests.conftest import Cli
from tests.support.bqemulator import (
    Emulator,
    Fault,
    RecordingProxy,
    make_client,
    running_emulator,
)

ALL = {
    "tmp.inventory_items",
    "tmp.item_purchase_prices",
    "tmp.purchase_prices_eur",
    "tmp.product_categories",
    "tmp.product_images",
    "tmp.variant_images",
    "tmp.products",
    "tmp.variants",
    "final.products",
}
VARIANT_IMAGES_CONE = {"tmp.variant_images", "tmp.variants", "final.products"}
INVENTORY_CONE = {"tmp.inventory_items", "tmp.variants", "final.products"}
CATEGORIES_CONE = {"tmp.product_categories", "tmp.products", "final.products"}


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with running_emulator() as running:
        yield running


@pytest.fixture(autouse=True)
def _no_google_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide any Application Default Credentials of the machine: against the emulator the
    backend must fall back to anonymous, and must never send a developer's real token."""
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))


@pytest.fixture
def project(request: pytest.FixtureRequest) -> str:
    """A project id of this test's own on the shared emulator."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:20].strip("-")
    return f"t-{name}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def bq(shop: Path, emulator: Emulator, project: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example project, pointed at the emulator through TABLEMAKE_* variables."""
    monkeypatch.setenv("TABLEMAKE_BACKEND", "bigquery")
    monkeypatch.setenv("TABLEMAKE_BQ_PROJECT", project)
    monkeypatch.setenv("TABLEMAKE_BQ_ENDPOINT", emulator.endpoint)
    return shop


@pytest.fixture
def proxy(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingProxy]:
    """A recording proxy in front of the emulator, made the endpoint of ``bq``."""
    with RecordingProxy(emulator.endpoint) as running:
        monkeypatch.setenv("TABLEMAKE_BQ_ENDPOINT", running.url)
        yield running


@pytest.fixture
def built(bq: Path, tm: Cli) -> Path:
    """Raw data loaded and every target built once, on the emulator."""
    assert tm(bq, "init-db").code == 0
    result = tm(bq, "final.products", "-j", "4", "--json")
    assert result.code == 0, result.err
    assert result.statuses("built") == ALL
    return bq


def _datasets(emulator: Emulator, project: str) -> set[str]:
    with closing(make_client(emulator.endpoint, project)) as client:
        return {d.dataset_id for d in client.list_datasets()}


def _show(tm: Cli, project_dir: Path, table: str, *args: str) -> list[dict[str, Any]]:
    result = tm(project_dir, "show", table, "--format", "json", "--limit", "1000", *args)
    assert result.code == 0, result.err
    rows: list[dict[str, Any]] = result.json
    return sorted(rows, key=lambda row: row["id"])


def _edit_semantic(project_dir: Path, script: str) -> None:
    path = project_dir / script
    path.write_text(f"SELECT * FROM (\n{path.read_text().strip()}\n) WHERE TRUE\n")


# -- the pipeline, through the CLI -----------------------------------------------------------


def test_pipeline_builds_then_noops_then_rebuilds_the_edited_cone(
    bq: Path, tm: Cli, emulator: Emulator, project: str
) -> None:
    init = tm(bq, "init-db", "--json")
    assert init.code == 0, init.err
    assert len(init.json["sources"]) == 7
    assert _datasets(emulator, project) == {"raw"}

    first = tm(bq, "final.products", "-j", "4", "--json")
    assert first.code == 0, first.err
    assert first.statuses("built") == ALL
    assert _datasets(emulator, project) == {"raw", "tmp", "final"}
    assert {t["rows"] for t in first.json["targets"] if t["name"] == "final.products"} == {10}

    again = tm(bq, "final.products", "--json")
    assert again.statuses("built") == set()
    assert again.statuses("up-to-date") == ALL

    _edit_semantic(bq, "res/tmp/variant_images.sql")
    plan = tm(bq, "-n", "--json")
    assert plan.statuses("would-build") == VARIANT_IMAGES_CONE
    rebuilt = tm(bq, "final.products", "-j", "4", "--json")
    assert rebuilt.code == 0, rebuilt.err
    assert rebuilt.statuses("built") == VARIANT_IMAGES_CONE


def test_final_products_has_the_same_rows_as_on_duckdb(built: Path, tm: Cli) -> None:
    assert tm(built, "init-db", "--backend", "duckdb").code == 0
    assert tm(built, "final.products", "--backend", "duckdb").code == 0
    on_duckdb = _show(tm, built, "final.products", "--backend", "duckdb")
    on_bigquery = _show(tm, built, "final.products")
    assert len(on_bigquery) == 10
    # Exact equality of the JSON documents, nested arrays of structs included: no
    # normalisation beyond ordering the rows by id (neither warehouse promises an order).
    assert json.dumps(on_bigquery) == json.dumps(on_duckdb)


def test_streamed_rows_in_a_source_make_its_dependents_stale(
    built: Path, tm: Cli, emulator: Emulator, project: str
) -> None:
    with closing(make_client(emulator.endpoint, project)) as client:
        errors = client.insert_rows_json(
            "raw.inventory_items", [{"sku_id": 1099, "inventory_count": 5}]
        )
    assert errors == []
    plan = tm(built, "-n", "--json")
    assert plan.statuses("would-build") == INVENTORY_CONE
    reasons = {t["name"]: t["reasons"] for t in plan.json["targets"]}
    assert reasons["tmp.inventory_items"] == [
        "source raw.inventory_items changed since the last build"
    ]


def test_an_appended_row_is_stored_and_makes_dependents_stale(
    built: Path, tm: Cli, emulator: Emulator, project: str
) -> None:
    settings = BigQuerySettings(project=project, endpoint=emulator.endpoint)
    backend = BigQueryBackend(settings, built)
    try:
        assert backend.table_columns("raw.nope") == []
        assert backend.table_columns("raw.inventory_items") == [
            ("sku_id", "INT64"),
            ("inventory_count", "INT64"),
        ]
        products = dict(backend.table_columns("final.products"))
        assert products["categories"] == "ARRAY<STRUCT<categoryName STRING>>"
        with pytest.raises(UserError, match="has no column `nope`"):
            backend.append_row("raw.inventory_items", {"nope": 1})
        stored = backend.append_row("raw.inventory_items", {"sku_id": 1099})
    finally:
        backend.close()
    assert stored == {"sku_id": 1099, "inventory_count": None}
    assert tm(built, "-n", "--json").statuses("would-build") == INVENTORY_CONE


def test_content_detection_sees_dml_that_metadata_does_not_show(
    bq: Path, tm: Cli, emulator: Emulator, project: str
) -> None:
    """The emulator leaves num_rows, modified and etag as they were after DML, so only a
    content digest can see it there (on BigQuery itself DML changes ``modified``)."""
    tablefile = bq / "Tablefile.toml"
    tablefile.write_text(
        tablefile.read_text() + '\n[warehouse.bigquery]\nchange_detection = "content"\n'
    )
    assert tm(bq, "init-db").code == 0
    assert tm(bq, "final.products", "-j", "4").code == 0
    assert tm(bq, "-n", "--json").statuses("would-build") == set()
    with closing(make_client(emulator.endpoint, project)) as client:
        client.query("INSERT INTO `raw.categories` (id, category_name) VALUES (99, 'x')").result()
    assert tm(bq, "-n", "--json").statuses("would-build") == CATEGORIES_CONE


# -- failures and retries --------------------------------------------------------------------


def test_bad_sql_fails_the_target_and_keeps_the_previous_table(
    built: Path, tm: Cli, proxy: RecordingProxy
) -> None:
    before = _show(tm, built, "final.products")
    script = built / "res/final/products.sql"
    script.write_text("SELECT p.nope AS id FROM `tmp.products` AS p\n")
    result = tm(built, "final.products", "--json")
    assert result.code == 1
    assert result.statuses("failed") == {"final.products"}
    [failed] = [t for t in result.json["targets"] if t["status"] == "failed"]
    assert failed["error"].startswith("res/final/products.sql: ")
    assert 'does not have a column named "nope"' in failed["error"]  # the server's own words
    assert re.search(r"\(job tablemake_[0-9a-f-]+\)$", failed["error"])
    assert len(proxy.job_inserts("final-products")) == 1  # permanent: not retried
    assert _show(tm, built, "final.products") == before


def test_transient_errors_are_retried_until_the_job_succeeds(
    built: Path, tm: Cli, proxy: RecordingProxy
) -> None:
    proxy.faults.append(
        Fault(
            503, "backendError", "Backend error, try again.", times=2, target_label="tmp-variants"
        )
    )
    _edit_semantic(built, "res/tmp/variants.sql")
    result = tm(built, "final.products", "--json")
    assert result.code == 0, result.err
    assert result.statuses("built") == {"tmp.variants", "final.products"}
    assert [e.status for e in proxy.job_inserts("tmp-variants")] == [503, 503, 200]


def test_permission_denied_fails_at_once_with_the_server_message(
    built: Path, tm: Cli, proxy: RecordingProxy
) -> None:
    denied = "Access Denied: User does not have bigquery.jobs.create permission."
    proxy.faults.append(Fault(403, "accessDenied", denied, times=5, target_label="tmp-variants"))
    _edit_semantic(built, "res/tmp/variants.sql")
    result = tm(built, "final.products", "--json")
    assert result.code == 1
    errors = {t["name"]: t.get("error") for t in result.json["targets"]}
    assert errors["tmp.variants"] == f"res/tmp/variants.sql: {denied}"
    assert len(proxy.job_inserts("tmp-variants")) == 1


@pytest.fixture
def fast_retrying(tmp_path: Path, project: str, proxy: RecordingProxy) -> Iterator[BigQueryBackend]:
    """The backend itself, through the proxy, with 3 attempts and millisecond backoff."""
    settings = BigQuerySettings(project=project, endpoint=proxy.url)
    backend = BigQueryBackend(settings, tmp_path, attempts=3, backoff=0.001)
    backend.ensure_datasets({"tmp"})
    try:
        yield backend
    finally:
        backend.close()


def _build_one(backend: BigQueryBackend) -> BuildResult:
    request = BuildRequest("tmp.one", "SELECT 1 AS id", "res/tmp/one.sql", "run-1")
    return backend.build_table(request)


def test_retries_are_bounded_and_report_the_last_error(
    fast_retrying: BigQueryBackend, proxy: RecordingProxy
) -> None:
    proxy.faults.append(Fault(429, "rateLimitExceeded", "Exceeded rate limits.", times=99))
    with pytest.raises(WarehouseError) as caught:
        _build_one(fast_retrying)
    assert str(caught.value) == "Exceeded rate limits. (gave up after 3 attempts)"
    assert len(proxy.job_inserts("tmp-one")) == 3


def test_a_job_that_failed_transiently_is_run_again_as_a_new_job(
    fast_retrying: BigQueryBackend, proxy: RecordingProxy
) -> None:
    proxy.faults.append(Fault(500, "backendError", "Backend error.", times=1, at="job"))
    assert _build_one(fast_retrying).rows == 1
    job_ids = [e.request["jobReference"]["jobId"] for e in proxy.job_inserts("tmp-one")]
    assert len(set(job_ids)) == 2  # BigQuery jobs cannot be restarted: a new id each time


def test_a_failed_wait_waits_on_the_same_job_again(
    fast_retrying: BigQueryBackend, proxy: RecordingProxy
) -> None:
    proxy.faults.append(Fault(503, "backendError", "Unavailable.", times=1, at="poll"))
    assert _build_one(fast_retrying).rows == 1
    assert len(proxy.job_inserts("tmp-one")) == 1
    polls = [e.status for e in proxy.exchanges() if "/queries/" in e.path]
    assert polls == [503, 200]


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (api_exceptions.ServiceUnavailable("down"), True),
        (api_exceptions.InternalServerError("oops"), True),
        (api_exceptions.GatewayTimeout("slow"), True),
        (api_exceptions.TooManyRequests("slow down"), True),
        (api_exceptions.Forbidden("q", errors=[{"reason": "rateLimitExceeded"}]), True),
        (api_exceptions.BadRequest("job", errors=[{"reason": "jobBackendError"}]), True),
        (ConnectionResetError(104, "Connection reset by peer"), True),
        (api_exceptions.Forbidden("q", errors=[{"reason": "quotaExceeded"}]), False),
        (api_exceptions.Forbidden("no", errors=[{"reason": "accessDenied"}]), False),
        (api_exceptions.BadRequest("sql", errors=[{"reason": "invalidQuery"}]), False),
        (api_exceptions.NotFound("table"), False),
    ],
)
def test_which_errors_are_transient(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


# -- planning, labels, parallelism -----------------------------------------------------------


def test_dry_run_prints_what_each_stale_target_would_scan(
    bq: Path, tm: Cli, proxy: RecordingProxy, emulator: Emulator, project: str
) -> None:
    assert tm(bq, "init-db").code == 0
    loaded = len(proxy.job_inserts())
    plan = tm(bq, "-n", "--json")
    # The emulator's dry runs report 0 bytes; BigQuery reports the real figure. The Python
    # target runs outside BigQuery: nothing to estimate.
    sql_targets = ALL - {"tmp.purchase_prices_eur"}
    assert {t["name"]: t.get("estimated_bytes") for t in plan.json["targets"]} == {
        **dict.fromkeys(sql_targets, 0),
        "tmp.purchase_prices_eur": None,
    }
    dry_runs = proxy.job_inserts()[loaded:]
    assert len(dry_runs) == len(sql_targets)
    assert all(e.request["configuration"]["dryRun"] is True for e in dry_runs)
    human = tm(bq, "-n")
    assert human.out.count("[scans 0 B]") == len(sql_targets)
    assert "estimated total scanned: 0 B" in human.out
    assert _datasets(emulator, project) == {"raw"}  # a dry run creates nothing


def test_jobs_carry_target_and_run_labels(built: Path, tm: Cli, proxy: RecordingProxy) -> None:
    _edit_semantic(built, "res/tmp/variant_images.sql")
    result = tm(built, "tmp.variant_images", "--json")
    assert result.code == 0, result.err
    [instant, insert] = proxy.job_inserts()  # the run's instant for snapshot reads, the build
    run_label = result.json["run_id"].lower()
    assert instant.request["configuration"]["labels"] == {"tablemake-run": run_label}
    assert insert.request["configuration"]["labels"] == {
        "tablemake-target": "tmp-variant_images",
        "tablemake-run": run_label,
    }
    assert insert.request["jobReference"]["jobId"].startswith("tablemake_")
    assert insert.response["configuration"]["labels"]["tablemake-run"] == run_label


def test_jobs_run_concurrently_up_to_the_job_limit(
    bq: Path, tm: Cli, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tm(bq, "init-db").code == 0
    # Each job insert is held 0.3 s, so overlap is certain when jobs run in parallel; five
    # step-1 targets are ready at once, so -j 4 must reach 4 and never exceed it.
    with RecordingProxy(emulator.endpoint, insert_delay=0.3) as slow:
        monkeypatch.setenv("TABLEMAKE_BQ_ENDPOINT", slow.url)
        result = tm(bq, "final.products", "-j", "4", "--json")
    assert result.code == 0, result.err
    assert slow.peak_concurrent_inserts() == 4


# -- configuration errors --------------------------------------------------------------------


def test_missing_project_is_a_usage_error(shop: Path, tm: Cli, emulator: Emulator) -> None:
    result = tm(shop, "-n", "--backend", "bigquery", "--bq-endpoint", emulator.endpoint)
    assert result.code == 2
    assert result.err == (
        "tablemake: error: no BigQuery project given: pass --bq-project PROJECT, set "
        "TABLEMAKE_BQ_PROJECT, or set `project` under [warehouse.bigquery] in Tablefile.toml.\n"
    )


def test_missing_key_file_is_a_usage_error_naming_the_file(shop: Path, tm: Cli) -> None:
    result = tm(shop, "-n", "--backend", "bigquery", "--bq-project", "p", "--bq-key", "k.json")
    assert result.code == 2
    assert result.err == (
        f"tablemake: error: {shop / 'k.json'}: cannot read the BigQuery key file: "
        "No such file or directory.\n"
    )


def test_a_key_file_that_is_not_a_key_is_a_usage_error(shop: Path, tm: Cli) -> None:
    (shop / "k.json").write_text('{"type": "service_account"}')
    result = tm(shop, "-n", "--backend", "bigquery", "--bq-project", "p", "--bq-key", "k.json")
    assert result.code == 2
    assert result.err.startswith(
        f"tablemake: error: {shop / 'k.json'}: the BigQuery key file is not a service-account "
        "JSON key: "
    )
    assert "Traceback" not in result.err


def test_no_credentials_and_no_endpoint_is_a_usage_error(shop: Path, tm: Cli) -> None:
    result = tm(shop, "-n", "--backend", "bigquery", "--bq-project", "p")
    assert result.code == 2
    assert result.err == (
        "tablemake: error: found no Google credentials for BigQuery: pass --bq-key FILE (or "
        "TABLEMAKE_BQ_KEY, or `key_file` under [warehouse.bigquery]) with a service-account "
        "JSON key, or set up Application Default Credentials "
        "(`gcloud auth application-default login`).\n"
    )


# -- early cutoff, audits and consistent inputs (issue 10) -----------------------------------


def _set_in_tablefile(project_dir: Path, header: str, line: str) -> None:
    tablefile = project_dir / "Tablefile.toml"
    tablefile.write_text(tablefile.read_text().replace(header, f"{header}{line}\n", 1))


def _table_ids(emulator: Emulator, project: str, dataset: str) -> set[str]:
    with closing(make_client(emulator.endpoint, project)) as client:
        return {t.table_id for t in client.list_tables(dataset)}


def test_early_cutoff_spares_the_dependents_of_an_unchanged_table(built: Path, tm: Cli) -> None:
    tablefile = built / "Tablefile.toml"
    tablefile.write_text(tablefile.read_text().replace("cutoff = false", "cutoff = true"))
    assert tm(built, "-B", "--json").statuses("built") == ALL  # versions become content digests
    _edit_semantic(built, "res/tmp/variant_images.sql")
    run = tm(built, "-j", "4", "--json")
    assert run.code == 0, run.err
    assert run.statuses("built") == {"tmp.variant_images"}
    assert run.statuses("up-to-date") >= {"tmp.variants", "final.products"}
    assert tm(built, "-q").code == 0


def test_a_failing_audit_on_bigquery_keeps_the_published_table(
    built: Path, tm: Cli, emulator: Emulator, project: str
) -> None:
    def variants() -> list[str]:
        shown = tm(built, "show", "tmp.variants", "--format", "json", "--limit", "1000")
        return sorted(json.dumps(row, sort_keys=True) for row in shown.json)

    before = variants()
    _set_in_tablefile(
        built,
        '[targets."tmp.variants"]\n',
        'audits = [{ check = "row_count", min = 1000 },'
        ' { check = "unique", columns = ["sku_id"] }]',
    )
    run = tm(built, "-B", "tmp.variants", "--json")
    assert run.code == 1
    failed = next(t for t in run.json["targets"] if t["name"] == "tmp.variants")
    assert "audit row_count >= 1000 failed: 1 offending rows" in failed["error"]
    assert "unique(sku_id)" not in failed["error"]  # that one passed
    assert variants() == before
    assert not any(t.endswith("__tablemake_staging") for t in _table_ids(emulator, project, "tmp"))

    tablefile = built / "Tablefile.toml"  # keep only the audit that passes
    tablefile.write_text(tablefile.read_text().replace('{ check = "row_count", min = 1000 },', ""))
    assert tm(built, "-B", "tmp.variants", "--json").statuses("built") >= {"tmp.variants"}
    assert tm(built, "audit", "tmp.variants").code == 0


def _keep_history(client: Any, tables: list[str]) -> None:
    """bqemulator keeps a table's past from its first DML, load or streamed row on, not from
    CREATE TABLE AS (real BigQuery keeps it from creation): a DML that changes nothing gives
    the tables a past to read, as BigQuery would have."""
    for table in tables:
        client.query(f"UPDATE {table} SET id = id WHERE FALSE").result()


@pytest.mark.parametrize("snapshot_reads", [True, False])
def test_targets_read_sources_as_of_the_run_start(
    built: Path,
    tm: Cli,
    emulator: Emulator,
    project: str,
    proxy: RecordingProxy,
    *,
    snapshot_reads: bool,
) -> None:
    """Rows streamed into sources once the run has started are read by none of its targets,
    SQL or Python, with snapshot reads on; with them off the same run reads them. Either
    way no target is recorded as having seen them: they are stale for the next run."""
    if not snapshot_reads:
        tablefile = built / "Tablefile.toml"
        tablefile.write_text(
            tablefile.read_text() + "\n[warehouse.bigquery]\nsnapshot_reads = false\n"
        )
    with closing(make_client(emulator.endpoint, project)) as client:
        _keep_history(client, ["raw.products", "raw.purchase_items"])
        streamed: list[bool] = []

        def stream_before_the_first_read(body: Any) -> None:
            query = (body or {}).get("configuration", {}).get("query", {}).get("query", "")
            if streamed or "CURRENT_TIMESTAMP" in query:  # the run asking for its instant
                return
            product = {"id": 77, "name": "mid-run", "category_id": 1, "external_id": 1}
            assert client.insert_rows(client.get_table("raw.products"), [product]) == []
            item = {"id": 99, "purchase_price": 1.0, "currency": "EUR", "batch_id": 201}
            assert client.insert_rows(client.get_table("raw.purchase_items"), [item]) == []
            streamed.append(True)

        proxy.on_insert = stream_before_the_first_read
        result = tm(built, "-B", "-j", "1", "--json")
        assert result.code == 0, result.err
        assert streamed
        products = {r.product_id for r in client.query("SELECT product_id FROM tmp.products")}
        items = {r.id for r in client.query("SELECT id FROM tmp.purchase_prices_eur")}
    if snapshot_reads:
        assert 77 not in products and 99 not in items
    else:  # (the Python target may read before the first job: only SQL reads are sure here)
        assert 77 in products
    after = tm(built, "-n", "--json")  # the versions recorded are from before the rows came
    assert {"tmp.products", "tmp.purchase_prices_eur"} <= after.statuses("would-build")
    reasons = {t["name"]: t["reasons"] for t in after.json["targets"]}
    assert "source raw.products changed since the last build" in reasons["tmp.products"]


def test_only_sources_are_read_as_of_one_instant_per_run(
    built: Path, tm: Cli, proxy: RecordingProxy
) -> None:
    assert tm(built, "-B", "--json").code == 0
    pinned: set[str] = set()
    live: set[str] = set()
    instants: set[str] = set()
    for insert in proxy.job_inserts():
        query = insert.request["configuration"].get("query", {}).get("query")
        if insert.target_label is None or query is None:
            continue
        for table in sqlglot.parse_one(query, read="bigquery").find_all(sqlglot.exp.Table):
            version = table.args.get("version")
            (pinned if version else live).add(f"{table.db}.{table.name}")
            if version:
                instants.add(version.expression.sql("bigquery"))
    assert pinned == {
        "raw.products",
        "raw.variants",
        "raw.pictures",
        "raw.categories",
        "raw.inventory_items",
        "raw.purchase_line_items",
    }  # raw.purchase_items is read by the Python target, not by a job labelled with it
    assert live >= {"tmp.variants", "tmp.products"} and not live & pinned
    assert len(instants) == 1


# -- Python targets and parameters -----------------------------------------------------------


def test_python_target_rows_are_loaded_as_on_duckdb(built: Path, tm: Cli) -> None:
    on_bigquery = _show(tm, built, "tmp.purchase_prices_eur")
    assert len(on_bigquery) == 14
    assert {"id": 4, "batch_id": 203, "purchase_price": 9.4, "currency": "SGD"}.items() <= (
        next(r for r in on_bigquery if r["id"] == 4).items()
    )
    assert {r["id"]: r["price_eur"] for r in on_bigquery}[4] == 6.49
    assert tm(built, "-n", "--json").statuses("would-build") == set()


def test_parameters_travel_as_query_parameters(bq: Path, tm: Cli, proxy: RecordingProxy) -> None:
    tablefile = bq / "Tablefile.toml"
    tablefile.write_text(tablefile.read_text() + '\n[params]\nmin_count = "INT64"\n')
    script = bq / "res/tmp/inventory_items.sql"
    script.write_text(script.read_text() + "WHERE ii.inventory_count >= @min_count\n")
    assert tm(bq, "init-db").code == 0
    result = tm(bq, "tmp.inventory_items", "--var", "min_count=100", "--json")
    assert result.code == 0, result.err
    (insert,) = proxy.job_inserts("tmp-inventory_items")
    query = insert.request["configuration"]["query"]
    assert "@min_count" in query["query"] and "100" not in query["query"]
    assert query["queryParameters"] == [
        {
            "name": "min_count",
            "parameterType": {"type": "INT64"},
            "parameterValue": {"value": "100"},
        }
    ]
    shown = tm(bq, "show", "tmp.inventory_items", "--format", "json", "--limit", "100").json
    counts = [row["inventory_count"] for row in shown]
    assert counts and min(counts) >= 100
    again = tm(bq, "tmp.inventory_items", "--var", "min_count=5", "-n", "--json")
    assert again.json["targets"][0]["reasons"] == [
        "parameter min_count=5 differs from the last build's"
    ]


def test_partitions_replace_only_their_rows(bq: Path, tm: Cli) -> None:
    tablefile = bq / "Tablefile.toml"
    tablefile.write_text(
        tablefile.read_text()
        + '\n[params]\nrun_date = "DATE"\n\n[targets."final.daily_stock"]\n'
        + 'deps = ["tmp.inventory_items"]\npartition = "run_date"\n'
    )
    (bq / "res/final/daily_stock.sql").write_text(
        "SELECT @run_date AS run_date, SUM(inventory_count) AS stock FROM `tmp.inventory_items`"
    )
    workflow = bq / "workflow.py"
    workflow.write_text(
        workflow.read_text()
        + '\n\n@target("final.daily_py", deps=["tmp.inventory_items"], partition="run_date")\n'
        + "def daily_py(inventory_items: Any, run_date: Any) -> Any:\n"
        + '    return [{"run_date": run_date, "skus": len(inventory_items)}]\n'
    )
    assert tm(bq, "init-db").code == 0
    # -j 1: once, under load, the emulator failed a CREATE TABLE IF NOT EXISTS racing a load
    # job into the same dataset ('NoneType' object has no attribute 'schema', from its
    # catalog); partitions of one table take turns in any case.
    both = ("final.daily_stock", "final.daily_py", "-j", "1")
    first = tm(bq, *both, "--from", "2024-01-01", "--to", "2024-01-02")
    assert first.code == 0, first.out + first.err
    more = tm(bq, *both, "--from", "2024-01-02", "--to", "2024-01-03", "--json")
    assert more.statuses("built") == {"final.daily_stock[2024-01-03]", "final.daily_py[2024-01-03]"}
    stock = tm(bq, "show", "final.daily_stock", "--format", "json").json
    assert sorted(r["run_date"] for r in stock) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert len({r["stock"] for r in stock}) == 1
    python = tm(bq, "show", "final.daily_py", "--format", "json").json
    assert sorted((r["run_date"], r["skus"]) for r in python) == [
        ("2024-01-01", 26),
        ("2024-01-02", 26),
        ("2024-01-03", 26),
    ]


def test_a_target_past_its_timeout_has_its_job_cancelled_and_stays_stale(
    built: Path, tm: Cli, proxy: RecordingProxy
) -> None:
    tablefile = built / "Tablefile.toml"
    header = '[targets."tmp.variant_images"]'
    tablefile.write_text(tablefile.read_text().replace(header, f"{header}\ntimeout = 1", 1))
    _edit_semantic(built, "res/tmp/variant_images.sql")
    proxy.poll_delay = 3.0  # the job is inserted at once, then seems to run for 3 s
    result = tm(built, "tmp.variant_images", "--json")
    proxy.poll_delay = 0.0
    assert result.code == 1
    [target] = result.json["targets"]
    assert target["status"] == "failed"
    assert "timed out after 1 s (`timeout` in the Tablefile)" in target["error"]
    [insert] = proxy.job_inserts("tmp-variant_images")
    job_id = insert.request["jobReference"]["jobId"]
    cancels = [e.path for e in proxy.exchanges() if e.method == "POST" and "/cancel" in e.path]
    assert cancels and all(f"/jobs/{job_id}/cancel" in path for path in cancels)
    plan = tm(built, "tmp.variant_images", "-n", "--json")
    assert plan.statuses("would-build") == {"tmp.variant_images"}
