"""Runtime parameters (``--var run_date=2024-01-02``): declared types, typed values, binding.

A parameter is declared once, with a GoogleSQL type, under ``[params]`` in the Tablefile or
with ``tablemake.dsl.param``. SQL scripts read it as a BigQuery query parameter
(``@run_date``) and the backends bind it (never splice it); Python targets receive it as a
typed argument. Its canonical text is part of each using target's fingerprint, so a new
value means a rebuild. This module imports nothing of tablemake: the Tablefile loader uses
it to check defaults.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass

PARAM_TYPES = ("STRING", "INT64", "FLOAT64", "BOOL", "DATE")
ParamValue = str | int | float | bool | datetime.date
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def is_param_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


def parse_value(kind: str, text: str) -> ParamValue:
    """The typed value of ``text`` for a parameter of GoogleSQL type ``kind``; ValueError
    with a short complaint when it does not convert."""
    if kind == "STRING":
        return text
    if kind == "INT64":
        try:
            return int(text)
        except ValueError:
            raise ValueError("is not a whole number") from None
    if kind == "FLOAT64":
        try:
            return float(text)
        except ValueError:
            raise ValueError("is not a number") from None
    if kind == "BOOL":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError("is not true or false")
    if kind == "DATE":
        try:
            return datetime.date.fromisoformat(text)
        except ValueError:
            raise ValueError("is not a date YYYY-MM-DD") from None
    raise ValueError(f"has an unknown type {kind}")


@dataclass(frozen=True)
class Param:
    """A declared parameter; ``default`` is its text form, checked when declared."""

    name: str
    type: str
    default: str | None = None
    where: str = ""  # file:line of the declaration, for error messages


@dataclass(frozen=True)
class BoundParam:
    """A parameter with the value of this run, ready to bind."""

    name: str
    type: str
    value: ParamValue

    @property
    def text(self) -> str:
        """Canonical text: what the fingerprint records (``2024-01-02``, ``true``, ``7``)."""
        if isinstance(self.value, bool):
            return "true" if self.value else "false"
        if isinstance(self.value, datetime.date):
            return self.value.isoformat()
        return str(self.value)


def bind_values(declared: Mapping[str, Param], given: Mapping[str, str]) -> dict[str, BoundParam]:
    """Each declared parameter with its value for this run: the ``--var`` when given, else
    its default. Parameters without either are left out (a target using one is refused at
    plan time). Raises ValueError naming an undeclared or badly typed ``--var``."""
    for name in given:
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none are declared"
            raise ValueError(
                f"--var {name}=…: no parameter `{name}` is declared (declared: {known}). "
                "Declare it under [params] in the Tablefile or with tablemake.dsl.param()."
            )
    bound: dict[str, BoundParam] = {}
    for name, param in declared.items():
        text = given.get(name, param.default)
        if text is None:
            continue
        try:
            bound[name] = BoundParam(name, param.type, parse_value(param.type, text))
        except ValueError as exc:
            raise ValueError(
                f"--var {name}={text!r} {exc} (parameter `{name}` is {param.type})."
            ) from None
    return bound


def parse_var(text: str) -> tuple[str, str]:
    """``name=value`` from the command line; ValueError when malformed."""
    name, sep, value = text.partition("=")
    if not sep or not is_param_name(name):
        raise ValueError(f"--var takes NAME=VALUE with a plain name, not {text!r}")
    return name, value


def used_in_text(text: str, names: Mapping[str, object]) -> list[str]:
    """Which of ``names`` a SQL text mentions as ``@name``. A regex, not a parse, so that
    unchanged scripts stay unparsed while planning; a mention inside a comment or string
    only adds the value to the fingerprint (an extra rebuild, never a missed one)."""
    if not names or "@" not in text:
        return []
    found = set(re.findall(r"@([A-Za-z_][A-Za-z0-9_]*)", text))
    return sorted(found & names.keys())
