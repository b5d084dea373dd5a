"""Decide which selected targets are stale, and say why in plain words.

``plan_rebuild`` compares what the Tablefile, the scripts and the warehouse say now with
what the state store recorded at each target's last build. It reads scripts but never
writes anything, so ``-n`` is exactly this step followed by printing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum

from tablemake import sql
from tablemake.errors import SqlError, UserError
from tablemake.graph import TargetGraph, depth_levels
from tablemake.state import BuildRecord
from tablemake.tablefile import Tablefile, Target


class Action(Enum):
    BUILD = "build"
    FRESH = "fresh"


class ReasonKind(Enum):
    ALWAYS = "always"
    NEVER_BUILT = "never-built"
    TABLE_MISSING = "table-missing"
    SQL_CHANGED = "sql-changed"
    DEFINITION_CHANGED = "definition-changed"
    SOURCE_CHANGED = "source-changed"
    UPSTREAM_CHANGED = "upstream-changed"
    UPSTREAM_REBUILDING = "upstream-rebuilding"


@dataclass(frozen=True)
class Reason:
    kind: ReasonKind
    subject: str  # the script, source or prerequisite the reason is about

    def __str__(self) -> str:
        texts = {
            ReasonKind.ALWAYS: "rebuild requested (-B)",
            ReasonKind.NEVER_BUILT: "never built",
            ReasonKind.TABLE_MISSING: f"table {self.subject} is missing from the warehouse",
            ReasonKind.SQL_CHANGED: f"script {self.subject} changed",
            ReasonKind.DEFINITION_CHANGED: (
                "its Tablefile entry changed (script path or prerequisites)"
            ),
            ReasonKind.SOURCE_CHANGED: f"source {self.subject} changed since the last build",
            ReasonKind.UPSTREAM_CHANGED: f"prerequisite {self.subject} was rebuilt since",
            ReasonKind.UPSTREAM_REBUILDING: f"prerequisite {self.subject} will be rebuilt",
        }
        return texts[self.kind]


@dataclass(frozen=True)
class ScriptState:
    """A target's script as read at planning time (the build uses this very text), and its
    parse when planning needed one."""

    text: str
    digest: str
    script: sql.Script | None


@dataclass(frozen=True)
class TargetPlan:
    name: str
    action: Action
    reasons: tuple[Reason, ...]
    script: ScriptState
    definition: str
    level: int = 0  # among the targets to build: 0 = can start at once


@dataclass(frozen=True)
class Plan:
    targets: tuple[TargetPlan, ...]  # topological order
    source_versions: Mapping[str, str | None]

    @property
    def to_build(self) -> list[TargetPlan]:
        return [t for t in self.targets if t.action is Action.BUILD]


def definition_fingerprint(target: Target) -> str:
    """What in a Tablefile entry changes the table: the script path and the prerequisites
    (as a set: reordering them changes nothing). Simulate-only keys are left out."""
    payload = json.dumps({"sql": target.sql, "deps": sorted(target.deps)})
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def read_script(tablefile: Tablefile, target: Target) -> str:
    path = tablefile.root / target.sql
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(
            f"the script of target `{target.name}` does not exist: {target.sql}. Create it, or "
            "set `sql = …` in the target's entry.",
            tablefile.where("targets", target.name),
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the script of `{target.name}`: {exc}", str(path)) from None


@dataclass(frozen=True)
class Observed:
    """What the planner compares against: the state store's records and the warehouse now."""

    records: Mapping[str, BuildRecord]
    existing: Collection[str]
    source_versions: Mapping[str, str | None]


