"""The drawn list is confidential until the visit (固化名单保密): who may see it, and the refusal."""

from collections.abc import Collection, Iterable, Sequence

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


DRAWN_PAGE_MAX = 5000  # visits per page of the drawn list


def drawn_page(
    selected: Sequence[str], off_site_first: Iterable[str], mine: Collection[str] | None, start: int, limit: int
) -> tuple[list[tuple[str, bool]], int | None]:
    """One page of the drawn list: ``(target, off_site_first)`` for the selected targets (only those in ``mine``
    when it is given) from index ``start`` of the selection, at most ``limit`` of them, and the index where the
    next page starts (None after the last). Linear in the page and the off-site set: both sets are built once,
    not once per visit."""
    off = frozenset(off_site_first)
    keep = None if mine is None else frozenset(mine)
    rows: list[tuple[str, bool]] = []
    i = max(start, 0)
    while i < len(selected) and len(rows) < limit:
        target = selected[i]
        i += 1
        if keep is None or target in keep:
            rows.append((target, target in off))
    if keep is not None:  # skip the tail that holds none of mine, so a page is never empty with a next cursor
        while i < len(selected) and selected[i] not in keep:
            i += 1
    return rows, (i if i < len(selected) else None)
