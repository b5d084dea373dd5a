"""Partitioned targets: one table, built and recorded one partition (parameter value) at a time.

A target declared with ``partition = "run_date"`` is planned as one *instance* per value of
that parameter in this run, named ``final.daily_sales[2024-01-01]``: the values of
``--from``/``--to`` (a backfill, for a DATE parameter), else the parameter's one value
(``--var`` or default). Each instance is an ordinary target to the planner, the scheduler
and the state store, so each partition has its own build record, is stale or fresh on its
own, and a backfill builds exactly the missing or stale partitions. Targets that read a
partitioned target depend on all of this run's instances. The instances write into the one
table, replacing only the rows whose partition column (named like the parameter) holds
their value.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from tablemake.errors import UserError
from tablemake.params import BoundParam
from tablemake.tablefile import Tablefile, Target

MAX_PARTITIONS = 10_000  # a typo in a year should not plan a million partitions


@dataclass(frozen=True)
class Span:
    """``--from``/``--to``: the first and last day, both included."""

    first: datetime.date
    last: datetime.date

    def days(self) -> list[str]:
        count = (self.last - self.first).days + 1
        return [(self.first + datetime.timedelta(days=i)).isoformat() for i in range(count)]


def check_span(span: Span | None) -> None:
    if span is None:
        return
    if span.last < span.first:
        raise UserError(f"--to {span.last} is before --from {span.first}.")
    if (span.last - span.first).days >= MAX_PARTITIONS:
        raise UserError(f"--from/--to span more than {MAX_PARTITIONS} days; split the backfill.")


def expand_partitions(
    tablefile: Tablefile, params: Mapping[str, BoundParam], span: Span | None
) -> tuple[Tablefile, dict[str, list[str]]]:
    """The Tablefile with each partitioned target replaced by this run's instances, and
    which instances stand for which target. Unchanged when nothing is partitioned."""
    check_span(span)
    instances: dict[str, list[str]] = {}
    expanded: dict[str, Target] = {}
    for name, target in tablefile.targets.items():
        values = _values(tablefile, target, params, span)
        if values is None:
            expanded[name] = target
            continue
        instances[name] = [f"{name}[{value}]" for value in values]
        for instance, value in zip(instances[name], values, strict=True):
            expanded[instance] = replace(
                target, name=instance, partition_value=value, cutoff=False, audits=()
            )
    if not instances:
        if span is not None:
            raise UserError("--from/--to given, but no target is partitioned.")
        return tablefile, {}
    for name, target in expanded.items():
        if any(dep in instances for dep in target.deps):
            deps = tuple(i for dep in target.deps for i in instances.get(dep, [dep]))
            expanded[name] = replace(target, deps=deps)
    return replace(tablefile, targets=expanded), instances


def _values(
    tablefile: Tablefile, target: Target, params: Mapping[str, BoundParam], span: Span | None
) -> list[str] | None:
    if target.partition is None:
        return None
    param = tablefile.params.get(target.partition)
    if param is None:
        raise UserError(
            f"target `{target.name}` is partitioned by `{target.partition}`, which is not a "
            "declared parameter; declare it under [params].",
            tablefile.where("targets", target.name),
        )
    if span is not None:
        if param.type != "DATE":
            raise UserError(
                f"--from/--to backfill DATE partitions; `{target.name}` is partitioned by "
                f"`{param.name}`, a {param.type}: give it with --var {param.name}=VALUE."
            )
        return span.days()
    if target.partition in params:
        return [params[target.partition].text]
    return None  # no value: planning it reports the missing parameter


def selected_names(names: Sequence[str], instances: Mapping[str, list[str]]) -> list[str]:
    """Target names as the user gave them, a partitioned one standing for its instances."""
    return [i for name in names for i in instances.get(name, [name])]
