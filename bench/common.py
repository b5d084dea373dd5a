"""What every benchmark shares: running tablemake as a real subprocess and timing it from
the outside (interpreter start included), repeating runs, and writing tables and JSON.

Times are wall-clock seconds of the whole process; memory is the child's own peak resident
set (``ru_maxrss`` from ``wait4``, so it is that one process, not the largest child ever).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"


@dataclass(frozen=True)
class Timed:
    seconds: float
    cpu_seconds: float  # user + system: robust to other load on the machine
    max_rss_mib: float
    returncode: int
    stdout: str


# Set in these development sandboxes, not in a user's shell: the first makes every run
# compile every module from source (no .pyc is written), the second turns each line of
# output into its own system call. Children run without them, as users run tablemake.
SANDBOX_ONLY_ENV = ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED")


def child_env() -> dict[str, str]:
    """The environment a timed child process (tablemake, or the tool compared with it) gets."""
    return {k: v for k, v in os.environ.items() if k not in SANDBOX_ONLY_ENV}


def tablemake(args: Sequence[str], cwd: Path, *, check: bool = True) -> Timed:
    """Run ``python -m tablemake ARGS`` in ``cwd``; time it and take its peak memory."""
    return timed_process([sys.executable, "-m", "tablemake", *args], cwd, check=check)


def timed_process(
    command: Sequence[str],
    cwd: Path,
    *,
    extra_env: Mapping[str, str] | None = None,
    check: bool = True,
) -> Timed:
    """Run a whole process in ``cwd``, timed from outside, with its own peak memory."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**child_env(), **(extra_env or {})},
    )
    assert proc.stdout is not None
    with proc.stdout:
        out = proc.stdout.read()  # drain before waiting: a full pipe would block the child
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} in {cwd} exited {proc.returncode}:\n{out[-3000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return Timed(seconds, cpu, usage.ru_maxrss / 1024, proc.returncode, out)


@dataclass(frozen=True)
class Stats:
    median: float
    min: float
    max: float
    runs: int

    def as_json(self) -> dict[str, float | int]:
        return {"median": self.median, "min": self.min, "max": self.max, "runs": self.runs}


def stats(values: Sequence[float]) -> Stats:
    return Stats(statistics.median(values), min(values), max(values), len(values))


def repeat(runs: int, measure: Callable[[], float]) -> Stats:
    return stats([measure() for _ in range(runs)])


def last_run_span(root: Path) -> float:
    """First target start to last target finish of the newest run, from the state store:
    the schedule's own makespan, free of interpreter start, loading and planning."""
    import sqlite3

    with sqlite3.connect(root / ".state" / "state.sqlite") as db:
        row = db.execute(
            "SELECT MAX(finished) - MIN(started) FROM run_targets WHERE run_id = "
            "(SELECT id FROM runs ORDER BY started DESC LIMIT 1)"
        ).fetchone()
    return float(row[0])


def machine() -> dict[str, Any]:
    """What the numbers were measured on: they mean little without it."""
    from importlib.metadata import version

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "duckdb": version("duckdb"),
        "sqlglot": version("sqlglot"),
        "load_average_1min": os.getloadavg()[0],  # when this was called: see the caller
    }


def write_json(name: str, payload: dict[str, Any], out_dir: Path | None = None) -> Path:
    directory = out_dir or RESULTS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2) + "\n")
    return path


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table: printed by each bench and pasted into RESULTS.md as is."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
