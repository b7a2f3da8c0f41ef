"""Messages for joint tasks (抽查任务) and assignments (派发): draws, teams, recusals, merges.

Started from ``python -m services.cli.contracts scaffold``: the fields of each event, typed as in the domain.
"""

from typing import Any

from domain.contracts.base import Message, contract
from domain.tasks.assignment import Assignment
from domain.tasks.task import Task


@contract(Assignment.Cancelled)
class AssignmentCancelledV1(Message, frozen=True):
    reason: str


@contract(Assignment.Created)
class AssignmentCreatedV1(Message, frozen=True):
    task_id: str
    task_number: str
    round: int
    target_id: str
    lead: str
    period: str
    items: dict[str, list[str]]
    off_site_first: bool


@contract(Assignment.InspectorRecused)
class AssignmentInspectorRecusedV1(Message, frozen=True):
    department: str
    inspector_id: str
    reason: str
    declared_by: str


@contract(Assignment.MemberRedrawn)
class AssignmentMemberRedrawnV1(Message, frozen=True):
    department: str
    removed: str
    new: str
    counter: int
    leader: str


@contract(Assignment.MemberRedrawn)
class AssignmentMemberRedrawnV2(Message, frozen=True):
    department: str
    removed: str
    new: str
    counter: int
    leader: str
    position: int | None


@contract(Assignment.MergedInto)
class AssignmentMergedIntoV1(Message, frozen=True):
    assignment_id: str
    reason: str


@contract(Assignment.TaskMerged)
class AssignmentTaskMergedV1(Message, frozen=True):
    task_id: str
    task_number: str
    items: dict[str, list[str]]
    teams: dict[str, dict[str, Any]]
    absorbed: str


@contract(Assignment.TeamAssigned)
class AssignmentTeamAssignedV1(Message, frozen=True):
    department: str
    leader: str
    members: list[str]
    experts: list[str]
    visit_date: str


@contract(Task.DrawWithdrawn)
class TaskDrawWithdrawnV1(Message, frozen=True):
    round: int
    reason: str
    stage: str


@contract(Task.InspectorsDrawn)
class TaskInspectorsDrawnV1(Message, frozen=True):
    round: int
    department: str
    visit_date: str
    teams: dict[str, dict[str, Any]]
    inspectors_digest: str


@contract(Task.InspectorsDrawn)
class TaskInspectorsDrawnV2(Message, frozen=True):
    round: int
    department: str
    visit_date: str
    teams: dict[str, dict[str, Any]]
    inspectors_digest: str
    position: int | None


@contract(Task.Opened)
class TaskOpenedV1(Message, frozen=True):
    number: str
    name: str
    lead: str
    year: int
    period: str
    category: str
    origin: str
    reason: str
    plan_entry: str | None
    participants: dict[str, list[str]]
    scope: dict[str, Any]
    rules: list[dict[str, Any]]
    options: dict[str, Any]


@contract(Task.OverlapDeclared)
class TaskOverlapDeclaredV1(Message, frozen=True):
    overlaps: list[dict[str, str]]
    reason: str


@contract(Task.PoolFrozen)
class TaskPoolFrozenV1(Message, frozen=True):
    round: int
    position: int
    pool_digest: str
    pool_size: int
    strata: dict[str, dict[str, Any]]
    excluded: dict[str, int]


@contract(Task.SeedCommitted)
class TaskSeedCommittedV1(Message, frozen=True):
    round: int
    commitment: str


@contract(Task.SeedCommitted)
class TaskSeedCommittedV2(Message, frozen=True):
    round: int
    commitment: str
    entropy_source: str


@contract(Task.ShareCommitted)
class TaskShareCommittedV1(Message, frozen=True):
    round: int
    department: str
    commitment: str


@contract(Task.ShareRevealed)
class TaskShareRevealedV1(Message, frozen=True):
    round: int
    department: str
    share: str


@contract(Task.TargetsDesignated)
class TaskTargetsDesignatedV1(Message, frozen=True):
    round: int
    targets: list[str]
    seed: str


@contract(Task.TargetsDrawn)
class TaskTargetsDrawnV1(Message, frozen=True):
    round: int
    record: dict[str, Any]
    off_site_first: list[str]
