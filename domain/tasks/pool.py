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

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress
from operator import lt, not_
from typing import Any, cast, overload

from domain.planning.rules import SamplingRule, resolve_rule, stratum_key

POSITIVE_LIST = "positive_list"


@dataclass(frozen=True, slots=True)
class PoolRow:
    """One candidate as the sampler reads it (``id``, ``stratum``, ``weight``)."""

    id: str
    stratum: str
    weight: int = 1


class PoolRows(Sequence[PoolRow]):
    """The pool's candidates in id order, kept as three parallel columns (``ids``, ``strata``, ``weights``): a
    province's million candidates without a million objects. Reads as a sequence of :class:`PoolRow`; a draw
    takes the columns as they are (``domain.draw.sampler.CandidateColumns``)."""

    __slots__ = ("ids", "strata", "weights")

    def __init__(self, ids: list[str], strata: list[str], weights: list[int]) -> None:
        if not len(ids) == len(strata) == len(weights):
            raise ValueError("ids, strata and weights differ in length")
        self.ids, self.strata, self.weights = ids, strata, weights

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, i: int) -> PoolRow: ...
    @overload
    def __getitem__(self, i: slice) -> list[PoolRow]: ...
    def __getitem__(self, i: int | slice) -> PoolRow | list[PoolRow]:
        if isinstance(i, slice):
            return list(map(PoolRow, self.ids[i], self.strata[i], self.weights[i]))
        return PoolRow(self.ids[i], self.strata[i], self.weights[i])

    def __iter__(self) -> Iterator[PoolRow]:
        return map(PoolRow, self.ids, self.strata, self.weights)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PoolRows):
            return (self.ids, self.strata, self.weights) == (other.ids, other.strata, other.weights)
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PoolRows({len(self)} rows: {self[:3]!r}{'...' if len(self) > 3 else ''})"


@dataclass
class Pool:
    """The frozen pool: candidates in id order, per-(class, risk) counts, exclusions, off-site-first ids."""

    rows: PoolRows
    counts: dict[tuple[str, str], int]
    in_scope: dict[tuple[str, str], int] = field(
        default_factory=dict
    )  # active and admitted, before exclusion
    inspected: dict[tuple[str, str], int] = field(default_factory=dict)  # excluded as inspected this year
    excluded: dict[str, int] = field(default_factory=dict)
    off_site_first: set[str] = field(default_factory=set)
    by_class: bool = False  # weighted: the rows' stratum is the supervision class (weights differ inside it)


