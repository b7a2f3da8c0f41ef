"""Overlapping random tasks: a second random draw over the same ground is a re-roll unless it is declared.

Two random tasks (origin ``planned`` or ``ad_hoc``; a case task, 个案检查, names its targets and never
overlaps) **overlap** when all three hold:

- their periods share at least one month (``2024-05`` and ``2024Q2`` do; ``2024Q1`` and ``2024Q2`` do not;
  different years never do);
- some department takes part in both and brings at least one item to both (a joint task overlaps a task of
  any one of its departments on that department's items);
- their scopes can admit a common target: for each of ``county``, ``industries``, ``supervision_classes`` and
  ``risk_classes`` that both scopes restrict, the restrictions share a value (``tags`` never separate two
  scopes: a target may carry the tags of both).

Follow-up rounds (回访, ``domain.execution.followup``) are random draws too: a department's new round whose
period shares a month with one of its existing rounds (``2024-05`` and ``2024Q2``) would redraw the same
inspected targets. It is refused the same way (:func:`follow_up_overlaps`).

A new random task that overlaps existing ones is refused (409, naming each) unless the request names every
task it overlaps and gives a reason; the task then records them (``Task.OverlapDeclared``). Pure: the caller
supplies the existing tasks.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.errors import DomainError, FieldProblem, InvalidInputError
from domain.planning.rules import parse_period
from domain.text import MAX_REASON, REASON_RULE, reason_message

RANDOM_ORIGINS = ("planned", "ad_hoc")
SEPARATING_SCOPE_FIELDS = ("county", "industries", "supervision_classes", "risk_classes")


@dataclass(frozen=True)
class Footprint:
    """What decides an overlap: the task's id, number, name, origin, period, participants and scope."""

    id: str
    number: str
    name: str
    origin: str
    period: str
    participants: Mapping[str, Sequence[str]]
    scope: Mapping[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, str]:
        return {"id": self.id, "number": self.number, "name": self.name, "period": self.period}


class OverlapError(DomainError):
    """A random task overlaps current random tasks that the request did not declare (409)."""

    title = "Overlapping random task"
    status = 409

    def __init__(self, undeclared: Sequence[Footprint]) -> None:
        names = "; ".join(f"{f.number} {f.name} ({f.id}, {f.period})" for f in undeclared)
        message = (
            f"overlaps {len(undeclared)} current random task(s) in period, department, items and scope: {names}. "
            "Withdraw and redraw that task instead, or name every overlapping task in `overlaps` with an "
            "`overlap_reason`"
        )
        super().__init__(
            message,
            [FieldProblem("overlaps", "undeclared_overlap", f"{f.number} {f.name} ({f.id}, {f.period})")
             for f in undeclared],
        )
        self.undeclared = list(undeclared)


def _months(period: str) -> tuple[int, int, int]:
    p = parse_period(period)
    return p.year, p.first_month, p.last_month


def periods_intersect(a: str, b: str) -> bool:
    """Whether two periods share a month."""
    ya, fa, la = _months(a)
    yb, fb, lb = _months(b)
    return ya == yb and fa <= lb and fb <= la


def shared_items(a: Mapping[str, Sequence[str]], b: Mapping[str, Sequence[str]]) -> bool:
    """Whether some department brings a common item to both."""
    return any(set(a[d]) & set(b[d]) for d in set(a) & set(b))


def _values(value: Any) -> set[str]:
    if value in (None, "", [], ()):
        return set()
    return {value} if isinstance(value, str) else set(value)


