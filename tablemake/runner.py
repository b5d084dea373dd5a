"""One build, start to finish: select, plan, schedule, record.

This is the function the CLI and the API both call. It wires the pipeline steps together
and owns the one policy they leave open: a target's state is recorded only after its table
was replaced successfully, in the calling thread, as soon as it finishes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial

from tablemake import sql
from tablemake.backends import Backend, BuildRequest, BuildResult
from tablemake.backends.base import Interruptible, SourceSnapshot
from tablemake.cutoff import CUT_OFF_REASON, can_skip, content_based_version, cutoff_targets
from tablemake.errors import UserError
from tablemake.graph import build_graph, select_targets
from tablemake.params import BoundParam, bind_values
from tablemake.partitions import Span, expand_partitions, selected_names
from tablemake.plan import (
    PARAM_PREFIX,
    Action,
    Observed,
    Plan,
    TargetPlan,
    plan_rebuild,
    source_names,
)
from tablemake.python_targets import ALL_ROWS, RowsToLoad, compute_rows, target_arguments
from tablemake.report import Reporter, RunReport, Status, TargetResult, plan_results
from tablemake.retry import call_with_retries, project_policy, retry_policy
from tablemake.scheduler import Finished, Outcome, remaining_path, run_jobs
from tablemake.state import BuildRecord, RunRecord, StateStore, TargetRunRecord
from tablemake.state_writer import StateWriter, Write
from tablemake.tablefile import Target, table_of
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
    variables: tuple[tuple[str, str], ...] = ()  # --var name=value, as given
    span: Span | None = None  # --from/--to: the partitions to backfill
    run_id: str | None = None  # given by a caller that must name the run before it starts


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def make_plan(
    session: Session,
    targets: Sequence[str],
    *,
    always: bool = False,
    variables: Sequence[tuple[str, str]] = (),
    span: Span | None = None,
) -> Plan:
    run = _for_run(session, targets, variables, span)
    return _plan(run, always=always)


@dataclass(frozen=True)
class _Run:
    """The session as this run sees it: partitioned targets expanded into this run's
    instances, the parameters bound, the targets named."""

    session: Session
    params: Mapping[str, BoundParam]
    names: list[str]


def _for_run(
    session: Session,
    targets: Sequence[str],
    variables: Sequence[tuple[str, str]],
    span: Span | None,
) -> _Run:
    workspace = session.workspace
    try:
        params = bind_values(workspace.tablefile.params, dict(variables))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    names = list(targets or workspace.default_targets())
    tablefile, instances = expand_partitions(workspace.tablefile, params, span)
    if instances:
        expanded = replace(workspace, tablefile=tablefile, graph=build_graph(tablefile))
        session = replace(session, workspace=expanded)
        names = selected_names(names, instances)
    return _Run(session, params, names)


def _plan(run: _Run, *, always: bool) -> Plan:
    workspace, backend = run.session.workspace, run.session.backend
    selected = select_targets(workspace.graph, run.names)
    tables = {name: table_of(name) for name in selected}
    present = backend.existing_tables(set(tables.values()))
    state = run.session.state
    observed = Observed(
        records=state.builds(backend.state_key),
        existing={name for name, table in tables.items() if table in present},
        source_versions=backend.source_versions(source_names(workspace.graph, selected)),
        built_text=partial(state.built_script, backend.state_key),
    )
    cutoff = cutoff_targets(workspace.tablefile, backend, selected)
    return plan_rebuild(
        workspace.tablefile,
        workspace.graph,
        selected,
        observed,
        always=always,
        cutoff=cutoff,
        params=run.params,
    )


def run_build(session: Session, options: BuildOptions, reporter: Reporter) -> RunReport:
    began = time.time()
    run = _for_run(session, options.targets, options.variables, options.span)
    session = run.session  # partitioned targets expanded into this run's instances
    workspace, backend, state = session.workspace, session.backend, session.state
    plan = _plan(run, always=options.always)
    jobs = options.jobs or workspace.tablefile.project.jobs
    if jobs < 1:
        raise UserError(f"-j takes a number of parallel jobs >= 1, not {jobs}.")
    todo = {t.name: t for t in plan.to_build}
    _keep_reworded_scripts(
        state, plan, backend.state_key, writes=not (options.dry_run or options.question)
    )
    estimates = _estimate(session, todo.values()) if options.dry_run else {}
    reporter.planned(
        plan, backend=backend.name, jobs=jobs, dry_run=options.dry_run, estimates=estimates
    )
    if options.dry_run or options.question or not todo:
        outcome = plan_results(plan, estimates)
        report = RunReport(None, backend.name, outcome, seconds=time.time() - began)
        reporter.completed(report)
        return report

    run_id = options.run_id or new_run_id()
    as_of = backend.snapshot_time(run_id)  # after planning read the source versions
    state.start_run(
        RunRecord(
            run_id, backend.state_key, began, None, "running", options.trigger, options.command
        )
    )
    records = plan.records  # nothing wrote builds since: the project lock is held
    versions: dict[str, str] = {name: rec.version for name, rec in records.items()}
    versions.update({k: v for k, v in plan.source_versions.items() if v is not None})
    backend.ensure_datasets({name.split(".", 1)[0] for name in todo})
    tablefile = workspace.tablefile

    attempts: dict[str, int] = {}  # written by each target's worker thread, read after
    interrupt = backend.interrupt if isinstance(backend, Interruptible) else None
    default_policy = project_policy(tablefile.project)

    def build(name: str) -> BuildResult | None:
        """None: not built, early cutoff found its inputs unchanged."""
        target = tablefile.targets[name]
        if can_skip(todo[name], records.get(name), target.deps, versions):
            return None
        request = _request(todo[name], target, run_id, as_of, plan.source_versions)
        result = call_with_retries(
            lambda: _build_and_audit(backend, target, request),
            retry_policy(target, default_policy),
            on_attempt=lambda n: attempts.__setitem__(name, n),
            cancel=None if interrupt is None else lambda: interrupt(name),
        )
        if name in plan.cutoff:
            result = replace(result, content=backend.content_version(name))
        # set here, not when the finish is recorded: dependents start before that
        versions[name] = _built_version(result, run_id, name)
        return result

    results: dict[str, TargetResult] = {}

    def on_finish(done: Finished[BuildResult | None]) -> None:
        target = tablefile.targets[done.name]
        result = _record(
            writer.submit,
            todo[done.name],
            done,
            warehouse=backend.state_key,
            run_id=run_id,
            versions=versions,
            target=target,
            attempts=attempts.get(done.name),
        )
        results[done.name] = result
        reporter.finished(result)

    deps = {name: workspace.graph.deps[name] for name in todo}
    with StateWriter(state) as writer:
        schedule = run_jobs(
            deps,
            build,
            jobs=jobs,
            keep_going=options.keep_going,
            priority=remaining_path(deps, _estimated_durations(todo, records, workspace)),
            on_start=reporter.started,
            on_finish=on_finish,
        )
    targets = [results.get(t.name) or _not_built(t) for t in plan.targets]
    report = RunReport(run_id, backend.name, targets, schedule.interrupted, time.time() - began)
    status = "interrupted" if schedule.interrupted else ("ok" if report.ok else "failed")
    state.finish_run(run_id, status)
    reporter.completed(report)
    return report


def _keep_reworded_scripts(state: StateStore, plan: Plan, warehouse: str, *, writes: bool) -> None:
    """Up-to-date targets whose script text changed without changing its meaning get that
    text recorded: otherwise every later plan parses both texts again (and imports sqlglot,
    a quarter of a no-op), until the target happens to be rebuilt. Not under -n or -q,
    which write nothing."""
    if not writes:
        return
    for planned in plan.targets:
        record = plan.records.get(planned.name)
        if (
            planned.action is Action.FRESH
            and record is not None
            and record.script_digest != planned.script.digest
        ):
            state.record_script(warehouse, planned.name, planned.script.digest, planned.script.text)


def _not_built(planned: TargetPlan) -> TargetResult:
    """Up to date, or left out by a condition (with why)."""
    if planned.action is Action.SKIP:
        reasons = tuple(str(r) for r in planned.reasons)
        return TargetResult(planned.name, Status.SKIPPED, reasons, by_condition=True)
    return TargetResult(planned.name, Status.UP_TO_DATE, ())


def _estimate(session: Session, todo: Iterable[TargetPlan]) -> dict[str, int | None]:
    """Bytes each stale target would scan, from warehouses that can tell before running."""
    backend, tablefile = session.backend, session.workspace.tablefile
    if not backend.can_estimate:
        return {}
    estimates: dict[str, int | None] = {}
    for planned in todo:
        if tablefile.targets[planned.name].python is not None:
            continue  # Python runs outside the warehouse: nothing to estimate
        request = _request(planned, tablefile.targets[planned.name], "dry-run")
        estimates[planned.name] = backend.estimate_bytes(request)
    return estimates


def _request(
    planned: TargetPlan,
    target: Target,
    run_id: str,
    as_of: datetime | None = None,
    sources: Collection[str] = (),
) -> BuildRequest:
    """``as_of``: the instant the target's ``sources`` among its prerequisites are read at."""
    partition = None
    if target.partition_value is not None:  # one partition of the table
        partition = next(p for p in planned.params if p.name == target.partition)
    return BuildRequest(
        planned.name,
        planned.script.text,
        target.sql,
        run_id,
        target.duration,
        into=None if partition is None else table_of(planned.name),
        params=planned.params,
        partition=partition,
        as_of=None
        if as_of is None
        else SourceSnapshot(as_of, frozenset(d for d in target.deps if d in sources)),
    )


