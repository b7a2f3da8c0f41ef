"""The assignment (派发) aggregate: one visit to one drawn target, with each department's team and items.

An assignment is created for every target a task's round draws. Each participating department adds its
team (``assign_team``); once every department has one the visit is ``dispatched``. An inspector who
declares a conflict is recused and replaced by a deterministic redraw (``recuse``: the reason, the old and
the new member are events). When the same target is drawn by two tasks in one quarter, one assignment
absorbs the other (``absorb`` / ``merge_into``): one visit covering both tasks' items. A withdrawn draw
cancels its assignments. The visit itself, findings and publication continue in the execution model.
"""

import copy
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate, event

from domain.errors import FieldProblem, InvalidInputError
from domain.tasks.task import TaskStateError

NAMESPACE = uuid.UUID("5b0e4a8c-7d3f-5a21-9c6e-1f2a3b4c5d6e")

STATES = ("awaiting_teams", "dispatched", "merged", "cancelled")


def assignment_id(task: str | uuid.UUID, round_: int, target: str) -> uuid.UUID:
    """One assignment per (task, draw round, target)."""
    return uuid.uuid5(NAMESPACE, f"assignment:{task}/{round_}/{target}")


class Assignment(Aggregate):
    """派发: task(s), target, per department its items and team (``teams[dept]``: leader, members, experts)."""

    KIND: ClassVar[str] = "assignment"

    tasks: list[dict[str, Any]]
    target_id: str
    lead: str
    period: str
    items: dict[str, list[str]]
    teams: dict[str, dict[str, Any]]
    visit_date: str | None
    off_site_first: bool
    state: str
    redraws: dict[str, int]
    recusals: list[dict[str, Any]]
    merged_into: str | None

    class Created(Aggregate.Created):
        task_id: str
        task_number: str
        round: int
        target_id: str
        lead: str
        period: str
        items: dict[str, list[str]]
        off_site_first: bool

    class TeamAssigned(Aggregate.Event):
        department: str
        leader: str
        members: list[str]
        experts: list[str]
        visit_date: str

    class InspectorRecused(Aggregate.Event):
        """回避: an inspector left the team for a declared conflict; ``declared_by`` is who said so."""

        department: str
        inspector_id: str
        reason: str
        declared_by: str

    class MemberRedrawn(Aggregate.Event):
        """The replacement drawn with the task's team key and this department's redraw counter. Version 2
        adds ``position``: the log position its inputs were read at (docs/verifying-a-draw.md section 16);
        version 1 is upcast with None (not re-derivable from the log)."""

        class_version = 2

        department: str
        removed: str
        new: str
        counter: int
        leader: str
        position: int | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["position"] = None

    class TaskMerged(Aggregate.Event):
        """Another task's visit to the same target in the same quarter joined this one."""

        task_id: str
        task_number: str
        items: dict[str, list[str]]
        teams: dict[str, dict[str, Any]]
        absorbed: str

    class MergedInto(Aggregate.Event):
        assignment_id: str
        reason: str

    class Cancelled(Aggregate.Event):
        reason: str

    @staticmethod
    def create_id(task_id: str, round: int, target_id: str, **_: Any) -> uuid.UUID:
        return assignment_id(task_id, round, target_id)

    @classmethod
    def dispatch(
        cls,
        *,
        task_id: str,
        task_number: str,
        round: int,
        target_id: str,
        lead: str,
        period: str,
        items: Mapping[str, Sequence[str]],
        off_site_first: bool = False,
    ) -> "Assignment":
        return cls._create(
            cls.Created,
            id=assignment_id(task_id, round, target_id),
            task_id=str(task_id),
            task_number=task_number,
            round=round,
            target_id=target_id,
            lead=lead,
            period=period,
            items={d: list(v) for d, v in sorted(items.items())},
            off_site_first=bool(off_site_first),
        )

    @event(Created)
    def __init__(
        self,
        task_id: str,
        task_number: str,
        round: int,
        target_id: str,
        lead: str,
        period: str,
        items: dict[str, list[str]],
        off_site_first: bool,
    ) -> None:
        self.tasks = [{"task_id": task_id, "task_number": task_number, "round": round}]
        self.target_id = target_id
        self.lead = lead
        self.period = period
        self.items = copy.deepcopy(items)
        self.teams = {}
        self.visit_date = None
        self.off_site_first = off_site_first
        self.state = "awaiting_teams"
        self.redraws = {}
        self.recusals = []
        self.merged_into = None

    # -- what the rest of the system reads ---------------------------------------------------------
    @property
    def department(self) -> str:
        return self.lead

    @property
    def departments(self) -> list[str]:
        return sorted(self.items)

    @property
    def task_id(self) -> str:
        return str(self.tasks[0]["task_id"])

    def members(self, department: str | None = None) -> list[str]:
        """Inspector ids on the visit (of one department when given)."""
        out: list[str] = []
        for d, team in sorted(self.teams.items()):
            if department is None or d == department:
                out.extend(team["members"])
        return out

    def _require_live(self) -> None:
        if self.state in ("merged", "cancelled"):
            raise TaskStateError(f"the assignment is {self.state}")

    # -- commands -------------------------------------------------------------------------------------
    def assign_team(
        self, department: str, leader: str, members: Sequence[str], experts: Sequence[str], visit_date: str
    ) -> None:
        self._require_live()
        if department not in self.items:
            raise InvalidInputError(
                [FieldProblem("department", "not_participant", f"{department} has no items on this visit")]
            )
        if department in self.teams:
            raise TaskStateError(f"{department} already has a team on this visit", "department")
        if len(set(members)) < 2 or leader not in members:
            raise InvalidInputError(
                [FieldProblem("members", "min", "a team has at least 2 inspectors and its leader")]
            )
        self._assign(
            department=department,
            leader=leader,
            members=list(members),
            experts=list(experts),
            visit_date=visit_date,
        )

    def next_redraw(self, department: str) -> int:
        """The counter the next redraw of ``department``'s member uses (1, 2, ...)."""
        return self.redraws.get(department, 0) + 1

    def recuse(
        self, department: str, inspector_id: str, reason: str, declared_by: str, new: str, position: int | None = None
    ) -> None:
        """Replace a recused inspector with ``new`` (drawn by the caller with ``next_redraw``)."""
        self._require_live()
        why = reason.strip() if isinstance(reason, str) else ""
        if not why:
            raise InvalidInputError(
                [FieldProblem("reason", "required", "a recusal needs a reason (回避事由)")]
            )
        team = self.teams.get(department)
        if team is None or inspector_id not in team["members"]:
            raise InvalidInputError(
                [
                    FieldProblem(
                        "inspector_id", "not_a_member", f"{inspector_id} is not on {department}'s team here"
                    )
                ]
            )
        if new in team["members"]:
            raise InvalidInputError([FieldProblem("new", "duplicate", f"{new} is already on the team")])
        members = [m for m in team["members"] if m != inspector_id] + [new]
        self._recused(department=department, inspector_id=inspector_id, reason=why, declared_by=declared_by)
        self._redrawn(
            department=department,
            removed=inspector_id,
            new=new,
            counter=self.next_redraw(department),
            leader=members[0],
            position=position,
        )

    def absorb(self, other: "Assignment", reason: str) -> None:
        """Make this the one visit for ``other``'s task too (same target, same quarter)."""
        why = reason.strip() if isinstance(reason, str) else ""
        problems = []
        if not why:
            problems.append(FieldProblem("reason", "required", "a merge needs a reason"))
        if other.id == self.id:
            problems.append(FieldProblem("other", "same", "an assignment cannot absorb itself"))
        elif other.target_id != self.target_id:
            problems.append(FieldProblem("other", "target", "only visits to the same target merge"))
        if problems:
            raise InvalidInputError(problems)
        self._require_live()
        other._require_live()
        items = {d: list(v) for d, v in other.items.items()}
        teams = {d: copy.deepcopy(t) for d, t in other.teams.items() if d not in self.teams}
        for task in other.tasks:
            self._merged(
                task_id=task["task_id"],
                task_number=task["task_number"],
                items=items,
                teams=teams,
                absorbed=str(other.id),
            )
            items, teams = {}, {}
        other._merged_into(assignment_id=str(self.id), reason=why)

    def cancel(self, reason: str) -> None:
        if self.state != "cancelled":
            self._cancelled(reason=reason)

    # -- mutators ---------------------------------------------------------------------------------------
    def _update_state(self) -> None:
        if self.state in ("awaiting_teams", "dispatched"):
            self.state = "dispatched" if set(self.items) <= set(self.teams) else "awaiting_teams"

    @event(TeamAssigned)
    def _assign(
        self, department: str, leader: str, members: list[str], experts: list[str], visit_date: str
    ) -> None:
        self.teams[department] = {"leader": leader, "members": list(members), "experts": list(experts)}
        self.visit_date = self.visit_date or visit_date
        self._update_state()

    @event(InspectorRecused)
    def _recused(self, department: str, inspector_id: str, reason: str, declared_by: str) -> None:
        self.recusals.append(
            {
                "department": department,
                "inspector_id": inspector_id,
                "reason": reason,
                "declared_by": declared_by,
            }
        )

    @event(MemberRedrawn)
    def _redrawn(
        self, department: str, removed: str, new: str, counter: int, leader: str, position: int | None
    ) -> None:
        team = self.teams[department]
        team["members"] = [m for m in team["members"] if m != removed] + [new]
        team["leader"] = leader
        self.redraws[department] = counter

    @event(TaskMerged)
    def _merged(
        self,
        task_id: str,
        task_number: str,
        items: dict[str, list[str]],
        teams: dict[str, dict[str, Any]],
        absorbed: str,
    ) -> None:
        self.tasks.append({"task_id": task_id, "task_number": task_number, "absorbed": absorbed})
        for d, its in items.items():
            mine = self.items.setdefault(d, [])
            mine.extend(i for i in its if i not in mine)
        for d, team in teams.items():
            self.teams.setdefault(d, copy.deepcopy(team))
        self._update_state()

    @event(MergedInto)
    def _merged_into(self, assignment_id: str, reason: str) -> None:
        self.merged_into = assignment_id
        self.state = "merged"

    @event(Cancelled)
    def _cancelled(self, reason: str) -> None:
        self.state = "cancelled"
