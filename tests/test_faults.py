"""A flaky warehouse: faults injected at the backend boundary (``TABLEMAKE_FAULTS``) around
the real DuckDB and simulate backends. Transient errors are retried with backoff and
reported per target; a hung target fails at its ``timeout`` and is not recorded; ``-k``
keeps the rest of the graph going."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import duckdb
import pytest

from tablemake import retry
from tablemake.errors import TransientWarehouseError
from tablemake.retry import RetryPolicy, TargetTimeout, call_with_retries
from tests.conftest import Cli

# 10**10 rows: far longer than any test waits, so only the timeout can end it.
ENDLESS = (
    "SELECT COUNT(*) AS n FROM UNNEST(GENERATE_ARRAY(1, 100000)) AS a "
    "CROSS JOIN UNNEST(GENERATE_ARRAY(1, 100000)) AS b"
)


def _add(project: Path, header: str, *lines: str) -> None:
    """Add key lines right under a table header of the Tablefile."""
    path = project / "Tablefile.toml"
    text = path.read_text()
    assert header in text
    path.write_text(text.replace(header, "\n".join([header, *lines]), 1))


def _rows(project: Path, table: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(project / ".state/warehouse.duckdb"), read_only=True)
    try:
        return con.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
    finally:
        con.close()


@pytest.fixture
def loaded(shop: Path, tm: Cli) -> Path:
    assert tm(shop, "init-db").code == 0
    return shop


def test_flaky_duckdb_builds_everything_with_retries_and_same_rows(
    loaded: Path, tm: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = tmp_path / "reference"
    reference.mkdir()
    for item in loaded.iterdir():
        if item.name != ".state":
            (reference / item.name).symlink_to(item)
    assert tm(reference, "init-db").code == 0
    assert tm(reference, "-j", "4").code == 0

    _add(loaded, "[project]", "retries = 8", "retry_backoff = 0.01")
    # Half the calls fail before reaching DuckDB; a third of the rest lose their answer
    # after DuckDB replaced the table (the ambiguous case): re-running must be harmless.
    monkeypatch.setenv("TABLEMAKE_FAULTS", "fail=0.5,lose=0.3,seed=11")
    result = tm(loaded, "-j", "4", "--json")
    assert result.code == 0, result.out + result.err
    every = {t["name"] for t in result.json["targets"]}
    assert result.statuses("built") == every
    assert "final.products" in every
    attempts = {t["name"]: t["attempts"] for t in result.json["targets"]}
    assert all(n >= 1 for n in attempts.values())
    assert sum(attempts.values()) > len(every), "the faults should have forced retries"
    for table in every:
        assert _rows(loaded, table) == _rows(reference, table), table

    monkeypatch.delenv("TABLEMAKE_FAULTS")
    again = tm(loaded, "--json")
    assert again.statuses("up-to-date") == every


def test_retries_run_out_then_the_target_fails_with_its_attempts_reported(
    shop: Path, tm: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add(shop, "[project]", "retries = 2", "retry_backoff = 0.2")
    _add(shop, '[targets."tmp.product_images"]', "retries = 0")
    monkeypatch.setenv("TABLEMAKE_FAULTS", "fail=1")
    began = time.monotonic()
    result = tm(shop, "--backend", "simulate", "-k", "-j", "4", "tmp.variant_images", "--json")
    elapsed = time.monotonic() - began
    assert result.code == 1
    [target] = result.json["targets"]
    assert (target["status"], target["attempts"]) == ("failed", 3)
    assert "injected fault: call 3 failed" in target["error"]
    assert "(tried 3 times)" in target["error"]
    # Backoff 0.2 s then 0.4 s, each jittered to 50-100%: at least 0.3 s of waiting.
    assert elapsed >= 0.3

    console = tm(shop, "--backend", "simulate", "-k", "tmp.product_images", "tmp.variant_images")
    assert console.code == 1
    lines = console.out.splitlines()
    [images] = [line for line in lines if "FAILED  tmp.product_images" in line]
    [variants] = [line for line in lines if "FAILED  tmp.variant_images" in line]
    assert "attempts" not in images  # its own `retries = 0`
    assert variants.endswith("(3 attempts)")
    from tablemake.state import StateStore

    with StateStore(shop / ".state") as state:
        last = state.runs()[0]
        attempts = {line.target: line.attempts for line in state.run_targets(last.id)}
    assert attempts == {"tmp.product_images": 1, "tmp.variant_images": 3}


def test_a_hung_target_fails_at_its_timeout_and_keep_going_builds_the_rest(
    shop: Path, tm: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add(shop, '[targets."tmp.variant_images"]', "timeout = 0.5")
    monkeypatch.setenv("TABLEMAKE_FAULTS", "hang=tmp.variant_images")
    began = time.monotonic()
    result = tm(shop, "--backend", "simulate", "-k", "-j", "4", "--json")
    assert time.monotonic() - began < 30
    assert result.code == 1
    assert result.statuses("failed") == {"tmp.variant_images"}
    skipped = result.statuses("skipped")
    assert {"tmp.variants", "final.products"} <= skipped
    every = {t["name"] for t in result.json["targets"]}
    assert result.statuses("built") == every - skipped - {"tmp.variant_images"} != set()
    [failed] = [t for t in result.json["targets"] if t["status"] == "failed"]
    assert "timed out after 0.5 s" in failed["error"]
    assert "the statement was stopped" in failed["error"]

    monkeypatch.delenv("TABLEMAKE_FAULTS")
    plan = tm(shop, "--backend", "simulate", "-n", "--json")
    assert plan.statuses("would-build") == skipped | {"tmp.variant_images"}


def test_slow_calls_within_the_timeout_build_and_past_it_fail(
    shop: Path, tm: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add(shop, "[project]", "timeout = 5")
    _add(shop, '[targets."tmp.product_images"]', "timeout = 0.2")
    monkeypatch.setenv("TABLEMAKE_FAULTS", "slow=1:0.4")
    result = tm(shop, "--backend", "simulate", "-k", "tmp.products", "--json")
    assert result.code == 1
    assert result.statuses("failed") == {"tmp.product_images"}
    assert result.statuses("skipped") == {"tmp.products"}
    assert result.statuses("built") == {"tmp.product_categories"}
    [built] = [t for t in result.json["targets"] if t["status"] == "built"]
    assert built["seconds"] >= 0.4 and built["attempts"] == 1


def test_a_duckdb_statement_past_its_timeout_is_interrupted_and_the_old_table_kept(
    loaded: Path, tm: Cli
) -> None:
    assert tm(loaded, "-j", "4").code == 0
    before = _rows(loaded, "tmp.variant_images")
    (loaded / "res/tmp/variant_images.sql").write_text(ENDLESS)
    _add(loaded, '[targets."tmp.variant_images"]', "timeout = 1")
    began = time.monotonic()
    result = tm(loaded, "-k", "--json")
    assert time.monotonic() - began < 30, "the statement was not interrupted"
    assert result.code == 1
    [failed] = [t for t in result.json["targets"] if t["status"] == "failed"]
    assert failed["name"] == "tmp.variant_images"
    assert "timed out after 1 s" in failed["error"]
    assert "the statement was stopped" in failed["error"]
    assert _rows(loaded, "tmp.variant_images") == before
    assert "tmp.variant_images" in {
        t["name"]
        for t in tm(loaded, "-n", "--json").json["targets"]
        if t["status"] == "would-build"
    }


def test_a_call_that_ignores_cancel_still_gives_its_worker_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(retry, "CANCEL_GRACE_SECONDS", 0.1)
    cancelled: list[bool] = []
    began = time.monotonic()
    with pytest.raises(TargetTimeout, match="it may still run in the warehouse"):
        call_with_retries(
            lambda: time.sleep(5),
            RetryPolicy(retries=3, timeout=0.2),
            on_attempt=lambda n: None,
            cancel=lambda: cancelled.append(True),
        )
    assert cancelled == [True]
    assert time.monotonic() - began < 2  # not retried: the timeout is the target's bound


def test_only_transient_errors_are_retried() -> None:
    seen: list[int] = []

    def permanent() -> None:
        raise ValueError("bad SQL")

    with pytest.raises(ValueError, match="bad SQL"):
        call_with_retries(permanent, RetryPolicy(retries=5, backoff=0), on_attempt=seen.append)
    assert seen == [1]

    calls = iter([TransientWarehouseError("busy"), TransientWarehouseError("busy"), None])

    def flaky() -> str:
        error = next(calls)
        if error:
            raise error
        return "ok"

    assert call_with_retries(flaky, RetryPolicy(retries=5, backoff=0), on_attempt=seen.append)
    assert seen == [1, 1, 2, 3]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("retries = -1", "`project.retries` must be a whole number >= 0, not -1."),
        ("retry_backoff = true", "`project.retry_backoff` must be a number of seconds >= 0"),
        ("timeout = 0", "`project.timeout` must be a number of seconds > 0, not 0."),
    ],
)
def test_bad_retry_settings_are_usage_errors(shop: Path, tm: Cli, line: str, message: str) -> None:
    _add(shop, "[project]", line)
    result = tm(shop, "-n")
    assert result.code == 2
    assert message in result.err
    assert "Tablefile.toml:" in result.err


def test_a_bad_fault_spec_is_a_usage_error(
    shop: Path, tm: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TABLEMAKE_FAULTS", "fail=2")
    result = tm(shop, "--backend", "simulate")
    assert result.code == 2
    assert "TABLEMAKE_FAULTS: cannot read the fault `fail=2`" in result.err


def test_a_real_duckdb_write_conflict_is_transient_and_retried_until_it_clears(
    tmp_path: Path,
) -> None:
    from tablemake.backends.base import BuildRequest
    from tablemake.backends.duckdb import DuckDBBackend

    backend = DuckDBBackend(tmp_path / "w.duckdb")
    try:
        backend.ensure_datasets({"tmp"})
        request = BuildRequest("tmp.x", "SELECT 3 AS n", "res/tmp/x.sql", "r1")
        backend.build_table(request)
        other = backend._connection().cursor()  # another writer of the same file, mid-transaction
        other.execute("BEGIN")
        other.execute('CREATE OR REPLACE TABLE "tmp"."x" AS SELECT 2 AS n')
        with pytest.raises(TransientWarehouseError, match="write-write conflict"):
            backend.build_table(request)
        finishing = threading.Timer(0.3, lambda: other.execute("ROLLBACK"))
        finishing.start()
        attempts: list[int] = []
        result = call_with_retries(
            lambda: backend.build_table(request),
            RetryPolicy(retries=8, backoff=0.05),
            on_attempt=attempts.append,
        )
        finishing.join()
        assert result.rows == 1 and len(attempts) > 1
        assert backend.read_table("tmp.x", 5).rows == [(3,)]
    finally:
        backend.close()
