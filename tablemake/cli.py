"""Command line: parse arguments, make one core call, map the outcome to an exit code.

Exit codes: 0 ok; 1 a target failed (or, with -q, something is stale); 2 usage or
configuration error, reported before anything ran; 3 internal error (traceback in
``.state/tablemake.log``); 130 interrupted; 141 the reader of stdout went away (as a
process killed by SIGPIPE). No parsing happens outside this module.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shlex
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from tablemake import __version__
from tablemake.errors import LockedError, UserError, WarehouseError
from tablemake.tablefile import (
    BACKEND_NAMES,
    DEFAULT_FILENAME,
    STATE_DIR,
    BigQuerySettings,
    is_table_name,
)

if TYPE_CHECKING:
    from tablemake.extract.pipeline import StepReport
    from tablemake.partitions import Span
    from tablemake.workspace import Session, Workspace

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
_VALUE_OPTIONS = {
    *("-C", "--directory", "-f", "--file", "-j", "--jobs", "--backend"),
    *("--bq-project", "--bq-location", "--bq-key", "--bq-endpoint", "--date"),
    *("--var", "--from", "--to"),
}


def _common(parser: argparse.ArgumentParser, *, json_output: bool = True) -> None:
    parser.add_argument(
        "-C", "--directory", type=Path, default=Path("."), help="run as if started in DIR"
    )
    parser.add_argument(
        "-f",
        "--file",
        default=None,
        help=f"the Tablefile, relative to DIR (default {DEFAULT_FILENAME})",
    )
    parser.add_argument(
        "--backend",
        choices=BACKEND_NAMES,
        default=None,
        help="warehouse for this run (default: the Tablefile's, or $TABLEMAKE_BACKEND)",
    )
    bigquery = parser.add_argument_group("BigQuery (each also $TABLEMAKE_BQ_*)")
    bigquery.add_argument("--bq-project", help="project that runs the jobs and holds the data")
    bigquery.add_argument("--bq-location", help="job and dataset location, e.g. US or EU")
    bigquery.add_argument("--bq-key", metavar="FILE", help="service-account key JSON")
    bigquery.add_argument("--bq-endpoint", metavar="URL", help="API endpoint (emulator, proxy)")
    if json_output:
        parser.add_argument("--json", action="store_true", help="print one JSON document")


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _jobs_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-j", "--jobs", type=_jobs, default=None, help="parallel jobs (default: [project] jobs)"
    )


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def _date_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--date", type=_day, default=None, metavar="YYYY-MM-DD", help=help_text)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tablemake",
        description="Build stale warehouse tables, in dependency order, in parallel.",
        epilog="commands: init-db, init, check, why, show, graph, report, history, log, audit, "
        "extract, load, status, export, serve (tablemake COMMAND -h)",
    )
    parser.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="tables to build with what they need (default: the project default)",
    )
    _jobs_option(parser)
    parser.add_argument(
        "-n",
        "--dry-run",
        action="store_true",
        help="print what would be built and why; change nothing",
    )
    parser.add_argument(
        "-B", "--always-make", action="store_true", help="rebuild every selected target"
    )
    parser.add_argument(
        "-k",
        "--keep-going",
        action="store_true",
        help="after a failure, keep building what does not depend on it",
    )
    parser.add_argument(
        "-q",
        "--question",
        action="store_true",
        help="build nothing; exit 1 if anything selected is stale",
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="if another tablemake holds the project, wait for it instead of failing",
    )
    _date_option(parser, "day whose extract and load steps run first, when stale")
    _var_option(parser)
    parser.add_argument(
        "--from", dest="date_from", type=_day, metavar="DAY", help="first partition to build"
    )
    parser.add_argument(
        "--to", dest="date_to", type=_day, metavar="DAY", help="last partition (default --from)"
    )
    parser.add_argument("--version", action="version", version=f"tablemake {__version__}")
    _common(parser)
    return parser


def _command_parsers() -> dict[str, argparse.ArgumentParser]:
    parsers: dict[str, argparse.ArgumentParser] = {}

    def add(name: str, description: str, *, json_output: bool = True) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog=f"tablemake {name}", description=description)
        _common(parser, json_output=json_output)
        parsers[name] = parser
        return parser

    add("init-db", "Create and fill source tables from their init scripts.").add_argument(
        "sources", nargs="*", metavar="SOURCE"
    )
    init = argparse.ArgumentParser(
        prog="tablemake init", description="Write a Tablefile inferred from res/ and db_init/."
    )
    init.add_argument("dir", nargs="?", type=Path, default=None, help="project (default: -C)")
    init.add_argument("-C", "--directory", type=Path, default=Path("."))
    init.add_argument("--force", action="store_true", help="replace an existing Tablefile")
    parsers["init"] = init
    add("check", "Validate the Tablefile and scripts without building.")
    why = add("why", "Explain why a target is stale or up to date.")
    why.add_argument("target")
    _var_option(why)
    unit = add("test", "Run the unit tests declared next to targets, on an in-memory DuckDB.")
    unit.add_argument("targets", nargs="*", metavar="TARGET", help="only these targets' tests")
    show = add("show", "Print a table's rows.", json_output=False)
    show.add_argument("table")
    show.add_argument("--limit", type=int, default=20)
    show.add_argument("--format", choices=("table", "csv", "json"), default="table")
    graph = add("graph", "Draw the dependency graph, coloured by state.", json_output=False)
    graph.add_argument("targets", nargs="*", metavar="TARGET", help="limit to their upstream")
    graph.add_argument("--format", choices=("dot", "mermaid", "svg", "html"), default="dot")
    graph.add_argument("-o", "--output", type=Path, default=None)
    report = add("report", "Write a self-contained HTML report of a run.", json_output=False)
    report.add_argument("run", nargs="?", default=None, help="run id or prefix (default: last)")
    report.add_argument("-o", "--output", type=Path, default=Path("run.html"))
    history = add("history", "List past runs.", json_output=False)
    history.add_argument("-n", type=int, default=20, help="how many runs (default 20)")
    log = add("log", "Show what a target ran and what the warehouse answered.", json_output=False)
    log.add_argument("target")
    log.add_argument("--run", default=None, help="run id or prefix (default: its last run)")
    audit = add("audit", "Run the targets' audits on their published tables.")
    audit.add_argument("targets", nargs="*", metavar="TARGET", help="default: all with audits")
    for name, description in (
        ("extract", "Step 1: extract sources to dated local files."),
        ("load", "Step 2: load a day's extracted files into the warehouse."),
    ):
        step = add(name, description)
        step.add_argument("extracts", nargs="*", metavar="NAME", help="default: every extract")
        _date_option(step, "the day (default: today)")
        _jobs_option(step)
        step.add_argument("-B", "--always-make", action="store_true", help="redo done tasks")
    _date_option(add("status", "Show which step and table of a day failed."), "default: today")
    export = add("export", "Write a table or a query's result to a file.", json_output=False)
    export.add_argument("table", nargs="?", default=None)
    export.add_argument("--query", default=None, help="a SELECT (BigQuery SQL) instead of TABLE")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("-o", "--output", type=Path, required=True)
    serve = add("serve", "Serve the HTTP API until Ctrl-C or SIGTERM.", json_output=False)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    serve.add_argument(
        "--token",
        default=None,
        help="require `Authorization: Bearer TOKEN` on writes (default $TABLEMAKE_API_TOKEN)",
    )
    return parsers


def _split_command(argv: Sequence[str], commands: Sequence[str]) -> tuple[str | None, list[str]]:
    """Find a command word among the positionals (skipping option values): target names
    always contain a dot, command words never do, so the two cannot be confused."""
    skip = False
    for i, token in enumerate(argv):
        if skip:
            skip = False
        elif token in _VALUE_OPTIONS:
            skip = True
        elif not token.startswith("-"):
            if token in commands:
                return token, [*argv[:i], *argv[i + 1 :]]
            return None, list(argv)
    return None, list(argv)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a run as cleanly as Ctrl-C does


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _run_command(argv)
    except BrokenPipeError:
        # `tablemake -n | head`: the reader has what it wanted. Point stdout at nothing,
        # or flushing it at exit fails once more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _run_command(argv: Sequence[str] | None) -> int:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    args_list = list(sys.argv[1:] if argv is None else argv)
    commands = _command_parsers()
    command, rest = _split_command(args_list, list(commands))
    parser = commands[command] if command else _build_parser()
    args = parser.parse_args(rest)
    args.command_line = shlex.join(["tablemake", *args_list])
    handler = _HANDLERS[command or "build"]
    as_json = bool(getattr(args, "json", False))
    try:
        return handler(args)
    except UserError as exc:
        return _fail(str(exc), "user-error", as_json, EXIT_USAGE)
    except WarehouseError as exc:
        return _fail(str(exc), "warehouse-error", as_json, EXIT_FAILED)
    except KeyboardInterrupt:
        print("tablemake: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:  # a bug: keep the traceback for the report, show one line
        where = getattr(args, "directory", None) or getattr(args, "dir", None) or "."
        log = Path(where) / STATE_DIR / "tablemake.log"
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("a", encoding="utf-8") as fh:
                fh.write(f"--- {time.ctime()} tablemake {' '.join(args_list)}\n")
                fh.write(traceback.format_exc())
        except OSError:
            traceback.print_exc()
        return _fail(
            f"internal error (a bug in tablemake); the traceback is in {log}.",
            "internal-error",
            as_json,
            EXIT_INTERNAL,
        )


def _fail(message: str, code: str, as_json: bool, exit_code: int) -> int:
    print(f"tablemake: error: {message}", file=sys.stderr)  # first: stdout may be gone
    if as_json:
        print(json.dumps({"ok": False, "error": {"code": code, "message": message}, "targets": []}))
    return exit_code


def _bigquery_overrides(args: argparse.Namespace) -> BigQuerySettings:
    return BigQuerySettings(
        project=args.bq_project,
        location=args.bq_location,
        key_file=args.bq_key,
        endpoint=args.bq_endpoint,
    )


def _workspace(args: argparse.Namespace) -> Workspace:
    from tablemake.workspace import open_workspace

    return open_workspace(args.directory, args.file, args.backend, _bigquery_overrides(args))


def _var(text: str) -> tuple[str, str]:
    from tablemake.params import parse_var

    try:
        return parse_var(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _span(args: argparse.Namespace) -> Span | None:
    from tablemake.partitions import Span

    if args.date_from is None and args.date_to is None:
        return None
    if args.date_from is None:
        raise UserError("--to needs --from (the first partition of the backfill).")
    return Span(args.date_from, args.date_to or args.date_from)


def _var_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--var",
        type=_var,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a runtime parameter (@NAME in SQL, an argument of Python targets); repeatable",
    )


def _cmd_test(args: argparse.Namespace) -> int:
    from tablemake.dsl import compile_workflow
    from tablemake.tablefile import load_tablefile
    from tablemake.unittests import run_unit_test, select_tests

    path = args.directory / (args.file or DEFAULT_FILENAME)
    compiled = compile_workflow(load_tablefile(path))
    outcomes = [
        run_unit_test(compiled.tablefile, test)
        for test in select_tests(compiled.tests, args.targets)
    ]
    failed = [o for o in outcomes if not o.ok]
    if args.json:
        print(json.dumps({"ok": not failed, "tests": [o.as_json() for o in outcomes]}))
    else:
        for outcome in outcomes:
            print(f"{'PASS' if outcome.ok else 'FAIL'}  {outcome.name}")
            for line in outcome.details:
                print(f"      {line}")
        print(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed")
    return EXIT_FAILED if failed else EXIT_OK


def _cmd_build(args: argparse.Namespace) -> int:
    from tablemake.report import ConsoleReporter, JsonReporter, Reporter
    from tablemake.runner import BuildOptions, run_build
    from tablemake.workspace import open_session

    options = BuildOptions(
        targets=tuple(args.targets),
        jobs=args.jobs,
        dry_run=args.dry_run,
        question=args.question,
        always=args.always_make,
        keep_going=args.keep_going,
        trigger="cli",
        command=args.command_line,
        variables=tuple(args.var),
        span=_span(args),
    )
    reporter: Reporter = JsonReporter() if args.json else ConsoleReporter(quiet=args.question)
    wait = math.inf if args.wait else 0.0
    with open_session(_workspace(args), wait=wait, on_wait=_tell_waiting) as session:
        if not _day_steps(session, args):
            return EXIT_FAILED
        report = run_build(session, options, reporter)
    if args.question:
        return (
            EXIT_FAILED if any(t.status.value == "would-build" for t in report.targets) else EXIT_OK
        )
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if report.ok else EXIT_FAILED


def _tell_waiting(holder: str) -> None:
    print(f"tablemake: waiting for another tablemake ({holder}) to finish…", file=sys.stderr)


def _cmd_init_db(args: argparse.Namespace) -> int:
    from tablemake.initdb import init_sources
    from tablemake.workspace import open_session

    with open_session(_workspace(args)) as session:
        created = init_sources(session, args.sources)
        backend = session.backend.name
    if args.json:
        print(json.dumps({"ok": True, "backend": backend, "sources": created}))
    else:
        print(f"initialised {len(created)} source tables on {backend}: {', '.join(created)}")
    return EXIT_OK


def _cmd_init(args: argparse.Namespace) -> int:
    from tablemake.scaffold import scaffold_tablefile

    path = scaffold_tablefile(args.dir or args.directory, force=args.force)
    print(f"wrote {path}")
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    from tablemake.check import Severity, check_workspace

    findings = check_workspace(_workspace(args))
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if args.json:
        print(
            json.dumps(
                {
                    "ok": not errors,
                    "findings": [
                        {"severity": f.severity.value, "where": f.where, "message": f.message}
                        for f in findings
                    ],
                }
            )
        )
    else:
        for finding in findings:
            print(finding)
        warnings = len(findings) - len(errors)
        print(f"{len(errors)} error(s), {warnings} warning(s)")
    return EXIT_USAGE if errors else EXIT_OK


def _cmd_why(args: argparse.Namespace) -> int:
    from tablemake.plan import Action
    from tablemake.runner import make_plan
    from tablemake.workspace import open_session

    with open_session(_workspace(args)) as session:
        plan = make_plan(session, [args.target], variables=args.var)
        # a partitioned target is planned as its partition of this run: `name[value]`
        target = next(t for t in plan.targets if args.target in (t.name, t.name.split("[")[0]))
        record = session.state.builds(session.backend.state_key).get(target.name)
    upstream = [t for t in plan.to_build if t.name != target.name]
    if args.json:
        print(
            json.dumps(
                {
                    "name": target.name,
                    "stale": target.action is Action.BUILD,
                    "reasons": [str(r) for r in target.reasons],
                    "stale_upstream": [t.name for t in upstream],
                }
            )
        )
        return EXIT_OK
    if target.action is Action.BUILD:
        print(f"{target.name} is stale and would be rebuilt because:")
        for reason in target.reasons:
            print(f"  - {reason}")
    elif target.action is Action.SKIP:
        print(f"{target.name} is left out of this run: {target.reasons[0]}")
    else:
        built = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.finished)) if record else "?"
        )
        print(
            f"{target.name} is up to date: built {built} (run {record.run_id if record else '?'}); "
            "its script, Tablefile entry and every prerequisite are unchanged since."
        )
    for other in upstream:
        print(f"  upstream {other.name} is stale too: {'; '.join(str(r) for r in other.reasons)}")
    return EXIT_OK


def _cmd_show(args: argparse.Namespace) -> int:
    from tablemake.workspace import open_session

    if not is_table_name(args.table):
        raise UserError(f"`{args.table}` is not a table name `dataset.table`.")
    with open_session(_workspace(args)) as session:
        if args.table not in session.backend.existing_tables([args.table]):
            raise UserError(
                f"table `{args.table}` does not exist in the {session.backend.name} warehouse."
            )
        data = session.backend.read_table(args.table, args.limit)
    if args.format == "json":
        print(
            json.dumps(
                [dict(zip(data.columns, row, strict=True)) for row in data.rows],
                default=str,
                indent=2,
            )
        )
    elif args.format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(data.columns)
        writer.writerows(data.rows)
    else:
        from rich.console import Console  # only here: a build never loads rich off a terminal
        from rich.table import Table

        table = Table(*data.columns, title=args.table)
        for row in data.rows:
            table.add_row(*(str(v) for v in row))
        Console(soft_wrap=False).print(table)
    return EXIT_OK


def _cmd_graph(args: argparse.Namespace) -> int:
    from tablemake.draw import render_graph
    from tablemake.graph import select_targets
    from tablemake.history import observe_states
    from tablemake.workspace import open_session

    workspace = _workspace(args)
    select_targets(workspace.graph, args.targets)  # validates the names
    try:
        with open_session(workspace) as session:
            states = observe_states(session, args.targets)
    except LockedError:  # a build or a server holds the warehouse: draw without states
        states = {}
    text = render_graph(
        workspace.graph,
        args.format,
        only=args.targets,
        states=states,
        title=workspace.tablefile.project.name,
    )
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from tablemake.state import StateStore
    from tablemake.timeline import report_for_run

    workspace = _workspace(args)
    with StateStore(workspace.state_dir) as state:
        page = report_for_run(state, workspace.graph, args.run)
    args.output.write_text(page, encoding="utf-8")
    print(f"wrote {args.output}")
    return EXIT_OK


def _cmd_history(args: argparse.Namespace) -> int:
    from tablemake.history import format_history, run_history
    from tablemake.state import StateStore

    with StateStore(_workspace(args).state_dir) as state:
        sys.stdout.write(format_history(run_history(state, args.n)))
    return EXIT_OK


def _cmd_log(args: argparse.Namespace) -> int:
    from tablemake.history import format_log, target_log
    from tablemake.state import StateStore

    with StateStore(_workspace(args).state_dir) as state:
        sys.stdout.write(format_log(target_log(state, args.target, args.run)))
    return EXIT_OK


def _cmd_audit(args: argparse.Namespace) -> int:
    from tablemake.audit import audit_published
    from tablemake.workspace import open_session

    with open_session(_workspace(args)) as session:
        results = audit_published(session, args.targets)
    failed = [(name, r) for name, r in results if not r.passed]
    if args.json:
        doc = [
            {"target": name, "audit": str(r.audit), "passed": r.passed, "offending": r.offending}
            for name, r in results
        ]
        print(json.dumps({"ok": not failed, "audits": doc}, indent=2))
    else:
        for name, result in results:
            verdict = "ok    " if result.passed else "FAILED"
            detail = "" if result.passed else f"  {result.describe()}"
            print(f"{verdict}  {name}  {result.audit}{detail}")
        print(f"{len(results) - len(failed)} of {len(results)} audits passed")
    return EXIT_FAILED if failed else EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    from tablemake.api.server import serve

    return serve(
        args.directory,
        tablefile=args.file,
        backend=args.backend,
        bigquery=_bigquery_overrides(args),
        host=args.host,
        port=args.port,
        token=args.token or os.environ.get("TABLEMAKE_API_TOKEN") or None,
    )


def _day_steps(session: Session, args: argparse.Namespace) -> bool:
    """Before a build: the day's extract and load steps, when the targets read extracted
    tables and the steps are stale; with -n only said, with -q pending steps count as
    stale. Progress goes to stderr under --json. False: stop, exit 1."""
    if not session.workspace.tablefile.extracts:
        return True  # before any import: projects without extracts pay nothing
    from tablemake.extract.daylog import DayLog
    from tablemake.extract.pipeline import pending_steps, prepare_day
    from tablemake.extract.status import format_step

    day, out = args.date or date.today(), sys.stderr if args.json else sys.stdout
    with DayLog(session.workspace.state_dir) as log:
        if args.dry_run or args.question:
            pending = pending_steps(session, log, day, args.targets)
            if pending and args.dry_run:
                print(f"day {day.isoformat()}: would first {' and '.join(pending)}", file=out)
            return not (pending and args.question)
        steps = prepare_day(
            session, log, day, args.targets, jobs=args.jobs, always=args.always_make
        )
    for step in steps:
        print(format_step(step), end="", file=out)
    return all(step.ok for step in steps)


def _cmd_extract(args: argparse.Namespace) -> int:
    from tablemake.extract.daylog import DayLog
    from tablemake.extract.pipeline import run_extract
    from tablemake.state import project_lock

    workspace = _workspace(args)
    with project_lock(workspace.state_dir), DayLog(workspace.state_dir) as log:
        step = run_extract(
            workspace,
            log,
            args.date or date.today(),
            args.extracts,
            jobs=args.jobs,
            always=args.always_make,
        )
    return _print_step(step, args.json)


def _cmd_load(args: argparse.Namespace) -> int:
    from tablemake.extract.daylog import DayLog
    from tablemake.extract.pipeline import run_load
    from tablemake.workspace import open_session

    with open_session(_workspace(args)) as session, DayLog(session.workspace.state_dir) as log:
        step = run_load(
            session,
            log,
            args.date or date.today(),
            args.extracts,
            jobs=args.jobs,
            always=args.always_make,
        )
    return _print_step(step, args.json)


def _print_step(step: StepReport, as_json: bool) -> int:
    from tablemake.extract.status import format_step, step_json

    if as_json:
        print(json.dumps(step_json(step)))
    else:
        print(format_step(step), end="")
    return EXIT_OK if step.ok else EXIT_FAILED


def _cmd_status(args: argparse.Namespace) -> int:
    from tablemake.extract.daylog import DayLog
    from tablemake.extract.status import day_status, format_status

    workspace = _workspace(args)
    with DayLog(workspace.state_dir) as log:
        status = day_status(log, workspace.tablefile, args.date or date.today())
    if args.json:
        print(json.dumps(status.as_json()))
    else:
        print(format_status(status), end="")
    return EXIT_FAILED if status.failed else EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from tablemake.extract.export import read_rows, write_export
    from tablemake.workspace import open_session

    with open_session(_workspace(args)) as session:
        data = read_rows(session, args.table, args.query)
    rows = write_export(data, args.format, args.output)
    print(f"wrote {rows} rows of {args.table or 'the query'} to {args.output}")
    return EXIT_OK


_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "build": _cmd_build,
    "extract": _cmd_extract,
    "load": _cmd_load,
    "status": _cmd_status,
    "export": _cmd_export,
    "init-db": _cmd_init_db,
    "init": _cmd_init,
    "check": _cmd_check,
    "why": _cmd_why,
    "show": _cmd_show,
    "graph": _cmd_graph,
    "report": _cmd_report,
    "history": _cmd_history,
    "log": _cmd_log,
    "audit": _cmd_audit,
    "serve": _cmd_serve,
    "test": _cmd_test,
}
