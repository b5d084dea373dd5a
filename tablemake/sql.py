"""SQL scripts through sqlglot: parse, fingerprint, referenced tables, dialect translation.

Scripts are BigQuery SQL. This module is the only place that knows sqlglot; it reads no
files and touches no warehouse, so every function is pure and cheap to test. sqlglot is
imported where it is used, not when this module is: a run with nothing to parse (a no-op)
never pays for loading it, which is a fifth of the no-op's time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, TypeVar

from tablemake.errors import SqlError

if TYPE_CHECKING:
    from sqlglot import exp

DIALECT = "bigquery"
Q = TypeVar("Q", bound="exp.Expr")


@dataclass(frozen=True)
class Script:
    """A parsed target script: its single query, and where it came from."""

    path: str
    query: exp.Query

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.query)


def text_digest(text: str) -> str:
    """Hash of the raw text: equal digests let the planner skip parsing altogether."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def parse_statements(text: str, path: str) -> list[exp.Expr]:
    import sqlglot
    from sqlglot.errors import ParseError, SqlglotError, TokenError

    try:
        statements = [s for s in sqlglot.parse(text, read=DIALECT) if s is not None]
    except ParseError as exc:
        error = exc.errors[0] if exc.errors else {}
        line, col = error.get("line"), error.get("col")
        where = f"{path}:{line}:{col}" if line else path
        message = str(error.get("description") or exc).split(". Line")[0]
        # sqlglot names the offending token by its repr; users wrote only its text
        message = re.sub(r"<Token token_type: [^>]*?, text: (.*?), line: [^>]*>", r"`\1`", message)
        raise SqlError(f"syntax error: {message}.", where) from None
    except (TokenError, SqlglotError) as exc:
        raise SqlError(f"syntax error: {exc}.", path) from None
    if not statements:
        raise SqlError("the script is empty; a target script is one SELECT statement.", path)
    return statements


def parse_script(text: str, path: str) -> Script:
    """Parse a target script, which must be exactly one query (SELECT, WITH, UNION…)."""
    from sqlglot import exp

    statements = parse_statements(text, path)
    if len(statements) > 1:
        raise SqlError(
            f"the script has {len(statements)} statements; a target script is one SELECT "
            "whose result becomes the table (tablemake writes the CREATE itself).",
            path,
        )
    query = statements[0]
    if not isinstance(query, exp.Query):
        kind = query.key.upper()
        raise SqlError(
            f"the script is a {kind} statement; a target script is one SELECT whose result "
            "becomes the table (tablemake writes the CREATE itself).",
            path,
        )
    return Script(path=path, query=query)


def parse_init_script(text: str, path: str) -> exp.Create:
    """Parse a source's init script: one ``CREATE [OR REPLACE] TABLE … AS SELECT``."""
    from sqlglot import exp

    statements = parse_statements(text, path)
    create = statements[0]
    if len(statements) > 1 or not isinstance(create, exp.Create) or create.kind != "TABLE":
        raise SqlError(
            "an init script is one `CREATE OR REPLACE TABLE `dataset.table` (…) AS SELECT …` "
            "statement.",
            path,
        )
    if not isinstance(create.expression, exp.Query):
        raise SqlError("the CREATE TABLE has no `AS SELECT …` to fill the table.", path)
    return create


def created_table(create: exp.Create) -> str:
    from sqlglot import exp

    table = create.find(exp.Table)
    assert table is not None  # parse_init_script guarantees a CREATE TABLE
    return f"{table.db}.{table.name}" if table.db else table.name


def fingerprint(query: exp.Expr) -> str:
    """Hash of the normalised SQL: whitespace, comments, keyword and function-name case and
    identifier quoting do not count; anything that can change the result does."""
    from sqlglot import exp

    normal = query.copy()
    for table in normal.find_all(exp.Table):
        table.meta.pop("quoted_table", None)
    text = normal.sql(DIALECT, comments=False, identify=True, normalize_functions="upper")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def referenced_tables(query: exp.Expr) -> set[str]:
    """``dataset.table`` names the query reads, CTE names excluded."""
    from sqlglot import exp

    ctes = {cte.alias_or_name for cte in query.find_all(exp.CTE)}
    names: set[str] = set()
    for table in query.find_all(exp.Table):
        if not table.name:
            continue
        if table.db:
            names.add(f"{table.db}.{table.name}")
        elif table.name not in ctes:
            names.add(table.name)
    return names


def parameter_names(query: exp.Expr) -> set[str]:
    """Names of the query parameters (``@name``) the query reads; a ``@`` inside a string
    literal or a comment is not one."""
    from sqlglot import exp

    return {p.name for p in query.find_all(exp.Parameter)}