@dataclass
class TargetColumns:
    """Targets as parallel columns, one entry per target: what a pool reads of each (its id, supervision and
    risk class, status, tags; county and industry where a scope or an item asks for them). A reader of a
    province's directory fills the lists a batch of rows at a time; :meth:`from_pairs` makes them from
    ``(id, data)`` pairs (data as in the directory entry).

    ``statuses``: ``None`` where the entry has no status (it reads as ``active``); ``tags``: ``None`` or empty
    where it has none; ``counties``/``industries``: ``None`` when not read (a scope on them then cannot be
    applied)."""

    ids: list[str] = field(default_factory=list)
    supervision_classes: list[Any] = field(default_factory=list)
    risk_classes: list[Any] = field(default_factory=list)
    statuses: list[Any] = field(default_factory=list)
    tags: list[Any] = field(default_factory=list)
    counties: list[Any] | None = None
    industries: list[Any] | None = None

    @classmethod
    def from_pairs(cls, targets: Iterable[tuple[str, Mapping[str, Any]]]) -> "TargetColumns":
        out = cls(counties=[], industries=[])
        ids, classes, risks, statuses, tags = out.ids, out.supervision_classes, out.risk_classes, out.statuses, out.tags
        counties, industries = cast(list[Any], out.counties), cast(list[Any], out.industries)
        for tid, data in targets:
            ids.append(tid)
            classes.append(data.get("supervision_class"))
            risks.append(data.get("risk_class"))
            status = data.get("status")
            statuses.append("" if status is None and "status" in data else status)  # a null status: not active
            tags.append(data.get("tags"))
            counties.append(data.get("county"))
            industries.append(data.get("industry"))
        return out

    def __len__(self) -> int:
        return len(self.ids)

    def pairs(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(id, data)`` per target, data as in the entry (the fields read)."""
        for k, tid in enumerate(self.ids):
            data: dict[str, Any] = {"supervision_class": self.supervision_classes[k],
                                    "risk_class": self.risk_classes[k]}
            if self.counties is not None:
                data["county"] = self.counties[k]
            if self.industries is not None:
                data["industry"] = self.industries[k]
            if self.statuses[k] is not None:
                data["status"] = self.statuses[k] or None
            if self.tags[k] is not None:
                data["tags"] = self.tags[k]
            yield tid, data

    def without(self, ids: Collection[str]) -> "TargetColumns":
        """These columns less the targets ``ids``."""
        if not ids:
            return self
        keep = list(compress(range(len(self.ids)), map(not_, map(ids.__contains__, self.ids))))
        return self._taken(keep)

    def plus(self, other: "TargetColumns") -> "TargetColumns":
        """These columns and then ``other``'s (county and industry kept only where both have them)."""

        def joined(a: list[Any] | None, b: list[Any] | None) -> list[Any] | None:
            return None if a is None or b is None else a + b

        return TargetColumns(
            self.ids + other.ids, self.supervision_classes + other.supervision_classes,
            self.risk_classes + other.risk_classes, self.statuses + other.statuses, self.tags + other.tags,
            joined(self.counties, other.counties), joined(self.industries, other.industries),
        )

    def admitted(self, scope: Mapping[str, Any]) -> list[int] | None:
        """The indexes of the targets ``scope`` admits (:func:`admits`, a column at a time); None: every one."""
        criteria = _criteria(scope)
        if criteria is None:
            return None
        county, industries, classes, risks, tags = criteria
        keep: list[int] = list(range(len(self.ids)))

        def narrow(column: list[Any] | None, name: str, ok: Callable[[Any], Any]) -> None:
            nonlocal keep
            if column is None:
                raise ValueError(f"the scope asks for {name}, which was not read")
            keep = list(compress(keep, map(ok, map(column.__getitem__, keep))))

        if county:
            narrow(self.counties, "county", lambda v: v == county)
        if industries:
            narrow(self.industries, "industry", industries.__contains__)
        if classes:
            narrow(self.supervision_classes, "supervision_class", classes.__contains__)
        if risks:
            narrow(self.risk_classes, "risk_class", risks.__contains__)
        if tags:
            narrow(self.tags, "tags", lambda v: bool(v) and bool(tags & set(v)))
        return keep

    def _taken(self, keep: Sequence[int]) -> "TargetColumns":
        def take(column: list[Any] | None) -> list[Any] | None:
            return None if column is None else list(map(column.__getitem__, keep))

        return TargetColumns(
            _take(self.ids, keep), _take(self.supervision_classes, keep), _take(self.risk_classes, keep),
            _take(self.statuses, keep), _take(self.tags, keep), take(self.counties), take(self.industries),
        )


def admits(scope: Mapping[str, Any], target: Mapping[str, Any]) -> bool:
    """Does the scope admit this target (its data as in the directory)? The rule one target at a time; a pool
    applies it a column at a time (:meth:`TargetColumns.admitted`)."""
    criteria = _criteria(scope)
    if criteria is None:
        return True
    county, industries, classes, risks, tags = criteria
    if county and target.get("county") != county:
        return False
    if industries and target.get("industry") not in industries:
        return False
    if classes and target.get("supervision_class") not in classes:
        return False
    if risks and target.get("risk_class") not in risks:
        return False
    return not tags or bool(tags & set(target.get("tags") or []))


def _criteria(scope: Mapping[str, Any]) -> tuple[str, list[Any], list[Any], list[Any], set[Any]] | None:
    """``(county, industries, supervision classes, risk classes, tags)`` of a scope; None when it has none."""
    county = scope.get("county") or ""
    industries = list(scope.get("industries") or [])
    classes = list(scope.get("supervision_classes") or [])
    risks = list(scope.get("risk_classes") or [])
    tags = set(scope.get("tags") or [])
    if not (county or industries or classes or risks or tags):
        return None
    return county, industries, classes, risks, tags


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
    done: set[str] = set()  # selected for every item of ``mine`` by one draw (or, not every_item, for one)
    partly: dict[str, set[str]] = {}  # every_item: selected for some of them, by which draws for which
    for other, other_year, other_items, selected in draws:
        shared = mine & set(other_items)
        if other != task_id and other_year == year and shared:
            if not every_item or shared >= mine:
                done.update(selected)  # a province's draws select 100,000s: no set per target for them
            else:
                for t in selected:
                    partly.setdefault(t, set()).update(shared)
    return done | {t for t, covered in partly.items() if covered >= mine}


def _full(rules: Sequence[SamplingRule], supervision_class: str, risk_class: str) -> bool:
    rule = resolve_rule(rules, supervision_class, risk_class)
    return rule is not None and rule.full


def build_pool(
    targets: "Iterable[tuple[str, Mapping[str, Any]]] | TargetColumns",
    scope: Mapping[str, Any],
    *,
    excluded_ids: set[str] = frozenset(),  # type: ignore[assignment]
    weights: Mapping[str, int] | None = None,
    full_rules: Sequence[SamplingRule] | None = None,
    by_class: bool = True,
) -> Pool:
    """The pool from ``(target id, data)`` pairs or the same as :class:`TargetColumns` (a province's million rows
    as a reader gives them: no dict per target); ``weights`` per risk class makes weighted rows, whose stratum is
    the supervision class alone (``key``), so that the weights differ inside a stratum and the draw weighs; an
    unweighted row's stratum is ``<class>/<risk>``. ``counts`` are per (class, risk) either way. ``full_rules``
    (the task's rules, when ``full`` wins over the exclusion): an excluded target whose stratum a ``full`` rule
    governs stays in, counted as ``kept_by_full_rule``. ``by_class=False`` rebuilds a weighted pool frozen before
    weighted strata were the supervision class (``<class>/<risk>`` strata, equal weights inside each).

    Done a column at a time (passes of C-speed built-ins over the lists, Python only per distinct (class, risk)
    pair and per excluded target): the rule is the same as one target at a time, as
    ``tests/unit/test_pool_columns.py`` checks against that plain loop for any targets."""
    cols = targets if isinstance(targets, TargetColumns) else TargetColumns.from_pairs(targets)
    by_class = by_class and weights is not None
    excluded = {"inactive": 0, "inspected_this_year": 0}
    if full_rules is not None:
        excluded["kept_by_full_rule"] = 0
    n = len(cols.ids)
    keep = cols.admitted(scope)  # indexes admitted by the scope, None: all
    statuses = cols.statuses
    if statuses.count(None) + statuses.count("active") != n:  # some target is not active (rare): a pass for them
        picked = range(n) if keep is None else keep
        keep = [i for i in picked if statuses[i] is None or statuses[i] == "active"]
        excluded["inactive"] = len(picked) - len(keep)
    ids, classes, risks, tags = cols.ids, cols.supervision_classes, cols.risk_classes, cols.tags
    if keep is not None:
        ids, classes, risks, tags = _take(ids, keep), _take(classes, keep), _take(risks, keep), _take(tags, keep)
    for name, column in (("supervision_class", classes), ("risk_class", risks)):
        if None in set(column):
            raise KeyError(name)
    pairs = list(zip(classes, risks))
    in_scope = dict(Counter(pairs))
    inspected: dict[tuple[str, str], int] = {}
    hits = list(compress(range(len(ids)), map(excluded_ids.__contains__, ids))) if excluded_ids else []
    if hits:  # excluded as inspected this year, unless a ``full`` rule governs their stratum (per pair, once)
        hit_pairs = list(map(pairs.__getitem__, hits))
        stays = {pair: full_rules is not None and _full(full_rules, *pair) for pair in set(hit_pairs)}
        dropped = list(compress(hits, map(not_, map(stays.__getitem__, hit_pairs))))
        if full_rules is not None:
            excluded["kept_by_full_rule"] = len(hits) - len(dropped)
        excluded["inspected_this_year"] = len(dropped)
        inspected = dict(Counter(map(pairs.__getitem__, dropped)))
        if dropped:
            mask = [True] * len(ids)
            for k in dropped:
                mask[k] = False
            ids, pairs, risks, tags = (list(compress(c, mask)) for c in (ids, pairs, risks, tags))
    names = {pair: pair[0] if by_class else stratum_key(*pair) for pair in set(pairs)}
    strata = list(map(names.__getitem__, pairs))
    if weights:
        per_risk = {rc: weights.get(rc, 1) for rc in set(risks)}
        row_weights = list(map(per_risk.__getitem__, risks))
    else:
        row_weights = [1] * len(ids)
    off_site = {ids[k] for k in compress(range(len(ids)), tags) if POSITIVE_LIST in tags[k]}
    if not all(map(lt, ids, ids[1:])):  # a reader's rows come in id order; the changed ones, or pairs, may not
        order = sorted(range(len(ids)), key=ids.__getitem__)
        ids, strata, row_weights = _take(ids, order), _take(strata, order), _take(row_weights, order)
    counts = dict(Counter(pairs)) if inspected else dict(in_scope)  # nothing dropped: the same counts
    return Pool(PoolRows(ids, strata, row_weights), counts, in_scope, inspected, excluded, off_site,
                by_class=by_class)


def _take(column: list[Any], indexes: Sequence[int]) -> list[Any]:
    return list(map(column.__getitem__, indexes))
