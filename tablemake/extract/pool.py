"""Run a step's independent tasks on a few threads; results come back to the caller's thread.

Why a plain bounded pool and not the build scheduler: the tasks of a day step (one table
or CSV file to extract, one file to load) do not depend on each other, so there is no
order to choose and nothing downstream to skip when one fails; the scheduler's longest
path first and its failure handling would have nothing to act on. Why results go back to
the calling thread: it alone writes the day log (an SQLite connection belongs to the
thread that opened it), and it records each task as soon as it ends, so a killed run keeps
what it finished.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import TypeVar

T = TypeVar("T")


def run_tasks(
    tasks: Sequence[Callable[[], T]],
    jobs: int,
    finished: Callable[[T], None],
    *,
    on_interrupt: Callable[[], None] = lambda: None,
) -> list[T]:
    """Run the tasks, up to ``jobs`` at once, starting them in the order given; call
    ``finished`` in this thread with each result as its task ends; return the results in
    the tasks' order, so what is reported does not depend on timing.

    A task reports its failure in its result. An exception (a bug, Ctrl-C) starts nothing
    new, calls ``on_interrupt`` to cut the running tasks short, waits for them (their
    results are dropped) and propagates.
    """
    if not tasks:
        return []
    results: dict[int, T] = {}
    with ThreadPoolExecutor(min(jobs, len(tasks)), thread_name_prefix="tablemake-day") as pool:
        futures: dict[Future[T], int] = {pool.submit(task): i for i, task in enumerate(tasks)}
        try:
            for future in as_completed(futures):
                result = future.result()
                results[futures[future]] = result
                finished(result)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            on_interrupt()
            raise  # leaving the block waits for the running tasks
    return [results[i] for i in range(len(tasks))]