def _build_and_audit(backend: Backend, target: Target, request: BuildRequest) -> BuildResult:
    if not target.audits or not backend.holds_rows:
        return build_target(backend, target, request)
    from tablemake.audit import build_audited  # sqlglot's builders: only when auditing

    return build_audited(
        backend, request, target.audits, lambda staged: build_target(backend, target, staged)
    )


def build_target(backend: Backend, target: Target, request: BuildRequest) -> BuildResult:
    """A SQL target is one statement; a Python target's function reads its prerequisites
    from the warehouse and its rows are loaded (only when the backend holds data)."""
    code = target.python
    if code is None:
        return backend.build_table(request)

    def read(dep: str) -> list[dict[str, object]]:
        as_of = request.as_of
        if as_of is not None and dep in as_of.tables:
            past = sql.read_as_of(sql.select_all(dep), {dep}, as_of.at)
            data = backend.query_rows(past, ALL_ROWS)
        else:
            data = backend.read_table(dep, ALL_ROWS)
        return [dict(zip(data.columns, row, strict=True)) for row in data.rows]

    params = {p.name: p for p in request.params}

    def compute() -> RowsToLoad:
        arguments = target_arguments(code.call, target.deps, read, params)
        return compute_rows(code.function, lambda: code.call(**arguments))

    return backend.load_rows(request, compute)


