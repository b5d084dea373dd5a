"""What a run tells the user: result records, and the reporters that show them.

The runner calls a ``Reporter`` at each event; the console reporter draws lines (and a live
progress bar on a terminal), the JSON reporter prints one document at the end. Reporters
only display: they never decide or change anything.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from tablemake.plan import Action, Plan, TargetPlan

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress


class Status(Enum):
    BUILT = "built"
    UP_TO_DATE = "up-to-date"
    WOULD_BUILD = "would-build"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class TargetResult:
    name: str
    status: Status
    reasons: tuple[str, ...]
    seconds: float | None = None
    rows: int | None = None
    error: str | None = None
    estimated_bytes: int | None = None  # -n on warehouses that can tell
    attempts: int | None = None  # tries the build took, retries included (None: not run)
    by_condition: bool = False  # skipped because a condition left it out: not a failure

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": self.name,
            "status": self.status.value,
            "reasons": list(self.reasons),
            "seconds": None if self.seconds is None else round(self.seconds, 4),
        }
        if self.rows is not None:
            doc["rows"] = self.rows
        if self.error:
            doc["error"] = self.error
        if self.estimated_bytes is not None:
            doc["estimated_bytes"] = self.estimated_bytes
        if self.attempts is not None:
            doc["attempts"] = self.attempts
        return doc


@dataclass(frozen=True)
class RunReport:
    run_id: str | None
    backend: str
    targets: Sequence[TargetResult]
    interrupted: bool = False
    seconds: float = 0.0

    # Both are asked several times at the end of every run, over every target: once each.
    @cached_property
    def ok(self) -> bool:
        return not self.interrupted and not any(
            (t.status is Status.FAILED or t.status is Status.SKIPPED) and not t.by_condition
            for t in self.targets
        )

    @cached_property
    def _counts(self) -> Counter[Status]:
        return Counter(t.status for t in self.targets)

    def count(self, status: Status) -> int:
        return self._counts[status]

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "run_id": self.run_id,
            "backend": self.backend,
            "interrupted": self.interrupted,
            "seconds": round(self.seconds, 4),
            "targets": [t.as_json() for t in self.targets],
        }


class Reporter(Protocol):
    def planned(
        self,
        plan: Plan,
        *,
        backend: str,
        jobs: int,
        dry_run: bool,
        estimates: Mapping[str, int | None],
    ) -> None: ...

    def started(self, name: str) -> None: ...

    def finished(self, result: TargetResult) -> None: ...

    def completed(self, report: RunReport) -> None: ...


class JsonReporter:
    """One JSON document on stdout when the run is over; nothing before."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def planned(
        self,
        plan: Plan,
        *,
        backend: str,
        jobs: int,
        dry_run: bool,
        estimates: Mapping[str, int | None],
    ) -> None:
        pass

    def started(self, name: str) -> None:
        pass

    def finished(self, result: TargetResult) -> None:
        pass

    def completed(self, report: RunReport) -> None:
        """One document, one target per line. Each line is encoded by json's C encoder;
        with ``indent`` json uses its pure-Python encoder instead, which was a fifth of a
        100,000-target ``-n``."""
        document = report.as_json()
        targets = document.pop("targets")
        self.out.write(json.dumps(document)[:-1] + ', "targets": [')
        for n, target in enumerate(targets):
            self.out.write(("\n  " if n == 0 else ",\n  ") + json.dumps(target))
        self.out.write("\n]}\n")


