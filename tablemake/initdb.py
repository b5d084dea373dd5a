"""``init-db``: create and fill source tables from their declared init scripts.

Each script is a BigQuery ``CREATE OR REPLACE TABLE`` and runs as one statement, so running
``init-db`` twice leaves the same data (and so the same source versions) as running it once.
"""

from __future__ import annotations

from collections.abc import Sequence

from tablemake import sql
from tablemake.errors import SqlError, UserError
from tablemake.workspace import Session


def init_sources(session: Session, names: Sequence[str] = ()) -> list[str]:
    """Run the init scripts of the named sources (default: all that have one)."""
    tablefile = session.workspace.tablefile
    unknown = [n for n in names if n not in tablefile.sources]
    if unknown:
        raise UserError(
            f"`{unknown[0]}` is not a declared source; sources are: "
            + ", ".join(sorted(tablefile.sources))
            + "."
        )
    chosen = [s for s in tablefile.sources.values() if s.init and (not names or s.name in names)]
    statements = []
    for source in chosen:
        assert source.init is not None
        path = tablefile.root / source.init
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError(
                f"cannot read the init script of `{source.name}`: {exc.strerror}.",
                tablefile.where("sources", source.name),
            ) from None
        create = sql.parse_init_script(text, source.init)
        if sql.created_table(create) != source.name:
            raise SqlError(
                f"the script creates `{sql.created_table(create)}`, but it is the init script "
                f"of source `{source.name}`.",
                source.init,
            )
        statements.append((create, source.init))
    session.backend.ensure_datasets({s.name.split(".", 1)[0] for s in chosen})
    for create, path_text in statements:
        session.backend.run_init_script(create, path_text)
    return [s.name for s in chosen]
