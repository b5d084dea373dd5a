"""One build, start to finish: select, plan, schedule, record.

This is the function the CLI and the API both call. It wires the pipeline steps together
and owns the one policy they leave open: a target's state is recorded only after its table
was replaced successfully, in the calling thread, as soon as it finishes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tablemake.backends import BuildRequest, BuildResult
from tablemake.errors import UserError
from tablemake.graph import select_targets
from tablemake.plan import (
    Observed,
    Plan,
    TargetPlan,
    plan_rebuild,
    source_names,
)
from tablemake.report import Reporter, RunReport, Status, TargetResult, plan_results
from tablemake.scheduler import Finished, Outcome, remaining_path, run_jobs
from tablemake.state import BuildRecord, RunRecord, StateStore, TargetRunRecord
from tablemake.tablefile import Target
from tablemake.workspace import Session, Workspace


@dataclass(frozen=True)
class BuildOptions:
    targets: Sequence[str] = ()
    jobs: int | None = None
    dry_run: bool = False
    question: bool = False
    always: bool = False
    keep_going: bool = False
    trigger: str = "cli"
    command: str = ""


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def make_plan(session: Session, targets: Sequence[str], *, always: bool = False) -> Plan:
    workspace, backend = session.workspace, session.backend
    selected = select_targets(workspace.graph, targets or workspace.default_targets())
    observed = Observed(
        records=session.state.builds(backend.state_key),
        existing=backend.existing_tables(selected),
        source_versions=backend.source_versions(source_names(workspace.graph, selected)),
    )
    return plan_rebuild(workspace.tablefile, workspace.graph, selected, observed, always=always)


def run_build(session: Session, options: BuildOptions, reporter: Reporter) -> RunReport:
    began = time.time()
    workspace, backend, state = session.workspace, session.backend, session.state
    plan = make_plan(session, options.targets, always=options.always)
    jobs = options.jobs or workspace.tablefile.project.jobs
    if jobs < 1:
        raise UserError(f"-j takes a number of parallel jobs >= 1, not {jobs}.")
    todo = {t.name: t for t in plan.to_build}
    estimates = _estimate(session, todo.values()) if options.dry_run else {}
    reporter.planned(
        plan, backend=backend.name, jobs=jobs, dry_run=options.dry_run, estimates=estimates
    )
    if options.dry_run or options.question or not todo:
        outcome = plan_results(plan, estimates)
        report = RunReport(None, backend.name, outcome, seconds=time.time() - began)
        reporter.completed(report)
        return report

    run_id = new_run_id()
    state.start_run(
        RunRecord(
            run_id, backend.state_key, began, None, "running", options.trigger, options.command
        )
    )
    records = state.builds(backend.state_key)
    versions: dict[str, str] = {name: rec.version for name, rec in records.items()}
    versions.update({k: v for k, v in plan.source_versions.items() if v is not None})
    backend.ensure_datasets({name.split(".", 1)[0] for name in todo})
    tablefile = workspace.tablefile

    def build(name: str) -> BuildResult:
        return backend.build_table(_request(todo[name], tablefile.targets[name], run_id))

    results: dict[str, TargetResult] = {}

    def on_finish(done: Finished[BuildResult]) -> None:
        target = tablefile.targets[done.name]
        result = _record(
            state,
            todo[done.name],
            done,
            warehouse=backend.state_key,
            run_id=run_id,
            versions=versions,
            deps=target.deps,
            script_path=target.sql,
        )
        results[done.name] = result
        reporter.finished(result)

    durations = _estimated_durations(todo, records, workspace)
    schedule = run_jobs(
        {name: workspace.graph.deps[name] for name in todo},
        build,
        jobs=jobs,
        keep_going=options.keep_going,
        priority=remaining_path({n: workspace.graph.deps[n] for n in todo}, durations),
        on_start=reporter.started,
        on_finish=on_finish,
    )
    targets = [
        results.get(t.name) or TargetResult(t.name, Status.UP_TO_DATE, ()) for t in plan.targets
    ]
    report = RunReport(run_id, backend.name, targets, schedule.interrupted, time.time() - began)
    status = "interrupted" if schedule.interrupted else ("ok" if report.ok else "failed")
    state.finish_run(run_id, status)
    reporter.completed(report)
    return report


def _estimate(session: Session, todo: Iterable[TargetPlan]) -> dict[str, int | None]:
    """Bytes each stale target would scan, from warehouses that can tell before running."""
    backend, tablefile = session.backend, session.workspace.tablefile
    if not backend.can_estimate:
        return {}
    estimates: dict[str, int | None] = {}
    for planned in todo:
        request = _request(planned, tablefile.targets[planned.name], "dry-run")
        estimates[planned.name] = backend.estimate_bytes(request)
    return estimates


def _request(planned: TargetPlan, target: Target, run_id: str) -> BuildRequest:
    return BuildRequest(planned.name, planned.script.text, target.sql, run_id, target.duration)


def _record(
    state: StateStore,
    planned: TargetPlan,
    done: Finished[BuildResult],
    *,
    warehouse: str,
    run_id: str,
    versions: dict[str, str],
    deps: Sequence[str],
    script_path: str,
) -> TargetResult:
    reasons = tuple(str(r) for r in planned.reasons)
    if done.outcome is Outcome.BUILT and done.result is not None:
        result = done.result
        version = f"{run_id}/{done.name}"  # unique per build of this target
        record = BuildRecord(
            target=done.name,
            version=version,
            script_digest=planned.script.digest,
            script_text=planned.script.text,
            definition=planned.definition,
            inputs={dep: versions[dep] for dep in deps if dep in versions},
            started=done.started or 0.0,
            finished=done.finished or 0.0,
            rows=result.rows,
            run_id=run_id,
        )
        state.record_build(warehouse, record, result.sql)
        versions[done.name] = version
        return TargetResult(done.name, Status.BUILT, reasons, done.seconds, result.rows)
    if done.outcome is Outcome.FAILED:
        error = _describe(done.error, script_path)
        state.record_target_run(
            TargetRunRecord(run_id, done.name, "failed", done.started, done.finished, None, error)
        )
        return TargetResult(done.name, Status.FAILED, reasons, done.seconds, error=error)
    state.record_target_run(
        TargetRunRecord(run_id, done.name, "skipped", None, None, None, done.reason)
    )
    return TargetResult(done.name, Status.SKIPPED, (done.reason,))


def _describe(error: BaseException | None, script_path: str) -> str:
    if isinstance(error, UserError):
        return str(error)
    return f"{script_path}: {error}"


def _estimated_durations(
    todo: Mapping[str, TargetPlan], records: Mapping[str, BuildRecord], workspace: Workspace
) -> dict[str, float]:
    """Last recorded duration, else the Tablefile's ``duration``, else the mean of what is
    known (1 s when nothing is): priorities need relative sizes, not exact ones."""
    known: dict[str, float] = {}
    for name in todo:
        if name in records:
            known[name] = records[name].seconds
        elif workspace.tablefile.targets[name].duration is not None:
            known[name] = workspace.tablefile.targets[name].duration or 0.0
    fallback = sum(known.values()) / len(known) if known else 1.0
    return {name: known.get(name, fallback) for name in todo}
