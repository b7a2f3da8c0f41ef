"""Annual plans: draw one up; add, change, re-rule and remove its entries; view it with its quotas computed from
the current directory and every breach of the rules."""

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Engine

from domain.access import Actor
from domain.planning.overview import quotas_by_period, random_tasks_by_period
from domain.planning.plan import AnnualPlan, Coverage, carried_out_problem, coverage_breaches, plan_breaches
from domain.tasks import access
from domain.tasks.pool import build_pool
from projections.directory import queries as directory
from projections.execution import queries as execution
from projections.runner import ProjectionRunner
from projections.tasks import queries as tasks
from services.application import CommandContext, ConflictError, DualRandom
from services.usecases.common import EXECUTION_READ_MODELS, Done, UseCase, given
from services.usecases.lookups import Lookups


class Plans(UseCase):
    """A department's annual plan (年度抽查工作计划): its planners change it, its staff read it."""

    def __init__(self, app: DualRandom, engine: Engine, runner: ProjectionRunner, lookups: Lookups) -> None:
        super().__init__(app, engine, runner)
        self.lookups = lookups

    def plan(self, pid: uuid.UUID) -> AnnualPlan:
        return self.load(AnnualPlan, pid, "plan")

    def draw_up_plan(self, ctx: CommandContext, department: str, year: int, name: str | None = None) -> Done:
        access.require_plan(ctx.actor, department)
        department_name = self.lookups.department_names([department]).get(department, "") if name is None else ""
        plan = AnnualPlan.draw_up(department, year, name, department_name=department_name)
        try:
            position = self.app.record(ctx, "draw_up_plan", plan)
        except ConflictError:
            raise ConflictError(f"{department} has a plan for {year} already: {plan.id}") from None
        return self.done(plan, position)

    def add_plan_entry(self, ctx: CommandContext, pid: uuid.UUID, data: Mapping[str, Any]) -> Done:
        self.fresh()
        plan = self.plan(pid)
        access.require_plan(ctx.actor, plan.department)
        items = list(data.get("items") or [])
        self.lookups.check_items(plan.department, items, "items")
        number = plan.add_entry(
            name=given(data, "name"),
            items=items,
            category=given(data, "category"),
            period=given(data, "period"),
            rules=data.get("rules") or [],
            scope=data.get("scope"),
        )
        position = self.app.record(ctx, "add_plan_entry", plan)
        return self.done(plan, position, number=number)

    def change_plan_entry(
        self, ctx: CommandContext, pid: uuid.UUID, number: str, changes: Mapping[str, Any]
    ) -> Done:
        self.fresh()
        plan = self.plan(pid)
        access.require_plan(ctx.actor, plan.department)
        if "items" in changes:
            self.lookups.check_items(plan.department, list(changes["items"] or []), "items")
        changed = plan.change_entry(number, changes)
        position = self.app.record(ctx, "change_plan_entry", plan)
        return self.done(plan, position, number=number, changed=sorted(changed))

    def adjust_plan_rules(
        self,
        ctx: CommandContext,
        pid: uuid.UUID,
        number: str,
        rules: Sequence[Mapping[str, Any]],
        reason: str,
    ) -> Done:
        plan = self.plan(pid)
        access.require_plan(ctx.actor, plan.department)
        changed = plan.adjust_rules(number, rules, reason)
        position = self.app.record(ctx, "adjust_plan_rules", plan)
        return self.done(plan, position, number=number, changed=changed)

    def remove_plan_entry(self, ctx: CommandContext, pid: uuid.UUID, number: str, reason: str) -> Done:
        self.runner.catch_up_named(EXECUTION_READ_MODELS)
        plan = self.plan(pid)
        access.require_plan(ctx.actor, plan.department)
        plan.entry(number)  # an unknown entry is a 404 before anything else
        opened = tasks.entry_tasks(self.engine, plan.department, plan.year, number)
        published = execution.published_by_task(self.engine, list(opened))
        problem = carried_out_problem(number, {n: published.get(i, 0) for i, n in opened.items()})
        if problem is not None:
            raise ConflictError(problem)
        plan.remove_entry(number, reason)
        position = self.app.record(ctx, "remove_plan_entry", plan)
        return self.done(plan, position, number=number)

    def plan_view(self, actor: Actor, pid: uuid.UUID, as_of: dt.date | None = None) -> dict[str, Any]:
        """The plan with, per entry, the quotas computed from the current directory, and every breach."""
        plan = self.plan(pid)
        access.require_read_plan(actor, plan.department)
        inspectors = self.lookups.active_inspectors(plan.department, dt.date(plan.year, 1, 1))
        entries = []
        lines_by_entry = []
        for number, entry in sorted(plan.entries.items()):
            lines = plan.quotas(number, self._scope_counts(entry["scope"]), inspectors)
            lines_by_entry.append((entry["period"], lines))
            entries.append(
                {
                    **entry,
                    "quotas": {
                        s: {"pool_size": q.pool_size, "quota": q.quota, "rule": q.rule_text, "basis": q.basis}
                        for s, q in lines.items()
                    },
                }
            )
        items = self.lookups.item_names(i for e in entries for i in e.get("items") or [])
        for e in entries:  # names next to the ids: one batched look-up for the whole plan
            e["item_names"] = {i: items.get(i, {"code": "", "name": ""}) for i in e.get("items") or []}
        department_tasks = tasks.task_summaries(self.engine, plan.department, plan.year)
        breaches = plan_breaches(
            plan.entries.values(),
            quotas_by_period(lines_by_entry),
            random_tasks_by_period(department_tasks),
            year=plan.year,
            as_of=as_of,
        )
        breaches += coverage_breaches(plan.year, self._coverage(plan.department, plan.year), as_of=as_of)
        return {
            "id": str(plan.id),
            "version": plan.version,
            "department": plan.department,
            "department_name": self.lookups.department_names([plan.department])[plan.department],
            "year": plan.year,
            "name": plan.name,
            "inspectors": inspectors,
            "entries": entries,
            "removed": plan.removed,
            "tasks": department_tasks,
            "breaches": [
                {"rule": b.rule, "period": b.period, "stratum": b.stratum, "message": b.message}
                for b in breaches
            ],
        }

    def _coverage(self, department: str, year: int) -> dict[str, dict[str, Coverage]]:
        """What the department's random tasks drew, per quarter and for the year, per supervision class (the
        KPIs' coverage): the plan's breaches hold it against the baseline minimums."""
        out: dict[str, dict[str, Coverage]] = {}
        for quarter, text in ((1, f"{year}Q1"), (2, f"{year}Q2"), (3, f"{year}Q3"), (4, f"{year}Q4"), (None, str(year))):
            kpis = tasks.task_kpis(self.engine, department, year, quarter)
            inspectors = kpis["visits_per_inspector"]["inspectors"]
            out[text] = {cls: Coverage(int(c["drawn"]), int(c.get("directory_size", 0)), inspectors)
                         for cls, c in kpis["coverage"]["by_class"].items()}
        return out

    def _scope_counts(self, scope: Mapping[str, Any]) -> dict[tuple[str, str], int]:
        with self.engine.connect() as conn:
            candidates = directory.pool_candidates(conn)
        return build_pool(candidates, scope).counts
