"""Early cutoff: a rebuilt table whose content did not change does not make its dependents
stale.

A target's *version* (what its dependents record as their input) is normally unique per
build. With cutoff on, it is a digest of the table's schema and rows instead, taken right
after the build; so a rebuild that yields the same rows keeps the version, and a dependent
planned only because that prerequisite was being rebuilt finds, when its turn comes, that
its inputs are exactly those of its last build, and is not rebuilt. ``-n`` cannot know
this in advance and says "would build unless upstream output is unchanged".
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from tablemake.backends.base import Backend
from tablemake.plan import ReasonKind, TargetPlan
from tablemake.state import BuildRecord
from tablemake.tablefile import Tablefile

CUT_OFF_REASON = "prerequisites rebuilt with unchanged content: not rebuilt (early cutoff)"


def cutoff_targets(tablefile: Tablefile, backend: Backend, names: Collection[str]) -> set[str]:
    """The targets whose output is fingerprinted after each build: per target, else per
    project, else on where the digest is cheap (DuckDB, local) and off where it costs a
    scan that is billed (BigQuery). Never on a backend without rows (simulate)."""
    if not backend.holds_rows:
        return set()
    default = tablefile.project.cutoff
    if default is None:
        default = backend.name == "duckdb"
    chosen = set()
    for name in names:
        setting = tablefile.targets[name].cutoff
        if (default if setting is None else setting) is True:
            chosen.add(name)
    return chosen


def can_skip(
    planned: TargetPlan,
    record: BuildRecord | None,
    deps: Sequence[str],
    versions: Mapping[str, str],
) -> bool:
    """Whether a target planned only because prerequisites were being rebuilt may be left
    as it is: each prerequisite's version now equals the one its last build read."""
    if record is None or not any(r.kind is ReasonKind.UNLESS_UNCHANGED for r in planned.reasons):
        return False
    return all(versions.get(dep) == record.inputs.get(dep) for dep in deps)


def content_based_version(content: str) -> str:
    return f"content:{content}"
