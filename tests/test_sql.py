"""The sqlglot layer: what counts as a change, what a script reads, how it runs on DuckDB."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb
import pytest

from tablemake import sql
from tablemake.errors import SqlError

BASE = """
WITH imgs AS (SELECT external_id, url FROM `raw.pictures` WHERE type = 'variant')
SELECT v.id AS variant_id, ARRAY_AGG(i.url ORDER BY i.url) AS images
FROM `raw.variants` AS v JOIN imgs AS i ON i.external_id = v.id
GROUP BY 1
"""


def _fp(text: str) -> str:
    return sql.parse_script(text, "x.sql").fingerprint


@pytest.mark.parametrize(
    "variant",
    [
        "-- header\n" + BASE.replace("\n", "\n   ") + "\n/* end */",
        BASE.lower(),
        BASE.replace("`raw.pictures`", "raw.pictures").replace(
            "`raw.variants`", "`raw`.`variants`"
        ),
        BASE.replace("ARRAY_AGG", "array_agg"),
    ],
    ids=["whitespace-comments", "keyword-case", "quoting", "function-case"],
)
def test_cosmetic_changes_keep_the_fingerprint(variant: str) -> None:
    assert _fp(variant) == _fp(BASE)


@pytest.mark.parametrize(
    "variant",
    [
        BASE.replace("'variant'", "'product'"),
        BASE.replace("ORDER BY i.url", "ORDER BY i.url DESC"),
        BASE.replace("JOIN", "LEFT JOIN"),
        BASE.replace("AS images", "AS pictures"),
    ],
)
def test_changes_of_meaning_change_the_fingerprint(variant: str) -> None:
    assert _fp(variant) != _fp(BASE)


def test_referenced_tables_exclude_ctes() -> None:
    query = sql.parse_script(BASE, "x.sql").query
    assert sql.referenced_tables(query) == {"raw.pictures", "raw.variants"}


def test_a_target_script_must_be_one_select() -> None:
    with pytest.raises(SqlError, match="the script has 2 statements"):
        sql.parse_script("SELECT 1; SELECT 2", "x.sql")
    with pytest.raises(SqlError, match="the script is a DELETE statement"):
        sql.parse_script("DELETE FROM `raw.t` WHERE TRUE", "x.sql")
    with pytest.raises(SqlError, match="the script is empty"):
        sql.parse_script("-- nothing\n", "x.sql")


def test_syntax_errors_carry_file_line_and_column() -> None:
    with pytest.raises(SqlError) as caught:
        sql.parse_script("SELECT a\nFROM t WHERE (a = 1\n", "res/tmp/x.sql")
    assert str(caught.value).startswith("res/tmp/x.sql:2:")


def test_bigquery_init_script_runs_on_duckdb_with_declared_names_and_types() -> None:
    create = sql.parse_init_script(
        "CREATE OR REPLACE TABLE `raw.items` (id INT64, price FLOAT64, tag STRING) AS "
        "SELECT 1, 2.5, 'a' UNION ALL SELECT 2, 3, NULL",
        "db_init/items.sql",
    )
    assert sql.created_table(create) == "raw.items"
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    con.execute(sql.init_to_duckdb(create))
    columns = con.execute("DESCRIBE raw.items").fetchall()
    assert [(c[0], c[1]) for c in columns] == [
        ("id", "BIGINT"),
        ("price", "DOUBLE"),
        ("tag", "VARCHAR"),
    ]
    assert con.execute("SELECT * FROM raw.items ORDER BY id").fetchall() == [
        (1, 2.5, "a"),
        (2, 3.0, None),
    ]


def test_unnamed_struct_fields_keep_bigquery_inferred_names_on_duckdb() -> None:
    query = sql.parse_script(
        "SELECT ARRAY_AGG(STRUCT(p.price, p.currency)) AS prices FROM `raw.p` AS p", "x.sql"
    ).query
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw; CREATE TABLE raw.p AS SELECT 1.5 AS price, 'EUR' AS currency")
    con.execute(sql.to_duckdb_ctas("raw.out", query))
    assert con.execute("SELECT prices FROM raw.out").fetchone() == (
        [{"price": 1.5, "currency": "EUR"}],
    )


def test_name_struct_fields_makes_inferred_names_explicit() -> None:
    query = sql.parse_script(
        "SELECT STRUCT(p.a, b AS c, 1 AS d) AS s FROM `raw.p` AS p", "x.sql"
    ).query
    assert sql.name_struct_fields(query).sql("bigquery") == (
        "SELECT STRUCT(p.a AS a, b AS c, 1 AS d) AS s FROM `raw.p` AS p"
    )


def test_init_script_must_be_a_create_table_as_select() -> None:
    with pytest.raises(SqlError, match="an init script is one"):
        sql.parse_init_script("SELECT 1", "db_init/x.sql")


def test_sources_are_read_as_of_one_instant_and_nothing_else_is() -> None:
    query = sql.parse_script(
        BASE.replace("AS variant_id", "AS variant_id, (SELECT 1 FROM tmp.x) AS one"), "x.sql"
    ).query
    at = datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=timezone(timedelta(hours=8)))
    pinned = sql.read_as_of(query, {"raw.pictures", "raw.variants"}, at)
    stamp = "FOR SYSTEM_TIME AS OF CAST('2026-01-01 19:04:05.000678+00' AS TIMESTAMP)"
    text = pinned.sql("bigquery")
    assert text.count(stamp) == 2
    assert f"`raw.variants` AS v {stamp}" in text and "FROM tmp.x)" in text
    assert "imgs AS i ON" in text  # the CTE is read as it is
    assert query.sql("bigquery").count("SYSTEM_TIME") == 0  # the script itself is untouched
    assert sql.read_as_of(pinned, {"raw.variants"}, datetime.now(timezone.utc)) == pinned


def test_select_all_quotes_the_table() -> None:
    assert (
        sql.select_all("raw.order details").sql("bigquery") == "SELECT * FROM `raw`.`order details`"
    )
