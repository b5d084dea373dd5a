"""Scenario 6, against dbt: the same project built by tablemake and by dbt (dbt-core +
dbt-duckdb), on DuckDB files holding the same raw data, timed in the same run, interleaved.

Two projects: the example shop (8 targets, one of them Python) and a generated 1,000-target
project (``bench.early_cutoff.duckdb_project``: ``bench.genproject``'s scripts with rows in
its sources). Each is written also as a dbt project (``write_dbt_project``): one model per
target, the target's BigQuery script translated to DuckDB SQL by the very translation
tablemake's DuckDB backend sends (``sqlglot``'s ``query.sql("duckdb")``), with every table
it reads turned into ``{{ ref() }}`` or ``{{ source() }}``; ``sources.yml`` for the raw
tables; ``profiles.yml`` pointing at the project's own DuckDB file. The example's Python
target becomes the equivalent SQL model (``bench.engine_overhead``'s EUR conversion): dbt's
Python models need a DataFrame library, and a SQL model can only favour dbt.

Scenarios, each timed as a whole process from outside (interpreter start included), with
``-j 4`` and ``--threads 4``:

- *full build*: from a warehouse holding only the raw tables, no state, no dbt ``target/``
  (no partial-parse cache): a first build.
- *no-op*: nothing changed. dbt has no notion of up to date, so two dbt runs: ``dbt run``
  (what a dbt user runs; it rebuilds every model) and ``dbt run --select state:modified+
  --state state/`` against the manifest of the last full build (dbt's "slim" runs).
- *edit*: one script's meaning changed (wrapped in ``SELECT * FROM (…) WHERE TRUE``, as in
  ``bench.early_cutoff``); tablemake runs with early cutoff off, so both rebuild the cone.
- *comment*: a comment line added to the same script.

The rebuilt counts are tablemake's ``--json`` "built" targets and the models dbt's
``target/run_results.json`` reports as ``success``.

    .venv/bin/python -m bench.dbt_compare [--size 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import Timed, stats, table, tablemake, timed_process, write_json
from bench.early_cutoff import duckdb_project
from bench.engine_overhead import _PYTHON_TARGET_SQL, REPO, copy_example
from bench.genproject import GeneratedProject, pick_edit

SETUP = REPO / "scripts" / "setup-dbt-bench"
DBT_VENV = Path(os.environ.get("DBT_BENCH_VENV", REPO / ".venv-dbt"))
JOBS = 4
WAREHOUSE = "warehouse.duckdb"  # the dbt project's DuckDB file: catalog `warehouse` as tablemake's
PROJECT_NAME = "tm_bench"
JINJA_OPENERS = ("{{", "{%", "{#")
SCENARIOS = ("full build", "no-op", "edit", "comment")


# -- the dbt project ------------------------------------------------------------------------


def model_name(target: str) -> str:
    """dbt model names are one namespace (tmp.products and final.products would both be
    `products`), so the model is `dataset__table`, built as `dataset.table` by its config."""
    dataset, table_name = target.split(".", 1)
    return f"{dataset}__{table_name}"


@dataclass(frozen=True)
class Model:
    """One dbt model: the target it stands for, what it reads, and its file's text."""

    target: str
    refs: tuple[str, ...]  # targets it reads, through {{ ref() }}
    sources: tuple[str, ...]  # raw tables it reads, through {{ source() }}
    text: str

    @property
    def name(self) -> str:
        return model_name(self.target)

    @property
    def path(self) -> Path:
        """Relative to the dbt project."""
        return Path("models") / self.target.split(".", 1)[0] / f"{self.name}.sql"


@dataclass(frozen=True)
class DbtProject:
    root: Path
    models: dict[str, Model]  # by tablemake target name
    sources: tuple[str, ...]

    def model_file(self, target: str) -> Path:
        return self.root / self.models[target].path


def _jinja_safe(sql_text: str) -> str:
    """SQL as literal Jinja text: DuckDB struct literals are `{'k': v}`, and a `{{`, `{%` or
    `{#` in the SQL (nested structs, strings) would be read as a Jinja tag."""
    if any(opener in sql_text for opener in JINJA_OPENERS):
        return "{% raw %}" + sql_text + "{% endraw %}"
    return sql_text


