"""Inspections, one per visit and department: findings (谁检查、谁录入), submission, review, publication, push.

An inspection is opened lazily from the Assignment the first time the department's team or reviewers touch it,
and its team follows the Assignment's (recusals, redraws) on every entry and submission while the findings are
still the team's to change."""

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Engine

from domain.access import Actor
from domain.errors import FieldProblem, InvalidInputError
from domain.execution.access import require_staff
from domain.execution.cases import earliest_inspection
from domain.execution.dates import parse_day, past_day
from domain.execution.inspection import EDITABLE, Inspection, ReviewState, inspection_id
from domain.execution.readers import listed_department, refuse_partner, require_visit_reader
from domain.execution.vocabulary import INSPECTION_METHOD_LABELS
from domain.tasks.assignment import Assignment
from domain.tasks.task import Task, TaskStateError
from projections.execution import queries as execution
from projections.runner import ProjectionRunner
from services.application import CommandContext, DualRandom
from services.usecases.calendar import Calendar
from services.usecases.common import EXECUTION_READ_MODELS, Clock, Done, UseCase, given
from services.usecases.configuration import Configurations
from services.usecases.evidence import Evidence
from services.usecases.lookups import Lookups


class Inspections(UseCase):
    """A department's inspection of a visit, from the team's findings to the published result."""

    read_models = EXECUTION_READ_MODELS

    def __init__(
        self,
        app: DualRandom,
        engine: Engine,
        runner: ProjectionRunner,
        *,
        lookups: Lookups,
        evidence: Evidence,
        calendar: Calendar,
        clock: Clock,
        configurations: Configurations | None = None,
    ) -> None:
        super().__init__(app, engine, runner)
        self.lookups = lookups
        self.evidence = evidence
        self.calendar = calendar
        self.clock = clock
        self.configurations = configurations or Configurations(app, engine, runner)

    # -- loading -------------------------------------------------------------------------------------------
    def _inspection(self, a: Assignment, department: str) -> Inspection:
        """The department's inspection of the visit: opened from the assignment when missing, its team synced
        with the assignment's current team while the findings are the team's to change (no event if same)."""
        if a.state in ("merged", "cancelled"):
            where = f" into {a.merged_into}" if a.merged_into else ""
            raise TaskStateError(f"the visit was {a.state}{where}; nothing is recorded on it")
        if department not in a.items:
            raise InvalidInputError([FieldProblem("department", "not_participant",
                                                  f"{department} has no items on this visit")])
        team = a.teams.get(department)
        if team is None:
            raise InvalidInputError([FieldProblem("department", "no_team",
                                                  f"{department} has not drawn its inspectors for this visit yet")])
        insp = self.find(Inspection, inspection_id(a.id, department))
        if insp is None:
            return Inspection.open(a.id, a.task_id, department, a.target_id, a.items[department], team["members"])
        if insp.state in EDITABLE:
            insp.sync_team(team["members"])
        return insp

    def _inspection_by_id(self, iid: uuid.UUID) -> Inspection:
        insp = self.load(Inspection, iid, "inspection")
        a = self.load(Assignment, uuid.UUID(insp.assignment_id), "assignment")
        if insp.state in EDITABLE and a.state not in ("merged", "cancelled") and insp.department in a.teams:
            insp.sync_team(a.teams[insp.department]["members"])
        return insp

    # -- commands ------------------------------------------------------------------------------------------
    def open_inspection(self, ctx: CommandContext, aid: uuid.UUID, department: str) -> Done:
        """Open (or sync) the department's inspection of a visit: its staff, or an admin."""
        require_staff(ctx.actor, department, "open an inspection")
        insp = self._inspection(self.load(Assignment, aid, "assignment"), department)
        position = self.app.record(ctx, "open_inspection", insp)
        return self.done(insp, position, state=insp.state, team=insp.team, items=insp.items)

    def record_findings(self, ctx: CommandContext, aid: uuid.UUID, department: str, data: Mapping[str, Any]) -> Done:
        """谁检查、谁录入: the department's team inspectors enter its findings."""
        actor = self.lookups.as_inspector(ctx.actor)
        a = self.load(Assignment, aid, "assignment")
        insp = self._inspection(a, department)
        findings = data.get("findings") or {}
        if isinstance(findings, Mapping):
            for code, f in findings.items():
                if isinstance(f, Mapping) and isinstance(f.get("evidence"), list):
                    self.evidence.check(f["evidence"], f"findings.{code}.evidence")
        task = self.load(Task, uuid.UUID(a.task_id), "task")
        insp.record(actor, given(data, "inspected_on"), data.get("methods") or [], findings,
                    vocabulary=self.configurations.current().vocabulary,  # the configured result codes
                    today=self.clock.today(), not_before=earliest_inspection(task.period, task.origin, task.reason))
        position = self.app.record(ctx, "record_findings", insp)
        return self.done(insp, position, state=insp.state, recorded=sorted(findings))

    def submit(self, ctx: CommandContext, iid: uuid.UUID) -> Done:
        insp = self._inspection_by_id(iid)
        insp.submit(self.lookups.as_inspector(ctx.actor))
        position = self.app.record(ctx, "submit_findings", insp)
        return self.done(insp, position, state=insp.state)

    def return_(self, ctx: CommandContext, iid: uuid.UUID, reason: str) -> Done:
        insp = self._inspection_by_id(iid)
        insp.return_(ctx.actor, reason)
        position = self.app.record(ctx, "return_findings", insp)
        return self.done(insp, position, state=insp.state)

    def approve(self, ctx: CommandContext, iid: uuid.UUID, approved_on: Any = None) -> Done:
        """Approve; the publication deadline is ``working_days`` working days later (official calendar)."""
        day = past_day(approved_on, "approved_on", self.clock.today())
        insp = self._inspection_by_id(iid)
        deadline = insp.approve(ctx.actor, day, self.calendar.calendar(), self.calendar.working_days)
        position = self.app.record(ctx, "approve_findings", insp)
        return self.done(insp, position, state=insp.state, deadline=deadline.as_dict())

    def publish(self, ctx: CommandContext, iid: uuid.UUID, published_on: Any = None) -> Done:
        day = past_day(published_on, "published_on", self.clock.today())
        insp = self._inspection_by_id(iid)
        insp.publish(ctx.actor, day)
        position = self.app.record(ctx, "publish_results", insp)
        return self.done(insp, position, state=insp.state, published_late=insp.published_late)

    def push(self, ctx: CommandContext, iid: uuid.UUID, data: Mapping[str, Any]) -> Done:
        """Push state: ``pushed`` (channel, reference), ``failed`` (reason) or ``confirmed`` (reference)."""
        insp = self._inspection_by_id(iid)
        state = data.get("state")
        on = parse_day(data.get("on"), "on", self.clock.today())
        if state == "pushed":
            insp.mark_pushed(ctx.actor, on, data.get("channel") or "data_push", data.get("reference") or "")
        elif state == "failed":
            insp.mark_push_failed(ctx.actor, on, data.get("reason") or "")
        elif state == "confirmed":
            insp.confirm_push(ctx.actor, on, data.get("reference") or "")
        else:
            raise InvalidInputError([FieldProblem("state", "choice", "must be one of: pushed, failed, confirmed")])
        position = self.app.record(ctx, f"push_{state}", insp)
        return self.done(insp, position, push_state=insp.push_state, push=insp.push)

    # -- reading -------------------------------------------------------------------------------------------
    def inspection_view(self, actor: Actor, iid: uuid.UUID) -> dict[str, Any]:
        """Full findings for the team, the department's reviewers and auditors; redacted for the visit's other
        departments; 403 for anyone else."""
        insp = self.load(Inspection, iid, "inspection")
        a = self.find(Assignment, uuid.UUID(insp.assignment_id))
        require_visit_reader(actor, a.departments if a is not None else [insp.department])
        d = insp.publication_deadline()
        today = self.clock.today()
        return {
            "id": str(insp.id), "version": insp.version, "assignment_id": insp.assignment_id,
            "task_id": insp.task_id, "department": insp.department, "target_id": insp.target_id,
            "items": insp.items, "team": insp.team, "state": insp.state, "inspected_on": insp.inspected_on,
            "methods": insp.methods, "method_labels": [INSPECTION_METHOD_LABELS.get(m, m) for m in insp.methods],
            "findings": insp.findings_for(self.lookups.as_inspector(actor)), "history": insp.history,
            "approved_on": insp.approved_on, "deadline": insp.deadline, "overdue": insp.is_overdue(today),
            "days_left": (self.calendar.calendar().working_days_between(today, d.date)
                          if d is not None and insp.state == ReviewState.APPROVED.value else None),
            "published_on": insp.published_on, "published_late": insp.published_late,
            "push_state": insp.push_state, "push": insp.push,
        }

    def visit_inspections(self, actor: Actor, aid: uuid.UUID) -> dict[str, Any]:
        """Every participating department's inspection state for one visit (absent ones: ``not_entered``)."""
        a = self.load(Assignment, aid, "assignment")
        require_visit_reader(actor, a.departments)
        out = {}
        for dept in a.departments:
            iid = inspection_id(a.id, dept)
            row = execution.inspection_row(self.engine, str(iid), self.clock.today())
            out[dept] = row or {"id": str(iid), "department": dept, "state": ReviewState.NOT_ENTERED.value,
                                "opened": False}
        return {"assignment_id": str(a.id), "departments": a.departments, "lead": a.lead, "inspections": out}

    def list_inspections(self, actor: Actor, filters: Mapping[str, Any], limit: int, offset: int) -> dict[str, Any]:
        dept = listed_department(actor, filters.get("department"), "inspections")
        refuse_partner(actor)
        return execution.list_inspections(
            self.engine, departments=[dept] if dept else None, today=filters.get("as_of") or self.clock.today(),
            state=filters.get("state"), assignment_id=filters.get("assignment_id"),
            target_id=filters.get("target_id"), overdue=filters.get("overdue"),
            provisional=filters.get("provisional"), push_state=filters.get("push_state"), limit=limit,
            offset=offset,
        )
