"""Audits: write, audit, publish.

A target with audits is built into a staging table next to the published one; each audit
is a query returning the rows that break it, run against the staging table. Only when every
audit passes does the staging table replace the published one (atomically, by the backend),
so readers and dependents never see a table that failed its audits: the previous version
stays, the target fails, and its dependents are skipped like after any failure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import sqlglot
from sqlglot import exp

from tablemake import sql
from tablemake.backends.base import Backend, BuildRequest, BuildResult, TableRows
from tablemake.errors import UserError, WarehouseError
from tablemake.graph import select_targets
from tablemake.tablefile import Audit
from tablemake.workspace import Session

SAMPLE_ROWS = 5
STAGING_SUFFIX = "__tablemake_staging"


class AuditFailed(WarehouseError):
    """The new table broke an audit; it was not published."""


@dataclass(frozen=True)
class AuditResult:
    audit: Audit
    offending: int  # rows that break it (for row_count: 1 when there are too few rows)
    sample: TableRows

    @property
    def passed(self) -> bool:
        return self.offending == 0

    def describe(self) -> str:
        rows = "; ".join(
            ", ".join(f"{c}={v!r}" for c, v in zip(self.sample.columns, row, strict=False))
            for row in self.sample.rows
        )
        return f"audit {self.audit} failed: {self.offending} offending rows (e.g. {rows})"


def staging_name(target: str) -> str:
    return target + STAGING_SUFFIX


def offending_rows(audit: Audit, table: str) -> exp.Query:
    """The query, in BigQuery's dialect, returning the rows of ``table`` that break the
    audit. Names are quoted identifiers and values are literals built by sqlglot, so
    nothing in the Tablefile is spliced into SQL as text (but a custom query's own SQL)."""
    dataset, name = table.split(".", 1)
    source = exp.table_(name, db=dataset, quoted=True)
    columns = [exp.column(c, quoted=True) for c in audit.columns]
    if audit.check == "not_null":
        return exp.select("*").from_(source).where(exp.or_(*(c.is_(exp.null()) for c in columns)))
    if audit.check == "unique":
        count = exp.func("COUNT", exp.Star())
        return (
            exp.select(*columns, count.as_("duplicates"))
            .from_(source)
            .group_by(*columns)
            .having(exp.GT(this=count.copy(), expression=exp.Literal.number(1)))
        )
    if audit.check == "accepted_values":
        column = columns[0]
        allowed = column.copy().isin(*(exp.convert(v) for v in audit.values))
        return (
            exp.select("*")
            .from_(source)
            .where(exp.and_(exp.Not(this=column.is_(exp.null())), exp.Not(this=allowed)))
        )
    if audit.check == "row_count":
        count = exp.func("COUNT", exp.Star())
        return (
            exp.select(count.as_("row_count"))
            .from_(source)
            .having(exp.LT(this=count.copy(), expression=exp.Literal.number(audit.min_rows)))
        )
    text = audit.query.replace("{this}", sql.quote_table(table, "bigquery"))
    try:
        query = sqlglot.parse_one(text, read="bigquery")
    except sqlglot.errors.ParseError as exc:
        raise UserError(f"the audit query {audit.query!r} does not parse: {exc}") from None
    if not isinstance(query, exp.Query):
        raise UserError(f"the audit query {audit.query!r} must be a SELECT")
    return query


def run_audits(backend: Backend, table: str, audits: Sequence[Audit]) -> list[AuditResult]:
    """Each audit's outcome on ``table``: a count of offending rows and a few of them."""
    results = []
    for audit in audits:
        query = offending_rows(audit, table)
        counted = exp.select(exp.func("COUNT", exp.Star())).from_(query.subquery("offending"))
        offending = int(backend.query_rows(counted, 1).rows[0][0])
        sample = backend.query_rows(query.limit(SAMPLE_ROWS), SAMPLE_ROWS) if offending else None
        results.append(AuditResult(audit, offending, sample or TableRows([], [])))
    return results


def build_audited(
    backend: Backend,
    request: BuildRequest,
    audits: Sequence[Audit],
    build: Callable[[BuildRequest], BuildResult],
) -> BuildResult:
    """Build (SQL or Python, by ``build``) into staging, audit, publish; a failed audit
    leaves the published table as it was."""
    staging = staging_name(request.target)
    result = build(replace(request, into=staging))
    try:
        failed = [r for r in run_audits(backend, staging, audits) if not r.passed]
        if failed:
            raise AuditFailed("; ".join(r.describe() for r in failed))
        backend.publish(staging, request.target)
    finally:
        backend.drop_table(staging)  # after a publish there is nothing left to drop
    return result


def audit_published(session: Session, targets: Sequence[str]) -> list[tuple[str, AuditResult]]:
    """``tablemake audit``: the audits of the selected targets (default: every target that
    has some), run on the published tables as they are now."""
    workspace, backend = session.workspace, session.backend
    if not backend.holds_rows:
        raise UserError(f"the {backend.name} backend holds no rows: audits cannot run there.")
    names = select_targets(workspace.graph, targets) if targets else workspace.graph.targets
    audited = [n for n in names if workspace.tablefile.targets[n].audits]
    missing = set(audited) - backend.existing_tables(audited)
    if missing:
        raise UserError(
            f"not built yet, so nothing to audit: {', '.join(sorted(missing))}. "
            "Build them first (`tablemake`)."
        )
    return [
        (name, result)
        for name in audited
        for result in run_audits(backend, name, workspace.tablefile.targets[name].audits)
    ]