class ConsoleReporter:
    """Lines per start and finish; a progress bar underneath when stdout is a terminal."""

    def __init__(self, out: TextIO | None = None, *, quiet: bool = False) -> None:
        self.out = out or sys.stdout
        self.quiet = quiet
        self._progress: Progress | None = None
        self._task: Any = None
        self._width = 0  # longest target name, to align event lines
        # Off a terminal lines are written plainly and rich is never loaded: importing it is
        # a tenth of a no-op's time, and rendering a line costs more than a zero-second build
        self._console: Console | None = None
        if self.out.isatty():
            from rich.console import Console

            self._console = Console(file=self.out, highlight=False, soft_wrap=True)

    def _say(self, text: str) -> None:
        if self._console is not None:
            self._console.print(text, markup=False)
        else:
            self.out.write(f"{text}\n")

    def planned(
        self,
        plan: Plan,
        *,
        backend: str,
        jobs: int,
        dry_run: bool,
        estimates: Mapping[str, int | None],
    ) -> None:
        if self.quiet:
            return
        todo = plan.to_build
        total = len(plan.targets)
        self._width = max((len(t.name) for t in todo), default=0)
        skipped = [t for t in plan.targets if t.action is Action.SKIP]
        if not todo:
            if skipped:
                fresh = total - len(skipped)
                self._say(
                    f"Nothing to do: {fresh} selected targets are up to date, "
                    f"{len(skipped)} left out."
                )
            else:
                self._say(f"Nothing to do: all {total} selected targets are up to date.")
            self._print_skipped(skipped)
            return
        verb = "would be built" if dry_run else "to build"
        self._say(
            f"{len(todo)} of {total} targets {verb} on {backend}"
            + ("" if dry_run else f" with -j {jobs}")
            + ":"
        )
        if dry_run:
            self._print_steps(plan, estimates)
        self._print_skipped(skipped)
        if not dry_run and self._console is not None:
            from rich import progress

            self._progress = progress.Progress(
                progress.TextColumn("[progress.description]{task.description}"),
                progress.BarColumn(),
                progress.MofNCompleteColumn(),
                progress.TimeElapsedColumn(),
                console=self._console,
                transient=True,
            )
            self._task = self._progress.add_task("building", total=len(todo))
            self._progress.start()

    def _print_skipped(self, skipped: list[TargetPlan]) -> None:
        """Targets left out of this run by a condition, each with why (also without -n)."""
        if not skipped:
            return
        width = max(len(t.name) for t in skipped)
        self._say("  skipped:")
        for target in skipped:
            reason = "; ".join(str(r) for r in target.reasons)
            self._say(f"    {target.name:<{width}}  {reason}")

    def _print_steps(self, plan: Plan, estimates: Mapping[str, int | None]) -> None:
        """Targets grouped by what can run together; each with its reasons (and the bytes
        it would scan, where the warehouse says)."""
        todo = plan.to_build
        width = max(len(t.name) for t in todo)
        steps: dict[int, list[TargetPlan]] = {}
        for target in todo:
            steps.setdefault(target.level, []).append(target)
        lines: list[str] = []
        for level in sorted(steps):
            lines.append(f"  step {level + 1}:")
            for target in steps[level]:
                reasons = "; ".join(str(r) for r in target.reasons)
                size = estimates.get(target.name)
                scan = "" if size is None else f"  [scans {format_bytes(size)}]"
                lines.append(f"    {target.name:<{width}}  {reasons}{scan}")
        if self._console is not None:
            for line in lines:
                self._say(line)
        else:  # in one write: 10,000 lines are planned faster than written one by one
            self.out.write("".join(f"{line}\n" for line in lines))
        known = [v for v in estimates.values() if v is not None]
        if known:
            self._say(f"  estimated total scanned: {format_bytes(sum(known))}")

    def started(self, name: str) -> None:
        if not self.quiet:
            self._line("start", "", name)

    def finished(self, result: TargetResult) -> None:
        if self._progress is not None and result.status is not Status.SKIPPED:
            self._progress.advance(self._task)
        if self.quiet and result.status is not Status.FAILED:
            return
        name = f"{result.name:<{self._width}}"
        seconds = "" if result.seconds is None else f"{result.seconds:7.2f}s"
        rows = "" if result.rows is None else f"  {result.rows} rows"
        if result.attempts is not None and result.attempts > 1:
            seconds += f"  ({result.attempts} attempts)"
        if result.status is Status.BUILT:
            self._line("built", "green", f"{name}  {seconds}{rows}")
        elif result.status is Status.FAILED:
            self._line("FAILED", "bold red", f"{name}  {seconds}\n          {result.error}")
        elif result.status is Status.SKIPPED:
            self._line("skipped", "yellow", f"{name}  {'; '.join(result.reasons)}")

    def _line(self, word: str, style: str, rest: str) -> None:
        """One event line; its first word coloured on a terminal."""
        if self._console is not None:
            from rich.markup import escape

            word_markup = f"[{style}]{word:<7}[/]" if style else f"{word:<7}"
            self._console.print(f"  {word_markup} {escape(rest)}")
        else:
            self.out.write(f"  {word:<7} {rest}\n")

    def completed(self, report: RunReport) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        unchanged = report.count(Status.UP_TO_DATE) + report.count(Status.WOULD_BUILD)
        if self.quiet or unchanged == len(report.targets):
            return
        parts = [
            f"{report.count(s)} {s.value.replace('-', ' ')}" for s in Status if report.count(s)
        ]
        verdict = "interrupted" if report.interrupted else ("done" if report.ok else "FAILED")
        self._say(
            f"{verdict}: {', '.join(parts)} in {report.seconds:.2f}s"
            + (f" (run {report.run_id})" if report.run_id else "")
        )


_PLANNED_STATUS = {
    Action.BUILD: Status.WOULD_BUILD,
    Action.FRESH: Status.UP_TO_DATE,
    Action.SKIP: Status.SKIPPED,
}


def plan_results(plan: Plan, estimates: Mapping[str, int | None]) -> list[TargetResult]:
    """The result list of a run that builds nothing (``-n``, ``-q``, or nothing stale)."""
    return [
        TargetResult(
            t.name,
            _PLANNED_STATUS[t.action],
            tuple(str(r) for r in t.reasons),
            estimated_bytes=estimates.get(t.name),
            by_condition=t.action is Action.SKIP,
        )
        for t in plan.targets
    ]


def format_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")
