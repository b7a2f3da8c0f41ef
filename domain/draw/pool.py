"""The candidate pool as the log decides it at one position: pure, one :func:`scoped_pool` for every caller.

The pool of a task at a log position (the freeze position, inclusive) depends on the targets and on the other
tasks' current selections as they stood there. Two ways to know them, both ending in the same
:func:`scoped_pool` (and so in the same ``domain.tasks.pool.build_pool``):

- **By fold** (:class:`PoolLog`, :func:`pool_by_fold`): every target and task event of the log up to the position,
  in log order. The reference: what the standalone verifier does (docs/verifying-a-draw.md, section 12). It reads
  the whole log, so at province scale it costs the province (tens of seconds, gigabytes).
- **As of** (:func:`pool_at`, which the server's freeze and verification use): the read models' rows whose last
  change is at or before the position (a task's scope read through an index), except the aggregates changed
  after it, whose events up to the position are folded instead (:func:`targets_at`, :func:`draws_at`). The
  rows and the folded aggregates are the same states: a read-model row is its aggregate folded by the same
  mutators, and an aggregate with no event after the position was the same at the position.
  ``tests/unit/test_pool_as_of.py`` checks that both ways give the same pool over random histories.

Events that affect a pool (``docs/verifying-a-draw.md``, "The pool", lists them with their effect):

- a target's ``Registered`` (its data), ``DetailsUpdated`` (stored under the common base's topic
  ``DirectoryEntry.DetailsUpdated``: county, industry, name ... replaced), ``Reclassified``,
  ``RiskClassChanged``, ``Tagged``, ``Untagged``, ``Closed``, ``Deregistered``, ``Reactivated``;
- every task's events (``Opened`` ... ``DrawWithdrawn``): which targets another task's CURRENT round selected
  (a withdrawn round selects nothing; a case task's designated targets count as its selection).

Any other event (departments, inspectors, experts, items, assignments ...) is ignored.
"""

import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast, overload

from domain.directory import DirectoryEntry, Target
from domain.planning.rules import rules_from_dict
from domain.tasks.pool import Pool, TargetColumns, build_pool, inspected_this_year
from domain.tasks.task import Task

TOPIC_PREFIXES = (
    "domain.directory:Target.",
    "domain.directory:DirectoryEntry.DetailsUpdated",
    "domain.tasks.task:Task.",
)
"""The stored topics a pool depends on (a reader may fetch only these; other events are ignored anyway)."""


Draw = tuple[str, int, list[str], list[str]]
"""``(task id, year, items, selected target ids)`` of a task's current round with a selection."""


@dataclass
class PoolLog:
    """The targets and the tasks as the log stood after the events given to :meth:`apply`, in order."""

    targets: dict[uuid.UUID, Target] = field(default_factory=dict)
    tasks: dict[uuid.UUID, Task] = field(default_factory=dict)

    def apply(self, event: Any) -> None:
        """Apply one event of the log (events of other kinds are ignored)."""
        oid = event.originator_id
        if isinstance(event, Target.Event):
            self.targets[oid] = cast(Target, event.mutate(self.targets.get(oid)))
        elif isinstance(event, DirectoryEntry.DetailsUpdated):
            if oid in self.targets:  # a target's plain fields; other entries' are not the pool's business
                self.targets[oid] = cast(Target, event.mutate(self.targets[oid]))
        elif isinstance(event, Task.Event):
            self.tasks[oid] = cast(Task, event.mutate(self.tasks.get(oid)))

    def apply_all(self, events: Iterable[Any]) -> "PoolLog":
        for ev in events:
            self.apply(ev)
        return self

    def current_draws(self, year: int) -> list[Draw]:
        """``(task id, year, items, selected)`` of every task's current round of ``year`` with a selection."""
        return current_draws(self.tasks.values(), year)

    def target_data(self) -> list[tuple[str, Mapping[str, Any]]]:
        """``(target id, data)`` of every target folded so far, in id order."""
        return sorted(((str(oid), t.data) for oid, t in self.targets.items()), key=lambda kv: kv[0])

    def pool(
        self,
        task_id: str,
        year: int,
        items: Iterable[str],
        scope: Mapping[str, Any],
        options: Mapping[str, Any],
        *,
        lead_items: Iterable[str] | None = None,
        rules: Iterable[Mapping[str, Any]] = (),
        by_class: bool = True,
    ) -> Pool:
        """The pool of task ``task_id`` (its year, items, scope and options) over the state folded so far
        (:func:`pool_from`)."""
        return pool_from(
            self.target_data(), self.current_draws(year), task_id, year, items, scope, options,
            lead_items=lead_items, rules=rules, by_class=by_class,
        )


def current_draws(tasks: Iterable[Task], year: int) -> list[Draw]:
    """The current draws of ``year`` among ``tasks`` (a withdrawn round selects nothing)."""
    return [(str(t.id), t.year, t.items, t.selected) for t in tasks if t.draw and t.year == year]


