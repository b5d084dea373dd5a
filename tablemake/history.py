"""What happened: past runs, what one target sent and got back, and each node's state now.

Pure queries over the ``StateStore`` (plus one plan for ``observe_states``) returning frozen
dataclasses, and plain-text formatters for the CLI. Nothing here writes state.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from tablemake.draw import NodeState, node_states
from tablemake.errors import UserError
from tablemake.graph import select_targets
from tablemake.plan import Observed, plan_rebuild, source_names
from tablemake.state import RunRecord, StateStore, TargetRunRecord
from tablemake.workspace import Session

_EVERY_RUN = -1  # SQLite reads a negative LIMIT as "no limit"
_FAILURE_LOOKBACK = 50  # runs searched for a target's last attempt when colouring the graph


@dataclass(frozen=True)
class RunSummary:
    id: str
    warehouse: str
    started: float
    seconds: float | None  # None while the run is still going (or was killed)
    status: str
    trigger: str  # "cli" or "api"
    command: str
    built: int
    failed: int
    skipped: int


@dataclass(frozen=True)
class TargetLog:
    run: RunRecord
    entry: TargetRunRecord

    @property
    def seconds(self) -> float | None:
        if self.entry.started is None or self.entry.finished is None:
            return None
        return self.entry.finished - self.entry.started


def summarize_run(run: RunRecord, targets: Sequence[TargetRunRecord]) -> RunSummary:
    def count(status: str) -> int:
        return sum(1 for t in targets if t.status == status)

    seconds = run.finished - run.started if run.finished is not None else None
    return RunSummary(
        run.id,
        run.warehouse,
        run.started,
        seconds,
        run.status,
        run.trigger,
        run.command,
        count("built"),
        count("failed"),
        count("skipped"),
    )


def run_history(state: StateStore, limit: int = 20) -> list[RunSummary]:
    """The newest ``limit`` runs, newest first."""
    return [summarize_run(run, state.run_targets(run.id)) for run in state.runs(limit)]


def find_run(state: StateStore, run_id: str | None = None) -> RunRecord:
    """The run with this id (or unique id prefix); the newest run when ``run_id`` is None."""
    if run_id is None:
        newest = state.runs(1)
        if not newest:
            raise UserError("no run is recorded yet: build something first, e.g. `tablemake`.")
        return newest[0]
    exact = state.run(run_id)
    if exact is not None:
        return exact
    matches = [r for r in state.runs(_EVERY_RUN) if r.id.startswith(run_id)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UserError(f"no run `{run_id}` is recorded; `tablemake history` lists the runs.")
    ids = ", ".join(r.id for r in matches[:5])
    raise UserError(f"`{run_id}` matches several runs ({ids}); give more of the id.")


def target_log(state: StateStore, target: str, run_id: str | None = None) -> TargetLog:
    """What ``target`` ran in that run, or in the newest run that attempted it."""
    runs = [find_run(state, run_id)] if run_id is not None else state.runs(_EVERY_RUN)
    for run in runs:
        entry = next((t for t in state.run_targets(run.id) if t.target == target), None)
        if entry is not None:
            return TargetLog(run, entry)
    where = f"run {runs[0].id}" if run_id is not None else "any recorded run"
    raise UserError(f"`{target}` was not part of {where}; `tablemake history` lists the runs.")


def last_failed(state: StateStore, warehouse: str) -> set[str]:
    """Targets whose latest attempt on ``warehouse`` failed (skips do not count: a skipped
    target did not run, its prerequisite failed)."""
    latest: dict[str, str] = {}
    for run in state.runs(_FAILURE_LOOKBACK):
        if run.warehouse != warehouse:
            continue
        for entry in state.run_targets(run.id):
            if entry.status != "skipped":
                latest.setdefault(entry.target, entry.status)
    return {name for name, status in latest.items() if status == "failed"}


def observe_states(session: Session, targets: Sequence[str] = ()) -> dict[str, NodeState]:
    """Each node's state for the graph picture: planned like a dry run (nothing is built).
    Before the sources are loaded there is nothing to compare with, so targets are drawn
    as unknown instead of failing: the graph itself is still worth seeing."""
    graph, backend = session.workspace.graph, session.backend
    selected = select_targets(graph, targets or graph.targets)
    versions = backend.source_versions(source_names(graph, selected))
    plan = None
    if all(v is not None for v in versions.values()):
        observed = Observed(
            session.state.builds(backend.state_key),
            backend.existing_tables(selected),
            versions,
            partial(session.state.built_script, backend.state_key),
        )
        plan = plan_rebuild(session.workspace.tablefile, graph, selected, observed)
    return node_states(graph, plan, last_failed(session.state, backend.state_key))


def format_time(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def format_history(runs: Sequence[RunSummary]) -> str:
    if not runs:
        return "no runs recorded yet\n"
    rows = [("run", "started", "duration", "built", "failed", "skipped", "trigger", "status")]
    rows += [
        (
            r.id,
            format_time(r.started),
            format_seconds(r.seconds),
            str(r.built),
            str(r.failed),
            str(r.skipped),
            r.trigger,
            r.status,
        )
        for r in runs
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n"
        for row in rows
    )


def format_log(log: TargetLog) -> str:
    entry, run = log.entry, log.run
    lines = [
        f"{entry.target} in run {run.id} ({run.trigger}, {run.warehouse})",
        f"status:   {entry.status}",
        f"started:  {format_time(entry.started) if entry.started else '-'}",
        f"duration: {format_seconds(log.seconds)}",
        f"rows:     {entry.rows if entry.rows is not None else '-'}",
    ]
    if entry.error:
        lines.append(f"error:    {entry.error}")
    lines.append("sql sent:" if entry.sql else "sql sent: (none recorded)")
    if entry.sql:
        lines += [f"  {line}" for line in entry.sql.strip().splitlines()]
    return "\n".join(lines) + "\n"
