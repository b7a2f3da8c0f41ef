"""When visits of two tasks may merge into one (一次检查), and when a merged draw may no longer be redrawn."""

from collections.abc import Iterable

from domain.errors import FieldProblem, InvalidInputError
from domain.planning.periods import share_a_quarter
from domain.tasks.task import TaskStateError


def require_same_quarter(absorbed_period: str, into_period: str) -> None:
    """Only visits in the same quarter merge."""
    if not share_a_quarter(absorbed_period, into_period):
        raise InvalidInputError([FieldProblem("into", "quarter", "only visits in the same quarter merge")])


def require_no_inspection_begun(begun: Iterable[tuple[str, str]]) -> None:
    """``begun``: ``(field, department)`` of each visit's department whose inspection is open already.

    An inspection keeps the items and the visit it was opened with: merging is planned before either visit's
    inspections open (else the absorbed visit's findings would be stranded, the other's incomplete)."""
    problems = [
        FieldProblem(field, "inspection_begun",
                     f"{department}'s inspection of this visit has been opened: visits merge before that")
        for field, department in begun
    ]
    if problems:
        raise InvalidInputError(problems)


def require_redraw_allowed(*, shares_a_visit: bool, merged_away: bool, inspected: int = 0) -> None:
    """A draw is withdrawn (redrawn whole) only while nothing was built on it:

    - not with visits merged with another task's: it would cancel that task's visits;
    - not once any department opened an inspection of one of its visits (``inspected``: how many visits): the
      enterprises were visited, findings recorded, perhaps published; cancelling their visits would unmake a
      done inspection and draw others instead. A team member who cannot go is redrawn instead (recusal)."""
    if shares_a_visit or merged_away:
        raise TaskStateError(
            "visits of this draw are merged with another task's: a redraw would cancel that "
            "task's visits too; withdraw it before merging, or redraw the members instead"
        )
    if inspected:
        raise InvalidInputError([FieldProblem(
            "round", "inspection_begun",
            f"inspections of {inspected} visit(s) of this round have been opened (findings recorded or "
            "published): a round that was carried out is not withdrawn; redraw a team member who cannot go instead",
        )])
