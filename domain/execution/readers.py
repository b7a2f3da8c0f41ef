"""Who reads a visit's execution, lists a department's records, exports results and handles evidence files."""

import re
from collections.abc import Collection

from domain.access import Actor
from domain.errors import FieldProblem, InvalidInputError, PermissionDeniedError
from domain.values import Role

_PARTNER_ONLY = (Role.PARTNER.value,)
_DEPARTMENT_CODE = re.compile(r"^[a-z][a-z0-9-]{1,31}$")  # as the directory's department codes


def reads_everything(actor: Actor) -> bool:
    """Admins and auditors read every department's records."""
    return actor.has(Role.ADMIN) or actor.has(Role.AUDITOR)


def require_visit_reader(actor: Actor, departments: Collection[str]) -> None:
    """A visit's execution: its departments' staff (not partners), admins and auditors."""
    if reads_everything(actor):
        return
    if actor.department not in departments or actor.roles == _PARTNER_ONLY:
        raise PermissionDeniedError(
            f"role {actor.role!r} of department {actor.department!r} may not read this visit's execution: "
            "only its departments' staff, admins and auditors")


def listed_department(actor: Actor, department: str | None, what: str) -> str | None:
    """The department a listing of ``what`` covers: any (or all: None) for admins and auditors, else the
    actor's own; another department's is refused."""
    if reads_everything(actor):
        return department
    if department is not None and department != actor.department:
        raise PermissionDeniedError(f"{what} of {department} are not yours to list")
    return actor.department


def refuse_partner(actor: Actor) -> None:
    """A partner agency reads the published results only."""
    if actor.roles == _PARTNER_ONLY:
        raise PermissionDeniedError("partners read the published results only")


def export_department(actor: Actor, department: str | None) -> str | None:
    """The department an export covers (None: all): the department's reviewers and planners export their own,
    admins and auditors any or all. A ``department`` that is not a department code is refused (422): it names the
    export file."""
    if department and not _DEPARTMENT_CODE.match(department):
        raise InvalidInputError([FieldProblem("department", "format", "must be a department code (lower-case "
                                              "letters, digits and -)")])
    dept = department or (None if reads_everything(actor) else actor.department)
    if not reads_everything(actor) and not (
        actor.department == dept and (actor.has(Role.REVIEWER) or actor.has(Role.PLANNER))
    ):
        raise PermissionDeniedError("the export is for the department's reviewers and planners, admins and "
                                    "auditors")
    return dept


def require_uploader(actor: Actor) -> None:
    """Inspectors, reviewers, planners and admins upload evidence."""
    if not any(actor.has(r) for r in (Role.INSPECTOR, Role.REVIEWER, Role.PLANNER, Role.ADMIN)):
        raise PermissionDeniedError(f"role {actor.role!r} may not upload evidence")


def require_calendar_admin(actor: Actor) -> None:
    """Only an admin loads the working-day calendar."""
    if not actor.has(Role.ADMIN):
        raise PermissionDeniedError("only an admin loads the working-day calendar")
