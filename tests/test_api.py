"""The HTTP API end to end: a real uvicorn on a free 127.0.0.1 port, a real HTTP client, on a
copy of the example project. The server holds the session exactly as ``serve`` does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from tablemake.api.app import create_app
from tablemake.api.server import listen, make_server
from tablemake.backends import Backend, TableRows
from tablemake.workspace import Session, open_session, open_workspace
from tests.conftest import Cli

PRODUCTS_CONE = {"tmp.product_categories", "tmp.product_images", "tmp.products"}
CHANGED_PRODUCTS = "source raw.products changed since the last build"


@contextmanager
def running(session: Session, *, token: str | None = None) -> Iterator[httpx.Client]:
    """Serve the session's project from a background thread until the block ends."""
    with listen("127.0.0.1", 0) as sock:
        server = make_server(create_app(session, token=token), log_level="warning")
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        port = sock.getsockname()[1]
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                yield client
        finally:
            server.should_exit = True
            thread.join(10)


@contextmanager
def serving(
    project: Path, *, token: str | None = None, backend: str | None = None
) -> Iterator[httpx.Client]:
    workspace = open_workspace(project, backend=backend)
    with open_session(workspace) as session, running(session, token=token) as client:
        yield client


@pytest.fixture
def api(shop: Path, tm: Cli) -> Iterator[httpx.Client]:
    assert tm(shop, "init-db").code == 0
    with serving(shop) as client:
        yield client


