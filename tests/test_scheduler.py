"""The scheduler: ordering, the -j cap, priorities and the failure policy, on real threads."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from tablemake.scheduler import Finished, Outcome, remaining_path, run_jobs
from tests.conftest import Cli

DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


class Recorder:
    """A build function that sleeps, fails on request, and logs start/end per job."""

    def __init__(self, seconds: float = 0.02, fail: frozenset[str] = frozenset()) -> None:
        self.seconds = seconds
        self.fail = fail
        self.events: list[tuple[str, str]] = []
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __call__(self, name: str) -> str:
        with self._lock:
            self.events.append(("start", name))
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(self.seconds)
        with self._lock:
            self.running -= 1
            self.events.append(("end", name))
        if name in self.fail:
            raise RuntimeError(f"{name} broke")
        return name.upper()

    def started(self) -> list[str]:
        return [n for kind, n in self.events if kind == "start"]

    def index(self, kind: str, name: str) -> int:
        return self.events.index((kind, name))


def test_no_job_starts_before_its_prerequisites_end() -> None:
    deps = {f"n{i}": [f"n{j}" for j in range(max(0, i - 3), i) if (i + j) % 2] for i in range(40)}
    recorder = Recorder(seconds=0.005)
    schedule = run_jobs(deps, recorder, jobs=4, keep_going=False, priority={})
    assert all(f.outcome is Outcome.BUILT for f in schedule.finished.values())
    for name, prereqs in deps.items():
        for dep in prereqs:
            assert recorder.index("end", dep) < recorder.index("start", name)
    assert schedule.finished["n3"].result == "N3"


def test_jobs_cap_is_respected_and_reached() -> None:
    deps: dict[str, list[str]] = {f"leaf{i}": [] for i in range(12)}
    recorder = Recorder(seconds=0.03)
    run_jobs(deps, recorder, jobs=3, keep_going=False, priority={})
    assert recorder.peak == 3


def test_ready_job_on_the_longest_remaining_path_starts_first() -> None:
    deps = {"short": [], "long1": [], "long2": ["long1"], "long3": ["long2"]}
    priority = remaining_path(deps, dict.fromkeys(deps, 1.0))
    assert priority == {"short": 1.0, "long1": 3.0, "long2": 2.0, "long3": 1.0}
    recorder = Recorder(seconds=0.005)
    run_jobs(deps, recorder, jobs=1, keep_going=False, priority=priority)
    assert recorder.started()[0] == "long1"


def test_no_level_barrier_a_ready_job_does_not_wait_for_its_level() -> None:
    # c depends only on the fast a; the slow b (same level as a) must not delay c.
    deps: dict[str, list[str]] = {"a": [], "b": [], "c": ["a"]}

    def build(name: str) -> None:
        time.sleep(0.3 if name == "b" else 0.01)
        events.append(name)

    events: list[str] = []
    run_jobs(deps, build, jobs=2, keep_going=False, priority={})
    assert events.index("c") < events.index("b")


def test_failure_without_keep_going_starts_nothing_new_and_lets_running_finish() -> None:
    deps: dict[str, list[str]] = {"bad": [], "slow": [], "later": [], "child": ["bad"]}
    recorder = Recorder(seconds=0.05, fail=frozenset({"bad"}))
    priority = {"bad": 3.0, "slow": 2.0, "later": 1.0, "child": 0.5}

    def build(name: str) -> str:  # slow is still running when bad fails, not a race
        if name == "slow":
            time.sleep(0.3)
        return recorder(name)

    schedule = run_jobs(deps, build, jobs=2, keep_going=False, priority=priority)
    outcome = {n: f.outcome for n, f in schedule.finished.items()}
    assert outcome == {
        "bad": Outcome.FAILED,
        "slow": Outcome.BUILT,  # was running: allowed to finish
        "later": Outcome.SKIPPED,  # never started after the failure
        "child": Outcome.SKIPPED,
    }
    assert schedule.finished["child"].reason == "prerequisite bad failed"
    assert schedule.finished["later"].reason == "the run stopped after bad failed"
    assert str(schedule.finished["bad"].error) == "bad broke"


def test_keep_going_builds_everything_not_downstream_of_the_failure() -> None:
    deps = {**DIAMOND, "e": [], "f": ["e"], "g": ["d", "f"]}
    recorder = Recorder(seconds=0.005, fail=frozenset({"b"}))
    schedule = run_jobs(deps, recorder, jobs=2, keep_going=True, priority={})
    outcome = {n: f.outcome.value for n, f in schedule.finished.items()}
    assert outcome == {
        "a": "built",
        "b": "failed",
        "c": "built",
        "d": "skipped",
        "e": "built",
        "f": "built",
        "g": "skipped",
    }


def test_callbacks_run_in_the_calling_thread_in_event_order() -> None:
    caller = threading.get_ident()
    seen: list[tuple[str, str, bool]] = []
    run_jobs(
        DIAMOND,
        Recorder(seconds=0.001),
        jobs=2,
        keep_going=False,
        priority={},
        on_start=lambda n: seen.append(("start", n, threading.get_ident() == caller)),
        on_finish=lambda f: seen.append(("finish", f.name, threading.get_ident() == caller)),
    )
    assert all(same for *_, same in seen)
    assert seen[0] == ("start", "a", True)
    assert seen[-1] == ("finish", "d", True)


def test_a_finish_is_reported_before_the_starts_it_made_possible() -> None:
    """Dependents are handed to workers before the finish is recorded (recording is off
    the critical path), yet the caller still sees each finish before the starts it freed."""
    seen: list[tuple[str, str]] = []
    run_jobs(
        {"a": [], "b": ["a"], "c": ["b"]},
        Recorder(seconds=0.001),
        jobs=2,
        keep_going=False,
        priority={},
        on_start=lambda n: seen.append(("start", n)),
        on_finish=lambda f: seen.append(("finish", f.name)),
    )
    assert seen == [
        ("start", "a"),
        ("finish", "a"),
        ("start", "b"),
        ("finish", "b"),
        ("start", "c"),
        ("finish", "c"),
    ]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupt_while_finishes_are_recorded_loses_none_of_them(signum: int) -> None:
    """Ctrl-C can land while a round of finishes is being recorded (most of the main
    thread's time): it must stop the run, not cut the round short or escape as an error."""
    reported: list[str] = []
    started: list[str] = []

    def build(name: str) -> str:
        started.append(name)
        time.sleep(0.3 if name == "b" else 0.01)  # b is still running when a is recorded
        return name

    def on_finish(done: Finished[str]) -> None:
        if done.name == "a":
            os.kill(os.getpid(), signum)  # delivered here, in the middle of recording
            time.sleep(0.01)  # the handler runs before this returns
        reported.append(done.name)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        schedule = run_jobs(
            {"a": [], "b": [], "c": ["b"]},
            build,
            jobs=2,
            keep_going=False,
            priority={},
            on_finish=on_finish,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
    assert schedule.interrupted
    assert reported == ["a", "b", "c"]  # b finished after the interrupt and was recorded
    assert schedule.finished["b"].outcome is Outcome.BUILT
    assert schedule.finished["c"].outcome is Outcome.SKIPPED
    assert sorted(started) == ["a", "b"]


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # what the CLI installs for SIGTERM


def test_simulate_backend_overlaps_independent_targets(shop: Path, tm: Cli) -> None:
    """The whole stack on the simulate backend: 4 independent 0.3 s targets on -j 4."""
    tablefile = shop / "Tablefile.toml"
    tablefile.write_text(re.sub(r"duration = [\d.]+", "duration = 0.3", tablefile.read_text()))
    began = time.monotonic()
    result = tm(
        shop,
        "tmp.inventory_items",
        "tmp.product_categories",
        "tmp.product_images",
        "tmp.variant_images",
        "-j",
        "4",
        "--backend",
        "simulate",
        "--json",
    )
    wall = time.monotonic() - began
    assert result.code == 0, result.err
    assert len(result.statuses("built")) == 4
    assert wall < 0.9, f"4 x 0.3 s on -j 4 took {wall:.2f}s: no overlap"
    assert tm(shop, "--backend", "simulate", "-q", "tmp.variant_images").code == 0


@pytest.mark.parametrize("jobs", [1, 3])
def test_simulate_failure_policy_through_the_cli(shop: Path, tm: Cli, jobs: int) -> None:
    tablefile = shop / "Tablefile.toml"
    tablefile.write_text(
        tablefile.read_text()
        .replace(
            'backend = "duckdb"',
            'backend = "simulate"\n\n[warehouse.simulate]\nfail = ["tmp.variant_images"]',
        )
        .replace("duration = 0.", "duration = 0.0")
    )
    stopped = tm(shop, "-j", str(jobs), "--json")
    assert stopped.code == 1
    assert "tmp.variant_images" in stopped.statuses("failed")
    assert {"tmp.variants", "final.products"} <= stopped.statuses("skipped")
    kept = tm(shop, "-j", str(jobs), "-k", "--json")
    assert kept.statuses("failed") == {"tmp.variant_images"}
    assert kept.statuses("skipped") == {"tmp.variants", "final.products"}
    assert {"tmp.products", "tmp.inventory_items"} <= (
        kept.statuses("built") | stopped.statuses("built")
    )
