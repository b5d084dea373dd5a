"""Builds started over HTTP: one at a time, through the same ``run_build`` as the CLI.

The slot is taken before planning starts and carries a run id, so a second ``POST /run`` is
refused at once with the id of the build holding it. Progress goes to the server's log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from tablemake.api.errors import ApiError
from tablemake.plan import Plan
from tablemake.report import RunReport, TargetResult
from tablemake.runner import BuildOptions, new_run_id, run_build
from tablemake.workspace import Session

log = logging.getLogger("tablemake.api")


class BuildSlot:
    """Who is building now: the id of the run holding the slot, taken before planning so a
    second ``POST /run`` is refused at once with it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._running: str | None = None

    @property
    def running(self) -> str | None:
        return self._running

    @contextmanager
    def hold(self) -> Iterator[str]:
        with self._guard:
            if self._running is not None:
                raise ApiError(
                    409,
                    "build-running",
                    f"a build is already running (run {self._running}); only one runs at a "
                    "time. Ask again when it has finished.",
                    extra={"run_id": self._running},
                )
            self._running = new_run_id()
        try:
            yield self._running
        finally:
            with self._guard:
                self._running = None


def build(session: Session, slot: BuildSlot, options: BuildOptions) -> dict[str, Any]:
    """Run one build in the calling (worker) thread, under the slot's run id; the answer is
    ``--json``'s document."""
    with slot.hold() as run_id:
        report = run_build(session, replace(options, run_id=run_id), LogReporter(run_id))
    return report.as_json()


class LogReporter:
    """The console reporter's events, as lines in the server's log."""

    def __init__(self, api_id: str) -> None:
        self.api_id = api_id

    def planned(
        self,
        plan: Plan,
        *,
        backend: str,
        jobs: int,
        dry_run: bool,
        estimates: Mapping[str, int | None],
    ) -> None:
        verb = "would build" if dry_run else f"building with -j {jobs}"
        log.info(
            "run %s: %s %d of %d targets on %s",
            self.api_id,
            verb,
            len(plan.to_build),
            len(plan.targets),
            backend,
        )

    def started(self, name: str) -> None:
        log.info("run %s: start %s", self.api_id, name)

    def finished(self, result: TargetResult) -> None:
        error = f": {result.error}" if result.error else ""
        log.info("run %s: %s %s%s", self.api_id, result.status.value, result.name, error)

    def completed(self, report: RunReport) -> None:
        verdict = "interrupted" if report.interrupted else ("done" if report.ok else "FAILED")
        log.info("run %s: %s in %.2fs", self.api_id, verdict, report.seconds)