def error(response: httpx.Response, status: int, code: str) -> str:
    """The message of an error answer, after checking its status and exact shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    return message


def statuses(report: Mapping[str, object], status: str) -> set[str]:
    targets = report["targets"]
    assert isinstance(targets, list)
    return {t["name"] for t in targets if t["status"] == status}


def test_health_graph_and_openapi(api: httpx.Client) -> None:
    health = api.get("/health").json()
    assert health == {
        "status": "ok",
        "project": "shop",
        "backend": "duckdb",
        "pid": os.getpid(),
        "running_run": None,
    }
    graph = api.get("/graph").json()
    assert {"name": "raw.products", "kind": "source"} in graph["nodes"]
    assert {"name": "final.products", "kind": "target"} in graph["nodes"]
    assert {"prerequisite": "tmp.variants", "target": "final.products"} in graph["edges"]
    assert len(graph["nodes"]) == 16 and len(graph["edges"]) == 19
    spec = api.get("/openapi.json").json()
    assert {"/run", "/runs", "/runs/{run_id}", "/targets", "/{table_name}"} <= set(spec["paths"])


def test_run_answers_the_cli_json_document_and_is_recorded(api: httpx.Client) -> None:
    dry = api.post("/run", params={"dry_run": "true"}).json()
    assert dry["run_id"] is None and len(statuses(dry, "would-build")) == 9

    report = api.post("/run", params=[("target", "tmp.products"), ("jobs", "2")]).json()
    assert set(report) == {"ok", "run_id", "backend", "interrupted", "seconds", "targets"}
    assert report["ok"] and statuses(report, "built") == PRODUCTS_CONE
    assert set(report["targets"][0]) == {"name", "status", "reasons", "seconds", "rows", "attempts"}

    again = api.post("/run", params={"target": "tmp.products", "always": "true"}).json()
    assert statuses(again, "built") == PRODUCTS_CONE
    assert again["targets"][0]["reasons"][0] == "rebuild requested (-B)"

    runs = api.get("/runs", params={"limit": 2}).json()
    assert [r["id"] for r in runs] == [again["run_id"], report["run_id"]]
    assert runs[0]["trigger"] == "api"
    assert runs[0]["command"] == "POST /run?target=tmp.products&always=true"
    detail = api.get(f"/runs/{report['run_id']}").json()
    assert detail["status"] == "ok"
    assert {t["target"] for t in detail["targets"] if t["status"] == "built"} == PRODUCTS_CONE
    message = error(api.get("/runs/nope"), 404, "unknown-run")
    assert message == "no run `nope` is recorded on this project."


def test_targets_say_fresh_or_stale_and_why(api: httpx.Client) -> None:
    before = api.get("/targets").json()
    assert {t["status"] for t in before} == {"stale"}
    assert before[0]["reasons"] == ["never built"] and before[0]["last_build"] is None
    run_id = api.post("/run").json()["run_id"]
    after = api.get("/targets").json()
    assert {t["status"] for t in after} == {"fresh"}
    one = api.get("/targets/tmp.products").json()
    assert one["status"] == "fresh" and one["stale_upstream"] == []
    assert one["last_build"]["run_id"] == run_id and one["last_build"]["rows"] == 10
    assert one["deps"] == ["raw.products", "tmp.product_categories", "tmp.product_images"]

    api.post("/products", params={"name": "banana lipstick"})
    stale = api.get("/targets/tmp.products").json()
    assert stale["status"] == "stale" and stale["reasons"][0] == CHANGED_PRODUCTS
    assert set(stale["stale_upstream"]) == {"tmp.product_categories", "tmp.product_images"}
    message = error(api.get("/targets/raw.products"), 404, "unknown-target")
    assert message.startswith("`raw.products` is not a target of this project; the targets are: ")


def test_graph_svg_and_run_report_are_served(api: httpx.Client) -> None:
    picture = api.get("/graph.svg")
    assert picture.status_code == 200
    assert picture.headers["content-type"] == "image/svg+xml"
    svg = ET.fromstring(picture.text)  # well-formed XML with every node drawn
    texts = {t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")}
    assert {"raw.products", "final.products"} <= texts

    run_id = api.post("/run", params={"target": "tmp.products"}).json()["run_id"]
    page = api.get(f"/runs/{run_id}/report")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for name in PRODUCTS_CONE:
        assert name in page.text
    assert run_id in page.text and "<script src=" not in page.text
    error(api.get("/runs/nope/report"), 404, "unknown-run")
    error(api.post("/graph.svg"), 405, "method-not-allowed")


def test_append_a_row_from_the_query_string_or_a_json_body(api: httpx.Client) -> None:
    before = len(api.get("/products").json()["rows"])
    created = api.post(
        "/products?name=banana%20lipstick&category_id=4&external_id=123&type=product"
    )
    assert created.status_code == 201
    assert created.json() == {
        "table": "raw.products",
        "row": {
            "id": None,
            "name": "banana lipstick",
            "category_id": 4,
            "external_id": 123,
            "type": "product",
        },
    }
    body = api.post("/raw.products", json={"id": 99, "name": None, "category_id": "2"})
    assert body.status_code == 201
    assert body.json()["row"] == {
        "id": 99,
        "name": None,
        "category_id": 2,
        "external_id": None,
        "type": None,
    }
    rows = api.get("/products", params={"limit": 1000}).json()
    assert rows["columns"] == ["id", "name", "category_id", "external_id", "type"]
    assert len(rows["rows"]) == before + 2
    assert rows["rows"][-1]["id"] == 99


def test_append_errors_name_what_is_wrong(api: httpx.Client) -> None:
    assert error(api.post("/nope", params={"a": "1"}), 404, "unknown-table") == (
        "`nope` is not a raw table of this project. The raw tables are: raw.categories, "
        "raw.inventory_items, raw.pictures, raw.products, raw.purchase_items, "
        "raw.purchase_line_items, raw.variants (the dataset may be left out when the table "
        "name alone is unambiguous)."
    )
    assert error(api.post("/tmp.products"), 404, "unknown-table").startswith("`tmp.products`")
    assert error(api.post("/products", params={"nme": "x"}), 400, "user-error") == (
        "table `raw.products` has no column `nme`; its columns are: id, name, category_id, "
        "external_id, type."
    )
    assert error(api.post("/products", params={"category_id": "four"}), 400, "bad-value") == (
        'column `category_id` is BIGINT: cannot store the value "four".'
    )
    too_big = api.post("/products", json={"id": 2**63})
    assert error(too_big, 400, "bad-value") == (
        "column `id` is BIGINT: cannot store the value 9223372036854775808."
    )
    assert error(api.post("/products", json={"name": 5}), 400, "bad-value") == (
        "column `name` is VARCHAR: cannot store the value 5."
    )
    both = api.post("/products", params={"id": "1"}, json={"id": 2})
    assert "either as query parameters or as a JSON body" in error(both, 400, "invalid-row")
    twice = api.post("/products?id=1&id=2")
    assert error(twice, 400, "invalid-row") == "column `id` is given more than once."
    listed = api.post("/products", content=b"[1, 2]")
    assert error(listed, 400, "invalid-row").startswith("the body must be a JSON object")
    broken = api.post("/products", content=b"{nope")
    assert error(broken, 400, "invalid-row") == "the body is not valid JSON."


def test_framework_errors_have_the_same_body(api: httpx.Client) -> None:
    missing = api.get("/no/such/path")
    assert error(missing, 404, "not-found") == (
        "nothing at /no/such/path; the endpoints are listed at /openapi.json."
    )
    wrong = api.get("/run")
    assert error(wrong, 405, "method-not-allowed") == "GET is not allowed on /run; allowed: POST."
    assert wrong.headers["allow"] == "POST"
    assert api.delete("/products").headers["allow"] == "GET, POST"
    assert error(api.post("/health"), 405, "method-not-allowed").startswith("POST is not")
    assert error(api.post("/run", params={"jobs": "0"}), 400, "invalid-request") == (
        "invalid request: query jobs: Input should be greater than or equal to 1."
    )
    unknown = api.post("/run", params={"target": "tmp.nope"})
    assert error(unknown, 400, "user-error") == (
        "unknown target `tmp.nope`: it is not declared in the Tablefile."
    )


def test_missing_source_tables_are_reported_not_crashed_on(shop: Path) -> None:
    with serving(shop) as client:  # no init-db: the warehouse is empty
        assert error(client.post("/products", params={"id": "1"}), 404, "table-missing") == (
            "raw table `raw.products` does not exist in the duckdb warehouse; create it with "
            "`tablemake init-db` (stop this server first) or load it."
        )
        assert "does not exist in the warehouse" in error(client.get("/targets"), 400, "user-error")


class _BuggyBackend:
    """A warehouse whose reads fail the way a bug would: with an unexpected exception."""

    def __init__(self, inner: Backend) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def read_table(self, name: str, limit: int) -> TableRows:
        raise RuntimeError("secret internals")


def test_a_bug_is_a_generic_500_and_its_traceback_goes_to_the_log(shop: Path, tm: Cli) -> None:
    assert tm(shop, "init-db").code == 0
    with open_session(open_workspace(shop)) as session:
        buggy = replace(session, backend=_BuggyBackend(session.backend))  # type: ignore[arg-type]
        with running(buggy) as client:
            answer = client.get("/products")
    assert error(answer, 500, "internal-error") == (
        "internal error (a bug in tablemake); the traceback is in the server's "
        ".state/tablemake.log."
    )
    assert "secret" not in answer.text
    log = (shop / ".state/tablemake.log").read_text()
    assert "GET /products" in log and "RuntimeError: secret internals" in log


def test_500_concurrent_appends_all_land_even_during_builds(api: httpx.Client) -> None:
    before = len(api.get("/products", params={"limit": 100_000}).json()["rows"])

    def append(i: int) -> int:
        return api.post("/products", params={"id": str(10_000 + i), "name": f"n{i}"}).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        builds = [pool.submit(api.post, "/run", params={"always": "true"}) for _ in range(3)]
        codes = list(pool.map(append, range(500)))
        finished = [b.result().status_code for b in builds]
    assert codes == [201] * 500
    assert 200 in finished and set(finished) <= {200, 409}
    rows = api.get("/products", params={"limit": 100_000}).json()["rows"]
    assert len(rows) == before + 500
    assert {r["id"] for r in rows} >= {10_000 + i for i in range(500)}


def test_append_during_a_build_is_kept_and_leaves_dependents_stale(shop: Path, tm: Cli) -> None:
    """On the simulate backend every build takes its `duration`, so the append surely lands
    after planning and before the run ends; a second run meanwhile is refused."""
    assert tm(shop, "init-db", "--backend", "simulate").code == 0
    with serving(shop, backend="simulate") as api:
        answers: list[httpx.Response] = []
        build = threading.Thread(target=lambda: answers.append(api.post("/run")))
        build.start()
        deadline = time.monotonic() + 10
        while not any(r["status"] == "running" for r in api.get("/runs").json()):
            assert time.monotonic() < deadline, "the build did not start"
            time.sleep(0.01)
        assert api.post("/products", params={"name": "late"}).status_code == 201
        busy = api.post("/run")
        running_id = api.get("/health").json()["running_run"]
        build.join(30)
        assert error(busy, 409, "build-running") == (
            f"a build is already running (run {running_id}); only one runs at a time. Ask "
            "again when it has finished."
        )
        assert busy.json()["error"]["run_id"] == running_id
        report = answers[0].json()
        assert report["ok"] and len(statuses(report, "built")) == 9
        assert api.get(f"/runs/{running_id}").json()["status"] == "ok"

        targets = {t["name"]: t for t in api.get("/targets").json()}
        stale = {name for name, t in targets.items() if t["status"] == "stale"}
        assert stale == {*PRODUCTS_CONE, "final.products"}
        assert targets["tmp.product_images"]["reasons"] == [CHANGED_PRODUCTS]
        follow_up = api.post("/run").json()
        assert statuses(follow_up, "built") == {*PRODUCTS_CONE, "final.products"}


def test_keep_going_is_passed_to_the_build(shop: Path, tm: Cli) -> None:
    tablefile = shop / "Tablefile.toml"
    tablefile.write_text(
        tablefile.read_text() + '\n[warehouse.simulate]\nfail = ["tmp.variants"]\n'
    )
    assert tm(shop, "init-db", "--backend", "simulate").code == 0
    with serving(shop, backend="simulate") as api:
        report = api.post("/run", params={"keep_going": "true", "jobs": "8"}).json()
    assert not report["ok"]
    assert statuses(report, "failed") == {"tmp.variants"}
    assert statuses(report, "skipped") == {"final.products"}
    assert statuses(report, "built") >= PRODUCTS_CONE


def test_token_guards_every_request_but_reads(shop: Path, tm: Cli) -> None:
    assert tm(shop, "init-db").code == 0
    with serving(shop, token="s3cret") as api:
        assert api.get("/health").status_code == 200
        refused = api.post("/run", params={"dry_run": "true"})
        assert error(refused, 401, "unauthorized") == (
            "this server needs `Authorization: Bearer <token>` on every request but GET."
        )
        assert refused.headers["www-authenticate"] == "Bearer"
        for headers in ({"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
            error(api.post("/products", headers=headers), 401, "unauthorized")
        error(api.delete("/no/such/path"), 401, "unauthorized")
        good = {"Authorization": "Bearer s3cret"}
        assert api.post("/run", params={"dry_run": "true"}, headers=good).status_code == 200
        assert api.post("/products", params={"id": "7"}, headers=good).status_code == 201


def _serve(project: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "tablemake", "serve", "-C", str(project), "--port", str(port)]


def test_serve_holds_the_project_so_the_cli_fails_fast(shop: Path, tm: Cli) -> None:
    assert tm(shop, "init-db").code == 0
    with listen("127.0.0.1", 0) as probe:
        port = probe.getsockname()[1]
    server = subprocess.Popen(_serve(shop, port), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                pid = httpx.get(f"http://127.0.0.1:{port}/health").json()["pid"]
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None, "no server"
                time.sleep(0.05)
        assert pid == server.pid
        began = time.monotonic()
        cli = subprocess.run(
            [sys.executable, "-m", "tablemake", "-C", str(shop)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert time.monotonic() - began < 15
        assert cli.returncode == 2
        assert f"another tablemake is working on this project (pid {pid} on " in cli.stderr
        taken = subprocess.run(_serve(shop, port), capture_output=True, text=True, check=False)
        assert taken.returncode == 2
        assert f"cannot listen on 127.0.0.1:{port}: Address already in use." in taken.stderr
    finally:
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=30)
    assert server.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_schemathesis_finds_no_server_errors_or_schema_violations(api: httpx.Client) -> None:
    schemathesis = Path(sys.executable).with_name("schemathesis")
    proc = subprocess.run(
        [
            str(schemathesis),
            "run",
            str(api.base_url.join("/openapi.json")),
            "--checks",
            "all",
            "--max-examples",
            "20",
            "--seed",
            "1",
            "--generation-database",
            "none",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
