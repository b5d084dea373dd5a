"""The day pipeline: step 1 ``extract`` -> step 2 ``load`` -> step 3 the ordinary build.

Each step can run alone and is idempotent for a day: a task that already succeeded (its
file is whole, or the same file is already loaded) is skipped unless ``always`` (``-B``),
and redoing it gives byte-identical files. Step 2 refuses a day until every step-1 task of
that day succeeded, naming the ones that did not, so a half-extracted day never reaches
the warehouse. Every task's outcome goes to the ``DayLog`` as it ends, which is what
``tablemake status`` shows.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path

from tablemake.backends import Backend
from tablemake.errors import UserError, WarehouseError
from tablemake.extract import csvfiles, postgres
from tablemake.extract.daylog import (
    EXTRACT_STEP,
    FAILED,
    LOAD_STEP,
    SUCCEEDED,
    DayLog,
    TaskRecord,
)
from tablemake.extract.files import (
    Manifest,
    SourceError,
    day_dir,
    is_complete,
    parquet_name,
    read_manifest,
    sha256_of,
    write_manifest,
)
from tablemake.extract.pool import run_tasks
from tablemake.graph import select_targets, upstream
from tablemake.tablefile import Extract, Tablefile, is_table_name
from tablemake.workspace import Session, Workspace

DONE, UP_TO_DATE = "done", "up-to-date"


@dataclass(frozen=True)
class TaskOutcome:
    extract: str
    task: str  # ``dataset.table``, or "" for the extract as a whole
    status: str  # done | up-to-date | failed
    rows: int | None = None
    detail: str = ""


@dataclass
class StepReport:
    step: str
    day: date
    outcomes: list[TaskOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.status != FAILED for o in self.outcomes)

    def failures(self) -> list[TaskOutcome]:
        return [o for o in self.outcomes if o.status == FAILED]


def select_extracts(tablefile: Tablefile, names: Sequence[str]) -> list[Extract]:
    """The named extracts (default: all), refusing unknown names before anything runs."""
    if not tablefile.extracts:
        raise UserError(
            "the Tablefile declares no [extract.<name>] tables, so there is nothing to "
            "extract or load.",
            str(tablefile.path),
        )
    for name in names:
        if name not in tablefile.extracts:
            close = difflib.get_close_matches(name, sorted(tablefile.extracts), n=1)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            raise UserError(
                f"unknown extract `{name}`{hint}; the Tablefile declares: "
                f"{', '.join(sorted(tablefile.extracts))}."
            )
    return [e for e in tablefile.extracts.values() if not names or e.name in names]


# -- step 1 ---------------------------------------------------------------------------------


def run_extract(
    workspace: Workspace,
    log: DayLog,
    day: date,
    names: Sequence[str] = (),
    *,
    jobs: int | None = None,
    always: bool = False,
) -> StepReport:
    """Extract the named sources (default: all) for the day, each table to its own file.

    Up to ``jobs`` tasks run at once (default: the Tablefile's ``[project] jobs``), across
    extracts: a CSV file is one task, each table of a database another. The tables of one
    database all come from the snapshot its coordinating connection holds open meanwhile.
    """
    tablefile = workspace.tablefile
    chosen = select_extracts(tablefile, names)
    # resolve every URL first: a missing environment variable is a usage error, not a task
    urls = {e.name: postgres.database_url(e, tablefile) for e in chosen if e.kind == "postgres"}
    root = tablefile.root
    readers: list[postgres.SnapshotReaders] = []

    def interrupted() -> None:
        for reader in readers:
            reader.cancel()

    with ExitStack() as snapshots:  # each stays open until the step's tasks have ended
        batches = []
        for extract in chosen:
            if not always and _extracted(log, root, extract, day):
                fresh = [
                    TaskOutcome(extract.name, r.task, UP_TO_DATE, r.rows)
                    for r in _table_records(log, day, EXTRACT_STEP, extract)
                ]
                batches.append(_Batch(extract, fresh, fresh=True))
                continue
            # what failed is retried and what is redone is re-recorded: drop those records
            log.forget(day.isoformat(), EXTRACT_STEP, extract.name, failed_only=not always)
            if extract.kind == "csv":
                batches.append(_Batch(extract, [partial(_extract_csv, root, extract, day)]))
            else:
                items = _postgres_items(
                    root,
                    extract,
                    url=urls[extract.name],
                    day=day,
                    log=log,
                    snapshots=snapshots,
                    readers=readers,
                )
                batches.append(_Batch(extract, items))
        jobs = jobs or tablefile.project.jobs
        return _run_step(EXTRACT_STEP, log, day, batches, jobs, on_interrupt=interrupted)


def _extract_csv(root: Path, extract: Extract, day: date) -> TaskOutcome:
    assert extract.path is not None  # the Tablefile requires it for kind = "csv"
    table = f"{extract.dataset}.{extract.name}"
    directory = day_dir(root, extract, extract.name, day)
    dest = directory / parquet_name(extract.name)
    try:
        rows, columns = csvfiles.extract_csv(root / extract.path, extract.path, dest)
    except SourceError as exc:
        return TaskOutcome(extract.name, table, FAILED, detail=str(exc))
    manifest = Manifest(
        table, extract.path, day.isoformat(), dest.name, rows, sha256_of(dest), columns
    )
    write_manifest(directory, manifest)
    return TaskOutcome(extract.name, table, DONE, rows)


def _postgres_items(
    root: Path,
    extract: Extract,
    *,
    url: str,
    day: date,
    log: DayLog,
    snapshots: ExitStack,
    readers: list[postgres.SnapshotReaders],
) -> list[_Item]:
    """A task per table of the database, read from the snapshot opened here and held by
    ``snapshots`` (its readers added to ``readers``); tables already extracted this day are
    kept (a rerun resumes)."""
    kept = {
        r.task
        for r in _table_records(log, day, EXTRACT_STEP, extract)
        if r.status == SUCCEEDED and is_complete(_directory(root, extract, r.task, day))
    }
    try:
        exported = snapshots.enter_context(postgres.snapshot(url, extract.schemas))
    except SourceError as exc:
        return [TaskOutcome(extract.name, "", FAILED, detail=str(exc))]
    reader = snapshots.enter_context(postgres.SnapshotReaders(exported))
    readers.append(reader)
    items: list[_Item] = []
    seen: dict[str, str] = {}
    for pg_table in exported.tables:
        table = f"{extract.dataset}.{pg_table.name}"
        if not is_table_name(table) or table in seen:
            why = (
                f"also in schema {seen[table]}; extract one of the schemas into another dataset"
                if table in seen
                else "its name needs letters, digits and underscores only"
            )
            detail = f"{pg_table.qualified} cannot become table `{table}`: {why}"
            items.append(TaskOutcome(extract.name, table, FAILED, detail=detail))
            continue
        seen[table] = pg_table.schema
        if table in kept:
            manifest = read_manifest(_directory(root, extract, table, day))
            rows = manifest.rows if manifest else None
            items.append(TaskOutcome(extract.name, table, UP_TO_DATE, rows))
            continue
        task = partial(
            _extract_pg_table, root, extract, url=url, day=day, readers=reader, pg_table=pg_table
        )
        items.append(task)
    return items


def _extract_pg_table(
    root: Path,
    extract: Extract,
    *,
    url: str,
    day: date,
    readers: postgres.SnapshotReaders,
    pg_table: postgres.PgTable,
) -> TaskOutcome:
    table = f"{extract.dataset}.{pg_table.name}"
    directory = day_dir(root, extract, pg_table.name, day)
    dest = directory / parquet_name(pg_table.name)
    try:
        rows, columns = readers.extract_table(pg_table, dest)
    except SourceError as exc:
        return TaskOutcome(extract.name, table, FAILED, detail=str(exc))
    source = f"{postgres.redacted(url)} table {pg_table.qualified}"
    write_manifest(
        directory,
        Manifest(table, source, day.isoformat(), dest.name, rows, sha256_of(dest), columns),
    )
    return TaskOutcome(extract.name, table, DONE, rows)


def _overall(extract: Extract, outcomes: Sequence[TaskOutcome]) -> TaskOutcome:
    """The extract-level record: failed with the first failure's words, else succeeded."""
    failed = [o for o in outcomes if o.status == FAILED]
    if any(not o.task for o in failed):
        return next(o for o in failed if not o.task)
    if failed:
        first = failed[0]
        detail = f"{len(failed)} of {len(outcomes)} tables failed; first {first.task}: "
        return TaskOutcome(extract.name, "", FAILED, detail=detail + first.detail)
    rows = sum(o.rows or 0 for o in outcomes)
    return TaskOutcome(extract.name, "", DONE, rows, f"{len(outcomes)} tables")


# -- running a step's tasks ---------------------------------------------------------------

_Item = TaskOutcome | Callable[[], TaskOutcome]


@dataclass(frozen=True)
class _Batch:
    """One extract's part of a step, in declared order: each item an outcome known before
    anything runs (a table kept, or refused by name) or a task to run."""

    extract: Extract
    items: Sequence[_Item]
    fresh: bool = False  # the extract was already done for the day: nothing to record


def _run_step(
    step: str,
    log: DayLog,
    day: date,
    batches: Sequence[_Batch],
    jobs: int,
    *,
    on_outcome: Callable[[TaskOutcome], None] | None = None,
    on_interrupt: Callable[[], None] = lambda: None,
) -> StepReport:
    """Run the batches' tasks, up to ``jobs`` at once; record each outcome as it comes back
    (``on_outcome`` first), then each extract's overall outcome. The report lists outcomes
    in declared order, whatever order the tasks ended in."""

    def finished(outcome: TaskOutcome) -> None:
        if on_outcome is not None:
            on_outcome(outcome)
        if outcome.status != UP_TO_DATE:
            _log(log, day, step, outcome)  # at once: a killed run keeps it

    tasks = []
    for batch in batches:
        for item in batch.items:
            if isinstance(item, TaskOutcome):
                finished(item)
            else:
                tasks.append(item)
    results = iter(run_tasks(tasks, jobs, finished, on_interrupt=on_interrupt))
    report = StepReport(step, day)
    for batch in batches:
        outcomes = [
            item if isinstance(item, TaskOutcome) else next(results) for item in batch.items
        ]
        report.outcomes.extend(outcomes)
        if not batch.fresh:
            _log(log, day, step, _overall(batch.extract, outcomes))
    return report


# -- step 2 ---------------------------------------------------------------------------------


def run_load(
    session: Session,
    log: DayLog,
    day: date,
    names: Sequence[str] = (),
    *,
    jobs: int | None = None,
    always: bool = False,
) -> StepReport:
    """Load the day's files of the named extracts (default: all) into the warehouse, up to
    ``jobs`` files at once (default: the Tablefile's ``[project] jobs``)."""
    tablefile = session.workspace.tablefile
    chosen = select_extracts(tablefile, names)
    unfinished = extract_blockers(log, tablefile, day)
    if unfinished:
        names = " ".join(unfinished)
        raise UserError(
            f"cannot load {day.isoformat()}: step 1 (extract) has not succeeded for "
            + "; ".join(f"`{name}` ({why})" for name, why in unfinished.items())
            + f". Run `tablemake extract --date {day.isoformat()} {names}` first, then load "
            f"again (`tablemake status --date {day.isoformat()}` shows every task)."
        )
    backend = session.backend
    backend.ensure_datasets({e.dataset for e in chosen})
    tables = {e.name: [r.task for r in _table_records(log, day, EXTRACT_STEP, e)] for e in chosen}
    existing = backend.existing_tables({t for listed in tables.values() for t in listed})
    warehouse = backend.state_key
    manifests: dict[str, Manifest | None] = {}
    batches = []
    for extract in chosen:
        items: list[_Item] = []
        for table in tables[extract.name]:
            directory = _directory(tablefile.root, extract, table, day)
            manifest = manifests[table] = read_manifest(directory)
            # the (day, sha256) the warehouse table holds; read here: workers never use the log
            held = log.loaded(warehouse, table) if table in existing and not always else None
            task = partial(
                _load_table,
                backend,
                extract,
                table=table,
                day=day,
                directory=directory,
                manifest=manifest,
                held=held,
            )
            items.append(task)
        batches.append(_Batch(extract, items))

    def loaded(outcome: TaskOutcome) -> None:
        manifest = manifests[outcome.task]
        if outcome.status == DONE and manifest is not None:
            log.set_loaded(warehouse, outcome.task, day.isoformat(), manifest.sha256)

    jobs = jobs or tablefile.project.jobs
    return _run_step(LOAD_STEP, log, day, batches, jobs, on_outcome=loaded)


def _load_table(
    backend: Backend,
    extract: Extract,
    *,
    table: str,
    day: date,
    directory: Path,
    manifest: Manifest | None,
    held: tuple[str, str] | None,
) -> TaskOutcome:
    """Load one file, unless the warehouse table already ``held`` it; runs on a worker."""
    if manifest is None or not is_complete(directory):
        return TaskOutcome(
            extract.name,
            table,
            FAILED,
            detail=f"{directory} is missing or changed since it was extracted; redo it with "
            f"`tablemake extract -B --date {day.isoformat()} {extract.name}`",
        )
    if held == (day.isoformat(), manifest.sha256):
        return TaskOutcome(extract.name, table, UP_TO_DATE, manifest.rows)
    try:
        rows = backend.load_file(table, directory / manifest.file)
    except WarehouseError as exc:
        return TaskOutcome(extract.name, table, FAILED, detail=str(exc))
    return TaskOutcome(extract.name, table, DONE, rows)


def extract_blockers(log: DayLog, tablefile: Tablefile, day: date) -> dict[str, str]:
    """Why, per extract whose step 1 did not succeed for the day (empty: all did)."""
    overall = {r.extract: r for r in log.tasks(day.isoformat(), EXTRACT_STEP) if not r.task}
    blockers = {}
    for name in sorted(tablefile.extracts):
        record = overall.get(name)
        if record is None:
            blockers[name] = "not extracted yet"
        elif record.status != SUCCEEDED:
            blockers[name] = f"failed: {record.detail}"
    return blockers


# -- the whole day, before a build ---------------------------------------------------------


def prepare_day(
    session: Session,
    log: DayLog,
    day: date,
    targets: Sequence[str],
    *,
    jobs: int | None = None,
    always: bool = False,
) -> list[StepReport]:
    """Steps 1 and 2 for the day, when the selected targets read an extracted table, each
    running up to ``jobs`` tasks at once, as the build then does.

    The day is one unit: every extract runs, since step 2 needs all of step 1. Stops after
    the first step that failed; the caller then builds nothing.
    """
    if not _reads_extracted(session.workspace, targets):
        return []
    extracted = run_extract(session.workspace, log, day, jobs=jobs, always=always)
    if not extracted.ok:
        return [extracted]
    return [extracted, run_load(session, log, day, jobs=jobs, always=always)]


def pending_steps(session: Session, log: DayLog, day: date, targets: Sequence[str]) -> list[str]:
    """What ``prepare_day`` would do, without doing it (for ``-n``), in words."""
    workspace = session.workspace
    if not _reads_extracted(workspace, targets):
        return []
    root, extracts = workspace.tablefile.root, list(workspace.tablefile.extracts.values())
    stale = [e.name for e in extracts if not _extracted(log, root, e, day)]
    if stale:
        return [f"extract {', '.join(stale)}", "load the day's files"]
    records = [(e, r.task) for e in extracts for r in _table_records(log, day, EXTRACT_STEP, e)]
    existing = session.backend.existing_tables({table for _, table in records})
    unloaded = []
    for extract, table in records:
        manifest = read_manifest(_directory(root, extract, table, day))
        current = (day.isoformat(), manifest.sha256 if manifest else "")
        if table not in existing or log.loaded(session.backend.state_key, table) != current:
            unloaded.append(table)
    return [f"load {', '.join(unloaded)}"] if unloaded else []


def _reads_extracted(workspace: Workspace, targets: Sequence[str]) -> bool:
    selected = select_targets(workspace.graph, targets or workspace.default_targets())
    sources = workspace.tablefile.sources
    return any(sources[n].extract for n in upstream(workspace.graph, selected) if n in sources)


# -- helpers --------------------------------------------------------------------------------


def _extracted(log: DayLog, root: Path, extract: Extract, day: date) -> bool:
    records = log.tasks(day.isoformat(), EXTRACT_STEP)
    mine = [r for r in records if r.extract == extract.name]
    if not any(not r.task and r.status == SUCCEEDED for r in mine):
        return False
    return all(
        r.status == SUCCEEDED and is_complete(_directory(root, extract, r.task, day))
        for r in mine
        if r.task
    )


def _table_records(log: DayLog, day: date, step: str, extract: Extract) -> list[TaskRecord]:
    return [r for r in log.tasks(day.isoformat(), step) if r.extract == extract.name and r.task]


def _directory(root: Path, extract: Extract, table: str, day: date) -> Path:
    return day_dir(root, extract, table.split(".", 1)[1], day)


def _log(log: DayLog, day: date, step: str, outcome: TaskOutcome) -> None:
    status = FAILED if outcome.status == FAILED else SUCCEEDED
    log.record(
        day.isoformat(),
        step,
        outcome.extract,
        outcome.task,
        status=status,
        detail=outcome.detail,
        rows=outcome.rows,
    )