def translate(
    text: str, path: str, target: str, targets: Sequence[str], sources: Sequence[str]
) -> Model:
    """A tablemake script as a dbt model: DuckDB SQL, each table read as ref() or source().

    Tables are swapped for placeholders in the syntax tree (not in the text, where a table
    name could also be a column or a string) before the tree is written as DuckDB SQL."""
    from sqlglot import exp

    from tablemake import sql

    query = sql.parse_script(text, path).query.copy()
    known_targets, known_sources = set(targets), set(sources)
    jinja: list[str] = []
    refs: list[str] = []
    read: list[str] = []
    for node in list(query.find_all(exp.Table)):
        if not node.db:
            continue  # a CTE
        name = f"{node.db}.{node.name}"
        if name in known_targets:
            jinja.append(f"{{{{ ref('{model_name(name)}') }}}}")
            refs.append(name)
        elif name in known_sources:
            dataset, table_name = name.split(".", 1)
            jinja.append(f"{{{{ source('{dataset}', '{table_name}') }}}}")
            read.append(name)
        else:
            raise ValueError(f"{path}: `{name}` is neither a target nor a source")
        node.set("catalog", None)
        node.set("db", None)
        node.set("this", exp.to_identifier(f"__tm_table_{len(jinja) - 1}__"))
    parts = re.split(r"__tm_table_(\d+)__", query.sql("duckdb", pretty=True))
    body = "".join(
        jinja[int(part)] if index % 2 else _jinja_safe(part) for index, part in enumerate(parts)
    )
    dataset, table_name = target.split(".", 1)
    header = (
        f"{{{{ config(schema='{dataset}', alias='{table_name}') }}}}\n"
        f"-- {target}, from {path} (translated by bench/dbt_compare.py)\n"
    )
    text_ = header + body.rstrip("\n") + "\n"
    return Model(target, tuple(dict.fromkeys(refs)), tuple(dict.fromkeys(read)), text_)


def _yaml_list(key: str, names: Sequence[str], indent: str) -> str:
    return f"{indent}{key}:\n" + "".join(f"{indent}  - name: {json.dumps(n)}\n" for n in names)


def write_dbt_project(tm_root: Path, root: Path, *, threads: int = JOBS) -> DbtProject:
    """Write ``tm_root``'s tablemake project as a dbt project under ``root``.

    The warehouse is ``root/warehouse.duckdb``; the caller puts the raw tables there."""
    from tablemake.workspace import open_workspace

    tablefile = open_workspace(tm_root).tablefile
    targets, sources = list(tablefile.targets), list(tablefile.sources)
    models: dict[str, Model] = {}
    for name, target in tablefile.targets.items():
        if target.python is not None:  # the example's EUR conversion, as the SQL it equals
            text, path = _PYTHON_TARGET_SQL, f"{target.python.function} (as SQL)"
        else:
            text, path = (tm_root / target.sql).read_text(), target.sql
        models[name] = translate(text, path, name, targets, sources)
    root.mkdir(parents=True, exist_ok=True)
    (root / "dbt_project.yml").write_text(
        f"name: {PROJECT_NAME}\nversion: '1.0'\nconfig-version: 2\nprofile: {PROJECT_NAME}\n"
        "model-paths: ['models']\nmacro-paths: ['macros']\n"
        f"models:\n  {PROJECT_NAME}:\n    +materialized: table\n"
    )
    (root / "profiles.yml").write_text(
        f"{PROJECT_NAME}:\n  target: bench\n  outputs:\n    bench:\n      type: duckdb\n"
        f"      path: {WAREHOUSE}\n      schema: main\n      threads: {threads}\n"
    )
    (root / "macros").mkdir(exist_ok=True)
    # dbt's default schema name is `<target schema>_<custom>`; tablemake's is the dataset
    (root / "macros" / "generate_schema_name.sql").write_text(
        "{% macro generate_schema_name(custom_schema_name, node) -%}\n"
        "  {{ custom_schema_name if custom_schema_name else target.schema }}\n"
        "{%- endmacro %}\n"
    )
    by_dataset: dict[str, list[str]] = {}
    for source in sources:
        dataset, table_name = source.split(".", 1)
        by_dataset.setdefault(dataset, []).append(table_name)
    (root / "models").mkdir(exist_ok=True)
    (root / "models" / "sources.yml").write_text(
        "version: 2\nsources:\n"
        + "".join(
            f"  - name: {dataset}\n    schema: {dataset}\n" + _yaml_list("tables", names, "    ")
            for dataset, names in by_dataset.items()
        )
    )
    for model in models.values():
        (root / model.path).parent.mkdir(parents=True, exist_ok=True)
        (root / model.path).write_text(model.text)
    return DbtProject(root, models, tuple(sources))


