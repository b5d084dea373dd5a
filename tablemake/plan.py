"""Decide which selected targets are stale, and say why in plain words.

``plan_rebuild`` compares what the Tablefile, the scripts and the warehouse say now with
what the state store recorded at each target's last build. It reads scripts but never
writes anything, so ``-n`` is exactly this step followed by printing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import Enum

from tablemake import sql
from tablemake.errors import SqlError, UserError
from tablemake.graph import TargetGraph
from tablemake.params import BoundParam, parse_value, used_in_text
from tablemake.state import BuildRecord
from tablemake.tablefile import Tablefile, Target


class Action(Enum):
    BUILD = "build"
    FRESH = "fresh"
    SKIP = "skip"  # its condition does not hold in this run (or a prerequisite's)


class ReasonKind(Enum):
    ALWAYS = "always"
    NEVER_BUILT = "never-built"
    TABLE_MISSING = "table-missing"
    SQL_CHANGED = "sql-changed"
    DEFINITION_CHANGED = "definition-changed"
    SOURCE_CHANGED = "source-changed"
    UPSTREAM_CHANGED = "upstream-changed"
    UPSTREAM_REBUILDING = "upstream-rebuilding"
    UNLESS_UNCHANGED = "unless-unchanged"  # early cutoff may still spare the build
    PARAM_CHANGED = "param-changed"
    CONDITION_FALSE = "condition-false"
    UPSTREAM_SKIPPED = "upstream-skipped"


_REASON_TEXTS = {
    ReasonKind.ALWAYS: "rebuild requested (-B)",
    ReasonKind.NEVER_BUILT: "never built",
    ReasonKind.TABLE_MISSING: "table {} is missing from the warehouse",
    ReasonKind.SQL_CHANGED: "script {} changed",
    ReasonKind.DEFINITION_CHANGED: "its Tablefile entry changed (script path or prerequisites)",
    ReasonKind.SOURCE_CHANGED: "source {} changed since the last build",
    ReasonKind.UPSTREAM_CHANGED: "prerequisite {} was rebuilt since",
    ReasonKind.UPSTREAM_REBUILDING: "prerequisite {} will be rebuilt",
    ReasonKind.UNLESS_UNCHANGED: "would build unless upstream output is unchanged",
    ReasonKind.PARAM_CHANGED: "parameter {} differs from the last build's",
    ReasonKind.CONDITION_FALSE: "skipped: {}",
    ReasonKind.UPSTREAM_SKIPPED: "skipped: prerequisite {} is skipped",
}


@dataclass(frozen=True)
class Reason:
    kind: ReasonKind
    subject: str  # the script, source or prerequisite the reason is about

    def __str__(self) -> str:
        # one template per kind, filled here: a plan of 100,000 stale targets prints
        # hundreds of thousands of these
        return _REASON_TEXTS[self.kind].format(self.subject)


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
    level: int = 0  # among the targets to build: 0 = can start at once
    params: tuple[BoundParam, ...] = ()  # the runtime parameters it uses, with this run's values


@dataclass(frozen=True)
class Plan:
    targets: tuple[TargetPlan, ...]  # topological order
    source_versions: Mapping[str, str | None]
    records: Mapping[str, BuildRecord]  # the last builds it compared against
    cutoff: frozenset[str]  # targets whose output is fingerprinted (tablemake.cutoff)

    @property
    def to_build(self) -> list[TargetPlan]:
        return [t for t in self.targets if t.action is Action.BUILD]


def read_script(tablefile: Tablefile, target: Target) -> str:
    # os.path and bytes, not pathlib and a text file: this runs once per target on every
    # plan, and path objects and text wrappers cost more than reading the file
    path = os.path.join(tablefile.root, target.sql)
    try:
        with open(path, "rb") as script:
            text = script.read().decode("utf-8")
        if "\r" in text:  # what text mode does: universal newlines
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        return text
    except FileNotFoundError:
        raise UserError(
            f"the script of target `{target.name}` does not exist: {target.sql}. Create it, or "
            "set `sql = …` in the target's entry.",
            tablefile.where("targets", target.name),
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the script of `{target.name}`: {exc}", path) from None


@dataclass(frozen=True)
class Observed:
    """What the planner compares against: the state store's records and the warehouse now."""

    records: Mapping[str, BuildRecord]
    existing: Collection[str]
    source_versions: Mapping[str, str | None]
    built_text: Callable[[str], str]  # a target's script as last built (StateStore.built_script)


