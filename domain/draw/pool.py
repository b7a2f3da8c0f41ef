"""The candidate pool as the log decides it: ONE pure fold for the freeze and for the verification.

The freeze and the verification both feed :class:`PoolLog` the log's events up to one position (the freeze
position, inclusive) in log order, then ask it for a task's pool (:meth:`PoolLog.pool`). Nothing else computes
a pool, so a verification can only disagree with the freeze when the log or the record was changed.

Events that affect a pool (``docs/verifying-a-draw.md``, "The pool", lists them with their effect):

- a target's ``Registered`` (its data), ``DetailsUpdated`` (stored under the common base's topic
  ``DirectoryEntry.DetailsUpdated``: county, industry, name ... replaced), ``Reclassified``,
  ``RiskClassChanged``, ``Tagged``, ``Untagged``, ``Closed``, ``Deregistered``, ``Reactivated``;
- every task's events (``Opened`` ... ``DrawWithdrawn``): which targets another task's CURRENT round selected
  (a withdrawn round selects nothing; a case task's designated targets count as its selection).

Any other event (departments, inspectors, experts, items, assignments ...) is ignored.
"""

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from domain.directory import DirectoryEntry, Target
from domain.planning.rules import rules_from_dict
from domain.tasks.pool import Pool, build_pool, inspected_this_year
from domain.tasks.task import Task

TOPIC_PREFIXES = (
    "domain.directory:Target.",
    "domain.directory:DirectoryEntry.DetailsUpdated",
    "domain.tasks.task:Task.",
)
"""The stored topics a pool depends on (a reader may fetch only these; other events are ignored anyway)."""


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

    def current_draws(self, year: int) -> list[tuple[str, int, list[str], list[str]]]:
        """``(task id, year, items, selected)`` of every task's current round of ``year`` with a selection."""
        return [
            (str(t.id), t.year, t.items, t.selected)
            for t in self.tasks.values()
            if t.draw and t.year == year
        ]

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
        """The pool of task ``task_id`` (its year, items, scope and options) over the state folded so far.

        With the option ``exclusion_per_visit`` (tasks opened since it exists) the yearly exclusion counts only
        ``lead_items`` (the lead department's items), a target goes only once other draws selected it for every
        one of them, and a target whose stratum a ``full`` rule of ``rules`` governs is never excluded."""
        per_visit = bool(options.get("exclusion_per_visit", False))  # absent: opened before the option
        excluded: set[str] = set()
        if options.get("exclude_inspected_this_year"):
            counted = list(lead_items) if per_visit and lead_items is not None else list(items)
            excluded = inspected_this_year(self.current_draws(year), task_id, year, counted, every_item=per_visit)
        weights = options.get("risk_weights") if options.get("weighted") else None
        return build_pool(
            ((str(oid), t.data) for oid, t in sorted(self.targets.items(), key=lambda kv: str(kv[0]))),
            scope,
            excluded_ids=excluded,
            weights=weights,
            full_rules=rules_from_dict(list(rules)) if per_visit else None,
            by_class=by_class,
        )


def legacy_weighted(frozen: Mapping[str, Any] | None) -> bool:
    """A weighted freeze made before weighted strata were the supervision class: its strata are named
    ``<class>/<risk>`` (docs/verifying-a-draw.md, "The pool"); its pool is rebuilt with those strata."""
    return any("/" in name for name in (frozen or {}).get("strata", {}))


def pool_for(log: PoolLog, task: Task, *, by_class: bool = True) -> Pool:
    """The pool of ``task`` over the state ``log`` has folded (``by_class=False``: see :func:`legacy_weighted`)."""
    return log.pool(
        str(task.id), task.year, task.items, task.scope, task.options,
        lead_items=task.participants.get(task.lead, []), rules=task.rules, by_class=by_class,
    )


def pool_of(events: Iterable[Any], task: Task) -> Pool:
    """The pool of ``task`` after ``events`` (the log up to and including the freeze position, in order)."""
    return pool_for(PoolLog().apply_all(events), task)