def _record(
    write: Callable[[Write], None],
    planned: TargetPlan,
    done: Finished[BuildResult | None],
    *,
    warehouse: str,
    run_id: str,
    versions: dict[str, str],
    target: Target,
    attempts: int | None,
) -> TargetResult:
    reasons = tuple(str(r) for r in planned.reasons)
    if done.outcome is Outcome.BUILT and done.result is None:  # early cutoff
        unchanged = TargetRunRecord(
            run_id, done.name, "unchanged", None, None, None, CUT_OFF_REASON
        )
        write(lambda state: state.record_target_run(unchanged))
        return TargetResult(done.name, Status.UP_TO_DATE, (CUT_OFF_REASON,))
    if done.outcome is Outcome.BUILT and done.result is not None:
        result = done.result
        record = BuildRecord(
            target=done.name,
            version=versions[done.name],
            script_digest=planned.script.digest,
            definition=target.definition,
            inputs={dep: versions[dep] for dep in target.deps if dep in versions}
            | {PARAM_PREFIX + p.name: p.text for p in planned.params},
            started=done.started or 0.0,
            finished=done.finished or 0.0,
            rows=result.rows,
            run_id=run_id,
            attempts=attempts or 1,
        )
        text = planned.script.text
        write(lambda state: state.record_build(warehouse, record, script_text=text, sql=result.sql))
        return TargetResult(
            done.name, Status.BUILT, reasons, done.seconds, result.rows, attempts=attempts
        )
    if done.outcome is Outcome.FAILED:
        error = _describe(done.error, target.sql)
        failed = TargetRunRecord(
            run_id, done.name, "failed", done.started, done.finished, None, error, None, attempts
        )
        write(lambda state: state.record_target_run(failed))
        return TargetResult(
            done.name, Status.FAILED, reasons, done.seconds, error=error, attempts=attempts
        )
    skipped = TargetRunRecord(run_id, done.name, "skipped", None, None, None, done.reason)
    write(lambda state: state.record_target_run(skipped))
    return TargetResult(done.name, Status.SKIPPED, (done.reason,))


def _built_version(result: BuildResult, run_id: str, name: str) -> str:
    """Unique per build, unless the content digest says the rows are the same as before."""
    return content_based_version(result.content) if result.content else f"{run_id}/{name}"


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
