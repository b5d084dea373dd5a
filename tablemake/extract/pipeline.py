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
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

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
    always: bool = False,
) -> StepReport:
    """Extract the named sources (default: all) for the day, each table to its own file."""
    tablefile = workspace.tablefile
    chosen = select_extracts(tablefile, names)
    # resolve every URL first: a missing environment variable is a usage error, not a task
    urls = {e.name: postgres.database_url(e, tablefile) for e in chosen if e.kind == "postgres"}
    report = StepReport(EXTRACT_STEP, day)
    for extract in chosen:
        if not always and _extracted(log, tablefile.root, extract, day):
            report.outcomes.extend(
                TaskOutcome(extract.name, r.task, UP_TO_DATE, r.rows)
                for r in _table_records(log, day, EXTRACT_STEP, extract)
            )
            continue
        # what failed is retried and what is redone is re-recorded: drop those records
        log.forget(day.isoformat(), EXTRACT_STEP, extract.name, failed_only=not always)

        def finished(outcome: TaskOutcome) -> None:
            if outcome.status != UP_TO_DATE:
                _log(log, day, EXTRACT_STEP, outcome)  # at once: a killed run keeps it
            report.outcomes.append(outcome)

        first = len(report.outcomes)
        if extract.kind == "csv":
            finished(_extract_csv(tablefile.root, extract, day))
        else:
            _extract_postgres(
                tablefile.root, extract, url=urls[extract.name], day=day, log=log, finished=finished
            )
        _log(log, day, EXTRACT_STEP, _overall(extract, report.outcomes[first:]))
    return report


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


def _extract_postgres(
    root: Path,
    extract: Extract,
    *,
    url: str,
    day: date,
    log: DayLog,
    finished: Callable[[TaskOutcome], None],
) -> None:
    """Every table in one snapshot, each told to ``finished`` as it ends; tables already
    extracted this day are kept (a rerun resumes)."""
    kept = {
        r.task
        for r in _table_records(log, day, EXTRACT_STEP, extract)
        if r.status == SUCCEEDED and is_complete(_directory(root, extract, r.task, day))
    }
    try:
        with postgres.snapshot(url) as conn:
            seen: dict[str, str] = {}
            for pg_table in postgres.list_tables(conn, extract.schemas):
                table = f"{extract.dataset}.{pg_table.name}"
                if not is_table_name(table) or table in seen:
                    why = (
                        f"also in schema {seen[table]}; extract one of the schemas into "
                        "another dataset"
                        if table in seen
                        else "its name needs letters, digits and underscores only"
                    )
                    detail = f"{pg_table.qualified} cannot become table `{table}`: {why}"
                    finished(TaskOutcome(extract.name, table, FAILED, detail=detail))
                    continue
                seen[table] = pg_table.schema
                if table in kept:
                    manifest = read_manifest(_directory(root, extract, table, day))
                    rows = manifest.rows if manifest else None
                    finished(TaskOutcome(extract.name, table, UP_TO_DATE, rows))
                    continue
                finished(
                    _extract_pg_table(root, extract, url=url, day=day, conn=conn, pg_table=pg_table)
                )
    except SourceError as exc:
        finished(TaskOutcome(extract.name, "", FAILED, detail=str(exc)))


def _extract_pg_table(
    root: Path,
    extract: Extract,
    *,
    url: str,
    day: date,
    conn: postgres.Connection,
    pg_table: postgres.PgTable,
) -> TaskOutcome:
    table = f"{extract.dataset}.{pg_table.name}"
    directory = day_dir(root, extract, pg_table.name, day)
    dest = directory / parquet_name(pg_table.name)
    try:
        rows, columns = postgres.extract_table(conn, pg_table, dest)
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


# -- step 2 ---------------------------------------------------------------------------------


def run_load(
    session: Session,
    log: DayLog,
    day: date,
    names: Sequence[str] = (),
    *,
    always: bool = False,
) -> StepReport:
    """Load the day's files of the named extracts (default: all) into the warehouse."""
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
    report = StepReport(LOAD_STEP, day)
    backend.ensure_datasets({e.dataset for e in chosen})
    existing = backend.existing_tables(
        {r.task for e in chosen for r in _table_records(log, day, EXTRACT_STEP, e)}
    )
    for extract in chosen:
        outcomes = [
            _load_table(
                session,
                log,
                extract=extract,
                table=record.task,
                day=day,
                always=always,
                existing=existing,
            )
            for record in _table_records(log, day, EXTRACT_STEP, extract)
        ]
        for outcome in outcomes:
            if outcome.status != UP_TO_DATE:
                _log(log, day, LOAD_STEP, outcome)
        report.outcomes.extend(outcomes)
        _log(log, day, LOAD_STEP, _overall(extract, outcomes))
    return report


def _load_table(
    session: Session,
    log: DayLog,
    *,
    extract: Extract,
    table: str,
    day: date,
    always: bool,
    existing: set[str],
) -> TaskOutcome:
    directory = _directory(session.workspace.tablefile.root, extract, table, day)
    manifest = read_manifest(directory)
    if manifest is None or not is_complete(directory):
        return TaskOutcome(
            extract.name,
            table,
            FAILED,
            detail=f"{directory} is missing or changed since it was extracted; redo it with "
            f"`tablemake extract -B --date {day.isoformat()} {extract.name}`",
        )
    warehouse = session.backend.state_key
    current = (day.isoformat(), manifest.sha256)
    if not always and table in existing and log.loaded(warehouse, table) == current:
        return TaskOutcome(extract.name, table, UP_TO_DATE, manifest.rows)
    try:
        rows = session.backend.load_file(table, directory / manifest.file)
    except WarehouseError as exc:
        return TaskOutcome(extract.name, table, FAILED, detail=str(exc))
    log.set_loaded(warehouse, table, *current)
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
    session: Session, log: DayLog, day: date, targets: Sequence[str], *, always: bool = False
) -> list[StepReport]:
    """Steps 1 and 2 for the day, when the selected targets read an extracted table.

    The day is one unit: every extract runs, since step 2 needs all of step 1. Stops after
    the first step that failed; the caller then builds nothing.
    """
    if not _reads_extracted(session.workspace, targets):
        return []
    extracted = run_extract(session.workspace, log, day, always=always)
    if not extracted.ok:
        return [extracted]
    return [extracted, run_load(session, log, day, always=always)]


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
