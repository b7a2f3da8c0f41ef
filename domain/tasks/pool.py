"""The candidate pool of a target draw: which targets a task's scope admits, minus the exclusions.

Pure: the caller supplies the targets and what earlier draws of the year selected, as they stood at the freeze
position (``domain.draw.pool``: the read models' rows unchanged since it plus the aggregates changed after it
folded up to it, or the whole log folded, the reference). Every path goes through :func:`build_pool`, so a
verification recomputes the pool exactly as the freeze made it.

The pool: every target whose status is ``active`` and which the scope admits (each given criterion holds;
within a list any value matches; tags: at least one of the scope's tags), minus, when the task's option
``exclude_inspected_this_year`` is on, every target that another task's current draw of the same year
selected for one of this task's items. Positive-list targets (正面清单, tag ``positive_list``) stay in
the pool and are reported as ``off_site_first``.

Tasks opened with the option ``exclusion_per_visit`` (the default since it exists; a task without it keeps the
rule above, so its recorded draws verify as they were made) narrow the exclusion in two ways:

- A target is excluded only when other draws of the year together already selected it for **every** item the
  lead department brings to this task: one shared item (another department's joint task bringing one of this
  department's 14 items) leaves the rest of the visit to be done, so the target stays in. A partner's items
  riding along do not keep in a target whose lead items were all done.
- ``full`` wins over the yearly exclusion: a target whose stratum a ``full`` (100%) rule of the task governs is
  never excluded (the rule says every target, every period); it is counted as ``kept_by_full_rule``.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from domain.planning.rules import SamplingRule, resolve_rule, stratum_key

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
    check = admitter(scope)
    return check is None or check(target)


def admitter(scope: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], bool] | None:
    """:func:`admits` for one scope, its criteria read once (a pool asks it of a province's million targets); None
    when the scope has no criterion (it admits every target)."""
    county = scope.get("county") or ""
    industries = list(scope.get("industries") or [])
    classes = list(scope.get("supervision_classes") or [])
    risks = list(scope.get("risk_classes") or [])
    tags = set(scope.get("tags") or [])
    if not (county or industries or classes or risks or tags):
        return None

    def check(target: Mapping[str, Any]) -> bool:
        if county and target.get("county") != county:
            return False
        if industries and target.get("industry") not in industries:
            return False
        if classes and target.get("supervision_class") not in classes:
            return False
        if risks and target.get("risk_class") not in risks:
            return False
        return not tags or bool(tags & set(target.get("tags") or []))

    return check


def inspected_this_year(
    draws: Iterable[tuple[str, int, Iterable[str], Iterable[str]]],
    task_id: str,
    year: int,
    items: Iterable[str],
    *,
    every_item: bool = False,
) -> set[str]:
    """Targets selected by another task's current draw of ``year`` for one of ``items`` (``every_item``: for all
    of ``items``, by one draw or several together).

    ``draws``: ``(task id, year, items, selected target ids)`` of every task's current (not withdrawn) draw.
    """
    mine = set(items)
    covered: dict[str, set[str]] = {}
    for other, other_year, other_items, selected in draws:
        shared = mine & set(other_items)
        if other != task_id and other_year == year and shared:
            for t in selected:
                covered.setdefault(t, set()).update(shared)
    if every_item:
        return {t for t, done in covered.items() if done >= mine}
    return set(covered)


def _full(rules: Sequence[SamplingRule], supervision_class: str, risk_class: str) -> bool:
    rule = resolve_rule(rules, supervision_class, risk_class)
    return rule is not None and rule.full


def build_pool(
    targets: Iterable[tuple[str, Mapping[str, Any]]],
    scope: Mapping[str, Any],
    *,
    excluded_ids: set[str] = frozenset(),  # type: ignore[assignment]
    weights: Mapping[str, int] | None = None,
    full_rules: Sequence[SamplingRule] | None = None,
    by_class: bool = True,
) -> Pool:
    """The pool from ``(target id, data)`` pairs; ``weights`` per risk class makes weighted rows, whose stratum is
    the supervision class alone (``key``), so that the weights differ inside a stratum and the draw weighs; an
    unweighted row's stratum is ``<class>/<risk>``. ``counts`` are per (class, risk) either way. ``full_rules``
    (the task's rules, when ``full`` wins over the exclusion): an excluded target whose stratum a ``full`` rule
    governs stays in, counted as ``kept_by_full_rule``. ``by_class=False`` rebuilds a weighted pool frozen before
    weighted strata were the supervision class (``<class>/<risk>`` strata, equal weights inside each)."""
    by_class = by_class and weights is not None
    rows: list[PoolRow] = []
    counts: dict[tuple[str, str], int] = {}
    in_scope: dict[tuple[str, str], int] = {}
    inspected: dict[tuple[str, str], int] = {}
    excluded = {"inactive": 0, "inspected_this_year": 0}
    if full_rules is not None:
        excluded["kept_by_full_rule"] = 0
    off_site: set[str] = set()
    admit = admitter(scope)
    strata: dict[tuple[str, str], str] = {}  # (class, risk) -> the rows' stratum, made once per pair
    for tid, data in targets:
        if admit is not None and not admit(data):
            continue
        if data.get("status", "active") != "active":
            excluded["inactive"] += 1
            continue
        sc, rc = data["supervision_class"], data["risk_class"]
        pair = (sc, rc)
        in_scope[pair] = in_scope.get(pair, 0) + 1
        if tid in excluded_ids and full_rules is not None and _full(full_rules, sc, rc):
            excluded["kept_by_full_rule"] += 1
        elif tid in excluded_ids:
            excluded["inspected_this_year"] += 1
            inspected[pair] = inspected.get(pair, 0) + 1
            continue
        stratum = strata.get(pair)
        if stratum is None:
            stratum = strata[pair] = sc if by_class else stratum_key(sc, rc)
        rows.append(PoolRow(tid, stratum, weights.get(rc, 1) if weights else 1))
        counts[pair] = counts.get(pair, 0) + 1
        if POSITIVE_LIST in (data.get("tags") or ()):
            off_site.add(tid)
    rows.sort(key=attrgetter("id"))
    return Pool(rows, counts, in_scope, inspected, excluded, off_site, by_class=by_class)