def quote_table(name: str, dialect: str) -> str:
    """A validated ``dataset.table`` name as a quoted identifier of the given dialect."""
    dataset, table = name.split(".", 1)
    if dialect == "duckdb" and _PLAIN_NAME.fullmatch(dataset) and _PLAIN_NAME.fullmatch(table):
        # what sqlglot writes, without loading its DuckDB dialect: a no-op run quotes source
        # names and nothing else, and the dialect costs a tenth of its start-up
        return f'"{dataset}"."{table}"'
    from sqlglot import exp

    return exp.table_(table, db=dataset, quoted=True).sql(dialect)


def translate_type(googlesql: str, dialect: str) -> str:
    """A GoogleSQL column type (``INT64``, ``ARRAY<STRUCT<…>>``) in another dialect."""
    from sqlglot import exp

    return exp.DataType.build(googlesql, dialect=DIALECT).sql(dialect)


def quote_identifier(name: str, dialect: str) -> str:
    """A column, schema or table name as a quoted identifier of the given dialect."""
    if dialect == "duckdb" and _PLAIN_NAME.fullmatch(name):
        return f'"{name}"'  # what sqlglot writes (see quote_table)
    from sqlglot import exp

    return exp.to_identifier(name, quoted=True).sql(dialect)


_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def to_duckdb_ctas(name: str, query: exp.Query) -> str:
    """``CREATE OR REPLACE TABLE name AS <query>`` in DuckDB's dialect."""
    return f"CREATE OR REPLACE TABLE {quote_table(name, 'duckdb')} AS {query.sql('duckdb')}"


def init_to_duckdb(create: exp.Create) -> str:
    """Translate a BigQuery ``CREATE TABLE t (col TYPE, …) AS SELECT`` for DuckDB.

    DuckDB rejects a typed column list before AS, so the select is wrapped and each
    positional column is cast to the declared type and given the declared name.
    """
    from sqlglot import exp

    schema = create.this
    query = create.expression
    assert isinstance(query, exp.Query)
    target = created_table(create)
    if not isinstance(schema, exp.Schema):
        return to_duckdb_ctas(target, query)
    columns = [c for c in schema.expressions if isinstance(c, exp.ColumnDef)]
    aliases = [f"_c{i}" for i in range(len(columns))]
    casts = [
        exp.cast(exp.column(alias), column.args["kind"]).as_(column.name, quoted=True)
        for alias, column in zip(aliases, columns, strict=True)
    ]
    source = exp.Subquery(
        this=query,
        alias=exp.TableAlias(
            this=exp.to_identifier("_src"), columns=[exp.to_identifier(a) for a in aliases]
        ),
    )
    return to_duckdb_ctas(target, exp.select(*casts).from_(source))


def name_struct_fields(query: exp.Expr) -> exp.Expr:
    """Make BigQuery's inferred STRUCT field names explicit: ``STRUCT(a.x)`` -> ``STRUCT(a.x AS
    x)``. Same meaning on BigQuery; needed by servers that do not infer names."""
    from sqlglot import exp

    named = query.copy()
    for struct in named.find_all(exp.Struct):
        for item in struct.expressions:
            if isinstance(item, exp.Column) and item.name:
                item.replace(
                    exp.PropertyEQ(this=exp.to_identifier(item.name), expression=item.copy())
                )
    return named


def read_as_of(query: Q, tables: Collection[str], at: datetime) -> Q:
    """Read the named tables as of one instant (BigQuery's ``FOR SYSTEM_TIME AS OF``): every
    target of a run then sees its sources as they were when the run recorded their versions,
    whatever is appended while it runs. Other tables (those built in the run) are read live."""
    from sqlglot import exp

    instant = at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    timestamp = exp.DataType.build("TIMESTAMP", dialect=DIALECT)
    pinned = query.copy()
    for table in pinned.find_all(exp.Table):
        if table.db and f"{table.db}.{table.name}" in tables and table.args.get("version") is None:
            stamp = exp.cast(exp.Literal.string(instant), timestamp)
            table.set("version", exp.Version(this="TIMESTAMP", kind="AS OF", expression=stamp))
    return pinned


def select_all(name: str) -> exp.Query:
    """``SELECT * FROM dataset.table``, as an expression to refine (e.g. ``read_as_of``)."""
    from sqlglot import exp

    dataset, table = name.split(".", 1)
    return exp.select("*").from_(exp.table_(table, db=dataset, quoted=True))
