"""One target's build under its retry policy: transient errors retried with backoff, each
attempt bounded by the target's ``timeout``.

Backends say which failures may pass (``TransientWarehouseError``); everything else fails
the target at once. Retrying a whole target is safe because every build is one atomic,
idempotent ``CREATE OR REPLACE TABLE … AS``. A timed-out attempt is not retried: the
timeout is the user's bound on the target, and a hung warehouse rarely recovers in time.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tablemake.errors import TransientWarehouseError, WarehouseError
from tablemake.tablefile import Project, Target

T = TypeVar("T")

# After asking the warehouse to stop a timed-out statement, how long to wait for it to
# stop before giving the worker back anyway (the statement's thread is then abandoned).
CANCEL_GRACE_SECONDS = 5.0


class TargetTimeout(WarehouseError):
    """A build attempt ran longer than its target's ``timeout``."""


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 2  # tries after the first, for transient errors only
    backoff: float = 1.0  # seconds before the first retry; doubled for each later one
    timeout: float | None = None  # seconds per attempt; None = no limit

    def wait_before(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based), jittered to 50-100% so
        targets failing together do not hammer the warehouse together again."""
        return self.backoff * 2.0 ** (retry - 1) * random.uniform(0.5, 1.0)


def call_with_retries(
    call: Callable[[], T],
    policy: RetryPolicy,
    *,
    on_attempt: Callable[[int], None],
    cancel: Callable[[], None] | None = None,
) -> T:
    """Run ``call`` until it succeeds, fails for good, or runs out of retries.

    ``on_attempt(n)`` is told the number of each attempt as it starts (so a caller can
    report attempts even when the last one raises); ``cancel`` asks the warehouse to stop
    the running statement when an attempt times out.
    """
    attempt = 1
    while True:
        on_attempt(attempt)
        try:
            return _bounded(call, policy.timeout, cancel)
        except TransientWarehouseError as exc:
            if attempt > policy.retries:
                if attempt == 1:
                    raise
                raise TransientWarehouseError(f"{exc} (tried {attempt} times)") from None
        time.sleep(policy.wait_before(attempt))
        attempt += 1


def _bounded(call: Callable[[], T], timeout: float | None, cancel: Callable[[], None] | None) -> T:
    """``call()``, failed with ``TargetTimeout`` after ``timeout`` seconds.

    Python cannot kill a thread, so the call runs on a daemon thread of its own: on timeout
    the warehouse is asked to stop the statement, and the worker is given back either way.
    A statement that still completes later may have replaced its table, but its target is
    not recorded as built, so the next run rebuilds it.
    """
    if timeout is None:
        return call()
    outcome: list[T] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # handed to the waiting worker below
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name="tablemake-attempt", daemon=True).start()
    if not done.wait(timeout):
        if cancel is not None:
            cancel()
            done.wait(CANCEL_GRACE_SECONDS)
        if not done.is_set():
            how = "it may still run in the warehouse"
        elif failure:
            how = "the statement was stopped"
        else:
            how = "it finished only while being stopped, and is not recorded"
        raise TargetTimeout(f"timed out after {timeout:g} s (`timeout` in the Tablefile); {how}")
    if failure:
        raise failure[0]
    return outcome[0]


def project_policy(project: Project) -> RetryPolicy:
    """The ``[project]`` defaults every target starts from."""
    return RetryPolicy(project.retries, project.retry_backoff, project.timeout)


def retry_policy(target: Target, default: RetryPolicy) -> RetryPolicy:
    """The target's own ``retries``/``retry_backoff``/``timeout``, else the project's
    (shared, not copied: most targets set none, and 10,000-target runs make one each)."""
    if target.retries is None and target.retry_backoff is None and target.timeout is None:
        return default
    return RetryPolicy(
        retries=default.retries if target.retries is None else target.retries,
        backoff=default.backoff if target.retry_backoff is None else target.retry_backoff,
        timeout=default.timeout if target.timeout is None else target.timeout,
    )