def plan_rebuild(
    tablefile: Tablefile,
    graph: TargetGraph,
    selected: list[str],
    observed: Observed,
    *,
    always: bool = False,
    params: Mapping[str, BoundParam] | None = None,
    cutoff: Collection[str] = (),
) -> Plan:
    """Plan the selected targets (``selected`` must be in topological order) with this
    run's parameter values (None: unknown, so left out of the comparison). ``cutoff``: the
    targets whose output is fingerprinted (see ``tablemake.cutoff``)."""
    _check_sources(tablefile, graph, selected, observed.source_versions)
    rebuilding: dict[str, int] = {}  # stale target -> its step among the stale ones
    skipped: set[str] = set()
    planned: list[TargetPlan] = []
    for name in selected:
        target = tablefile.targets[name]
        script = _script_state(tablefile, target, observed.records.get(name))
        skip = _skip_reason(target, params or {}, skipped)
        if skip is not None:
            skipped.add(name)
            planned.append(TargetPlan(name, Action.SKIP, (skip,), script))
            continue
        # params None: values unknown (a graph picture), so neither checked nor compared
        used = () if params is None else _used_params(tablefile, target, script, params)
        reasons = _reasons(target, script, observed, rebuilding, always=always)
        reasons += _param_reasons(used, observed.records.get(name))
        if reasons and all(
            r.kind is ReasonKind.UPSTREAM_REBUILDING and r.subject in cutoff for r in reasons
        ):
            reasons.append(Reason(ReasonKind.UNLESS_UNCHANGED, name))
        if not reasons:
            planned.append(TargetPlan(name, Action.FRESH, (), script, 0, used))
            continue
        level = 0  # when no prerequisite is stale, else one step after the latest stale one
        for dep in graph.deps[name]:
            step = rebuilding.get(dep)
            if step is not None and step >= level:
                level = step + 1
        rebuilding[name] = level
        planned.append(TargetPlan(name, Action.BUILD, tuple(reasons), script, level, used))
    return Plan(
        targets=tuple(planned),
        source_versions=observed.source_versions,
        records=observed.records,
        cutoff=frozenset(cutoff),
    )


