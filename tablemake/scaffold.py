"""``init``: write a Tablefile for an existing ``res/`` and ``db_init/`` tree.

Targets come from ``res/<dataset>/<table>.sql``, sources from the tables ``db_init/*.sql``
create, and each target's prerequisites from the tables its SQL reads; the targets a
``workflow.py`` beside them declares (tablemake.dsl) are left to it, not made sources. The
result is a starting point the user owns: it is written once and never regenerated behind
their back.
"""

from __future__ import annotations

import json
from pathlib import Path

from tablemake import sql
from tablemake.dsl import workflow_targets
from tablemake.errors import CycleError, UserError
from tablemake.graph import TargetGraph, find_cycle, topological_order
from tablemake.tablefile import DEFAULT_FILENAME, is_table_name

WORKFLOW_FILENAME = "workflow.py"


def scaffold_tablefile(root: Path, *, force: bool = False) -> Path:
    """Infer and write ``root/Tablefile.toml``; returns its path."""
    out = root / DEFAULT_FILENAME
    if out.exists() and not force:
        raise UserError(f"{DEFAULT_FILENAME} already exists; pass --force to replace it.", str(out))
    sources: dict[str, str | None] = {}
    for path in sorted((root / "db_init").glob("*.sql")):
        rel = path.relative_to(root).as_posix()
        sources[sql.created_table(sql.parse_init_script(path.read_text(encoding="utf-8"), rel))] = (
            rel
        )
    targets: dict[str, tuple[str, list[str]]] = {}
    for path in sorted((root / "res").glob("*/*.sql")):
        rel = path.relative_to(root).as_posix()
        name = f"{path.parent.name}.{path.stem}"
        if not is_table_name(name):
            raise UserError(f"cannot name a target after {rel}: `{name}` is not `dataset.table`.")
        refs = sql.referenced_tables(sql.parse_script(path.read_text(encoding="utf-8"), rel).query)
        targets[name] = (rel, sorted(r for r in refs if is_table_name(r)))
    if not targets:
        raise UserError(
            "found no scripts under res/<dataset>/<table>.sql to make targets of.", str(root)
        )
    workflow = root / WORKFLOW_FILENAME  # Python targets (tablemake.dsl): declared there
    in_workflow = workflow_targets(workflow) if workflow.is_file() else {}
    for deps in [d for _, d in targets.values()] + list(in_workflow.values()):
        for dep in deps:
            if dep not in targets and dep not in in_workflow:
                sources.setdefault(dep, None)
    graph = TargetGraph(
        deps={
            **dict.fromkeys(sources, ()),
            **in_workflow,
            **{t: tuple(d) for t, (_, d) in targets.items()},
        },
        sources=frozenset(sources),
    )
    order = [n for n in topological_order(graph) if n in targets]
    cycle = find_cycle(graph.deps)
    if cycle:
        raise CycleError(cycle, "res/")
    sinks = [t for t in order if not any(t in deps for _, deps in targets.values())]
    lines = ["[project]", f"name = {json.dumps(root.resolve().name)}"]
    if len(sinks) == 1:
        lines.append(f"default = {json.dumps(sinks[0])}")
    if in_workflow:
        lines.append(f"workflow = {json.dumps(WORKFLOW_FILENAME)}")
    lines += ["", "[warehouse]", 'backend = "duckdb"', ""]
    for name, init in sources.items():
        lines.append(f'[sources."{name}"]')
        if init:
            lines.append(f"init = {json.dumps(init)}")
        lines.append("")
    for name in order:
        script, deps = targets[name]
        lines += [
            f'[targets."{name}"]',
            f"sql = {json.dumps(script)}",
            f"deps = {json.dumps(deps)}",
            "",
        ]
    out.write_text("\n".join(lines), encoding="utf-8")
    return out
