"""One visit for two tasks (一次检查): the targets a draw shares with other tasks' draws in its quarter, and the
merge of two such visits."""

import uuid
from typing import Any

from domain.access import Actor
from domain.errors import FieldProblem, InvalidInputError
from domain.execution.inspection import inspection_id
from domain.planning.periods import quarters
from domain.tasks import access
from domain.tasks.assignment import Assignment, assignment_id
from domain.tasks.drawn_list import require_drawn_list
from domain.tasks.merging import require_no_inspection_begun, require_same_quarter
from domain.tasks.task import Task
from projections.tasks import queries as tasks
from services.application import CommandContext, NotFoundError
from services.usecases.common import Done, UseCase


class Merges(UseCase):
    """Overlapping draws and merged visits."""

    def overlaps_of(self, task: Task) -> list[dict[str, Any]]:
        """Targets this task's draw shares with another task's current draw in the same quarter (S: 一次检查)."""
        if not task.selected:
            return []
        rows = tasks.overlapping_draws(
            self.engine, str(task.id), task.year, quarters(task.period), task.selected
        )
        out = [
            {
                "target_id": r["target_id"],
                "task_id": r["task_id"],
                "task_number": r["number"],
                "lead": r["lead"],
                "assignment_id": str(assignment_id(r["task_id"], r["round"], r["target_id"])),
                "this_assignment_id": str(assignment_id(task.id, task.round, r["target_id"])),
            }
            for r in rows
        ]
        return sorted(out, key=lambda o: (o["target_id"], o["task_number"]))

    def overlaps(self, actor: Actor, tid: uuid.UUID) -> list[dict[str, Any]]:
        task = self.load(Task, tid, "task")
        require_drawn_list(actor, task.departments)
        self.fresh()
        return self.overlaps_of(task)

    def merge(self, ctx: CommandContext, absorbed: uuid.UUID, into: uuid.UUID, reason: str) -> Done:
        """One visit for two tasks: ``into`` takes over ``absorbed``'s task, items and teams."""
        self.fresh()
        a = self._live_assignment(absorbed, "absorbed")
        b = self._live_assignment(into, "into")
        task_a = self.load(Task, uuid.UUID(a.task_id), "task")
        access.require_lead(ctx.actor, task_a.lead)
        require_same_quarter(a.period, b.period)
        require_no_inspection_begun(
            (field, department)
            for field, visit in (("absorbed", a), ("into", b))
            for department in sorted(visit.items)
            if self.app.recorder.select_events(inspection_id(visit.id, department), limit=1)
        )
        b.absorb(a, reason)
        position = self.app.record(ctx, "merge_visits", b, a)
        return self.done(b, position, absorbed=str(a.id), tasks=[str(t["task_id"]) for t in b.tasks])

    def _live_assignment(self, aid: uuid.UUID, field: str) -> Assignment:
        try:
            return self.load(Assignment, aid, "assignment")
        except NotFoundError:
            raise InvalidInputError(
                [
                    FieldProblem(
                        field,
                        "unknown_assignment",
                        f"no assignment {aid} (its department draws its team first)",
                    )
                ]
            ) from None
