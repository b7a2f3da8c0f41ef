"""Who may plan, open tasks, draw, see the drawn list and recuse: pure functions of the actor.

Decisions (documented in docs/plans-tasks-and-draws.md):
- A department's ``planner`` draws up and changes its own annual plan; every role of the department,
  ``admin`` and ``auditor`` read it.
- The lead department's ``planner`` opens a task, commits, freezes, draws the targets, withdraws a draw
  and merges its visits into another task's; each participating department's ``planner`` draws its own
  inspectors.
- The drawn list is confidential until the visit (固化名单保密): the planners of the task's departments and
  ``auditor`` see all of it; an ``inspector`` sees only the visits they are assigned to; everyone else 403.
- Task metadata (no drawn targets): every role of a participating department, ``admin`` and ``auditor``.
- Recusal (回避): the inspector concerned (compared as a person: ``domain.access.is_among``) or the
  planner of the inspector's department.
"""

from collections.abc import Collection

from domain.access import Actor, is_among
from domain.errors import PermissionDeniedError
from domain.values import Role


def _planner_of(actor: Actor, department: str) -> bool:
    return actor.has(Role.PLANNER) and actor.department == department


def _refuse(actor: Actor, what: str) -> PermissionDeniedError:
    if actor.has(Role.AUDITOR) and not actor.has(Role.PLANNER):
        return PermissionDeniedError("auditors read everything and change nothing")
    return PermissionDeniedError(f"role {actor.role!r} of department {actor.department!r} may not {what}")


def require_plan(actor: Actor, department: str) -> None:
    if not _planner_of(actor, department):
        raise _refuse(actor, f"change the plan of {department} (its planners do)")


def require_read_plan(actor: Actor, department: str) -> None:
    if actor.has(Role.ADMIN) or actor.has(Role.AUDITOR):
        return
    if actor.department != department or actor.roles == (Role.PARTNER.value,):
        raise _refuse(actor, f"read the plan of {department}")


def require_lead(actor: Actor, lead: str) -> None:
    if not _planner_of(actor, lead):
        raise _refuse(actor, f"run tasks led by {lead} (its planners do)")


def require_department_planner(actor: Actor, department: str) -> None:
    if not _planner_of(actor, department):
        raise _refuse(actor, f"draw the inspectors of {department} (its planners do)")


def require_share_holder(actor: Actor, department: str) -> None:
    """A department's seed share of a joint task is committed and revealed by that department's planners."""
    if not _planner_of(actor, department):
        raise _refuse(actor, f"commit or reveal the seed share of {department} (its planners do)")


def can_see_drawn_list(actor: Actor, departments: Collection[str]) -> bool:
    return (
        actor.has(Role.AUDITOR)
        or actor.has(Role.ADMIN)
        or (actor.has(Role.PLANNER) and actor.department in departments)
    )


def can_read_all_tasks(actor: Actor) -> bool:
    return actor.has(Role.ADMIN) or actor.has(Role.AUDITOR)


def require_read_task(actor: Actor, departments: Collection[str]) -> None:
    if can_read_all_tasks(actor):
        return
    if actor.department not in departments or actor.roles == (Role.PARTNER.value,):
        raise _refuse(actor, "read this task")


def require_recusal(actor: Actor, department: str, inspector_id: str, inspector_ids: Collection[str]) -> None:
    if _planner_of(actor, department):
        return
    if actor.has(Role.INSPECTOR) and actor.department == department and is_among(actor, inspector_ids):
        return
    raise _refuse(
        actor,
        f"declare a conflict for inspector {inspector_id} (the inspector or a planner of {department} may)",
    )
