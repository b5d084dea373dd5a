"""``check``: everything that can be verified without building.

Loading the workspace already rejects bad keys, unknown prerequisites and cycles. This adds
what needs the scripts: missing or unparsable files, and prerequisites declared in the
Tablefile versus tables the SQL really reads, both ways.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from tablemake import sql
from tablemake.errors import UserError
from tablemake.plan import parse_target_script, read_script
from tablemake.workspace import Workspace


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    severity: Severity
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity.value}: {self.where}: {self.message}"


def check_workspace(workspace: Workspace) -> list[Finding]:
    tablefile = workspace.tablefile
    findings: list[Finding] = []
    for source in tablefile.sources.values():
        if source.init and not (tablefile.root / source.init).is_file():
            findings.append(
                Finding(
                    Severity.ERROR,
                    tablefile.where("sources", source.name),
                    f"init script {source.init} of `{source.name}` is missing",
                )
            )
    for target in tablefile.targets.values():
        where = tablefile.where("targets", target.name)
        if target.python is not None:
            continue  # a Python target reads the prerequisites it takes as arguments
        try:
            script = parse_target_script(read_script(tablefile, target), target)
        except UserError as exc:
            findings.append(Finding(Severity.ERROR, exc.where or where, exc.message))
            continue
        reads = sql.referenced_tables(script.query)
        for table in sorted(reads - set(target.deps)):
            findings.append(
                Finding(
                    Severity.WARNING,
                    where,
                    f"`{target.name}` reads `{table}` ({target.sql}) but does not list it in deps: "
                    "it will not be rebuilt when that table changes",
                )
            )
        for dep in sorted(set(target.deps) - reads):
            findings.append(
                Finding(
                    Severity.WARNING,
                    where,
                    f"`{target.name}` lists `{dep}` in deps but {target.sql} does not read it",
                )
            )
    return findings