# -- running dbt ----------------------------------------------------------------------------


def ensure_dbt() -> Path:
    """dbt's executable, installed by scripts/setup-dbt-bench (a no-op once done)."""
    subprocess.run([str(SETUP)], check=True)
    return DBT_VENV / "bin" / "dbt"


def dbt(executable: Path, args: Sequence[str], project: Path) -> Timed:
    """Run ``dbt ARGS`` in ``project`` as a whole process, timed from outside like
    ``bench.common.tablemake``."""
    env = {
        "DBT_PROFILES_DIR": str(project),
        # no usage events: there is no network here, and the requests would be timed too
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
    }
    return timed_process([str(executable), *args], project, extra_env=env)


def dbt_rebuilt(project: Path) -> int:
    """Models the last dbt invocation built, from its run_results.json."""
    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    return sum(
        1 for r in results if r["unique_id"].startswith("model.") and r["status"] == "success"
    )


def tablemake_rebuilt(out: str) -> int:
    return sum(1 for t in json.loads(out)["targets"] if t["status"] == "built")


# -- the measurement ------------------------------------------------------------------------


@dataclass
class Samples:
    """One scenario of one tool: the wall times of its runs and how many tables each built."""

    seconds: list[float] = field(default_factory=list)
    rebuilt: list[int] = field(default_factory=list)

    def add(self, seconds: float, rebuilt: int) -> None:
        self.seconds.append(seconds)
        self.rebuilt.append(rebuilt)

    def as_json(self) -> dict[str, Any]:
        return {**stats(self.seconds).as_json(), "rebuilt": sorted(set(self.rebuilt))}


@dataclass
class Pair:
    """Both tools, set up on the same raw data."""

    tm_root: Path
    dbt: DbtProject
    executable: Path
    pristine: Path  # the DuckDB file after `tablemake init-db`: raw tables only
    edited: str  # the target whose script the edits change
    script: str  # its script, relative to tm_root
    cone: int
    samples: dict[str, Samples] = field(default_factory=dict)

    def sample(self, label: str) -> Samples:
        return self.samples.setdefault(label, Samples())

    def tm(self, label: str | None, *args: str) -> None:
        timed = tablemake(["-j", str(JOBS), "--json", *args], self.tm_root)
        if label:
            self.sample(f"tablemake {label}").add(timed.seconds, tablemake_rebuilt(timed.stdout))

    def run_dbt(self, label: str | None, *args: str) -> None:
        timed = dbt(self.executable, ["run", "--threads", str(JOBS), *args], self.dbt.root)
        if label:
            self.sample(f"dbt {label}").add(timed.seconds, dbt_rebuilt(self.dbt.root))

    def reset(self) -> None:
        """Back to raw tables only, no build state, no dbt parse cache: a first build."""
        state = self.tm_root / ".state"
        shutil.rmtree(state)
        state.mkdir()
        shutil.copy2(self.pristine, state / "warehouse.duckdb")
        shutil.rmtree(self.dbt.root / "target", ignore_errors=True)
        shutil.copy2(self.pristine, self.dbt.root / WAREHOUSE)

    def save_dbt_state(self) -> None:
        """The manifest `state:modified+` compares with: the one of the built project."""
        state = self.dbt.root / "state"
        state.mkdir(exist_ok=True)
        shutil.copy2(self.dbt.root / "target" / "manifest.json", state / "manifest.json")