def _reasons(
    target: Target,
    script: ScriptState,
    observed: Observed,
    rebuilding: Collection[str],
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
    if target.python is not None:  # its digest is already one of meaning (syntax trees)
        if script.digest != record.script_digest:
            reasons.append(Reason(ReasonKind.SQL_CHANGED, target.python.function))
    elif script.digest != record.script_digest and _meaning_changed(
        observed.built_text(target.name), script, target
    ):
        reasons.append(Reason(ReasonKind.SQL_CHANGED, target.sql))
    if target.definition != record.definition:
        reasons.append(Reason(ReasonKind.DEFINITION_CHANGED, target.name))
    for dep in target.deps:
        used = record.inputs.get(dep)
        if dep in rebuilding:
            if not always:  # with -B, every prerequisite is rebuilt: -B says it already
                reasons.append(Reason(ReasonKind.UPSTREAM_REBUILDING, dep))
        elif dep in observed.source_versions:
            if observed.source_versions[dep] != used:
                reasons.append(Reason(ReasonKind.SOURCE_CHANGED, dep))
        elif dep not in observed.records or observed.records[dep].version != used:
            reasons.append(Reason(ReasonKind.UPSTREAM_CHANGED, dep))
    return reasons


def _meaning_changed(built_text: str, script: ScriptState, target: Target) -> bool:
    """Compare the fingerprints of the last built text and the current one. Both are
    computed now, with this sqlglot, so an upgrade of sqlglot cannot fake a change."""
    assert script.script is not None  # parsed by _script_state because the digest differs
    try:
        before = sql.parse_script(built_text, target.sql).fingerprint
    except SqlError:
        return True
    return before != script.script.fingerprint


def _script_state(tablefile: Tablefile, target: Target, record: BuildRecord | None) -> ScriptState:
    """Parse only when the text differs from the last build's: an unchanged file costs one
    read and one hash, which keeps planning 100,000 targets fast."""
    if target.python is not None:
        return ScriptState(target.python.text, target.python.digest, None)
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


PARAM_PREFIX = "@"  # a parameter's value is recorded among a build's inputs as `@name`


def _skip_reason(
    target: Target, bound: Mapping[str, BoundParam], skipped: set[str]
) -> Reason | None:
    """Why the target is left out of this run, if it is: its condition does not hold, or
    a prerequisite is left out (its table would be stale or missing)."""
    for dep in target.deps:
        if dep in skipped:
            return Reason(ReasonKind.UPSTREAM_SKIPPED, dep)
    if target.condition is None:
        return None
    values = {name: p.value for name, p in bound.items()}
    try:
        holds = target.condition.holds(values)
    except Exception as exc:  # the user's code, evaluated while planning
        raise UserError(
            f"the condition of target `{target.name}` failed: {type(exc).__name__}: {exc}"
        ) from None
    return None if holds else Reason(ReasonKind.CONDITION_FALSE, target.condition.description)


def _used_params(
    tablefile: Tablefile, target: Target, script: ScriptState, bound: Mapping[str, BoundParam]
) -> tuple[BoundParam, ...]:
    """The parameters the target takes, with this run's values; refuse a used parameter
    that has neither a ``--var`` nor a default."""
    if target.python is not None:
        names = list(target.python.params)
    else:
        names = used_in_text(script.text, tablefile.params)
    if target.partition is not None and target.partition_value is not None:
        kind = tablefile.params[target.partition].type  # a partition: its own value
        value = parse_value(kind, target.partition_value)
        bound = {**bound, target.partition: BoundParam(target.partition, kind, value)}
        names = sorted({*names, target.partition})
    missing = [n for n in names if n not in bound]
    if missing:
        raise UserError(
            f"target `{target.name}` uses parameter `{missing[0]}`, which has no value: pass "
            f"--var {missing[0]}=VALUE (or --from/--to for partitions) or give it a default.",
            tablefile.params[missing[0]].where or None,
        )
    return tuple(bound[n] for n in names)


def _param_reasons(used: tuple[BoundParam, ...], record: BuildRecord | None) -> list[Reason]:
    if record is None:
        return []
    return [
        Reason(ReasonKind.PARAM_CHANGED, f"{p.name}={p.text}")
        for p in used
        if record.inputs.get(PARAM_PREFIX + p.name) != p.text
    ]


def _check_sources(
    tablefile: Tablefile,
    graph: TargetGraph,
    selected: list[str],
    source_versions: Mapping[str, str | None],
) -> None:
    for name in selected:
        for dep in graph.deps[name]:
            if dep in graph.sources and source_versions.get(dep) is None:
                init, extract = tablefile.sources[dep].init, tablefile.sources[dep].extract
                how = "`tablemake init-db`" if init else "loading it into the warehouse"
                if extract:
                    how = (
                        f"`tablemake extract` and `tablemake load` (it is a table of "
                        f"[extract.{extract}]: check that the source has it)"
                    )
                raise UserError(
                    f"source table `{dep}` (a prerequisite of `{name}`) does not exist in the "
                    f"warehouse. Create it with {how}, then run again.",
                    tablefile.where("sources", dep),
                )


def source_names(graph: TargetGraph, selected: list[str]) -> list[str]:
    """The sources the selected targets read directly."""
    return sorted({d for name in selected for d in graph.deps[name] if d in graph.sources})
