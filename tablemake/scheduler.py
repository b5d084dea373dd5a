"""Run a DAG of jobs on N worker threads, longest remaining path first.

A job becomes ready the moment its last prerequisite finishes (no level-by-level barriers);
among ready jobs the one heading the longest remaining chain of work starts first, which is
what keeps the critical path busy. The scheduler owns no I/O: it calls ``build(name)`` in a
worker thread and reports each start and finish to the caller's callbacks in the calling
thread, so state is written by one thread only.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

R = TypeVar("R")


class Outcome(Enum):
    BUILT = "built"
    FAILED = "failed"
    SKIPPED = "skipped"  # never started: a prerequisite failed, or the run stopped


@dataclass(frozen=True)
class Finished(Generic[R]):
    name: str
    outcome: Outcome
    started: float | None
    finished: float | None
    result: R | None = None
    error: BaseException | None = None
    reason: str = ""  # why a job was skipped

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started


@dataclass(frozen=True)
class Schedule(Generic[R]):
    finished: Mapping[str, Finished[R]]
    interrupted: bool


def remaining_path(
    deps: Mapping[str, Collection[str]], durations: Mapping[str, float]
) -> dict[str, float]:
    """For each job, its duration plus the longest chain of jobs that wait on it."""
    dependents: dict[str, list[str]] = {name: [] for name in deps}
    indegree = dict.fromkeys(deps, 0)
    for name, prereqs in deps.items():
        for dep in prereqs:
            if dep in dependents:
                dependents[dep].append(name)
                indegree[name] += 1
    order = [n for n, d in indegree.items() if d == 0]
    for name in order:  # grows while iterating: Kahn's algorithm
        for child in dependents[name]:
            indegree[child] -= 1
            if indegree[child] == 0:
                order.append(child)
    rank: dict[str, float] = {}
    for name in reversed(order):
        rank[name] = durations.get(name, 0.0) + max(
            (rank[c] for c in dependents[name]), default=0.0
        )
    return rank


def run_jobs(
    deps: Mapping[str, Collection[str]],
    build: Callable[[str], R],
    *,
    jobs: int,
    keep_going: bool,
    priority: Mapping[str, float],
    on_start: Callable[[str], None] = lambda name: None,
    on_finish: Callable[[Finished[R]], None] = lambda done: None,
    settling: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> Schedule[R]:
    """Run every job in ``deps`` (prerequisites outside ``deps`` count as done).

    On a failure, without ``keep_going`` nothing new starts and running jobs finish; with it,
    only jobs downstream of the failure are skipped. Ctrl-C does the former and marks the
    schedule interrupted. ``settling`` wraps each round of ``on_finish`` calls (the jobs
    found finished by one wake-up), so their records can be written together.
    """
    run = _Run(deps, priority, on_finish)
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="tablemake") as pool:
        while run.ready or run.running:
            try:
                while run.ready and len(run.running) < jobs and not run.stop_reason:
                    name = run.pop_ready()
                    if name is not None:
                        run.running[pool.submit(build, name)] = (name, time.time())
                        on_start(name)  # after submitting: a reported start is a real one
                if not run.running:
                    break
                done, _ = wait(run.running, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                # Running jobs finish (each replaces its table atomically) and are recorded.
                run.stop("the run was interrupted", interrupted=True)
                continue
            with settling():
                for future in done:
                    run.settle_future(future, keep_going=keep_going)
    with settling():
        run.skip_unstarted()
    return Schedule(run.finished, run.interrupted)


class _Run(Generic[R]):
    """The mutable bookkeeping of one ``run_jobs`` call."""

    def __init__(
        self,
        deps: Mapping[str, Collection[str]],
        priority: Mapping[str, float],
        on_finish: Callable[[Finished[R]], None],
    ) -> None:
        self.priority = priority
        self.on_finish = on_finish
        self.dependents: dict[str, list[str]] = {name: [] for name in deps}
        self.waiting: dict[str, int] = {}
        for name, prereqs in deps.items():
            inside = [d for d in prereqs if d in deps]
            self.waiting[name] = len(inside)
            for dep in inside:
                self.dependents[dep].append(name)
        self.ready = [(-priority.get(n, 0.0), n) for n, count in self.waiting.items() if count == 0]
        heapq.heapify(self.ready)
        self.running: dict[Future[R], tuple[str, float]] = {}
        self.finished: dict[str, Finished[R]] = {}
        self.stop_reason = ""
        self.interrupted = False

    def pop_ready(self) -> str | None:
        _, name = heapq.heappop(self.ready)
        return None if name in self.finished else name  # skipped while it waited

    def stop(self, reason: str, *, interrupted: bool = False) -> None:
        if not self.stop_reason:
            self.stop_reason = reason
        self.interrupted = self.interrupted or interrupted

    def settle(self, done: Finished[R]) -> None:
        self.finished[done.name] = done
        self.on_finish(done)

    def settle_future(self, future: Future[R], *, keep_going: bool) -> None:
        name, started = self.running.pop(future)
        error = future.exception()
        if error is None:
            self.settle(Finished(name, Outcome.BUILT, started, time.time(), future.result()))
            for child in self.dependents[name]:
                self.waiting[child] -= 1
                if self.waiting[child] == 0:
                    heapq.heappush(self.ready, (-self.priority.get(child, 0.0), child))
            return
        self.settle(Finished(name, Outcome.FAILED, started, time.time(), error=error))
        todo = list(self.dependents[name])
        while todo:
            child = todo.pop()
            if child not in self.finished:
                reason = f"prerequisite {name} failed"
                self.settle(Finished(child, Outcome.SKIPPED, None, None, reason=reason))
                todo.extend(self.dependents[child])
        if not keep_going:
            self.stop(f"the run stopped after {name} failed")

    def skip_unstarted(self) -> None:
        for name in self.waiting:
            if name not in self.finished:
                reason = self.stop_reason or "not started"
                self.settle(Finished(name, Outcome.SKIPPED, None, None, reason=reason))
