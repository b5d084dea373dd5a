"""The one exception tree of tablemake.

``TablemakeError`` is the base. ``UserError`` and its children are mistakes a user can fix
(bad Tablefile, unknown target, SQL error, a locked warehouse): the CLI prints them as one
paragraph and exits 2, never with a traceback. Anything else escaping the core is a bug.
"""

from __future__ import annotations

from collections.abc import Sequence


class TablemakeError(Exception):
    """Base of every error tablemake raises on purpose."""


class UserError(TablemakeError):
    """A problem in the user's input or environment, with where it was found."""

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class TablefileError(UserError):
    """A Tablefile that cannot be loaded: TOML syntax, schema or reference errors."""


class SqlError(UserError):
    """A script that does not parse, or is not the single SELECT a target needs."""


class CycleError(UserError):
    """The prerequisites form a cycle; ``cycle`` lists it, first node repeated at the end."""

    def __init__(self, cycle: Sequence[str], where: str | None = None) -> None:
        self.cycle = tuple(cycle)
        super().__init__(
            "prerequisites form a cycle: "
            + " -> ".join(self.cycle)
            + ". Remove one of these edges from the Tablefile.",
            where,
        )


class WarehouseError(TablemakeError):
    """The warehouse refused or failed a statement; the message is the warehouse's own."""


class TransientWarehouseError(WarehouseError):
    """A failure that may pass (overload, conflict, lost connection): the runner retries
    the target under its ``retries`` policy; any other ``WarehouseError`` fails it at once."""


class LockedError(UserError):
    """Another process holds the project (its pid, host and start time are in the message)."""


def first_line(exc: BaseException) -> str:
    """A driver error's first line: the message, without the context lines drivers add."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
