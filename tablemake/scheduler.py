"""Run a DAG of jobs on N worker threads, longest remaining path first.

A job becomes ready the moment its last prerequisite finishes (no level-by-level barriers);
among ready jobs the one heading the longest remaining chain of work starts first, which is
what keeps the critical path busy. The scheduler owns no I/O: it calls ``build(name)`` in a
worker thread and reports each start and finish to the caller's callbacks in the calling
thread, so the caller's bookkeeping needs no locks.
"""

from __future__ import annotations

import heapq
import queue
import signal
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager, suppress
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
) -> Schedule[R]:
    """Run every job in ``deps`` (prerequisites outside ``deps`` count as done).

    On a failure, without ``keep_going`` nothing new starts and running jobs finish; with it,
    only jobs downstream of the failure are skipped. Ctrl-C or SIGTERM does the former and
    marks the schedule interrupted.

    A round first hands the jobs it made ready to the workers, then reports its finishes
    (before the new starts, so the caller sees events in order): recording a finish is most
    of the main thread's work per job, and done first it delayed every dependent's start.
    Nothing a job needs from its prerequisites may therefore come from ``on_finish``.

    Workers are plain threads on two queues rather than an executor and futures: waiting on
    one queue is a single wake-up per finished job, where waiting on a set of futures
    registers with every running one, and that per-job cost is what a run of many short
    targets is made of.
    """
    run: _Run[R] = _Run(deps, priority)
    todo: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    done: queue.SimpleQueue[_Done[R] | None] = queue.SimpleQueue()  # None: interrupted
    workers = [
        threading.Thread(target=_work, args=(build, todo, done), name=f"tablemake-{n}")
        for n in range(min(jobs, len(deps)))
    ]
    for worker in workers:
        worker.start()
    try:
        with _interrupts_stop_the_run(lambda: done.put(None)):
            while run.ready or run.running:
                started = []
                while run.ready and len(run.running) < jobs and not run.stop_reason:
                    name = run.pop_ready()
                    if name is not None:
                        run.running.add(name)
                        todo.put(name)
                        started.append(name)
                _report(run, on_finish)
                for name in started:
                    on_start(name)  # after handing it over: a reported start is a real one
                if not run.running:
                    break
                finished = [done.get()]
                with suppress(queue.Empty):
                    while True:  # whatever else finished meanwhile settles in the same round
                        finished.append(done.get_nowait())
                for item in finished:
                    if item is None:
                        # Running jobs finish (each replaces its table atomically) and are
                        # recorded; nothing new starts.
                        run.stop("the run was interrupted", interrupted=True)
                    else:
                        run.settle_done(item, keep_going=keep_going)
            run.skip_unstarted()
            _report(run, on_finish)
    finally:
        for _ in workers:
            todo.put(None)
        for worker in workers:
            worker.join()
    return Schedule(run.finished, run.interrupted)


def _report(run: _Run[R], on_finish: Callable[[Finished[R]], None]) -> None:
    """Tell the caller the finishes settled since the last round."""
    for finished in run.unreported:
        on_finish(finished)
    run.unreported.clear()


@contextmanager
def _interrupts_stop_the_run(stop: Callable[[], None]) -> Iterator[None]:
    """While jobs run, SIGINT and SIGTERM call ``stop`` instead of raising.

    As an exception, an interrupt lands wherever the main thread happens to be, which is
    mostly inside ``on_finish``: half a round recorded, the rest rolled back, and the run
    never marked interrupted. ``stop`` only puts a marker on a queue, which is safe in a
    signal handler. Signals ignored by the process (a shell's background job ignores
    SIGINT) stay ignored; off the main thread (the API's builds) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    # None: a handler not set from Python, which could not be put back
    previous = {n: h for n, h in handlers.items() if h is not None and h is not signal.SIG_IGN}
    for signum in previous:
        signal.signal(signum, lambda signum, frame: stop())
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@dataclass(frozen=True)
class _Done(Generic[R]):
    """What a worker hands back: a job's times and its result or error."""

    name: str
    started: float
    finished: float
    result: R | None
    error: BaseException | None


def _work(
    build: Callable[[str], R],
    todo: queue.SimpleQueue[str | None],
    done: queue.SimpleQueue[_Done[R]],
) -> None:
    """A worker: build job names until told to stop (None)."""
    while (name := todo.get()) is not None:
        started = time.time()
        try:
            result, error = build(name), None
        except BaseException as exc:  # reported as the job's failure, in the calling thread
            result, error = None, exc
        done.put(_Done(name, started, time.time(), result, error))


class _Run(Generic[R]):
    """The mutable bookkeeping of one ``run_jobs`` call."""

    def __init__(
        self,
        deps: Mapping[str, Collection[str]],
        priority: Mapping[str, float],
    ) -> None:
        self.priority = priority
        self.dependents: dict[str, list[str]] = {name: [] for name in deps}
        self.waiting: dict[str, int] = {}
        for name, prereqs in deps.items():
            inside = [d for d in prereqs if d in deps]
            self.waiting[name] = len(inside)
            for dep in inside:
                self.dependents[dep].append(name)
        self.ready = [(-priority.get(n, 0.0), n) for n, count in self.waiting.items() if count == 0]
        heapq.heapify(self.ready)
        self.running: set[str] = set()
        self.finished: dict[str, Finished[R]] = {}
        self.unreported: list[Finished[R]] = []  # settled, not yet told to the caller
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
        self.unreported.append(done)

    def settle_done(self, done: _Done[R], *, keep_going: bool) -> None:
        name = done.name
        self.running.discard(name)
        if done.error is None:
            self.settle(Finished(name, Outcome.BUILT, done.started, done.finished, done.result))
            for child in self.dependents[name]:
                self.waiting[child] -= 1
                if self.waiting[child] == 0:
                    heapq.heappush(self.ready, (-self.priority.get(child, 0.0), child))
            return
        failed: Finished[R] = Finished(
            name, Outcome.FAILED, done.started, done.finished, error=done.error
        )
        self.settle(failed)
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
