"""Opening tasks (from a plan entry, ad hoc, or a case), naming a case task's targets, and reading tasks."""

import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from eventsourcing.domain import Aggregate
from sqlalchemy.engine import Engine

from domain.access import Actor
from domain.directory import target_ref
from domain.errors import FieldProblem, InvalidInputError, PermissionDeniedError
from domain.planning.periods import is_period
from domain.planning.plan import AnnualPlan, plan_id
from domain.planning.rules import parse_period
from domain.tasks import access
from domain.tasks.opening import (
    TaskTerms,
    ad_hoc_terms,
    entry_year,
    next_task_number,
    planned_terms,
    resolve_task_name,
)
from domain.tasks.overlap import RANDOM_ORIGINS, Footprint, declared_overlaps
from domain.tasks.task import Task
from projections.runner import ProjectionRunner
from projections.tasks import queries as tasks
from services.application import CommandContext, ConflictError, DualRandom, NotFoundError
from services.usecases.common import Done, UseCase
from services.usecases.lookups import Lookups

NUMBER_ATTEMPTS = 20
"""Numbers tried when concurrent openings take the next one first."""


class TaskOpening(UseCase):
    """Tasks: opened by the lead department's planners, read by their departments' staff."""

    def __init__(self, app: DualRandom, engine: Engine, runner: ProjectionRunner, lookups: Lookups) -> None:
        super().__init__(app, engine, runner)
        self.lookups = lookups

    def task(self, tid: uuid.UUID) -> Task:
        return self.load(Task, tid, "task")

    def open_task(
        self,
        ctx: CommandContext,
        data: Mapping[str, Any],
        *,
        also: Callable[[Task], Sequence[Aggregate]] | None = None,
        command: str = "open_task",
    ) -> Done:
        """From a plan entry (``plan_entry``: ``2024001``), ad hoc (``reason``), or a case (``origin: case``).

        ``also(task)``, when given, returns further changed aggregates stored in the same transaction (a case
        task from a clue: its designated targets, the target's raised risk)."""
        self.fresh()
        lead = data.get("lead") or ctx.actor.department
        access.require_lead(ctx.actor, lead)
        lead_dept = self.lookups.department(lead, "lead")
        entry_number = data.get("plan_entry")
        origin = data.get("origin") or ("planned" if entry_number else "ad_hoc")
        terms = self._planned_terms(data, lead, str(entry_number)) if entry_number else ad_hoc_terms(data)
        self._check_participants(terms.participants)
        name = resolve_task_name(
            data.get("name"), lead_dept, terms.period, terms.category, joint=len(terms.participants) > 1,
            case=origin == "case",
        )
        fields: dict[str, Any] = {
            "name": name,
            "lead": lead,
            "period": terms.period,
            "category": terms.category,
            "origin": origin,
            "participants": terms.participants,
            "scope": terms.scope,
            "rules": terms.rules or [],
            "options": data.get("options"),
            "reason": data.get("reason") or "",
            "plan_entry": str(entry_number) if entry_number else None,
        }
        year = parse_period(terms.period).year if is_period(terms.period) else 0
        for attempt in range(NUMBER_ATTEMPTS):
            number = next_task_number(year, tasks.task_numbers(self.engine, lead, year), attempt)
            task = Task.open(number=number, **fields)
            if task.is_random:
                overlaps = declared_overlaps(
                    _footprint(task), self._random_tasks_near(task), list(data.get("overlaps") or []),
                    data.get("overlap_reason") or "",
                )
                task.declare_overlaps(overlaps, data.get("overlap_reason") or "")
            elif data.get("overlaps"):
                raise InvalidInputError([FieldProblem("overlaps", "not_random",
                                                      "a case task (个案检查) is not drawn: it overlaps nothing")])
            aggs = [task, *(also(task) if also is not None else [])]
            try:
                position = self.app.record(ctx, command, *aggs)
            except ConflictError:
                continue  # the number was taken, or another aggregate changed meanwhile: ``also`` reloads it
            return self.done(task, position, number=task.number, name=task.name, is_joint=task.is_joint)
        raise ConflictError("could not allocate a task number; retry")

    def _random_tasks_near(self, task: Task) -> list[Footprint]:
        """The random tasks of the year that share a department with ``task`` (candidates for an overlap)."""
        ids: dict[uuid.UUID, None] = {}
        for dept in task.departments:
            for row in tasks.task_summaries(self.engine, dept, task.year):
                if row["origin"] in RANDOM_ORIGINS:
                    ids[uuid.UUID(row["id"])] = None
        return [_footprint(t) for t in self.load_many(Task, ids).values()]

    def _planned_terms(self, data: Mapping[str, Any], lead: str, entry_number: str) -> TaskTerms:
        year = entry_year(entry_number)
        try:
            plan = self.load(AnnualPlan, plan_id(lead, year), "plan")
        except NotFoundError:
            raise InvalidInputError(
                [FieldProblem("plan_entry", "unknown_plan", f"{lead} has no plan for {year}")]
            ) from None
        return planned_terms(data, lead, plan.entry(entry_number), plan.year)

    def _check_participants(self, participants: Mapping[str, Sequence[str]]) -> None:
        problems: list[FieldProblem] = []
        for dept, items in participants.items():
            try:
                self.lookups.department(dept, f"participants.{dept}")
                self.lookups.check_items(dept, list(items), f"participants.{dept}")
            except InvalidInputError as exc:
                problems.extend(exc.problems)
        if problems:
            raise InvalidInputError(problems)

    def designate(self, ctx: CommandContext, tid: uuid.UUID, targets: Sequence[str]) -> Done:
        """个案检查: name the targets of a case-triggered task (each must be in the directory)."""
        self.fresh()
        task = self.task(tid)
        access.require_lead(ctx.actor, task.lead)
        targets = [target_ref(t) for t in targets]  # a credit code names its target too
        known = self.lookups.target_data([str(t) for t in targets])
        unknown = [
            FieldProblem(f"targets[{i}]", "unknown_target", f"no target {t}")
            for i, t in enumerate(targets)
            if str(t) not in known
        ]
        if unknown:
            raise InvalidInputError(unknown)
        task.designate_targets(list(targets), secrets.token_bytes(32).hex())
        position = self.app.record(ctx, "designate_targets", task)
        return self.done(task, position, round=task.round, selected=len(task.selected))

    def task_view(self, actor: Actor, tid: uuid.UUID) -> dict[str, Any]:
        task = self.task(tid)
        access.require_read_task(actor, task.departments)
        return {
            "id": str(task.id),
            "version": task.version,
            "number": task.number,
            "name": task.name,
            "lead": task.lead,
            "departments": task.departments,
            "participants": task.participants,
            "is_joint": task.is_joint,
            "is_random": task.is_random,
            "origin": task.origin,
            "reason": task.reason,
            "plan_entry": task.plan_entry,
            "year": task.year,
            "period": task.period,
            "category": task.category,
            "scope": task.scope,
            "rules": task.rules,
            "options": task.options,
            "state": task.state,
            "round": task.round,
            "commitment": task.commitment,
            "frozen": task.frozen,
            "withdrawn": task.withdrawn,
            "overlaps": task.overlaps,
            "overlap_reason": task.overlap_reason,
            "entropy_source": task.entropy_source,
            "share_commitments": task.share_commitments,
            "seed_shares": task.seed_shares,
            "drawn": len(task.selected),
            "teams_drawn": sorted(task.teams),
        }

    def list_tasks(
        self, actor: Actor, year: int | None, department: str | None, limit: int, offset: int
    ) -> dict[str, Any]:
        dept = department
        if not access.can_read_all_tasks(actor):
            if dept is not None and dept != actor.department:
                raise PermissionDeniedError(f"tasks of {dept} are not yours to list")
            dept = actor.department
        return tasks.list_tasks(self.engine, department=dept, year=year, limit=limit, offset=offset)


def _footprint(task: Task) -> Footprint:
    return Footprint(str(task.id), task.number, task.name, task.origin, task.period, task.participants, task.scope)
