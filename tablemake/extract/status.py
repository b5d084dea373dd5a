"""``tablemake status --date D``: where a day stands, and the command that resumes it.

A step is ``succeeded`` when every extract finished it, ``failed`` when one of them failed
(the failed tasks are listed first, with the source's own words), ``incomplete`` when some
extracts have not run it yet, and ``not run`` when none has.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from tablemake.extract.daylog import EXTRACT_STEP, FAILED, LOAD_STEP, SUCCEEDED, DayLog, TaskRecord
from tablemake.extract.pipeline import DONE, UP_TO_DATE, StepReport, TaskOutcome
from tablemake.tablefile import Tablefile

STEP_NUMBERS = {EXTRACT_STEP: 1, LOAD_STEP: 2}


@dataclass(frozen=True)
class StepStatus:
    step: str
    state: str  # succeeded | failed | incomplete | not run
    tasks: list[TaskRecord]  # failed first


@dataclass(frozen=True)
class DayStatus:
    day: date
    steps: list[StepStatus]
    next_command: str  # what to run to resume the day (or to build, when both steps succeeded)

    @property
    def failed(self) -> bool:
        return any(s.state == FAILED for s in self.steps)

    def as_json(self) -> dict[str, object]:
        return {
            "day": self.day.isoformat(),
            "failed": self.failed,
            "next": self.next_command,
            "steps": [
                {
                    "step": s.step,
                    "number": STEP_NUMBERS[s.step],
                    "state": s.state,
                    "tasks": [task_json(t) for t in s.tasks],
                }
                for s in self.steps
            ],
        }


def day_status(log: DayLog, tablefile: Tablefile, day: date) -> DayStatus:
    steps = [_step(log, tablefile, day, step) for step in (EXTRACT_STEP, LOAD_STEP)]
    when = f"--date {day.isoformat()}"
    extract, load = steps
    if extract.state != SUCCEEDED:
        failed = sorted({t.extract for t in extract.tasks if not t.task and t.status == FAILED})
        names = "".join(f" {n}" for n in failed) if extract.state == FAILED else ""
        command = f"tablemake extract {when}{names}"
    elif load.state != SUCCEEDED:
        command = f"tablemake load {when}"
    else:
        command = f"tablemake {when}"
    return DayStatus(day, steps, command)


def _step(log: DayLog, tablefile: Tablefile, day: date, step: str) -> StepStatus:
    records = log.tasks(day.isoformat(), step)
    overall = {r.extract: r.status for r in records if not r.task}
    if any(status == FAILED for status in overall.values()):
        state = FAILED
    elif not records:
        state = "not run"
    elif all(overall.get(name) == SUCCEEDED for name in tablefile.extracts):
        state = SUCCEEDED
    else:
        state = "incomplete"
    ordered = sorted(records, key=lambda r: (r.status != FAILED, r.extract, r.task))
    return StepStatus(step, state, ordered)


def format_status(status: DayStatus) -> str:
    lines = [f"day {status.day.isoformat()}"]
    for step in status.steps:
        lines.append(f"step {STEP_NUMBERS[step.step]} ({step.step}): {step.state}")
        for task in step.tasks:
            what = task.task or f"{task.extract} (whole extract)"
            rows = f"{task.rows} rows" if task.rows is not None else ""
            detail = task.detail if task.status == FAILED else rows
            lines.append(f"  {task.status:<9}  {what:<32}  {detail}".rstrip())
    verb = "build with" if status.next_command.startswith("tablemake --") else "resume with"
    lines.append(f"next: {verb} `{status.next_command}`")
    return "\n".join(lines) + "\n"


def format_step(step: StepReport) -> str:
    """One line per task the step ran (tasks already done are only counted), then a
    summary line."""
    number = STEP_NUMBERS[step.step]
    lines = []
    for outcome in (o for o in step.outcomes if o.status != UP_TO_DATE):
        what = outcome.task or f"{outcome.extract} (whole extract)"
        rows = f"{outcome.rows} rows" if outcome.rows is not None else ""
        detail = outcome.detail if outcome.status == FAILED else rows
        lines.append(f"  {outcome.status:<10}  {what:<32}  {detail}".rstrip())
    done = sum(o.status == DONE for o in step.outcomes)
    fresh = sum(o.status == UP_TO_DATE for o in step.outcomes)
    failed = len(step.failures())
    when = step.day.isoformat()
    summary = f"step {number} ({step.step}) {when}: {done} done, {fresh} up to date"
    if failed:
        summary += f", {failed} failed; see `tablemake status --date {when}`"
    return "\n".join([*lines, summary]) + "\n"


def step_json(step: StepReport) -> dict[str, object]:
    return {
        "ok": step.ok,
        "step": step.step,
        "day": step.day.isoformat(),
        "tasks": [task_json(o) for o in step.outcomes],
    }


def task_json(task: TaskRecord | TaskOutcome) -> dict[str, object]:
    """One task as ``status --json`` and the step commands print it."""
    return {
        "extract": task.extract,
        "table": task.task or None,
        "status": task.status,
        "rows": task.rows,
        "detail": task.detail,
    }