STATE = ("--select", "state:modified+", "--state", "state")


def _both(tm_first: bool, tm: Callable[[], object], other: Callable[[], object]) -> None:
    """Interleave: alternate which tool goes first, so neither always gets a warm cache."""
    for step in (tm, other) if tm_first else (other, tm):
        step()


def _edit(pair: Pair, tm_text: str, dbt_text: str) -> None:
    """The same edit in both projects: the tablemake script and its dbt model."""
    (pair.tm_root / pair.script).write_text(tm_text)
    pair.dbt.model_file(pair.edited).write_text(dbt_text)


def _row_counts(warehouse: Path, tables: Sequence[str]) -> dict[str, int]:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        counts = {}
        for name in tables:
            dataset, table_name = name.split(".", 1)
            row = con.execute(f'SELECT count(*) FROM "{dataset}"."{table_name}"').fetchone()
            counts[name] = int(row[0]) if row else -1
    return counts


def measure(pair: Pair, runs: int) -> dict[str, Any]:
    targets = list(pair.dbt.models)
    original_tm = (pair.tm_root / pair.script).read_text()
    original_dbt = pair.dbt.model_file(pair.edited).read_text()
    # a change of meaning (not of rows): with cutoff off, tablemake rebuilds the whole cone
    wrapped_tm = f"SELECT * FROM (\n{original_tm.strip()}\n) WHERE TRUE\n"
    wrapped_dbt = translate(wrapped_tm, pair.script, pair.edited, targets, pair.dbt.sources).text
    same_rows: bool | None = None

    def dbt_noops() -> None:
        pair.run_dbt("no-op (dbt run)")  # what dbt users run: every model again
        pair.run_dbt("no-op (state)", *STATE)  # a "slim" run against the last manifest

    for run in range(runs):
        first = run % 2 == 0
        pair.reset()
        _both(first, lambda: pair.tm("full build"), lambda: pair.run_dbt("full build"))
        pair.save_dbt_state()
        if same_rows is None:
            same_rows = _row_counts(pair.tm_root / ".state" / "warehouse.duckdb", targets) == (
                _row_counts(pair.dbt.root / WAREHOUSE, targets)
            )

        _both(first, lambda: pair.tm("no-op"), dbt_noops)
        _edit(pair, wrapped_tm, wrapped_dbt)
        _both(first, lambda: pair.tm("edit"), lambda: pair.run_dbt("edit", *STATE))
        _edit(pair, original_tm, original_dbt)
        pair.tm(None)  # both back to the built project: the cone again, untimed
        pair.run_dbt(None, "--select", f"{model_name(pair.edited)}+")
        _edit(pair, "-- reviewed\n" + original_tm, "-- reviewed\n" + original_dbt)
        _both(first, lambda: pair.tm("comment"), lambda: pair.run_dbt("comment", *STATE))
        _edit(pair, original_tm, original_dbt)
    return {
        "targets": len(targets),
        "edited": pair.edited,
        "cone": pair.cone,
        "same_row_counts": same_rows,
        "samples": {label: s.as_json() for label, s in pair.samples.items()},
    }