def pool_from(
    targets: Iterable[tuple[str, Mapping[str, Any]]] | TargetColumns,
    draws: Iterable[Draw],
    task_id: str,
    year: int,
    items: Iterable[str],
    scope: Mapping[str, Any],
    options: Mapping[str, Any],
    *,
    lead_items: Iterable[str] | None = None,
    rules: Iterable[Mapping[str, Any]] = (),
    by_class: bool = True,
) -> Pool:
    """The pool of task ``task_id`` (its year, items, scope and options) over ``targets`` (``(id, data)``, any
    order, each target once; read once, so a stream of a million rows is never held) and the other tasks'
    ``draws``.

    With the option ``exclusion_per_visit`` (tasks opened since it exists) the yearly exclusion counts only
    ``lead_items`` (the lead department's items), a target goes only once other draws selected it for every
    one of them, and a target whose stratum a ``full`` rule of ``rules`` governs is never excluded."""
    per_visit = bool(options.get("exclusion_per_visit", False))  # absent: opened before the option
    excluded: set[str] = set()
    if options.get("exclude_inspected_this_year"):
        counted = list(lead_items) if per_visit and lead_items is not None else list(items)
        excluded = inspected_this_year(draws, task_id, year, counted, every_item=per_visit)
    weights = options.get("risk_weights") if options.get("weighted") else None
    return build_pool(
        targets,
        scope,
        excluded_ids=excluded,
        weights=weights,
        full_rules=rules_from_dict(list(rules)) if per_visit else None,
        by_class=by_class,
    )


def scoped_pool(
    task: Task, targets: Iterable[tuple[str, Mapping[str, Any]]] | TargetColumns, draws: Iterable[Draw], *, by_class: bool = True
) -> Pool:
    """The pool of ``task`` over ``targets`` and ``draws`` as they stood at its freeze position: the one pool
    function of the fold and of the as-of computation (``by_class=False``: see :func:`legacy_weighted`)."""
    return pool_from(
        targets, draws, str(task.id), task.year, task.items, task.scope, task.options,
        lead_items=task.participants.get(task.lead, []), rules=task.rules, by_class=by_class,
    )


def legacy_weighted(frozen: Mapping[str, Any] | None) -> bool:
    """A weighted freeze made before weighted strata were the supervision class: its strata are named
    ``<class>/<risk>`` (docs/verifying-a-draw.md, "The pool"); its pool is rebuilt with those strata."""
    return any("/" in name for name in (frozen or {}).get("strata", {}))


def pool_for(log: PoolLog, task: Task, *, by_class: bool = True) -> Pool:
    """The pool of ``task`` over the state ``log`` has folded (``by_class=False``: see :func:`legacy_weighted`)."""
    return scoped_pool(task, log.target_data(), log.current_draws(task.year), by_class=by_class)


def pool_by_fold(events: Iterable[Any], task: Task, *, by_class: bool = True) -> Pool:
    """The reference: the pool of ``task`` after ``events`` (the log's target and task events up to and including
    the freeze position, in order), folded whole."""
    return pool_for(PoolLog().apply_all(events), task, by_class=by_class)


pool_of = pool_by_fold


# -- as of a position: the read models' rows, and the log's changes after the position -------------------------
def fold_targets(events: Iterable[Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """``(target id, data)`` of the targets ``events`` make (some targets' events up to a position, in log order;
    a target's state depends on its own events alone, so any set of targets folds apart from the others)."""
    return PoolLog().apply_all(events).target_data()


def fold_tasks(events: Iterable[Any]) -> list[Task]:
    """The tasks ``events`` make (some tasks' events up to a position, in log order)."""
    return list(PoolLog().apply_all(events).tasks.values())


@overload
def targets_at(
    rows: TargetColumns, changed: Collection[str], recent: Iterable[tuple[str, Mapping[str, Any]]]
) -> TargetColumns: ...
@overload
def targets_at(
    rows: Iterable[tuple[str, Mapping[str, Any]]],
    changed: Collection[str],
    recent: Iterable[tuple[str, Mapping[str, Any]]],
) -> Iterator[tuple[str, Mapping[str, Any]]]: ...
def targets_at(
    rows: Iterable[tuple[str, Mapping[str, Any]]] | TargetColumns,
    changed: Collection[str],
    recent: Iterable[tuple[str, Mapping[str, Any]]],
) -> Iterator[tuple[str, Mapping[str, Any]]] | TargetColumns:
    """The targets as they stood at a position P (each once, in no particular order).

    ``rows``: the directory read model's targets whose last event is at or before P (``(id, data)`` pairs, then
    the result is lazy, or :class:`TargetColumns`, then so is the result; a prefilter by the task's scope is
    fine: the pool admits by the scope again); ``changed``: the ids of the targets that existed at P and have
    an event after it (their rows, if any among ``rows``, are not their state at P); ``recent``: those targets
    as their events up to P make them (:func:`fold_targets`)."""
    if isinstance(rows, TargetColumns):
        recent_columns = TargetColumns.from_pairs(recent)
        return rows.without(changed).plus(recent_columns) if recent_columns.ids else rows.without(changed)
    return _pairs_at(rows, changed, recent)


def _pairs_at(
    rows: Iterable[tuple[str, Mapping[str, Any]]],
    changed: Collection[str],
    recent: Iterable[tuple[str, Mapping[str, Any]]],
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for tid, data in rows:
        if tid not in changed:
            yield tid, data
    yield from recent


def draws_at(rows: Iterable[Draw], changed: Collection[str], recent: Iterable[Task], year: int) -> list[Draw]:
    """The current draws of ``year`` as they stood at a position P: ``rows`` from the tasks read model (tasks
    whose last event is at or before P), but those of the tasks in ``changed`` (an event after P), which
    ``recent`` gives as their events up to P make them."""
    return [d for d in rows if d[0] not in changed and d[1] == year] + current_draws(recent, year)


def pool_at(
    task: Task,
    targets: Iterable[tuple[str, Mapping[str, Any]]] | TargetColumns,
    draws: Iterable[Draw],
    *,
    by_class: bool = True,
) -> Pool:
    """The pool of ``task`` as of its freeze position from :func:`targets_at` and :func:`draws_at` (the same
    :func:`scoped_pool` as the fold's: the two cannot disagree on the rule, only on their inputs)."""
    return scoped_pool(task, targets, draws, by_class=by_class)
