"""A plan's overview: its entries' quotas summed per period, and the random tasks per period its breaches are
checked against."""

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from domain.planning.rules import QuotaLine


def quotas_by_period(
    entries: Iterable[tuple[str, Mapping[str, QuotaLine]]],
) -> dict[str, dict[str, QuotaLine]]:
    """``(period, quota lines)`` of each entry -> per period and stratum, one line: the first entry's, with
    the quota summed over the entries."""
    out: dict[str, dict[str, QuotaLine]] = {}
    for period, lines in entries:
        total = out.setdefault(period, {})
        for stratum, line in lines.items():
            current = total.get(stratum)
            total[stratum] = line if current is None else dataclasses.replace(
                current, quota=current.quota + line.quota
            )
    return out


def random_tasks_by_period(tasks: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The tasks that count against the plan (not case-triggered), per period: ``{"is_joint": ...}`` each."""
    out: dict[str, list[dict[str, Any]]] = {}
    for t in tasks:
        if t["origin"] != "case":
            out.setdefault(t["period"], []).append({"is_joint": t["is_joint"]})
    return out
