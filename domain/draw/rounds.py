"""Every round of a task's target draw, current and withdrawn, folded from the task's own events.

A round starts with ``SeedCommitted`` (random tasks) or ``TargetsDesignated`` (case tasks) and ends with
``DrawWithdrawn`` or stays current. Pure: the caller gives the task's events in version order.
"""

import copy
from collections.abc import Iterable
from typing import Any

from domain.tasks.task import Task


def rounds_of(events: Iterable[Any]) -> list[dict[str, Any]]:
    """``[{round, status, stage, commitment, frozen, record, teams, withdrawn_reason}]`` in round order.

    ``status``: ``current`` or ``withdrawn``; ``stage``: ``committed``, ``frozen``, ``drawn`` (how far the
    round got); ``record``: the draw record (``None`` before the draw); ``frozen``: the PoolFrozen fields.
    """
    rounds: dict[int, dict[str, Any]] = {}

    def start(n: int) -> dict[str, Any]:
        return rounds.setdefault(n, {
            "round": n, "status": "current", "stage": "committed", "commitment": None, "frozen": None,
            "record": None, "teams": {}, "withdrawn_reason": None,
        })

    for ev in events:
        if isinstance(ev, Task.SeedCommitted):
            start(ev.round)["commitment"] = ev.commitment
        elif isinstance(ev, Task.PoolFrozen):
            r = start(ev.round)
            r["frozen"] = {"position": ev.position, "pool_digest": ev.pool_digest, "pool_size": ev.pool_size,
                           "strata": copy.deepcopy(ev.strata), "excluded": dict(ev.excluded)}
            r["stage"] = "frozen"
        elif isinstance(ev, Task.TargetsDrawn):
            r = start(ev.round)
            r["record"], r["stage"] = ev.record, "drawn"
        elif isinstance(ev, Task.TargetsDesignated):
            r = start(ev.round)
            r["record"] = {"selected": list(ev.targets), "seed": ev.seed, "designated": True}
            r["stage"] = "drawn"
        elif isinstance(ev, Task.InspectorsDrawn):
            start(ev.round)["teams"][ev.department] = {
                "visit_date": ev.visit_date, "teams": copy.deepcopy(ev.teams),
                "inspectors_digest": ev.inspectors_digest,
            }
        elif isinstance(ev, Task.DrawWithdrawn):
            r = start(ev.round)
            r["status"], r["withdrawn_reason"] = "withdrawn", ev.reason
    return [rounds[n] for n in sorted(rounds)]
