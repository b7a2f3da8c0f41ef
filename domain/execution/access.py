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
- People are compared by ids, in one place: :func:`domain.access.same_person`. An actor's ids are
  :func:`domain.access.person_ids` (the inspector entry its account is linked to, the account id, and aliases the
  directory gives for the person).
- Follow-ups (执法回访): a discipline escalation (纪检监察) is read only by the department's reviewers and
  planners, admins and auditors, and never by one of the inspectors who inspected that firm (it may be about
  them); the inspectors who inspected a firm may not record its follow-up visit (independence).
"""

from collections.abc import Collection

from domain.access import Actor, is_among, person_ids, same_person
from domain.errors import PermissionDeniedError
from domain.values import Role

__all__ = [
    "can_enter",
    "can_publish",
    "can_read_confidential",
    "can_read_escalations",
    "can_review",
    "person_ids",
    "require_enter",
    "require_independent",
    "require_publish",
    "require_review",
    "require_staff",
    "same_person",
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


def can_read_escalations(
    actor: Actor, department: str, inspectors_of_target: Collection[str], aliases: Collection[str] = ()
) -> bool:
    """Discipline escalations about a firm's inspection: the department's reviewers and planners, admins and
    auditors, and none of the inspectors who inspected the firm."""
    if same_person(person_ids(actor, aliases), inspectors_of_target):
        return False
    if actor.has(Role.AUDITOR) or actor.has(Role.ADMIN):
        return True
    return actor.department == department and (actor.has(Role.REVIEWER) or actor.has(Role.PLANNER))


def require_independent(actor: Actor, inspectors_of_target: Collection[str], aliases: Collection[str] = ()) -> None:
    """回访 independence: who inspected the firm does not record its follow-up visit."""
    if same_person(person_ids(actor, aliases), inspectors_of_target):
        raise PermissionDeniedError(
            f"{_who(actor)} inspected this firm and may not record its follow-up visit (回访须由未参与检查的人员进行)")
