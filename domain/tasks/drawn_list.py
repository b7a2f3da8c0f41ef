"""The drawn list is confidential until the visit (固化名单保密): who may see it, and the refusal."""

from collections.abc import Collection

from domain.access import Actor
from domain.errors import PermissionDeniedError
from domain.tasks.access import can_see_drawn_list


def require_drawn_list(actor: Actor, departments: Collection[str]) -> None:
    """Refuse anyone but the task's departments' planners and auditors (inspectors see their own visits
    through the assignments they are on)."""
    if not can_see_drawn_list(actor, departments):
        raise PermissionDeniedError(
            "the drawn list is confidential until the visit: only the task's departments' planners, "
            "its assigned inspectors (their own visits) and auditors see it"
        )