def plan_rebuild(
    tablefile: Tablefile,
    graph: TargetGraph,
    selected: list[str],
    observed: Observed,
    *,
    always: bool = False,
) -> Plan:
    """Plan the selected targets (``selected`` must be in topological order)."""
    _check_sources(tablefile, graph, selected, observed.source_versions)
    rebuilding: set[str] = set()
    planned: list[TargetPlan] = []
    for name in selected:
        target = tablefile.targets[name]
        script = _script_state(tablefile, target, observed.records.get(name))
        definition = definition_fingerprint(target)
        reasons = _reasons(target, script, definition, observed, rebuilding, always=always)
        action = Action.BUILD if reasons else Action.FRESH
        if reasons:
            rebuilding.add(name)
        planned.append(TargetPlan(name, action, tuple(reasons), script, definition))
    levels = depth_levels(graph.deps, [p.name for p in planned if p.action is Action.BUILD])
    return Plan(
        targets=tuple(
            TargetPlan(p.name, p.action, p.reasons, p.script, p.definition, levels.get(p.name, 0))
            for p in planned
        ),
        source_versions=observed.source_versions,
    )


def _reasons(
    target: Target,
    script: ScriptState,
    definition: str,
    observed: Observed,
    rebuilding: set[str],
    *,
    always: bool,
) -> list[Reason]:
    reasons: list[Reason] = []
    if always:
        reasons.append(Reason(ReasonKind.ALWAYS, target.name))
    record = observed.records.get(target.name)
    if record is None:
        return [*reasons, Reason(ReasonKind.NEVER_BUILT, target.name)]
    if target.name not in observed.existing:
        reasons.append(Reason(ReasonKind.TABLE_MISSING, target.name))
    if script.digest != record.script_digest and _meaning_changed(record, script, target):
        reasons.append(Reason(ReasonKind.SQL_CHANGED, target.sql))
    if definition != record.definition:
        reasons.append(Reason(ReasonKind.DEFINITION_CHANGED, target.name))
    for dep in target.deps:
        used = record.inputs.get(dep)
        if dep in rebuilding:
            reasons.append(Reason(ReasonKind.UPSTREAM_REBUILDING, dep))
        elif dep in observed.source_versions:
            if observed.source_versions[dep] != used:
                reasons.append(Reason(ReasonKind.SOURCE_CHANGED, dep))
        elif dep not in observed.records or observed.records[dep].version != used:
            reasons.append(Reason(ReasonKind.UPSTREAM_CHANGED, dep))
    return reasons


def _meaning_changed(record: BuildRecord, script: ScriptState, target: Target) -> bool:
    """Compare the fingerprints of the last built text and the current one. Both are
    computed now, with this sqlglot, so an upgrade of sqlglot cannot fake a change."""
    assert script.script is not None  # parsed by _script_state because the digest differs
    try:
        before = sql.parse_script(record.script_text, target.sql).fingerprint
    except SqlError:
        return True
    return before != script.script.fingerprint


def _script_state(tablefile: Tablefile, target: Target, record: BuildRecord | None) -> ScriptState:
    """Parse only when the text differs from the last build's: an unchanged file costs one
    read and one hash, which keeps planning 100,000 targets fast."""
    text = read_script(tablefile, target)
    digest = sql.text_digest(text)
    if record is None or record.script_digest == digest:
        return ScriptState(text, digest, None)
    return ScriptState(text, digest, parse_target_script(text, target))


def parse_target_script(text: str, target: Target) -> sql.Script:
    try:
        return sql.parse_script(text, target.sql)
    except SqlError as exc:
        raise SqlError(f"{exc.message} (script of target `{target.name}`)", exc.where) from None


def _check_sources(
    tablefile: Tablefile,
    graph: TargetGraph,
    selected: list[str],
    source_versions: Mapping[str, str | None],
) -> None:
    for name in selected:
        for dep in graph.deps[name]:
            if dep in graph.sources and source_versions.get(dep) is None:
                init = tablefile.sources[dep].init
                how = "`tablemake init-db`" if init else "loading it into the warehouse"
                raise UserError(
                    f"source table `{dep}` (a prerequisite of `{name}`) does not exist in the "
                    f"warehouse. Create it with {how}, then run again.",
                    tablefile.where("sources", dep),
                )


def source_names(graph: TargetGraph, selected: list[str]) -> list[str]:
    """The sources the selected targets read directly."""
    return sorted({d for name in selected for d in graph.deps[name] if d in graph.sources})
