"""End to end through the CLI on a copy of the example project, on a real DuckDB file."""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tablemake.backends import duckdb_seen
from tablemake.report import ConsoleReporter
from tablemake.runner import BuildOptions, run_build
from tablemake.state import StateStore, project_lock
from tablemake.workspace import open_session, open_workspace
from tests.conftest import Cli

ALL = {
    "tmp.inventory_items",
    "tmp.item_purchase_prices",
    "tmp.purchase_prices_eur",
    "tmp.product_categories",
    "tmp.product_images",
    "tmp.variant_images",
    "tmp.products",
    "tmp.variants",
    "final.products",
}
VARIANT_IMAGES_CONE = {"tmp.variant_images", "tmp.variants", "final.products"}


@pytest.fixture
def built(shop: Path, tm: Cli) -> Path:
    """The example project with raw data loaded and everything built once."""
    assert tm(shop, "init-db").code == 0
    result = tm(shop, "final.products", "-j", "4", "--json")
    assert result.code == 0, result.err
    assert result.statuses("built") == ALL
    return shop


def _edit_semantic(project: Path, script: str = "res/tmp/variant_images.sql") -> None:
    path = project / script
    body = path.read_text().strip().rstrip(";")
    path.write_text(f"SELECT * FROM (\n{body}\n) WHERE TRUE\n")


def _rows(project: Path, table: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(project / ".state/warehouse.duckdb"), read_only=True)
    try:
        return con.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
    finally:
        con.close()


def test_full_build_makes_final_products_with_nested_arrays(built: Path) -> None:
    rows = _rows(built, "final.products")
    assert len(rows) == 10
    con = duckdb.connect(str(built / ".state/warehouse.duckdb"), read_only=True)
    variants_type = con.execute(
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_schema = 'final' AND table_name = 'products' AND column_name = 'variants'"
    ).fetchone()
    prices_type = con.execute(
        "SELECT data_type FROM information_schema.columns WHERE table_schema = 'tmp' "
        "AND table_name = 'item_purchase_prices' AND column_name = 'prices'"
    ).fetchone()
    con.close()
    assert variants_type is not None and "skuId" in variants_type[0]
    # BigQuery's inferred STRUCT field names survive translation.
    assert prices_type == ("STRUCT(purchase_price DOUBLE, currency VARCHAR, price_eur DOUBLE)[]",)


def test_no_op_run_builds_nothing(built: Path, tm: Cli) -> None:
    result = tm(built, "--json")
    assert result.code == 0
    assert result.statuses("up-to-date") == ALL
    human = tm(built, "--dry-run")
    assert "Nothing to do" in human.out


def test_semantic_edit_rebuilds_exactly_the_downstream_cone(built: Path, tm: Cli) -> None:
    _edit_semantic(built)
    planned = tm(built, "-n", "--json")
    assert planned.statuses("would-build") == VARIANT_IMAGES_CONE
    reasons = {t["name"]: t["reasons"] for t in planned.json["targets"]}
    assert reasons["tmp.variant_images"] == ["script res/tmp/variant_images.sql changed"]
    assert reasons["tmp.variants"] == ["prerequisite tmp.variant_images will be rebuilt"]
    rebuilt = tm(built, "final.products", "-j", "4", "--json")
    assert rebuilt.statuses("built") == VARIANT_IMAGES_CONE
    assert tm(built, "-q").code == 0


def test_dry_run_changes_nothing_and_groups_steps(built: Path, tm: Cli) -> None:
    _edit_semantic(built)
    state = built / ".state/state.sqlite"
    before = (state.read_bytes(), _rows(built, "tmp.variant_images"))
    human = tm(built, "--dry-run")
    assert human.code == 0
    assert re.search(r"step 1:\n\s+tmp\.variant_images\s+script res/tmp/variant_images", human.out)
    assert re.search(r"step 3:\n\s+final\.products\s+prerequisite tmp\.variants", human.out)
    assert tm(built, "-q").code == 1  # -n built nothing: still stale
    assert (state.read_bytes(), _rows(built, "tmp.variant_images")) == before


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: "-- a comment\n" + s.replace("\n", "\n\n   ") + "\n/* trailing */\n",
        lambda s: s.replace("SELECT", "select").replace("FROM", "from"),
        lambda s: s.replace("`raw.pictures`", "raw.pictures"),
    ],
    ids=["whitespace-and-comments", "keyword-case", "identifier-quoting"],
)
def test_cosmetic_edit_rebuilds_nothing(built: Path, tm: Cli, edit: object) -> None:
    path = built / "res/tmp/variant_images.sql"
    original = path.read_text()
    path.write_text(edit(original))  # type: ignore[operator]
    assert path.read_text() != original
    assert tm(built, "-n", "--json").statuses("would-build") == set()
    assert _recorded_script(built, "tmp.variant_images") == original  # -n writes nothing
    assert tm(built, "--json").statuses("built") == set()
    # the new wording is kept, so later plans need not parse both texts again
    assert _recorded_script(built, "tmp.variant_images") == path.read_text()
    assert tm(built, "-n", "--json").statuses("would-build") == set()


