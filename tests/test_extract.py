"""The day pipeline (extract -> load -> transform) on the shipped ``examples/orders`` project,
against a real PostgreSQL server (started once per session by tests/support/postgres.py),
a real CSV file and the real DuckDB warehouse, through the CLI."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from functools import partial
from pathlib import Path

import duckdb
import psycopg
import pytest

from tablemake.backends.bigquery import BigQueryBackend
from tablemake.extract import postgres
from tablemake.extract.pool import run_tasks
from tablemake.extract.postgres import PgTable, duckdb_type, redacted
from tablemake.tablefile import BigQuerySettings
from tests.conftest import REPO, Cli
from tests.support.bqemulator import Emulator, running_emulator
from tests.support.postgres import PostgresServer, remove, start_postgres

DAY, NEXT_DAY = "2026-11-23", "2026-11-24"
EXAMPLE = REPO / "examples" / "orders"
PG_TABLES = {
    "categories": 3,
    "customers": 20,
    "employees": 4,
    "orders": 40,
    "payments": 30,
    "product_images": 24,
    "products": 12,
    "shipments": 20,
    "suppliers": 2,
}
CSV_ROWS = 80
# the first test may apt-get install the PostgreSQL server (bounded to 10 min per command)
pytestmark = pytest.mark.timeout(1500)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        remove(server)


@pytest.fixture
def shop_url(pg_server: PostgresServer) -> str:
    """A fresh database of the example's shop, all to this test."""
    name = f"shop_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = pg_server.url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((EXAMPLE / "db" / "shop.sql").read_text(encoding="utf-8"))
    return url


@pytest.fixture
def project(tmp_path: Path, shop_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of examples/orders whose `url_env` points at this test's database."""
    dest = tmp_path / "orders"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("data", ".state"))
    monkeypatch.setenv("SHOP_DATABASE_URL", shop_url)
    return dest


def _pg_file(project: Path, table: str, day: str = DAY) -> Path:
    return project / "data" / "postgres" / "shop" / table / day / f"{table}.parquet"


def _csv_file(project: Path, day: str = DAY) -> Path:
    return project / "data" / "csv" / "order_details" / day / "order_details.parquet"


def _all_files(project: Path, day: str = DAY) -> dict[str, bytes]:
    files = {}
    for path in sorted((project / "data").rglob("*")):
        if path.is_file() and f"/{day}/" in str(path):
            files[str(path.relative_to(project))] = path.read_bytes()
    return files


def _parquet(path: Path, query: str = "SELECT * FROM t") -> list[tuple[object, ...]]:
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{path}')")
        return con.execute(query).fetchall()
    finally:
        con.close()


