"""个案检查 from a clue (an off-site alert, a complaint, a referral in): the target's risk is raised and a
case-triggered task (not random) is opened with the target named, in one transaction."""

import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Engine

from domain.directory import DirectoryEntry, target_ref
from domain.errors import FieldProblem, InvalidInputError
from domain.execution.cases import case_items, case_period, case_reason, clue_id
from domain.execution.clue import raised_risk_class, validate_clue
from domain.tasks import access
from domain.tasks.task import Task
from projections.runner import ProjectionRunner
from services.application import CommandContext, DualRandom, NotFoundError
from services.usecases.common import Clock, UseCase, parse_uuid
from services.usecases.lookups import Lookups
from services.usecases.task_opening import TaskOpening


class Clues(UseCase):
    """Clues recorded as case-triggered tasks of the department that received them."""

    def __init__(
        self,
        app: DualRandom,
        engine: Engine,
        runner: ProjectionRunner,
        *,
        lookups: Lookups,
        task_opening: TaskOpening,
        clock: Clock,
    ) -> None:
        super().__init__(app, engine, runner)
        self.lookups = lookups
        self.task_opening = task_opening
        self.clock = clock

    def record_clue(self, ctx: CommandContext, data: Mapping[str, Any]) -> dict[str, Any]:
        """个案检查 from a clue: the target's risk is raised (an event on the target) and a case-triggered task
        (not random) is opened for it and its target named, in one transaction whose events carry the clue's id as
        causation id; the clue itself is the task's reason."""
        own = {k: target_ref(v) if k == "target_id" else v for k, v in data.items() if k not in ("items", "period")}
        clue = validate_clue(own, self.clock.today())
        access.require_lead(ctx.actor, clue.department)
        items = case_items(data.get("items"))
        self.fresh()
        self.lookups.check_items(clue.department, items, "items")
        period = case_period(data.get("period"), self.clock.today())
        tid = parse_uuid(clue.target_id, "target_id")
        try:
            target = self.app.load("target", tid)
        except NotFoundError:
            raise InvalidInputError([FieldProblem("target_id", "unknown_target", f"no target {tid}")]) from None
        cid = clue_id(clue)
        cctx = CommandContext(actor=ctx.actor, correlation_id=ctx.correlation_id, causation_id=str(cid))
        previous = target.data["risk_class"]
        raised = raised_risk_class(previous)

        def with_target(task: Task) -> list[DirectoryEntry]:
            task.designate_targets([str(tid)], secrets.token_bytes(32).hex())
            fresh = self.app.load("target", tid)
            if raised != fresh.data["risk_class"]:
                fresh.change({"risk_class": raised})
            return [fresh]

        # One transaction: the case-triggered task, its named target and the target's raised risk.
        task = self.task_opening.open_task(
            cctx,
            {"origin": "case", "lead": clue.department, "period": period,
             "participants": {clue.department: items}, "reason": case_reason(clue)},
            also=with_target,
            command="record_clue",
        )
        return {"clue_id": str(cid), "clue": clue.as_dict(), "target_id": str(tid),
                "risk": {"previous": previous, "risk_class": raised, "position": task.position},
                "task": {"id": task.id, "number": task.body.get("number"), "name": task.body.get("name"),
                         "is_random": False}, "position": task.position, "version": task.version}
