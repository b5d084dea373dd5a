"""Records of finished targets, written by one thread that commits them in groups.

The scheduler's main thread hands out work and takes back finishes; when it also wrote each
finish to SQLite (an insert and a commit, about half a millisecond), that was most of its
time per target, and with many short targets on many workers it became the bottleneck:
finished workers waited for the main thread to give them their next target. Here the main
thread only queues a write; this thread commits in groups: everything that queues up in
the twentieth of a second after a group's first write goes into one transaction.

Why wait rather than commit as soon as a write arrives: each commit writes every page it
touched to the WAL again, and the WAL is checkpointed every few hundred pages. Committing
at once made ~1,500 transactions of one or two records in a run of 2,000 targets of 10 ms
on 16 workers, and this thread then used 0.2 ms of CPU per target, on a machine whose two
cores the workers needed; a group per 50 ms makes ~25 transactions a second.

What this changes for safety: a record reaches the store up to ~50 ms after its table was
replaced instead of at once. A process killed in between leaves the table new and its
record old, which only means one more rebuild of it next time: the same outcome as a kill
between a table's replacement and its record was always allowed to have. Leaving the
writer (the end of a run, or its interruption) commits what is queued at once.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from contextlib import suppress
from types import TracebackType

from tablemake.state import StateStore

Write = Callable[[StateStore], None]

GROUP_SECONDS = 0.05  # how long a group gathers writes before its commit


class StateWriter:
    """Use as a context manager: leaving it waits until every queued write is committed
    and raises the first error a write met."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._writes: queue.SimpleQueue[Write | None] = queue.SimpleQueue()  # None: stop
        self._closing = threading.Event()  # cuts a group's wait short at the end
        self._error: BaseException | None = None
        # Not a daemon: an interpreter shutting down (after Ctrl-C, say) still writes
        # what was queued.
        self._thread = threading.Thread(target=self._commit_groups, name="tablemake-state")

    def __enter__(self) -> StateWriter:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._closing.set()
        self._writes.put(None)
        self._thread.join()
        if self._error is not None and error is None:
            raise self._error

    def submit(self, write: Write) -> None:
        """Queue ``write``; a store that failed an earlier write fails this call instead,
        so a run does not go on building what it can no longer record."""
        if self._error is not None:
            raise self._error
        self._writes.put(write)

    def _commit_groups(self) -> None:
        while True:
            group = [self._writes.get()]
            self._closing.wait(GROUP_SECONDS)
            with suppress(queue.Empty):
                while True:
                    group.append(self._writes.get_nowait())
            writes = [w for w in group if w is not None]
            if writes and self._error is None:
                try:
                    with self._store.batch():
                        for write in writes:
                            write(self._store)
                except Exception as exc:  # handed to the main thread by submit or exit
                    self._error = exc
            if len(writes) < len(group):
                return