def scopes_intersect(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether a target could be admitted by both scopes (tags never separate them)."""
    for name in SEPARATING_SCOPE_FIELDS:
        va, vb = _values(a.get(name)), _values(b.get(name))
        if va and vb and not va & vb:
            return False
    return True


def overlaps(a: Footprint, b: Footprint) -> bool:
    """Whether two tasks overlap (see the module doc); a task never overlaps itself."""
    return (
        a.id != b.id
        and a.origin in RANDOM_ORIGINS
        and b.origin in RANDOM_ORIGINS
        and periods_intersect(a.period, b.period)
        and shared_items(a.participants, b.participants)
        and scopes_intersect(a.scope, b.scope)
    )


def declared_overlaps(
    new: Footprint, existing: Iterable[Footprint], declared: Sequence[str], reason: str
) -> list[dict[str, str]]:
    """The overlapping tasks the new task records (id, number, name, period), oldest first as given.

    Refused: an overlap not declared (:class:`OverlapError`, 409); a declared task that does not overlap, or
    declared overlaps without a reason (422, ``overlaps`` / ``overlap_reason``).
    """
    others = list(existing)
    found = [f for f in others if overlaps(new, f)]
    named = [str(d) for d in declared]
    problems: list[FieldProblem] = []
    found_ids = {f.id for f in found}
    for i, d in enumerate(named):
        if d not in found_ids:
            problems.append(FieldProblem(f"overlaps[{i}]", "not_overlapping",
                                         f"{d} is not a current random task that this task overlaps"))
    if named and not (isinstance(reason, str) and reason.strip()):
        problems.append(FieldProblem("overlap_reason", "required",
                                     "a task that overlaps current random tasks records why"))
    if isinstance(reason, str) and len(reason.strip()) > MAX_REASON:
        problems.append(FieldProblem("overlap_reason", REASON_RULE, reason_message()))
    if problems:
        raise InvalidInputError(problems)
    undeclared = [f for f in found if f.id not in named]
    if undeclared:
        raise OverlapError(undeclared)
    return [f.summary() for f in found]


class FollowUpOverlapError(DomainError):
    """A follow-up round's period overlaps rounds of the department that the request did not declare (409)."""

    title = "Overlapping follow-up round"
    status = 409

    def __init__(self, undeclared: Sequence[tuple[str, str]]) -> None:
        names = "; ".join(f"{period} ({rid})" for rid, period in undeclared)
        super().__init__(
            f"overlaps {len(undeclared)} follow-up round(s) of the department in period: {names}. Name every "
            "overlapping round in `overlaps` with an `overlap_reason`",
            [FieldProblem("overlaps", "undeclared_overlap", f"follow-up round {period} ({rid})")
             for rid, period in undeclared],
        )
        self.undeclared = list(undeclared)


def follow_up_overlaps(
    period: str, existing: Iterable[tuple[str, str]], declared: Sequence[str], reason: str
) -> list[dict[str, str]]:
    """The department's follow-up rounds (``(id, period)``, oldest first) whose periods share a month with
    ``period``, as the new round records them (``{id, period}``).

    Refused like a task's overlap: one not declared (:class:`FollowUpOverlapError`, 409), a declared id that is
    not an overlapping round or declared overlaps without a reason (422, ``overlaps[i]`` / ``overlap_reason``).
    """
    found = [(rid, p) for rid, p in existing if periods_intersect(period, p)]
    named = [str(d) for d in declared]
    found_ids = {rid for rid, _ in found}
    problems = [FieldProblem(f"overlaps[{i}]", "not_overlapping",
                             f"{d} is not a follow-up round of the department whose period overlaps {period}")
                for i, d in enumerate(named) if d not in found_ids]
    if named and not (isinstance(reason, str) and reason.strip()):
        problems.append(FieldProblem("overlap_reason", "required",
                                     "a follow-up round over an overlapping period records why"))
    if isinstance(reason, str) and len(reason.strip()) > MAX_REASON:
        problems.append(FieldProblem("overlap_reason", REASON_RULE, reason_message()))
    if problems:
        raise InvalidInputError(problems)
    undeclared = [(rid, p) for rid, p in found if rid not in named]
    if undeclared:
        raise FollowUpOverlapError(undeclared)
    return [{"id": rid, "period": p} for rid, p in found]