def _pick_sql_edit(tm_root: Path) -> tuple[str, str, int]:
    """The target to edit: a typical one (``genproject.pick_edit``: the median cone of a
    seeded sample) among the SQL targets."""
    from tablemake.workspace import open_workspace

    tablefile = open_workspace(tm_root).tablefile
    deps = {name: list(t.deps) for name, t in tablefile.targets.items()}
    project = GeneratedProject(tm_root, deps, {})
    sql_targets = {name for name, t in tablefile.targets.items() if t.python is None}
    typical, _ = pick_edit(project)
    if typical not in sql_targets:
        ranked = sorted((project.downstream_count(n), n) for n in sql_targets)
        typical = ranked[len(ranked) // 2][1]
    return typical, tablefile.targets[typical].sql, project.downstream_count(typical)


def prepare(scratch: Path, label: str, size: int | None, executable: Path) -> Pair:
    """tablemake's project (the example, or ``size`` generated targets) and its dbt twin,
    with the same raw tables."""
    tm_root = scratch / label / "tablemake"
    if size is None:
        copy_example(tm_root)
    else:
        duckdb_project(tm_root, size, cutoff=False)
    tablemake(["init-db"], tm_root)
    pristine = scratch / label / "raw.duckdb"
    shutil.copy2(tm_root / ".state" / "warehouse.duckdb", pristine)
    project = write_dbt_project(tm_root, scratch / label / "dbt")
    edited, script, cone = _pick_sql_edit(tm_root)
    return Pair(tm_root, project, executable, pristine, edited, script, cone)


def versions(executable: Path) -> dict[str, str]:
    out = subprocess.run(
        [
            str(executable.parent / "python"),
            "-c",
            "from importlib.metadata import version as v; import json; "
            "print(json.dumps({p: v(p) for p in ('dbt-core', 'dbt-duckdb', 'duckdb')}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found: dict[str, str] = json.loads(out)
    return found


def run(size: int, runs: int, out_dir: Path | None = None) -> dict[str, Any]:
    executable = ensure_dbt()
    began, load_before = time.perf_counter(), os.getloadavg()[0]
    projects: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tm-bench-dbt-") as tmp:
        for label, count in (("example", None), (f"{size} targets", size)):
            pair = prepare(Path(tmp), label.replace(" ", "-"), count, executable)
            projects[label] = measure(pair, runs)
    result = {
        "scenario": "dbt_compare",
        "size": size,
        "runs": runs,
        "jobs": JOBS,
        "dbt": versions(executable),
        "projects": projects,
        "took_s": time.perf_counter() - began,
        # machine() in the JSON reads the load when it is written, i.e. at the end
        "load_average_before": load_before,
    }
    write_json("dbt_compare", result, out_dir)
    return result


# -- the table ------------------------------------------------------------------------------

ROWS = (  # scenario, tablemake's samples, dbt's
    ("full build", "tablemake full build", "dbt full build"),
    ("no-op: `dbt run`", "tablemake no-op", "dbt no-op (dbt run)"),
    ("no-op: `state:modified+`", "tablemake no-op", "dbt no-op (state)"),
    ("one edited script", "tablemake edit", "dbt edit"),
    ("comment-only edit", "tablemake comment", "dbt comment"),
)


def _cell(sample: Mapping[str, Any]) -> str:
    return f"{sample['median']:.2f} ({sample['min']:.2f}-{sample['max']:.2f})"


def _rebuilt(sample: Mapping[str, Any]) -> str:
    return "/".join(str(n) for n in sample["rebuilt"])


def render(result: Mapping[str, Any]) -> str:
    headers = (
        "project",
        "scenario",
        "tablemake s",
        "dbt s",
        "dbt / tablemake",
        "rebuilt: tablemake",
        "rebuilt: dbt",
    )
    rows = []
    for label, project in result["projects"].items():
        samples = project["samples"]
        for scenario, tm_key, dbt_key in ROWS:
            tm, other = samples[tm_key], samples[dbt_key]
            rows.append(
                (
                    label,
                    scenario,
                    _cell(tm),
                    _cell(other),
                    f"{other['median'] / tm['median']:.2f}x",
                    _rebuilt(tm),
                    _rebuilt(other),
                )
            )
    notes = [
        f"{label}: {p['targets']} targets; edited `{p['edited']}` (cone {p['cone']}); "
        f"same row counts in both warehouses after the full build: {p['same_row_counts']}"
        for label, p in result["projects"].items()
    ]
    versions_ = ", ".join(f"{k} {v}" for k, v in result["dbt"].items())
    return (
        f"Median (min-max) wall seconds of {result['runs']} runs, whole processes, -j "
        f"{result['jobs']} / --threads {result['jobs']}; {versions_}.\n\n"
        + table(headers, rows)
        + "\n\n"
        + "\n".join(f"- {n}" for n in notes)
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json-dir", type=Path, default=None, help="default: bench/results")
    args = parser.parse_args(argv)
    print(render(run(args.size, args.runs, args.json_dir)))


if __name__ == "__main__":
    main()
