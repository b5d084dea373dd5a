"""Crashes and concurrent runs lose nothing.

A ``-j 4`` build is killed with SIGKILL (no handler runs, as in a power cut of the process)
at several moments, on DuckDB and on simulate. Afterwards every table holds exactly its
previous or its new version, the state store opens, every recorded build matches its table,
and the next run rebuilds exactly the targets the killed run did not finish. Two processes
never build one project at once: the second fails naming the holder or, with ``--wait``,
waits; a holder killed with SIGKILL leaves no stale lock.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tablemake.state import StateStore
from tests.conftest import Cli

TARGETS = [f"tmp.t{i:02d}" for i in range(12)]
SEED_ROWS = 200_000  # enough that each statement takes a moment a kill can land in


def _deps(i: int) -> list[str]:
    """A DAG of depth 4+ with joins: t_i reads t_{i-1} and t_{i-3} (or the seed)."""
    found = [TARGETS[j] for j in (i - 1, i - 3) if j >= 0]
    return found or ["raw.seed"]


def _write_project(root: Path, version: str, backend: str) -> None:
    lines = [
        "[project]",
        'name = "crash"',
        "jobs = 4",
        "[warehouse]",
        f'backend = "{backend}"',
        '[sources."raw.seed"]',
        'init = "db_init/seed.sql"',
    ]
    (root / "db_init").mkdir(parents=True, exist_ok=True)
    (root / "res/tmp").mkdir(parents=True, exist_ok=True)
    (root / "db_init/seed.sql").write_text(
        "CREATE OR REPLACE TABLE `raw.seed` AS "
        f"SELECT n FROM UNNEST(GENERATE_ARRAY(1, {SEED_ROWS})) AS n"
    )
    for i, name in enumerate(TARGETS):
        deps = _deps(i)
        lines += [f'[targets."{name}"]', f"deps = {deps!r}".replace("'", '"'), "duration = 0.15"]
        union = " UNION ALL ".join(f"SELECT n FROM `{dep}`" for dep in deps)
        (root / f"res/tmp/t{i:02d}.sql").write_text(
            f"SELECT DISTINCT n, '{version}' AS version FROM ({union}) AS u"
        )
    (root / "Tablefile.toml").write_text("\n".join(lines) + "\n")


def _versions(root: Path) -> dict[str, tuple[tuple[str, int], ...]]:
    """Per table, its (version, row count) groups: one group of SEED_ROWS when whole."""
    con = duckdb.connect(str(root / ".state/warehouse.duckdb"), read_only=True)
    try:
        return {
            name: tuple(
                con.execute(
                    f'SELECT version, count(*) FROM "tmp"."{name[4:]}" GROUP BY 1 ORDER BY 1'
                ).fetchall()
            )
            for name in TARGETS
        }
    finally:
        con.close()


def _tablemake(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-u", "-m", "tablemake", "-C", str(root), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_after(root: Path, events: int, delay: float) -> bool:
    """Start a -j 4 build and SIGKILL it ``delay`` seconds after its ``events``-th event line;
    False when it had ended by then (on a loaded machine the reader can lag behind)."""
    with _tablemake(root, "-j", "4") as proc:
        assert proc.stdout is not None
        seen = 0
        while seen < events:
            line = proc.stdout.readline()
            assert line, f"the build ended before event {events}: {proc.stderr}"
            seen += line.lstrip().startswith(("start", "built"))
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode in (0, -signal.SIGKILL), proc.returncode
    return proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("backend", ["duckdb", "simulate"])
def test_sigkill_at_several_moments_leaves_old_or_new_tables_and_a_usable_state(
    tmp_path: Path, tm: Cli, backend: str
) -> None:
    root = tmp_path / "crash"
    _write_project(root, "v0", backend)
    assert tm(root, "init-db").code == 0
    assert tm(root, "-j", "4").code == 0
    chance = random.Random(7)
    cut_short = 0  # kill points that left targets unfinished
    for point, events in enumerate((1, 4, 9, 15), start=1):
        _write_project(root, f"v{point}", backend)  # every script changes: all stale
        if not _kill_after(root, events, delay=chance.uniform(0.0, 0.05)):
            continue

        with StateStore(root / ".state") as state:
            records = state.builds(backend)
            [killed, *_] = state.runs()
        assert killed.status == "running" and killed.finished is None
        finished = {name for name, rec in records.items() if rec.run_id == killed.id}
        cut_short += len(finished) < len(TARGETS)
        if backend == "duckdb":
            versions = _versions(root)
            for name in TARGETS:
                [group] = versions[name]  # one version, all rows: never half-written
                assert group in {(f"v{point - 1}", SEED_ROWS), (f"v{point}", SEED_ROWS)}, name
                if name in finished:  # recorded means replaced
                    assert group == (f"v{point}", SEED_ROWS), name

        rerun = tm(root, "-j", "4", "--json")
        assert rerun.code == 0, rerun.err
        assert rerun.statuses("built") == set(TARGETS) - finished, f"kill point {point}"
        assert rerun.statuses("up-to-date") == finished
        with StateStore(root / ".state") as state:
            statuses = {run.id: run.status for run in state.runs()}
        assert statuses[killed.id] == "abandoned"
        if backend == "duckdb":
            assert all(v == ((f"v{point}", SEED_ROWS),) for v in _versions(root).values())
    assert cut_short >= 2, "the kills came too late to test anything"


def _hold_lock(state_dir: Path) -> subprocess.Popen[str]:
    code = (
        "import sys, time; from tablemake.state import project_lock; from pathlib import Path\n"
        "with project_lock(Path(sys.argv[1])):\n print('locked', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(state_dir)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_a_holder_killed_with_sigkill_leaves_no_stale_lock(shop: Path, tm: Cli) -> None:
    holder = _hold_lock(shop / ".state")
    try:
        locked = tm(shop, "--backend", "simulate", "-n")
        assert locked.code == 2
        assert f"(pid {holder.pid} on " in locked.err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=30)
    # The lock file still names the dead holder, but the kernel released its flock.
    assert str(holder.pid) in (shop / ".state/lock").read_text()
    assert tm(shop, "--backend", "simulate", "-n").code == 0


def test_wait_blocks_until_the_holder_is_gone_then_builds(shop: Path) -> None:
    holder = _hold_lock(shop / ".state")
    try:
        with _tablemake(shop, "--backend", "simulate", "--wait", "tmp.products") as waiting:
            assert waiting.stderr is not None
            assert f"waiting for another tablemake (pid {holder.pid} on " in (
                waiting.stderr.readline()
            )
            time.sleep(0.5)
            assert waiting.poll() is None, "it should still be waiting"
            os.kill(holder.pid, signal.SIGKILL)
            out, err = waiting.communicate(timeout=60)
    finally:
        holder.kill()
        holder.communicate(timeout=30)
    assert waiting.returncode == 0, err
    assert "done: 3 built" in out
