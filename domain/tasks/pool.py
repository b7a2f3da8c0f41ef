"""The candidate pool of a target draw: which targets a task's scope admits, minus the exclusions.

Pure: the caller supplies the targets (from the read model when freezing, from the log replayed up to the
freeze position when verifying) and what earlier draws of the year selected. Both paths go through
:func:`build_pool`, so a verification recomputes the pool exactly as the freeze made it.

The pool: every target whose status is ``active`` and which the scope admits (each given criterion holds;
within a list any value matches; tags: at least one of the scope's tags), minus, when the task's option
``exclude_inspected_this_year`` is on, every target that another task's current draw of the same year
selected for one of this task's items. Positive-list targets (正面清单, tag ``positive_list``) stay in
the pool and are reported as ``off_site_first``.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.planning.rules import stratum_key

POSITIVE_LIST = "positive_list"


@dataclass(frozen=True, slots=True)
class PoolRow:
    """One candidate as the sampler reads it (``id``, ``stratum``, ``weight``)."""

    id: str
    stratum: str
    weight: int = 1


@dataclass
class Pool:
    """The frozen pool: candidates in id order, per-(class, risk) counts, exclusions, off-site-first ids."""

    rows: list[PoolRow]
    counts: dict[tuple[str, str], int]
    in_scope: dict[tuple[str, str], int] = field(
        default_factory=dict
    )  # active and admitted, before exclusion
    inspected: dict[tuple[str, str], int] = field(default_factory=dict)  # excluded as inspected this year
    excluded: dict[str, int] = field(default_factory=dict)
    off_site_first: set[str] = field(default_factory=set)
    by_class: bool = False  # weighted: the rows' stratum is the supervision class (weights differ inside it)


def admits(scope: Mapping[str, Any], target: Mapping[str, Any]) -> bool:
    """Does the scope admit this target (its data as in the directory)?"""
    county = scope.get("county") or ""
    if county and target.get("county") != county:
        return False
    industries = scope.get("industries") or []
    if industries and target.get("industry") not in industries:
        return False
    classes = scope.get("supervision_classes") or []
    if classes and target.get("supervision_class") not in classes:
        return False
    risks = scope.get("risk_classes") or []
    if risks and target.get("risk_class") not in risks:
        return False
    tags = scope.get("tags") or []
    return not tags or bool(set(tags) & set(target.get("tags") or []))


def inspected_this_year(
    draws: Iterable[tuple[str, int, Iterable[str], Iterable[str]]],
    task_id: str,
    year: int,
    items: Iterable[str],
) -> set[str]:
    """Targets selected by another task's current draw of ``year`` for one of ``items``.

    ``draws``: ``(task id, year, items, selected target ids)`` of every task's current (not withdrawn) draw.
    """
    mine = set(items)
    out: set[str] = set()
    for other, other_year, other_items, selected in draws:
        if other != task_id and other_year == year and mine & set(other_items):
            out.update(selected)
    return out


def build_pool(
    targets: Iterable[tuple[str, Mapping[str, Any]]],
    scope: Mapping[str, Any],
    *,
    excluded_ids: set[str] = frozenset(),  # type: ignore[assignment]
    weights: Mapping[str, int] | None = None,
) -> Pool:
    """The pool from ``(target id, data)`` pairs; ``weights`` per risk class makes weighted rows, whose stratum is
    the supervision class alone (``key``), so that the weights differ inside a stratum and the draw weighs; an
    unweighted row's stratum is ``<class>/<risk>``. ``counts`` are per (class, risk) either way."""
    rows: list[PoolRow] = []
    counts: dict[tuple[str, str], int] = {}
    in_scope: dict[tuple[str, str], int] = {}
    inspected: dict[tuple[str, str], int] = {}
    excluded = {"inactive": 0, "inspected_this_year": 0}
    off_site: set[str] = set()
    for tid, data in targets:
        if not admits(scope, data):
            continue
        if data.get("status", "active") != "active":
            excluded["inactive"] += 1
            continue
        sc, rc = data["supervision_class"], data["risk_class"]
        in_scope[(sc, rc)] = in_scope.get((sc, rc), 0) + 1
        if tid in excluded_ids:
            excluded["inspected_this_year"] += 1
            inspected[(sc, rc)] = inspected.get((sc, rc), 0) + 1
            continue
        rows.append(PoolRow(tid, sc if weights else stratum_key(sc, rc), weights.get(rc, 1) if weights else 1))
        counts[(sc, rc)] = counts.get((sc, rc), 0) + 1
        if POSITIVE_LIST in (data.get("tags") or []):
            off_site.add(tid)
    rows.sort(key=lambda r: r.id)
    return Pool(rows, counts, in_scope, inspected, excluded, off_site, by_class=weights is not None)
