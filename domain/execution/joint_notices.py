"""Notices that speak for every department of a visit (一次告知, 一表告知): their order, and when the result
notice may be issued."""

from collections.abc import Mapping, Sequence

from domain.errors import FieldProblem
from domain.execution.inspection import InvalidTransitionError, ReviewState

_DONE = (ReviewState.APPROVED.value, ReviewState.PUBLISHED.value)


def lead_first(lead: str, departments: Sequence[str]) -> list[str]:
    """The lead department, then the others in the visit's order."""
    return [lead, *[d for d in departments if d != lead]]


def review_states(departments: Sequence[str], states: Mapping[str, str]) -> dict[str, str]:
    """Every department's review state (``not_entered`` when its inspection is not opened)."""
    return {d: states.get(d, ReviewState.NOT_ENTERED.value) for d in departments}


def require_all_approved(states: Mapping[str, str]) -> None:
    """The result notice covers every department: each must have approved (or published) its findings."""
    waiting = [d for d, s in states.items() if s not in _DONE]
    if waiting:
        raise InvalidTransitionError([FieldProblem(
            "review_states", "not_all_approved",
            f"not yet approved by: {', '.join(waiting)}; the result notice covers every department")])
