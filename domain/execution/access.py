"""Who may do what during execution (谁检查、谁录入、谁公开), as pure functions of the actor.

- A department's findings are entered and submitted only by the ``inspector``s of that department's team on
  the assignment (the team holds inspector entry ids; the actor is compared as a person: ``is_among``).
- They are returned or approved only by a ``reviewer`` of the same department who is not on the team (no
  one reviews their own findings).
- Publication and push states are set by that department's reviewers or an ``admin`` (the system acts as
  admin).
- Confidential fields (and follow-up visit opinions) are read only by the department's reviewers and by
  auditors.
- ``auditor`` changes nothing.
"""

from collections.abc import Collection

from domain.access import Actor, is_among
from domain.errors import PermissionDeniedError
from domain.values import Role

__all__ = [
    "can_enter",
    "can_publish",
    "can_read_confidential",
    "can_review",
    "require_enter",
    "require_publish",
    "require_review",
    "require_staff",
]

_STAFF = (Role.INSPECTOR, Role.REVIEWER, Role.PLANNER)


def can_enter(actor: Actor, department: str, team: Collection[str]) -> bool:
    return actor.department == department and actor.has(Role.INSPECTOR) and is_among(actor, team)


def can_review(actor: Actor, department: str, team: Collection[str]) -> bool:
    return actor.department == department and actor.has(Role.REVIEWER) and not is_among(actor, team)


def can_publish(actor: Actor, department: str) -> bool:
    return actor.has(Role.ADMIN) or (actor.department == department and actor.has(Role.REVIEWER))


def can_read_confidential(actor: Actor, department: str) -> bool:
    return actor.has(Role.AUDITOR) or (actor.department == department and actor.has(Role.REVIEWER))


def _who(actor: Actor) -> str:
    return f"{actor.subject!r} ({actor.role or 'no role'} of {actor.department!r})"


def require_enter(actor: Actor, department: str, team: Collection[str]) -> None:
    if can_enter(actor, department, team):
        return
    if actor.department != department:
        raise PermissionDeniedError(
            f"{_who(actor)} may not enter findings of department {department!r}: 谁检查、谁录入"
        )
    raise PermissionDeniedError(
        f"{_who(actor)} is not an inspector of department {department!r}'s team on this assignment"
    )


def require_review(actor: Actor, department: str, team: Collection[str]) -> None:
    if can_review(actor, department, team):
        return
    if actor.department != department or not actor.has(Role.REVIEWER):
        raise PermissionDeniedError(f"{_who(actor)} is not a reviewer of department {department!r}")
    raise PermissionDeniedError(f"{_who(actor)} is on the team and may not review its own findings")


def require_publish(actor: Actor, department: str) -> None:
    if not can_publish(actor, department):
        raise PermissionDeniedError(
            f"{_who(actor)} may not publish or push results of department {department!r}"
        )


def require_staff(actor: Actor, department: str, what: str) -> None:
    """Any working role (inspector, reviewer, planner) of ``department``, or an admin."""
    if actor.has(Role.ADMIN):
        return
    if actor.department == department and any(actor.has(r) for r in _STAFF):
        return
    raise PermissionDeniedError(f"{_who(actor)} may not {what} for department {department!r}")
