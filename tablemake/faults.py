"""Fault injection at the backend boundary, for drills and tests of the retry machinery.

``TABLEMAKE_FAULTS`` wraps the real backend in ``FaultyBackend``, which makes some
``build_table`` calls fail, lose their answer, run slow or hang, e.g.::

    TABLEMAKE_FAULTS="fail=0.3,seed=7" tablemake -j 4
    TABLEMAKE_FAULTS="hang=tmp.variants" tablemake      # with `timeout` set on it

- ``fail=P``: with probability P a call fails *before* reaching the warehouse;
- ``lose=P``: with probability P a call runs, then its answer is lost (the table may have
  been replaced, and the target still counts as failed: an ambiguous failure);
- ``slow=P:S``: with probability P a call first waits S seconds;
- ``hang=TARGET`` (repeatable): that target's build waits until it is interrupted;
- ``seed=N``: whether attempt k of a target is hit depends only on (N, target, k), so a
  drill is reproducible whatever the thread interleaving.

Injected errors are transient (``TransientWarehouseError``), as a flaky warehouse's are.
Only builds are hit: planning reads that fail stop the run before anything is built.
"""

from __future__ import annotations

import os
import random
import threading
from dataclasses import dataclass
from typing import Any, cast

from tablemake.backends.base import Backend, BuildRequest, BuildResult, Interruptible
from tablemake.errors import TransientWarehouseError, UserError

ENV_VAR = "TABLEMAKE_FAULTS"


@dataclass(frozen=True)
class FaultSpec:
    fail: float = 0.0
    lose: float = 0.0
    slow: float = 0.0
    slow_seconds: float = 0.0
    hang: frozenset[str] = frozenset()
    seed: int = 0


def parse_faults(text: str) -> FaultSpec:
    """``key=value`` items separated by commas; every mistake names the variable."""
    values: dict[str, Any] = {"hang": set()}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, value = item.partition("=")
        try:
            if key in ("fail", "lose"):
                values[key] = _probability(value)
            elif key == "slow":
                chance, _, seconds = value.partition(":")
                values["slow"], values["slow_seconds"] = _probability(chance), float(seconds)
            elif key == "hang":
                values["hang"].add(value)
            elif key == "seed":
                values["seed"] = int(value)
            else:
                raise ValueError(f"unknown fault `{key}`")
        except ValueError as exc:
            raise UserError(
                f"cannot read the fault `{item}` ({exc}). Write e.g. "
                '"fail=0.3,lose=0.1,slow=0.2:1.5,hang=tmp.x,seed=7".',
                ENV_VAR,
            ) from None
    values["hang"] = frozenset(values["hang"])
    return FaultSpec(**values)


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError("a probability is between 0 and 1")
    return value


class FaultyBackend:
    """The wrapped backend, with faults injected into ``build_table``; everything else is
    passed through unchanged."""

    def __init__(self, inner: Backend, spec: FaultSpec) -> None:
        self.inner = inner
        self.spec = spec
        self.name = inner.name
        self.can_estimate = inner.can_estimate
        self._lock = threading.Lock()
        self._calls: dict[str, int] = {}
        self._waits: dict[str, threading.Event] = {}

    @property
    def state_key(self) -> str:
        return self.inner.state_key

    def build_table(self, request: BuildRequest) -> BuildResult:
        with self._lock:
            attempt = self._calls[request.target] = self._calls.get(request.target, 0) + 1
        chance = random.Random(f"{self.spec.seed}:{request.target}:{attempt}")
        fail, lose, slow = (chance.random() for _ in range(3))
        if request.target in self.spec.hang:
            self._wait(request.target, None)
        if slow < self.spec.slow:
            self._wait(request.target, self.spec.slow_seconds)
        if fail < self.spec.fail:
            raise TransientWarehouseError(f"injected fault: call {attempt} failed ({ENV_VAR})")
        result = self.inner.build_table(request)
        if lose < self.spec.lose:
            raise TransientWarehouseError(f"injected fault: answer {attempt} lost ({ENV_VAR})")
        return result

    def _wait(self, target: str, seconds: float | None) -> None:
        stop = threading.Event()
        self._waits[target] = stop
        try:
            if stop.wait(seconds):
                raise TransientWarehouseError(f"injected delay of {target} was interrupted")
        finally:
            self._waits.pop(target, None)

    def interrupt(self, target: str) -> None:
        stop = self._waits.get(target)
        if stop is not None:
            stop.set()
        if isinstance(self.inner, Interruptible):
            self.inner.interrupt(target)

    def __getattr__(self, name: str) -> Any:
        """Everything but builds goes to the real backend untouched (the protocol grows;
        listing each method here would only let the wrapper fall behind)."""
        return getattr(self.inner, name)


def with_faults(backend: Backend, spec: FaultSpec) -> Backend:
    """``backend`` behind a ``FaultyBackend``: a Backend by delegation (``__getattr__``),
    which a static checker cannot see, hence the cast."""
    return cast("Backend", FaultyBackend(backend, spec))


def faults_from_env() -> FaultSpec | None:
    """The faults ``TABLEMAKE_FAULTS`` asks for, or None when it is unset or empty."""
    text = os.environ.get(ENV_VAR, "").strip()
    return parse_faults(text) if text else None