def _warehouse(project: Path, query: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(project / ".state" / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def _status(tm: Cli, project: Path, day: str = DAY) -> dict[str, object]:
    result = tm(project, "status", "--date", day, "--json")
    return dict(result.json)


# -- step 1 ---------------------------------------------------------------------------------


def test_every_table_is_extracted_with_its_rows_and_types(tm: Cli, project: Path) -> None:
    result = tm(project, "extract", "--date", DAY)
    assert result.code == 0, result.err
    for table, rows in PG_TABLES.items():
        assert _parquet(_pg_file(project, table), "SELECT count(*) FROM t") == [(rows,)]
        manifest = json.loads((_pg_file(project, table).parent / "manifest.json").read_text())
        assert manifest["rows"] == rows and manifest["table"] == f"raw.{table}"
    assert _parquet(_csv_file(project), "SELECT count(*) FROM t") == [(CSV_ROWS,)]

    def types(table: str) -> dict[str, str]:
        rows = _parquet(
            _pg_file(project, table), "SELECT column_name, column_type FROM (DESCRIBE t)"
        )
        return {str(name): str(kind) for name, kind in rows}

    assert types("payments") == {
        "id": "BIGINT",
        "order_id": "BIGINT",
        "amount": "DECIMAL(12,2)",
        "fee_rate": "DECIMAL(38,9)",
        "paid_on": "DATE",
        "captured": "TIMESTAMP",
    }
    assert types("employees") == {
        "id": "SMALLINT",
        "name": "VARCHAR",
        "hired_on": "DATE",
        "salary": "DECIMAL(10,2)",
        "manager_id": "SMALLINT",
        "active": "BOOLEAN",
    }
    assert types("product_images")["image"] == "BLOB"
    assert types("orders")["ordered_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types("customers")["country"] == "VARCHAR"
    assert types("products")["weight_kg"] == "DOUBLE"


def test_values_survive_the_trip(tm: Cli, project: Path, shop_url: str) -> None:
    assert tm(project, "extract", "--date", DAY).code == 0
    with psycopg.connect(shop_url) as conn:
        images = conn.execute(
            "SELECT product_id, position, image FROM product_images ORDER BY 1, 2"
        ).fetchall()
        orders = conn.execute(
            "SELECT id, to_char(ordered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), note "
            "FROM orders ORDER BY id"
        ).fetchall()
        payments = conn.execute("SELECT id, amount, fee_rate, paid_on FROM payments ORDER BY id")
        payment_rows = payments.fetchall()
    assert _parquet(
        _pg_file(project, "product_images"), "SELECT product_id, position, image FROM t"
    ) == [(p, n, bytes(image)) for p, n, image in images]
    # NULL and the empty string stay apart; quotes and commas survive
    assert _parquet(
        _pg_file(project, "orders"),
        "SELECT id, strftime(ordered_at, '%Y-%m-%d %H:%M:%S'), note FROM t ORDER BY id",
    ) == [tuple(row) for row in orders]
    assert _parquet(
        _pg_file(project, "payments"), "SELECT id, amount, fee_rate, paid_on FROM t"
    ) == [tuple(row) for row in payment_rows]
    assert any(note == "" for _, _, note in orders) and any(note is None for *_, note in orders)


def test_a_day_that_succeeded_is_not_redone_and_B_redoes_it_byte_identical(
    tm: Cli, project: Path
) -> None:
    assert tm(project, "extract", "--date", DAY).code == 0
    first = _all_files(project)
    assert len(first) == 2 * (len(PG_TABLES) + 1)  # a parquet file and a manifest each
    stamps = {p: (project / p).stat().st_mtime_ns for p in first}

    again = tm(project, "extract", "--date", DAY, "--json")
    assert again.code == 0
    assert {t["status"] for t in again.json["tasks"]} == {"up-to-date"}
    assert {p: (project / p).stat().st_mtime_ns for p in first} == stamps

    redone = tm(project, "extract", "--date", DAY, "-B", "--json")
    assert redone.code == 0
    assert {t["status"] for t in redone.json["tasks"]} == {"done"}
    assert {p: (project / p).stat().st_mtime_ns for p in first} != stamps
    assert _all_files(project) == first  # byte for byte, parquet files and manifests


def test_a_failed_table_is_shown_by_status_blocks_load_and_resumes(
    tm: Cli, project: Path, shop_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader that may not read `payments`: one real table failure among nine, read four
    at a time; the other eight are still extracted."""
    role = f"reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(shop_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
        conn.execute(f"REVOKE SELECT ON payments FROM {role}")
    monkeypatch.setenv("SHOP_DATABASE_URL", shop_url.replace("postgres@", f"{role}@"))

    failed = tm(project, "extract", "--date", DAY, "-j", "4")
    assert failed.code == 1
    assert "raw.payments" in failed.out and "permission denied" in failed.out
    assert all(_pg_file(project, t).exists() for t in PG_TABLES if t != "payments")
    status = tm(project, "status", "--date", DAY)
    assert status.code == 1
    assert "step 1 (extract): failed" in status.out
    assert "raw.payments" in status.out and "permission denied for table payments" in status.out
    assert "step 2 (load): not run" in status.out
    assert f"tablemake extract --date {DAY} shop" in status.out
    extract_step = _status(tm, project)["steps"][0]  # type: ignore[index]
    failed_tables = {t["table"] for t in extract_step["tasks"] if t["status"] == "failed"}
    assert failed_tables == {"raw.payments", None}  # the table, and its extract as a whole

    refused = tm(project, "load", "--date", DAY)
    assert refused.code == 2
    assert "step 1 (extract) has not succeeded" in refused.err and "`shop`" in refused.err
    assert "first raw.payments: public.payments: permission denied" in refused.err
    assert not (project / ".state" / "warehouse.duckdb").exists() or not _warehouse(
        project, "SELECT 1 FROM information_schema.tables WHERE table_schema = 'raw'"
    )

    stamps = {t: _pg_file(project, t).stat().st_mtime_ns for t in PG_TABLES if t != "payments"}
    with psycopg.connect(shop_url, autocommit=True) as conn:
        conn.execute(f"GRANT SELECT ON payments TO {role}")
    resumed = tm(project, "extract", "--date", DAY, "-j", "4", "--json")
    assert resumed.code == 0, resumed.out
    done = {t["table"] for t in resumed.json["tasks"] if t["status"] == "done"}
    assert done == {"raw.payments"}  # only what had failed is redone
    assert {t: _pg_file(project, t).stat().st_mtime_ns for t in stamps} == stamps
    assert tm(project, "load", "--date", DAY).code == 0
    assert tm(project, "status", "--date", DAY).code == 0


def test_database_down_blocks_load_then_resumes_from_step_1(
    tm: Cli, project: Path, shop_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _closed_port()
    monkeypatch.setenv("SHOP_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{port}/shop")
    down = tm(project, "extract", "--date", DAY)
    assert down.code == 1
    assert "cannot connect to postgresql://postgres@127.0.0.1" in down.out
    status = _status(tm, project)
    assert status["failed"] is True
    assert status["next"] == f"tablemake extract --date {DAY} shop"
    steps = status["steps"]
    assert steps[0]["state"] == "failed" and steps[1]["state"] == "not run"  # type: ignore[index]
    csv_tasks = [t for t in steps[0]["tasks"] if t["extract"] == "order_details"]  # type: ignore[index]
    assert {t["status"] for t in csv_tasks} == {"succeeded"}

    refused = tm(project, "load", "--date", DAY)
    assert refused.code == 2 and "`shop` (failed: cannot connect" in refused.err

    monkeypatch.setenv("SHOP_DATABASE_URL", shop_url)
    resumed = tm(project, "--date", DAY, "--json")  # the plain build resumes the day
    assert resumed.code == 0, resumed.err
    assert resumed.statuses("built") == {"tmp.order_lines", "final.orders_with_details"}
    assert "order_details" not in resumed.err.split("step 1")[0]  # the CSV was not redone
    assert _status(tm, project)["next"] == f"tablemake --date {DAY}"


def test_malformed_csv_row_is_reported_with_file_and_line(tm: Cli, project: Path) -> None:
    csv_path = project / "data_in" / "order_details.csv"
    lines = csv_path.read_text().splitlines()
    lines[4] += ",7"  # line 5: one field too many
    csv_path.write_text("\n".join(lines) + "\n")
    result = tm(project, "extract", "--date", DAY, "order_details")
    assert result.code == 1
    message = "data_in/order_details.csv:5: malformed row: 6 fields, but the header has 5"
    assert message in result.out
    assert message in tm(project, "status", "--date", DAY).out
    assert not _csv_file(project).exists()
    assert not list(_csv_file(project).parent.glob("*"))  # no half-written file either


def test_two_days_side_by_side_and_loads_make_dependents_stale(
    tm: Cli, project: Path, shop_url: str
) -> None:
    assert tm(project, "--date", DAY).code == 0
    assert tm(project, "-q", "--date", DAY).code == 0
    assert tm(project, "-q", "--date", NEXT_DAY).code == 1  # that day is not extracted yet
    dry = tm(project, "-n", "--date", NEXT_DAY)
    assert f"day {NEXT_DAY}: would first extract shop, order_details and load" in dry.out
    with psycopg.connect(shop_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO orders VALUES (41, 1, 1, '2026-11-23 10:00:00+00', 'paid', 'new')"
        )
    assert tm(project, "extract", "--date", NEXT_DAY).code == 0
    assert _parquet(_pg_file(project, "orders"), "SELECT count(*) FROM t") == [(40,)]
    assert _parquet(_pg_file(project, "orders", NEXT_DAY), "SELECT count(*) FROM t") == [(41,)]

    assert tm(project, "load", "--date", NEXT_DAY).code == 0
    assert _warehouse(project, "SELECT count(*) FROM raw.orders") == [(41,)]
    why = tm(project, "why", "final.orders_with_details")
    assert "raw.orders" in why.out and "stale" in why.out
    assert tm(project, "-q", "--date", NEXT_DAY).code == 1  # a load changes a source
    built = tm(project, "--date", NEXT_DAY, "--json")
    assert built.statuses("built") == {"final.orders_with_details"}  # order lines unchanged
    assert _warehouse(project, "SELECT count(*) FROM final.orders_with_details") == [(41,)]

    assert tm(project, "load", "--date", DAY).code == 0  # back to the first day
    assert _warehouse(project, "SELECT count(*) FROM raw.orders") == [(40,)]


def test_plain_build_runs_the_whole_day_once_as_a_subprocess(project: Path) -> None:
    command = [sys.executable, "-m", "tablemake", "-C", str(project), "--date", DAY]
    first = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert first.returncode == 0, first.stderr
    assert "step 1 (extract) 2026-11-23: 10 done" in first.stdout
    assert "step 2 (load) 2026-11-23: 10 done" in first.stdout
    assert "built   final.orders_with_details" in first.stdout
    rows = _warehouse(
        project,
        "SELECT order_id, line_count, amount FROM final.orders_with_details ORDER BY 1 LIMIT 2",
    )
    assert [(r[0], r[1]) for r in rows] == [(1, 2), (2, 3)]
    second = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert second.returncode == 0
    assert "10 up to date" in second.stdout and "done" not in second.stdout.replace("0 done", "")
    assert "built" not in second.stdout


def test_export_writes_csv_and_json_and_B_redoes_the_day_identically(
    tm: Cli, project: Path
) -> None:
    assert tm(project, "--date", DAY).code == 0
    out_csv, out_json = project / "out" / "orders.csv", project / "out" / "orders.json"
    result = tm(
        project, "export", "final.orders_with_details", "--format", "csv", "-o", str(out_csv)
    )
    assert result.code == 0 and "wrote 40 rows" in result.out
    lines = out_csv.read_text().splitlines()
    assert lines[0] == "order_id,ordered_at,status,customer,country,line_count,items,amount,lines"
    assert len(lines) == 41
    assert (
        tm(project, "export", "raw.product_images", "--format", "json", "-o", str(out_json)).code
        == 0
    )
    images = json.loads(out_json.read_text())
    assert images[0]["image"] == "iVBORw0KGgoAAAAR"  # bytea, base64
    missing = tm(project, "export", "raw.nope", "-o", str(out_json))
    assert missing.code == 2 and "does not exist" in missing.err
    query = "SELECT country, COUNT(*) AS n FROM raw.customers GROUP BY country"
    assert (
        tm(project, "export", "--query", query, "--format", "json", "-o", str(out_json)).code == 0
    )
    assert json.loads(out_json.read_text()) == [
        {"country": c, "n": 4} for c in sorted(["DE", "FR", "GB", "PL", "US"])
    ]
    bad = tm(project, "export", "--query", "SELEC 1", "-o", str(out_json))
    assert bad.code == 2 and "--query" in bad.err

    # -B redoes the whole day: the same files and the same export, byte for byte
    files, exported = _all_files(project), out_csv.read_bytes()
    redone = tm(project, "--date", DAY, "-B", "--json")
    assert redone.code == 0 and len(redone.statuses("built")) == 2
    assert "10 done" in redone.err  # both steps were redone, reported on stderr under --json
    assert _all_files(project) == files
    tm(project, "export", "final.orders_with_details", "--format", "csv", "-o", str(out_csv))
    assert out_csv.read_bytes() == exported


# -- in parallel ----------------------------------------------------------------------------


def test_four_at_a_time_gives_the_same_files_and_report_as_one_at_a_time(
    tm: Cli, project: Path
) -> None:
    parallel = tm(project, "extract", "--date", DAY, "-j", "4", "--json")
    assert parallel.code == 0, parallel.out
    for table, rows in PG_TABLES.items():
        assert _parquet(_pg_file(project, table), "SELECT count(*) FROM t") == [(rows,)]
    assert _parquet(_csv_file(project), "SELECT count(*) FROM t") == [(CSV_ROWS,)]
    files = _all_files(project)

    serial = tm(project, "extract", "--date", DAY, "-j", "1", "-B", "--json")
    assert serial.code == 0, serial.out
    assert _all_files(project) == files  # byte for byte, parquet files and manifests
    assert serial.json["tasks"] == parallel.json["tasks"]  # in declared order, not finish order
    assert [t["table"] for t in serial.json["tasks"]] == [
        *(f"raw.{t}" for t in sorted(PG_TABLES)),
        "raw.order_details",
    ]

    loaded = tm(project, "load", "--date", DAY, "-j", "4", "--json")
    assert loaded.code == 0, loaded.out
    assert {t["status"] for t in loaded.json["tasks"]} == {"done"}
    for table, rows in PG_TABLES.items():
        assert _warehouse(project, f"SELECT count(*) FROM raw.{table}") == [(rows,)]
    again = tm(project, "load", "--date", DAY, "-j", "4", "--json")
    assert {t["status"] for t in again.json["tasks"]} == {"up-to-date"}


@pytest.mark.parametrize(
    ("tablefile_jobs", "args"),
    [(1, ("extract", "-j", "4")), (1, ("-j", "3")), (2, ("extract",))],
    ids=["extract -j 4", "plain build -j 3", "[project] jobs = 2"],
)
def test_a_table_that_waits_does_not_hold_up_the_others(
    tm: Cli, project: Path, shop_url: str, tablefile_jobs: int, args: tuple[str, ...]
) -> None:
    """`payments` is locked by another transaction, so its worker waits: every other table
    and the CSV must be written meanwhile, which only tasks running at once can do."""
    tablefile = project / "Tablefile.toml"
    tablefile.write_text(tablefile.read_text().replace("jobs = 2", f"jobs = {tablefile_jobs}"))
    others = [_pg_file(project, t) for t in PG_TABLES if t != "payments"] + [_csv_file(project)]
    manifests = [path.parent / "manifest.json" for path in others]
    with psycopg.connect(shop_url) as locker, ThreadPoolExecutor(1) as pool:
        locker.execute("LOCK TABLE payments IN ACCESS EXCLUSIVE MODE")
        try:
            run = pool.submit(tm, project, "--date", DAY, *args)
            deadline = time.monotonic() + 30
            while not all(m.exists() for m in manifests) and time.monotonic() < deadline:
                time.sleep(0.02)
            written_meanwhile = [m.parent.name for m in manifests if m.exists()]
            payments_waited = not _pg_file(project, "payments").exists()
        finally:
            locker.rollback()  # releases the lock
        result = run.result(timeout=120)
    assert payments_waited and len(written_meanwhile) == len(manifests)
    assert result.code == 0, result.out + result.err
    assert _parquet(_pg_file(project, "payments"), "SELECT count(*) FROM t") == [(30,)]


def test_ctrl_c_cuts_a_waiting_table_short_and_a_rerun_finishes_the_day(
    tm: Cli, project: Path, shop_url: str
) -> None:
    """Ctrl-C while a worker waits on a locked table: the wait is cancelled on the server
    (the lock is still held), the run ends with 130, and the next run redoes what is left."""
    others = [_pg_file(project, t) for t in PG_TABLES if t != "payments"]
    command = [sys.executable, "-m", "tablemake", "-C", str(project), "extract", "--date", DAY]
    with psycopg.connect(shop_url) as locker:
        locker.execute("LOCK TABLE payments IN ACCESS EXCLUSIVE MODE")
        # as from a terminal: the child must start with Python's Ctrl-C handler (see test_cli)
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            proc = subprocess.Popen([*command, "-j", "4"], stdout=subprocess.PIPE, text=True)
        finally:
            signal.signal(signal.SIGINT, previous)
        with proc:
            deadline = time.monotonic() + 30
            while not all(p.exists() for p in others) and time.monotonic() < deadline:
                time.sleep(0.02)
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=30)
            finally:
                locker.rollback()
    assert proc.returncode == 130
    assert not _pg_file(project, "payments").exists()
    rerun = tm(project, "extract", "--date", DAY, "--json")
    assert rerun.code == 0, rerun.out
    assert "raw.payments" in {t["table"] for t in rerun.json["tasks"] if t["status"] == "done"}
    assert _parquet(_pg_file(project, "payments"), "SELECT count(*) FROM t") == [(30,)]


def test_workers_read_the_snapshot_the_coordinator_exported(shop_url: str, tmp_path: Path) -> None:
    """A row committed after the snapshot was exported is not seen by a worker that imports
    it afterwards, on another thread and connection; a new snapshot sees it."""
    orders = PgTable("public", "orders")
    dest = tmp_path / "orders.parquet"
    with (
        postgres.snapshot(shop_url, ("public",)) as exported,
        postgres.SnapshotReaders(exported) as readers,
    ):
        assert orders in exported.tables
        with psycopg.connect(shop_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO orders VALUES (41, 1, 1, '2026-11-23 10:00:00+00', 'paid', 'new')"
            )
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(readers.extract_table, orders, dest).result()
            second = pool.submit(readers.extract_table, orders, dest).result()
    assert first[0] == second[0] == 40
    assert _parquet(dest, "SELECT max(id) FROM t") == [(40,)]
    with (
        postgres.snapshot(shop_url, ("public",)) as later,
        postgres.SnapshotReaders(later) as readers,
    ):
        assert readers.extract_table(orders, dest)[0] == 41


def test_run_tasks_runs_up_to_jobs_at_once_and_reports_in_order() -> None:
    """Every task waits for two others at a barrier: it passes only if three run at once,
    and never more than three run (jobs = 3)."""
    barrier = threading.Barrier(3, timeout=10)
    lock = threading.Lock()
    running, most = 0, 0
    seen_in: set[str] = set()

    def task(n: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        barrier.wait()
        time.sleep(0.01 * (5 - n))  # later tasks tend to finish first
        with lock:
            running -= 1
        return n

    def finished(n: int) -> None:
        seen_in.add(threading.current_thread().name)
        order.append(n)

    order: list[int] = []
    results = run_tasks([partial(task, n) for n in range(6)], 3, finished)
    assert results == list(range(6)) and sorted(order) == results
    assert most == 3
    assert seen_in == {threading.main_thread().name}  # the day log's thread


# -- configuration and secrets --------------------------------------------------------------


def test_url_env_unset_is_a_usage_error_naming_the_variable(
    tm: Cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHOP_DATABASE_URL")
    result = tm(project, "extract", "--date", DAY)
    assert result.code == 2
    assert "Tablefile.toml:12:" in result.err  # the [extract.shop] header
    assert "`SHOP_DATABASE_URL`, which is not set" in result.err
    assert not (project / "data").exists()


def test_passwords_never_reach_files_or_messages(
    tm: Cli, project: Path, shop_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cret-pw"
    monkeypatch.setenv("SHOP_DATABASE_URL", shop_url.replace("postgres@", f"postgres:{secret}@"))
    assert tm(project, "extract", "--date", DAY).code == 0
    manifest = (_pg_file(project, "orders").parent / "manifest.json").read_text()
    assert "postgres:***@127.0.0.1" in manifest and secret not in manifest
    port = _closed_port()
    monkeypatch.setenv("SHOP_DATABASE_URL", f"postgresql://u:{secret}@127.0.0.1:{port}/x")
    down = tm(project, "extract", "--date", NEXT_DAY)
    assert down.code == 1 and secret not in down.out + down.err
    assert secret not in tm(project, "status", "--date", NEXT_DAY).out
    assert redacted(f"postgresql://u:{secret}@h:5/db") == "postgresql://u:***@h:5/db"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('kind = "mysql"', "Tablefile.toml:2: `extract.x.kind` must be one of postgres, csv"),
        ('kind = "postgres"', "Tablefile.toml:1: `extract.x` needs exactly one of `url` and"),
        (
            'kind = "postgres"\nurl = "postgresql://h/db"\npath = "a.csv"',
            "Tablefile.toml:4: `extract.x.path` does not apply to kind = 'postgres'",
        ),
        ('kind = "csv"', "Tablefile.toml:1: `extract.x.path` is required for a csv extract."),
        ('kind = "csv"\npath = "a.csv"\ndataset = "no-dash"', "`extract.x.dataset` must be"),
    ],
)
def test_bad_extract_entries_name_file_and_line(
    tm: Cli, tmp_path: Path, entry: str, message: str
) -> None:
    (tmp_path / "Tablefile.toml").write_text(f"[extract.x]\n{entry}\n")
    result = tm(tmp_path, "extract")
    assert result.code == 2
    assert message in result.err


def test_unknown_extract_name_is_refused(tm: Cli, project: Path) -> None:
    result = tm(project, "extract", "--date", DAY, "shopp")
    assert result.code == 2 and "unknown extract `shopp` (did you mean `shop`?)" in result.err


def test_type_mapping_of_numerics() -> None:
    assert duckdb_type("numeric", -1) == "DECIMAL(38, 9)"
    assert duckdb_type("numeric", ((12 << 16) | 2) + 4) == "DECIMAL(12, 2)"
    assert duckdb_type("numeric", ((60 << 16) | 2) + 4) == "DOUBLE"
    assert duckdb_type("jsonb", -1) == "VARCHAR"


def _closed_port() -> int:
    """A 127.0.0.1 port with nothing listening on it: a database that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- BigQuery -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def bq_emulator() -> Iterator[Emulator]:
    with running_emulator() as running:
        yield running


def test_bigquery_load_job_replaces_the_table_from_a_local_file(
    tmp_path: Path, bq_emulator: Emulator
) -> None:
    """``load_file`` on BigQuery: one parquet load job (WRITE_TRUNCATE) from the local file,
    with the schema read from the file, against the emulator."""
    project_id = f"load-{uuid.uuid4().hex[:8]}"
    first, second = tmp_path / "day1.parquet", tmp_path / "day2.parquet"
    con = duckdb.connect()
    for path, rows in ((first, 3), (second, 2)):
        con.execute(
            f"COPY (SELECT i::BIGINT AS id, (i * 1.25)::DECIMAL(12, 2) AS amount, "
            f"DATE '2026-11-01' + i::INTEGER AS paid_on, i % 2 = 0 AS paid, 'n' || i AS note, "
            f"'\\xAA\\xBB'::BLOB AS image, TIMESTAMP '2026-11-01 10:00:00' AS captured, "
            f"TIMESTAMPTZ '2026-11-01 10:00:00+00' AS at "
            f"FROM range(1, {rows + 1}) t(i)) TO '{path}' (FORMAT parquet)"
        )
    con.close()
    backend = BigQueryBackend(
        BigQuerySettings(project=project_id, endpoint=bq_emulator.endpoint), tmp_path
    )
    try:
        backend.ensure_datasets({"raw"})
        assert backend.load_file("raw.payments", first) == 3
        assert backend.table_columns("raw.payments") == [
            ("id", "INT64"),
            ("amount", "NUMERIC"),
            ("paid_on", "DATE"),
            ("paid", "BOOL"),
            ("note", "STRING"),
            ("image", "BYTES"),
            ("captured", "DATETIME"),
            ("at", "TIMESTAMP"),
        ]
        version = backend.source_versions(["raw.payments"])["raw.payments"]
        assert backend.read_table("raw.payments", 10).rows[0][:5] == (
            1,
            Decimal("1.25"),
            date(2026, 11, 2),
            False,
            "n1",
        )
        assert backend.load_file("raw.payments", second) == 2
        assert len(backend.read_table("raw.payments", 10).rows) == 2  # replaced, not appended
        assert backend.source_versions(["raw.payments"])["raw.payments"] != version
    finally:
        backend.close()


def test_a_prerequisite_the_database_lacks_is_named_with_its_extract(
    tm: Cli, project: Path
) -> None:
    tablefile = project / "Tablefile.toml"
    text = tablefile.read_text()
    deps = '"raw.customers", "tmp.order_lines"]'
    tablefile.write_text(text.replace(deps, deps[:-1] + ', "raw.refunds"]'))
    result = tm(project, "--date", DAY)
    assert result.code == 2
    assert "source table `raw.refunds`" in result.err
    assert "it is a table of [extract.shop]" in result.err


def test_two_postgres_extracts_cannot_share_a_dataset(tm: Cli, tmp_path: Path) -> None:
    (tmp_path / "Tablefile.toml").write_text(
        '[extract.a]\nkind = "postgres"\nurl = "postgresql://h/a"\n\n'
        '[extract.b]\nkind = "postgres"\nurl = "postgresql://h/b"\n'
    )
    result = tm(tmp_path, "extract")
    assert result.code == 2
    assert "Tablefile.toml:5: `extract.b` and `extract.a` are both postgres extracts" in result.err


def test_every_named_schema_is_extracted_and_a_clash_fails_that_table_alone(
    tm: Cli, project: Path, shop_url: str
) -> None:
    with psycopg.connect(shop_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA sales")
        conn.execute("CREATE TABLE sales.refunds AS SELECT 1 AS id, 2.50::numeric(6,2) AS amount")
        conn.execute("CREATE TABLE sales.orders (id bigint)")  # public.orders exists too
    tablefile = project / "Tablefile.toml"
    tablefile.write_text(
        tablefile.read_text().replace('schemas = ["public"]', 'schemas = ["public", "sales"]')
    )
    result = tm(project, "extract", "--date", DAY, "shop", "--json")
    assert result.code == 1
    statuses = {t["table"]: t["status"] for t in result.json["tasks"]}
    assert statuses["raw.refunds"] == "done" and statuses["raw.customers"] == "done"
    failed = [t for t in result.json["tasks"] if t["status"] == "failed" and t["table"]]
    assert [t["detail"] for t in failed] == [
        "sales.orders cannot become table `raw.orders`: also in schema public; extract one of "
        "the schemas into another dataset"
    ]
    refunds = project / "data" / "postgres" / "shop" / "refunds" / DAY / "refunds.parquet"
    assert _parquet(refunds) == [(1, Decimal("2.50"))]


def test_a_file_changed_after_extraction_fails_its_load_and_is_redone(
    tm: Cli, project: Path
) -> None:
    assert tm(project, "extract", "--date", DAY).code == 0
    with _pg_file(project, "customers").open("ab") as fh:
        fh.write(b"x")  # damaged after step 1 said it was whole
    load = tm(project, "load", "--date", DAY)
    assert load.code == 1
    status = tm(project, "status", "--date", DAY)
    assert "step 1 (extract): succeeded" in status.out
    assert "step 2 (load): failed" in status.out
    assert "raw.customers" in status.out and "is missing or changed since" in status.out
    redo = tm(project, "extract", "--date", DAY, "--json")
    assert {t["table"] for t in redo.json["tasks"] if t["status"] == "done"} == {"raw.customers"}
    assert tm(project, "load", "--date", DAY).code == 0
    assert _warehouse(project, "SELECT count(*) FROM raw.customers") == [(20,)]


def test_the_whole_day_on_bigquery(tm: Cli, project: Path, bq_emulator: Emulator) -> None:
    """Extract locally, load with load jobs, build with query jobs: the same project."""
    bq = ("--backend", "bigquery", "--bq-project", f"day-{uuid.uuid4().hex[:8]}")
    bq += ("--bq-endpoint", bq_emulator.endpoint)
    result = tm(project, "--date", DAY, *bq, "--json")
    assert result.code == 0, result.err
    assert result.statuses("built") == {"tmp.order_lines", "final.orders_with_details"}
    assert "step 2 (load) 2026-11-23: 10 done" in result.err
    again = tm(project, "--date", DAY, *bq, "--json")
    assert again.code == 0 and not again.statuses("built")
    assert "step 2 (load) 2026-11-23: 0 done, 10 up to date" in again.err
    shown = tm(
        project, "show", "final.orders_with_details", "--format", "json", "--limit", "50", *bq
    )
    assert len(json.loads(shown.out)) == 40
