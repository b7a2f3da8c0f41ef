"""Who may do what: the access rules of the directories, as pure functions of the actor.

Decisions (documented in docs/api.md):
- Departments: only an ``admin`` registers or changes them.
- Items, inspectors and experts belong to one department: its ``planner`` (or an ``admin``) writes them.
- Targets are one shared county directory (检查对象名录库): every department's ``planner`` (and ``admin``)
  may register and update them; every change records who made it, and its history is public to auditors.
- Reading: departments, items and targets are open to every authenticated role except ``partner``, which
  reads departments and items only; inspectors and experts (personal data) only within their own
  department, plus ``admin`` and ``auditor``.
- ``auditor`` reads everything and changes nothing.
"""

from collections.abc import Collection
from dataclasses import dataclass

from domain.errors import PermissionDeniedError
from domain.values import Role


@dataclass(frozen=True)
class Actor:
    """Who acts: an account (``subject`` is its id) with its current department and roles, and for inspectors
    and reviewers the inspector directory entry it is linked to (``inspector``, the entry id)."""

    subject: str
    department: str
    roles: tuple[str, ...]
    inspector: str | None = None
    name: str = ""

    def has(self, role: Role) -> bool:
        return role.value in self.roles

    @property
    def role(self) -> str:
        """The role recorded on events: the strongest one held."""
        for r in (Role.ADMIN, Role.PLANNER, Role.REVIEWER, Role.INSPECTOR, Role.AUDITOR, Role.PARTNER):
            if self.has(r):
                return str(r.value)
        return self.roles[0] if self.roles else ""


def person_of(actor: Actor) -> str:
    """The person an actor is, for every rule about *who*: the inspector entry id its account is linked to,
    else its account id. Two accounts of one person (say an inspector's and a reviewer's) link the same entry."""
    return actor.inspector or actor.subject


def is_among(actor: Actor, inspector_ids: Collection[str]) -> bool:
    """Is the actor one of these inspectors (entry ids, or staff ids given beside them)? Compares people."""
    return same_person(person_ids(actor), inspector_ids)


def person_ids(actor: Actor, aliases: Collection[str] = ()) -> frozenset[str]:
    """Every id that names the actor's person: :func:`person_of`, the account id, and ``aliases`` (inspector
    entry ids the directory gives for the person, e.g. found by staff id)."""
    return frozenset(i for i in (person_of(actor), actor.subject, *aliases) if i)


def same_person(ids: Collection[str], others: Collection[str]) -> bool:
    """Do these ids and those name one person? The one comparison of people in every rule about *who*: ids of
    accounts and directory entries, never names or other strings."""
    return bool(set(ids) & set(others))


SYSTEM = Actor(subject="system", department="system", roles=(Role.ADMIN.value,))

_PERSONAL = {"inspector", "expert"}
_STAFF = (Role.PLANNER, Role.INSPECTOR, Role.REVIEWER)  # a department's own people


def can_write(actor: Actor, kind: str, owner: str) -> bool:
    """May ``actor`` create or change a ``kind`` entry owned by department ``owner``?"""
    if actor.has(Role.ADMIN):
        return True
    if kind == "department":
        return False
    if not actor.has(Role.PLANNER):
        return False
    if kind == "target":
        return True
    return actor.department == owner


def can_read(actor: Actor, kind: str, owner: str | None = None) -> bool:
    """May ``actor`` read ``kind`` entries (of department ``owner`` when given)?"""
    if actor.has(Role.ADMIN) or actor.has(Role.AUDITOR):
        return True
    if not any(actor.has(r) for r in _STAFF):  # a partner agency: departments and items, never personal data
        return kind in {"department", "item"}
    if kind in _PERSONAL:
        return owner is None or owner == actor.department
    return True


def can_read_all(actor: Actor, kind: str) -> bool:
    """May ``actor`` read ``kind`` entries of every department (not only its own)?"""
    if actor.has(Role.ADMIN) or actor.has(Role.AUDITOR):
        return True
    return kind not in _PERSONAL and can_read(actor, kind)


def require_write(actor: Actor, kind: str, owner: str) -> None:
    if not can_write(actor, kind, owner):
        if actor.has(Role.AUDITOR) and not actor.has(Role.PLANNER):
            raise PermissionDeniedError("auditors read everything and change nothing")
        raise PermissionDeniedError(
            f"role {actor.role!r} of department {actor.department!r} may not change {kind} entries"
            f" of department {owner!r}"
        )


def require_read(actor: Actor, kind: str, owner: str | None = None) -> None:
    if not can_read(actor, kind, owner):
        raise PermissionDeniedError(
            f"role {actor.role!r} of department {actor.department!r} may not read {kind} entries"
            + (f" of department {owner!r}" if owner else "")
        )