def _recorded_script(project: Path, target: str) -> str:
    with StateStore(project / ".state") as state:
        return state.built_script("duckdb", target)


def test_outside_insert_is_seen_after_a_no_op_recorded_the_warehouse(
    built: Path, tm: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A no-op records what the warehouse held (so the next plan need not open it); an
    insert by another client afterwards is still seen (tests/test_duckdb_seen.py has more)."""
    monkeypatch.setattr(duckdb_seen, "RACY_SECONDS", 0.0)  # trust the record at once
    warehouse = built / ".state/warehouse.duckdb"
    assert tm(built, "--json").statuses("built") == set()
    assert duckdb_seen.record_path(warehouse).exists()
    con = duckdb.connect(str(warehouse))
    con.execute("INSERT INTO raw.inventory_items VALUES (1016, 5)")
    con.close()
    stale = tm(built, "-n", "--json").statuses("would-build")
    assert stale == {"tmp.inventory_items", "tmp.variants", "final.products"}


def test_outside_insert_into_a_source_rebuilds_its_dependents(built: Path, tm: Cli) -> None:
    con = duckdb.connect(str(built / ".state/warehouse.duckdb"))
    con.execute("INSERT INTO raw.inventory_items VALUES (1016, 5)")
    con.close()
    planned = tm(built, "-n", "--json")
    assert planned.statuses("would-build") == {
        "tmp.inventory_items",
        "tmp.variants",
        "final.products",
    }
    reasons = {t["name"]: t["reasons"] for t in planned.json["targets"]}
    assert reasons["tmp.inventory_items"] == [
        "source raw.inventory_items changed since the last build"
    ]
    tm(built, "--json")
    inventory = {r[0]: r[1] for r in _rows(built, "tmp.inventory_items")}
    assert inventory[1016] == 5


def test_init_db_twice_changes_no_source_version(built: Path, tm: Cli) -> None:
    assert tm(built, "init-db").code == 0
    assert tm(built, "-n", "--json").statuses("would-build") == set()


def test_dropped_target_table_is_rebuilt(built: Path, tm: Cli) -> None:
    con = duckdb.connect(str(built / ".state/warehouse.duckdb"))
    con.execute("DROP TABLE tmp.products")
    con.close()
    planned = tm(built, "-n", "--json")
    assert planned.statuses("would-build") == {"tmp.products", "final.products"}


def test_tablefile_deps_change_rebuilds_that_target(built: Path, tm: Cli) -> None:
    tablefile = built / "Tablefile.toml"
    text = tablefile.read_text()
    # Reordering prerequisites changes nothing; adding one does.
    reordered = text.replace(
        'deps = ["tmp.products", "tmp.variants"]', 'deps = ["tmp.variants", "tmp.products"]'
    )
    tablefile.write_text(reordered)
    assert tm(built, "-n", "--json").statuses("would-build") == set()
    tablefile.write_text(
        text.replace(
            'deps = ["tmp.products", "tmp.variants"]',
            'deps = ["tmp.products", "tmp.variants", "raw.categories"]',
        )
    )
    planned = tm(built, "-n", "--json")
    assert planned.statuses("would-build") == {"final.products"}


def test_always_make_rebuilds_selection_only(built: Path, tm: Cli) -> None:
    result = tm(built, "tmp.products", "-B", "--json")
    assert result.statuses("built") == {
        "tmp.products",
        "tmp.product_images",
        "tmp.product_categories",
    }
    # final.products now reads a rebuilt prerequisite.
    assert tm(built, "-n", "--json").statuses("would-build") == {"final.products"}


def _break_script(project: Path, script: str) -> None:
    (project / script).write_text("SELECT no_such_column FROM `raw.pictures`\n")


def test_failure_stops_new_work_but_keeps_previous_table(built: Path, tm: Cli) -> None:
    before = _rows(built, "tmp.variant_images")
    _break_script(built, "res/tmp/variant_images.sql")
    _edit_semantic(built, "res/tmp/product_images.sql")
    result = tm(built, "-j", "1", "--json")
    assert result.code == 1
    statuses = {t["name"]: t for t in result.json["targets"]}
    failed = statuses["tmp.variant_images"]
    assert failed["status"] == "failed"
    assert failed["error"].startswith("res/tmp/variant_images.sql: ")
    assert "no_such_column" in failed["error"]
    assert statuses["tmp.variants"]["status"] == "skipped"
    assert statuses["final.products"]["status"] == "skipped"
    assert _rows(built, "tmp.variant_images") == before  # previous table intact
    assert "tmp.variant_images" in tm(built, "-n", "--json").statuses("would-build")


def test_keep_going_builds_every_branch_not_depending_on_the_failure(built: Path, tm: Cli) -> None:
    _break_script(built, "res/tmp/variant_images.sql")
    _edit_semantic(built, "res/tmp/product_images.sql")
    result = tm(built, "-k", "-j", "1", "--json")
    assert result.code == 1
    assert result.statuses("failed") == {"tmp.variant_images"}
    assert result.statuses("built") == {"tmp.product_images", "tmp.products"}
    assert result.statuses("skipped") == {"tmp.variants", "final.products"}
    human = tm(built, "-k")
    assert "FAILED" in human.out and "no_such_column" in human.out


def test_unknown_target_is_a_usage_error(shop: Path, tm: Cli) -> None:
    result = tm(shop, "final.product")
    assert result.code == 2
    assert result.err.strip() == (
        "tablemake: error: unknown target `final.product`: it is not declared in the "
        "Tablefile. Did you mean `final.products`?"
    )


def test_cycle_is_reported_with_the_cycle(shop: Path, tm: Cli) -> None:
    tablefile = shop / "Tablefile.toml"
    tablefile.write_text(
        tablefile.read_text().replace(
            'deps = ["raw.inventory_items"]', 'deps = ["raw.inventory_items", "final.products"]'
        )
    )
    result = tm(shop, "-n")
    assert result.code == 2
    assert "Traceback" not in result.err
    assert "prerequisites form a cycle: " in result.err
    cycle = result.err.split("cycle: ")[1].split(".\n")[0].split(". Remove")[0]
    nodes = cycle.split(" -> ")
    assert nodes[0] == nodes[-1]
    assert {"tmp.inventory_items", "tmp.variants", "final.products"} == set(nodes)


def test_missing_source_tables_tell_the_user_to_run_init_db(shop: Path, tm: Cli) -> None:
    result = tm(shop, "final.products")
    assert result.code == 2
    assert "does not exist in the warehouse. Create it with `tablemake init-db`" in result.err


def test_sql_syntax_error_names_file_line_and_column(built: Path, tm: Cli) -> None:
    (built / "res/tmp/products.sql").write_text("SELECT id FROM `raw.products`\nWHERE (id = 1\n")
    result = tm(built, "-n")
    assert result.code == 2
    assert result.err.startswith("tablemake: error: res/tmp/products.sql:2:13: syntax error: ")
    assert "script of target `tmp.products`" in result.err


def test_a_syntax_error_names_the_token_as_written(built: Path, tm: Cli) -> None:
    (built / "res/tmp/products.sql").write_text("SELECT FROM WHERE ((\n")
    result = tm(built, "check")
    assert result.code == 2
    assert "1:17: syntax error: Expected table name but got `WHERE`." in result.out + result.err


def test_init_infers_the_shipped_graph(shop: Path, tm: Cli) -> None:
    want = tm(shop, "graph", "--format", "dot").out
    (shop / "Tablefile.toml").unlink()
    assert tm(shop, "init").code == 0
    got = tm(shop, "graph", "--format", "dot").out
    edges = re.compile(r'"([\w.]+)" -> "([\w.]+)"')
    assert set(edges.findall(got)) == set(edges.findall(want))
    assert len(edges.findall(want)) == 19
    assert tm(shop, "init").code == 2  # never overwrites silently


def test_check_warns_about_undeclared_and_unused_prerequisites(shop: Path, tm: Cli) -> None:
    assert tm(shop, "check").out.strip().endswith("0 error(s), 0 warning(s)")
    tablefile = shop / "Tablefile.toml"
    tablefile.write_text(
        tablefile.read_text().replace(
            'deps = ["tmp.products", "tmp.variants"]', 'deps = ["tmp.products", "raw.categories"]'
        )
    )
    result = tm(shop, "check", "--json")
    messages = [f["message"] for f in result.json["findings"]]
    assert result.code == 0
    assert any("reads `tmp.variants`" in m and "does not list it" in m for m in messages)
    assert any("lists `raw.categories`" in m and "does not read it" in m for m in messages)


def test_why_explains_in_plain_words(built: Path, tm: Cli) -> None:
    assert "is up to date" in tm(built, "why", "final.products").out
    _edit_semantic(built)
    out = tm(built, "why", "tmp.variants").out
    assert "tmp.variants is stale" in out
    assert "prerequisite tmp.variant_images will be rebuilt" in out
    assert "upstream tmp.variant_images is stale too" in out


def test_show_prints_rows_as_json_and_csv(built: Path, tm: Cli) -> None:
    rows = json.loads(tm(built, "show", "raw.categories", "--format", "json").out)
    assert rows[0] == {"id": 1, "category_name": "Lips"}
    csv_out = tm(built, "show", "raw.categories", "--format", "csv", "--limit", "2").out
    assert csv_out.splitlines() == ["id,category_name", "1,Lips", "2,Skincare"]
    assert tm(built, "show", "raw.nope").code == 2


def test_graph_mermaid_lists_every_edge(shop: Path, tm: Cli) -> None:
    out = tm(shop, "graph", "--format", "mermaid", "final.products").out
    assert out.startswith("flowchart LR")
    assert out.count("-->") == 19


def test_python_dash_m_runs_the_cli(built: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tablemake", "-C", str(built), "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_a_second_process_fails_fast_naming_the_holder(built: Path) -> None:
    code = (
        "import sys, time; from tablemake.state import project_lock; from pathlib import Path\n"
        "with project_lock(Path(sys.argv[1])):\n print('locked', flush=True); time.sleep(30)"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code, str(built / ".state")], stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            proc = subprocess.run(
                [sys.executable, "-m", "tablemake", "-C", str(built)],
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )
            assert proc.returncode == 2
            assert f"another tablemake is working on this project (pid {holder.pid} on " in (
                proc.stderr
            )
        finally:
            holder.kill()


def _start_build(project: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-u", "-m", "tablemake", "-C", str(project)]
    return subprocess.Popen(
        [*command, "--backend", "simulate", "-j", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_lets_running_targets_finish_and_records_the_run(
    shop: Path, signum: signal.Signals
) -> None:
    tablefile = shop / "Tablefile.toml"
    tablefile.write_text(re.sub(r"duration = [\d.]+", "duration = 0.6", tablefile.read_text()))
    # As from a terminal: a shell starts background jobs (a CI step may be one) with SIGINT
    # ignored, children inherit that, and Python then installs no Ctrl-C handler. A handler
    # here makes the child start with the default disposition instead.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = _start_build(shop)
    finally:
        signal.signal(signal.SIGINT, previous)
    with proc:
        assert proc.stdout is not None
        started = 0
        while started < 2:  # wait until two targets run
            started += proc.stdout.readline().strip().startswith("start")
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "interrupted: 2 built" in out
    from tablemake.state import StateStore

    with StateStore(shop / ".state") as state:
        [run] = state.runs()
        assert run.status == "interrupted"
        assert len(state.builds("simulate")) == 2


@pytest.mark.parametrize("project", ["built", "shop"], ids=["plan", "error"])
def test_a_reader_that_goes_away_is_not_an_error(
    project: str, request: pytest.FixtureRequest
) -> None:
    """`tablemake -n | head -1`: stdout closes before tablemake writes its plan (or, on an
    unbuilt project, its error document); no traceback."""
    directory = request.getfixturevalue(project)
    command = [sys.executable, "-m", "tablemake", "-C", str(directory), "-n", "--json"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # long before planning is done
        err = proc.stderr.read().decode()
        proc.wait(timeout=60)
    assert proc.returncode == 141, err
    assert "Traceback" not in err
    assert ("does not exist in the warehouse" in err) == (project == "shop")


def test_graph_is_drawn_while_another_process_holds_the_project(built: Path, tm: Cli) -> None:
    with project_lock(built / ".state"):
        drawn = tm(built, "graph", "--format", "mermaid")
    assert drawn.code == 0, drawn.err
    assert "final.products" in drawn.out


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("out", [io.StringIO(), _Terminal()], ids=["pipe", "terminal"])
def test_progress_lines_on_a_terminal_and_off_it(shop: Path, out: io.StringIO) -> None:
    """The same events either way; only a terminal gets rich's rendering (off one, rich is
    not even loaded, which is a tenth of a no-op's time)."""
    with open_session(open_workspace(shop, backend="simulate")) as session:
        report = run_build(session, BuildOptions(jobs=2), ConsoleReporter(out))
    assert report.ok
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", out.getvalue())  # colours, cursor moves
    assert text.startswith("9 of 9 targets to build on simulate with -j 2:\n")
    for target in report.targets:
        assert f"  start   {target.name}" in text  # on a terminal, between bar redraws
        assert re.search(rf"  built   {re.escape(target.name)} +\d+\.\d\ds", text)
    assert re.search(r"^done: 9 built in \d+\.\d\ds \(run [0-9a-f-]+\)$", text, re.MULTILINE)
    assert ("━" in text) is isinstance(out, _Terminal)  # the progress bar
