"""Use cases of plans, tasks, draws and assignments: one transaction each, on the Application's store.

The target draw: ``commit`` (a secret seed is generated and kept in ``draw_seeds``, outside the log; the
event records only its SHA-256) -> ``freeze`` (the pool as of one log position, read from the directory
and tasks read models brought to that very position under their position locks) -> ``draw`` (the seed is
revealed in the event). ``verify`` recomputes the pool by replaying the log up to the freeze position and
re-runs the draw.
"""

import dataclasses
import datetime as dt
import hashlib
import json
import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from eventsourcing.persistence import StoredEvent
from sqlalchemy.engine import Connection, Engine

from domain.access import Actor
from domain.directory import Target
from domain.draw import matching
from domain.draw.matching import ExpertInfo, InspectorInfo, Team, VisitNeed
from domain.draw.sampler import CandidateColumns, EmptyPoolError, commitment, draw, pool_digest, verify
from domain.errors import FieldProblem, InvalidInputError, PermissionDeniedError
from domain.execution.inspection import inspection_id
from domain.planning.naming import check_task_name, task_name, task_type
from domain.planning.plan import AnnualPlan, plan_breaches, plan_id
from domain.planning.rules import (
    SEED_RULES,
    Period,
    PeriodKind,
    compute_quotas,
    parse_period,
    rules_from_dict,
    rules_to_dict,
    split_stratum,
)
from domain.tasks import access
from domain.tasks.assignment import Assignment, assignment_id
from domain.tasks.pool import Pool, build_pool, inspected_this_year
from domain.tasks.task import Task, TaskStateError, team_key
from domain.values import Role
from projections.aggregate_rows import split_bars
from projections.directory.projection import TABLES as DIR
from projections.runner import ProjectionRunner
from projections.tasks.projection import TABLES as TT
from projections.tasks.projection import quarters_of
from services.application import CommandContext, ConflictError, DualRandom, NotFoundError

seeds_metadata = sa.MetaData()
draw_seeds = sa.Table(
    "draw_seeds",
    seeds_metadata,
    sa.Column("task_id", sa.String(36), primary_key=True),
    sa.Column("round", sa.Integer, primary_key=True),
    sa.Column("seed", sa.String(64), nullable=False),
)
"""Secret seeds between commitment and reveal. Never logged, never answered; the reveal is the event."""
frozen_pools = sa.Table(
    "frozen_pools",
    seeds_metadata,
    sa.Column("task_id", sa.String(36), primary_key=True),
    sa.Column("round", sa.Integer, primary_key=True),
    sa.Column("ids", sa.Text, nullable=False),  # sorted candidate ids, "\n"-joined
    sa.Column("strata", sa.Text, nullable=False),  # their strata, same order
    sa.Column("weights", sa.Text, nullable=False),  # their weights, same order
    sa.Column("off_site", sa.Text, nullable=False),  # "|id|id|": positive-list targets (off-site first)
)
"""The frozen pool of a round, kept for its draw (the event holds its digest, which the draw checks).
An auditor never needs it: verification rebuilds the pool from the log."""

SNAPSHOT_PROJECTIONS = ("directory", "tasks")


@dataclass(frozen=True)
class StoredPool:
    rows: CandidateColumns
    off_site_first: set[str]


@dataclass(frozen=True)
class Done:
    """What a command stored: the aggregate id, its version, the last log position, and a summary."""

    id: str
    version: int
    position: int | None
    body: dict[str, Any]


def _uuid(value: Any, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidInputError([FieldProblem(field, "format", "must be a UUID")]) from None


def previous_period(text: str) -> str:
    """The period before ``text`` of the same kind (2024Q1 -> 2023Q4, 2024-01 -> 2023-12, 2024 -> 2023)."""
    p = parse_period(text)
    n = {PeriodKind.QUARTER: 4, PeriodKind.MONTH: 12, PeriodKind.HALF: 2, PeriodKind.YEAR: 1}[p.kind]
    year, index = (p.year, p.index - 1) if p.index > 1 else (p.year - 1, n)
    return Period(year, p.kind, index).text


class Tasks:
    """Plans, tasks, draws, teams, recusals and merges."""

    def __init__(self, app: DualRandom, engine: Engine, runner: ProjectionRunner) -> None:
        self.app = app
        self.engine = engine
        self.runner = runner

    def setup(self) -> None:
        seeds_metadata.create_all(self.engine)

    # -- loading -----------------------------------------------------------------------------------------
    def _get(self, cls: type, agg_id: uuid.UUID, kind: str) -> Any:
        try:
            agg = self.app.repository.get(agg_id)
        except Exception:  # AggregateNotFoundError
            raise NotFoundError(kind, str(agg_id)) from None
        if not isinstance(agg, cls):
            raise NotFoundError(kind, str(agg_id))
        return agg

    def task(self, task_id: uuid.UUID) -> Task:
        return self._get(Task, task_id, "task")  # type: ignore[no-any-return]

    def plan(self, pid: uuid.UUID) -> AnnualPlan:
        return self._get(AnnualPlan, pid, "plan")  # type: ignore[no-any-return]

    def assignment(self, aid: uuid.UUID) -> Assignment:
        return self._get(Assignment, aid, "assignment")  # type: ignore[no-any-return]

    def _done(self, agg: Any, position: int | None, **body: Any) -> Done:
        return Done(
            str(agg.id),
            agg.version,
            position,
            {"id": str(agg.id), "version": agg.version, "position": position, **body},
        )

    def _department(self, code: str, field: str = "department") -> dict[str, Any]:
        t = DIR["department"]
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.c.data).where(t.c.code == code)).first()
        if row is None:
            raise InvalidInputError(
                [FieldProblem(field, "unknown_department", f"no department {code!r} in the directory")]
            )
        return json.loads(row.data)  # type: ignore[no-any-return]

    def _items(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Item id -> {department, data}."""
        t = DIR["item"]
        ids = list(ids)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.id, t.c.owner, t.c.data).where(t.c.id.in_(ids))).all()
        return {r.id: {"department": r.owner, **json.loads(r.data)} for r in rows}

    # -- plans --------------------------------------------------------------------------------------------
    def draw_up_plan(self, ctx: CommandContext, department: str, year: int, name: str | None = None) -> Done:
        access.require_plan(ctx.actor, department)
        plan = AnnualPlan.draw_up(department, year, name)
        try:
            position = self.app.record(ctx, "draw_up_plan", plan)
        except ConflictError:
            raise ConflictError(f"{department} has a plan for {year} already: {plan.id}") from None
        return self._done(plan, position)

    def add_plan_entry(self, ctx: CommandContext, pid: uuid.UUID, data: Mapping[str, Any]) -> Done:
        self._fresh()
        plan = self.plan(pid)
        access.require_plan(ctx.actor, plan.department)
        items = list(data.get("items") or [])
        self._check_items(plan.department, items, "items")
        number = plan.add_entry(
            name=data.get("name"),
            items=items,
            category=data.get("category"),
            period=data.get("period"),  # type: ignore[arg-type]
            rules=data.get("rules") or [],
            scope=data.get("scope"),
        )
        position = self.app.record(ctx, "add_plan_entry", plan)
        return self._done(plan, position, number=number)

    def change_plan_entry(
        self, ctx: CommandContext, pid: uuid.UUID, number: str, changes: Mapping[str, Any]
    ) -> Done:
        self._fresh()
        plan = self.plan(pid)
        access.require_plan(ctx.actor, plan.department)
        if "items" in changes:
            self._check_items(plan.department, list(changes["items"] or []), "items")
        changed = plan.change_entry(number, changes)
        position = self.app.record(ctx, "change_plan_entry", plan)
        return self._done(plan, position, number=number, changed=sorted(changed))

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
        return self._done(plan, position, number=number, changed=changed)

    def remove_plan_entry(self, ctx: CommandContext, pid: uuid.UUID, number: str, reason: str) -> Done:
        plan = self.plan(pid)
        access.require_plan(ctx.actor, plan.department)
        plan.remove_entry(number, reason)
        position = self.app.record(ctx, "remove_plan_entry", plan)
        return self._done(plan, position, number=number)

    def _check_items(self, department: str, items: Sequence[str], field: str) -> None:
        known = self._items(items)
        problems = []
        for i, item in enumerate(items):
            found = known.get(str(item))
            if found is None:
                problems.append(FieldProblem(f"{field}[{i}]", "unknown_item", f"no inspection item {item}"))
            elif found["department"] != department:
                problems.append(
                    FieldProblem(
                        f"{field}[{i}]",
                        "other_department",
                        f"item {item} belongs to {found['department']}, not {department}",
                    )
                )
        if problems:
            raise InvalidInputError(problems)

    def plan_view(self, actor: Actor, pid: uuid.UUID, as_of: dt.date | None = None) -> dict[str, Any]:
        """The plan with, per entry, the quotas computed from the current directory, and every breach."""
        plan = self.plan(pid)
        access.require_read_plan(actor, plan.department)
        inspectors = self._inspector_count(plan.department, dt.date(plan.year, 1, 1))
        entries = []
        quotas_by_period: dict[str, dict[str, Any]] = {}
        for number, entry in sorted(plan.entries.items()):
            counts = self._scope_counts(entry["scope"])
            lines = plan.quotas(number, counts, inspectors)
            quotas_by_period.setdefault(entry["period"], {}).update(
                {
                    s: _sum_lines(quotas_by_period.get(entry["period"], {}).get(s), line)
                    for s, line in lines.items()
                }
            )
            entries.append(
                {
                    **entry,
                    "quotas": {
                        s: {"pool_size": q.pool_size, "quota": q.quota, "rule": q.rule_text, "basis": q.basis}
                        for s, q in lines.items()
                    },
                }
            )
        tasks = self._department_tasks(plan.department, plan.year)
        by_period: dict[str, list[dict[str, Any]]] = {}
        for t in tasks:
            if t["origin"] != "case":
                by_period.setdefault(t["period"], []).append({"is_joint": t["is_joint"]})
        breaches = plan_breaches(
            plan.entries.values(), quotas_by_period, by_period, year=plan.year, as_of=as_of
        )
        return {
            "id": str(plan.id),
            "version": plan.version,
            "department": plan.department,
            "year": plan.year,
            "name": plan.name,
            "inspectors": inspectors,
            "entries": entries,
            "removed": plan.removed,
            "tasks": tasks,
            "breaches": [
                {"rule": b.rule, "period": b.period, "stratum": b.stratum, "message": b.message}
                for b in breaches
            ],
        }

    def _scope_counts(self, scope: Mapping[str, Any]) -> dict[tuple[str, str], int]:
        t = DIR["target"]
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    t.c.id,
                    t.c.county,
                    t.c.industry,
                    t.c.supervision_class,
                    t.c.risk_class,
                    t.c.tags,
                    t.c.status,
                )
            ).all()
        pool = build_pool(((r.id, _target_row(r)) for r in rows), scope)
        return pool.counts

    def _inspector_count(self, department: str, on: dt.date) -> int:
        t = DIR["inspector"]
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(t)
                    .where(
                        t.c.owner == department,
                        t.c.active.is_(True),
                        t.c.certificate_expiry >= on.isoformat(),
                    )
                ).scalar_one()
            )

    def _department_tasks(self, department: str, year: int) -> list[dict[str, Any]]:
        t = TT["task"]
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t)
                .where(t.c.year == year, t.c.departments.like(f"%|{department}|%"))
                .order_by(t.c.first_position)
            ).all()
        return [_task_summary(r) for r in rows]

    # -- tasks ----------------------------------------------------------------------------------------------
    def open_task(
        self, ctx: CommandContext, data: Mapping[str, Any], *, also: Any = None, command: str = "open_task"
    ) -> Done:
        """From a plan entry (``plan_entry``: ``2024001``), ad hoc (``reason``), or a case (``origin: case``).

        ``also(task)``, when given, returns further changed aggregates stored in the same transaction (a case
        task from a clue: its designated targets, the target's raised risk)."""
        self._fresh()
        lead = data.get("lead") or ctx.actor.department
        access.require_lead(ctx.actor, lead)
        lead_dept = self._department(lead, "lead")
        entry_number = data.get("plan_entry")
        participants: dict[str, list[str]] = {d: list(v) for d, v in (data.get("participants") or {}).items()}
        origin = data.get("origin") or ("planned" if entry_number else "ad_hoc")
        if entry_number:
            year = int(str(entry_number)[:4]) if str(entry_number)[:4].isdigit() else 0
            try:
                plan = self.plan(plan_id(lead, year))
            except NotFoundError:
                raise InvalidInputError(
                    [FieldProblem("plan_entry", "unknown_plan", f"{lead} has no plan for {year}")]
                ) from None
            entry = plan.entry(str(entry_number))
            participants[lead] = list(dict.fromkeys([*entry["items"], *participants.get(lead, [])]))
            period, category = (
                data.get("period") or entry["period"],
                data.get("category") or entry["category"],
            )
            scope, rules = data.get("scope") or entry["scope"], data.get("rules") or entry["rules"]
            if parse_period(period).year != plan.year:
                raise InvalidInputError([FieldProblem("period", "plan_year", f"must lie in {plan.year}")])
        else:
            period, category = data.get("period"), data.get("category") or "general"
            scope, rules = data.get("scope"), data.get("rules")
            if rules is None:
                rules = rules_to_dict(SEED_RULES)
        problems: list[FieldProblem] = []
        for dept, items in participants.items():
            try:
                self._department(dept, f"participants.{dept}")
                self._check_items(dept, list(items), f"participants.{dept}")
            except InvalidInputError as exc:
                problems.extend(exc.problems)
        if problems:
            raise InvalidInputError(problems)
        try:
            kind = task_type(category, joint=len(participants) > 1)
            expected = task_name(lead_dept["city"], lead_dept["county"], lead_dept["name"], period, kind)  # type: ignore[arg-type]
        except InvalidInputError:
            expected = None  # the Task's own validation names the broken field below
        given = data.get("name")
        if given is not None and expected is not None:
            check_task_name(given, lead_dept["city"], lead_dept["county"], lead_dept["name"], period, kind)  # type: ignore[arg-type]
        name = given if given is not None else (expected or "")
        fields = dict(
            name=name,
            lead=lead,
            period=period,
            category=category,
            origin=origin,
            participants=participants,
            scope=scope,
            rules=rules or [],
            options=data.get("options"),
            reason=data.get("reason") or "",
            plan_entry=str(entry_number) if entry_number else None,
        )
        year = parse_period(period).year if _is_period(period) else 0

        def build(attempt: int) -> list[Any]:
            task = Task.open(number=self._next_number(lead, year, attempt), **fields)  # type: ignore[arg-type]
            return [task, *(also(task) if also is not None else [])]

        for attempt in range(20):
            aggs = build(attempt)
            try:
                position = self.app.record(ctx, command, *aggs)
            except ConflictError:
                continue  # the number was taken, or another aggregate changed meanwhile: ``also`` reloads it
            task = aggs[0]
            return self._done(task, position, number=task.number, name=task.name, is_joint=task.is_joint)
        raise ConflictError("could not allocate a task number; retry")

    def _next_number(self, lead: str, year: int, attempt: int) -> str:
        t = TT["task"]
        with self.engine.connect() as conn:
            numbers = (
                conn.execute(sa.select(t.c.number).where(t.c.lead == lead, t.c.year == year)).scalars().all()
            )
        last = max((int(n.split("-")[1]) for n in numbers), default=0)
        return f"{year:04d}-{last + 1 + attempt:03d}"

    def designate(self, ctx: CommandContext, tid: uuid.UUID, targets: Sequence[str]) -> Done:
        """个案检查: name the targets of a case-triggered task (each must be in the directory)."""
        self._fresh()
        task = self.task(tid)
        access.require_lead(ctx.actor, task.lead)
        known = self._target_data([str(t) for t in targets])
        unknown = [
            FieldProblem(f"targets[{i}]", "unknown_target", f"no target {t}")
            for i, t in enumerate(targets)
            if str(t) not in known
        ]
        if unknown:
            raise InvalidInputError(unknown)
        task.designate_targets(list(targets), secrets.token_bytes(32).hex())
        position = self.app.record(ctx, "designate_targets", task)
        return self._done(task, position, round=task.round, selected=len(task.selected))

    def commit(self, ctx: CommandContext, tid: uuid.UUID) -> Done:
        task = self.task(tid)
        access.require_lead(ctx.actor, task.lead)
        if task.origin == "case":
            raise TaskStateError("a case-triggered task (个案检查) has designated targets, not a random draw")
        seed = secrets.token_bytes(32)
        round_ = task.commit_seed(commitment(seed))
        with self.engine.begin() as conn:
            conn.execute(
                draw_seeds.delete().where(draw_seeds.c.task_id == str(tid), draw_seeds.c.round == round_)
            )
            conn.execute(draw_seeds.insert().values(task_id=str(tid), round=round_, seed=seed.hex()))
        position = self.app.record(ctx, "commit_draw_seed", task)
        return self._done(task, position, round=round_, commitment=task.commitment)

    def freeze(self, ctx: CommandContext, tid: uuid.UUID, quotas: Mapping[str, int] | None = None) -> Done:
        task = self.task(tid)
        access.require_lead(ctx.actor, task.lead)
        if task.state != "committed":
            task.require_state("committed", "the pool is frozen after a commitment and before the draw")
        position, pool, inspectors = self._frozen_pool(task)
        if not pool.rows:
            raise EmptyPoolError(
                "the candidate pool is empty: no target matches the task's scope after the exclusions "
                f"({pool.excluded['inactive']} closed or deregistered, {pool.excluded['inspected_this_year']} "
                "inspected this year for these items); nothing was recorded"
            )
        strata = _strata(task, pool, inspectors, quotas or {})
        digest = pool_digest([r.id for r in pool.rows])
        task.freeze_pool(position, digest, len(pool.rows), strata, pool.excluded)
        with self.engine.begin() as conn:
            key = (frozen_pools.c.task_id == str(tid)) & (frozen_pools.c.round == task.round)
            conn.execute(frozen_pools.delete().where(key))
            conn.execute(
                frozen_pools.insert().values(
                    task_id=str(tid),
                    round=task.round,
                    ids="\n".join(r.id for r in pool.rows),
                    strata="\n".join(r.stratum for r in pool.rows),
                    weights="\n".join(str(r.weight) for r in pool.rows),
                    off_site="|" + "|".join(sorted(pool.off_site_first)) + "|",
                )
            )
        stored = self.app.record(ctx, "freeze_pool", task)
        return self._done(
            task,
            stored,
            round=task.round,
            frozen_at=position,
            pool_size=len(pool.rows),
            pool_digest=digest,
            strata=strata,
            excluded=pool.excluded,
        )

    def _frozen_pool(self, task: Task) -> tuple[int, Pool, int]:
        """The pool as of one log position: both read models brought to it under their position locks."""
        with self.engine.begin() as conn:
            position = self.runner.align(conn, SNAPSHOT_PROJECTIONS)
            pool = self._pool_from_read_models(conn, task)
            inspectors = _count_inspectors(conn, task.lead, parse_period(task.period).start)
        return position, pool, inspectors

    def _pool_from_read_models(self, conn: Connection, task: Task) -> Pool:
        t = DIR["target"]
        query = sa.select(
            t.c.id, t.c.county, t.c.industry, t.c.supervision_class, t.c.risk_class, t.c.tags, t.c.status
        )
        if task.scope.get("county"):
            query = query.where(t.c.county == task.scope["county"])
        if task.scope.get("supervision_classes"):
            query = query.where(t.c.supervision_class.in_(task.scope["supervision_classes"]))
        rows = conn.execute(query).all()
        excluded: set[str] = set()
        if task.options["exclude_inspected_this_year"]:
            tt = TT["task_target"]
            draws: dict[str, tuple[str, int, list[str], list[str]]] = {}
            for r in conn.execute(
                sa.select(tt.c.task_id, tt.c.year, tt.c["items"], tt.c.target_id).where(
                    tt.c.year == task.year
                )
            ):
                entry = draws.setdefault(r.task_id, (r.task_id, r.year, split_bars(r.items), []))
                entry[3].append(r.target_id)
            excluded = inspected_this_year(draws.values(), str(task.id), task.year, task.items)
        weights = task.options["risk_weights"] if task.options["weighted"] else None
        return build_pool(
            ((r.id, _target_row(r)) for r in rows), task.scope, excluded_ids=excluded, weights=weights
        )

    def draw_targets(self, ctx: CommandContext, tid: uuid.UUID, external_entropy: str = "") -> Done:
        self._fresh()
        task = self.task(tid)
        access.require_lead(ctx.actor, task.lead)
        if task.state != "frozen":
            task.require_state("frozen", "the draw comes after the pool is frozen")
        seed = self._seed(tid, task.round)
        frozen = task.frozen or {}
        pool = self._stored_pool(tid, task.round, bool(task.options["weighted"]))
        quotas = {s: v["quota"] for s, v in frozen["strata"].items() if v["pool_size"] > 0}
        result = draw(seed, external_entropy, pool.rows, quotas, weighted=bool(task.options["weighted"]))
        record = {**result.as_record(), "freeze_position": frozen["position"]}
        off_site = sorted(set(result.selected) & pool.off_site_first)
        task.record_draw(record, off_site)
        position = self.app.record(ctx, "draw_targets", task)
        with self.engine.begin() as conn:
            conn.execute(draw_seeds.delete().where(draw_seeds.c.task_id == str(tid)))
            conn.execute(frozen_pools.delete().where(frozen_pools.c.task_id == str(tid)))
        return self._done(
            task,
            position,
            round=task.round,
            selected=len(result.selected),
            strata={
                s: {
                    "pool_size": o.pool_size,
                    "quota": o.quota,
                    "took_all": o.took_all,
                    "selected": len(o.selected),
                }
                for s, o in result.strata.items()
            },
            off_site_first=len(off_site),
            overlaps=self.overlaps_of(task),
        )

    def _stored_pool(self, tid: uuid.UUID, round_: int, weighted: bool) -> "StoredPool":
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(frozen_pools).where(
                    frozen_pools.c.task_id == str(tid), frozen_pools.c.round == round_
                )
            ).first()
        if row is None:
            raise TaskStateError(
                "the frozen pool of this round is not on this server; freeze again after a redraw"
            )
        weights = [int(w) for w in row.weights.split("\n")] if weighted else None
        return StoredPool(
            CandidateColumns(row.ids.split("\n"), row.strata.split("\n"), weights),
            set(split_bars(row.off_site)),
        )

    def _seed(self, tid: uuid.UUID, round_: int) -> bytes:
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(draw_seeds.c.seed).where(
                    draw_seeds.c.task_id == str(tid), draw_seeds.c.round == round_
                )
            ).scalar()
        if value is None:
            raise TaskStateError(
                "the committed seed is not on this server (was the round committed elsewhere?)"
            )
        return bytes.fromhex(value)

    # -- the pool as the log says it was -------------------------------------------------------------------
    def _replayed_pool(self, task: Task, position: int) -> Pool:
        """Replay targets and tasks up to ``position`` (the log, not a read model) and build the pool."""
        targets: dict[uuid.UUID, Any] = {}
        tasks: dict[uuid.UUID, Any] = {}
        for ev in self._events_until(position, ("domain.directory:Target.", "domain.tasks.task:Task.")):
            store = targets if isinstance(ev, Target.Event) else tasks
            store[ev.originator_id] = ev.mutate(store.get(ev.originator_id))
        excluded: set[str] = set()
        if task.options["exclude_inspected_this_year"]:
            draws = [(str(t.id), t.year, t.items, t.selected) for t in tasks.values() if t.draw]
            excluded = inspected_this_year(draws, str(task.id), task.year, task.items)
        weights = task.options["risk_weights"] if task.options["weighted"] else None
        return build_pool(
            ((str(t.id), t.data) for t in targets.values()),
            task.scope,
            excluded_ids=excluded,
            weights=weights,
        )

    def _events_until(self, position: int, topic_prefixes: Sequence[str]) -> Iterable[Any]:
        recorder: Any = self.app.recorder
        table = recorder.events_record_cls.__table__
        cond = sa.or_(*[table.c.topic.like(p + "%") for p in topic_prefixes])
        query = (
            sa.select(table.c.originator_id, table.c.originator_version, table.c.topic, table.c.state)
            .where(table.c.id <= position, cond)
            .order_by(table.c.id)
        )
        to_domain_event = self.app.mapper.to_domain_event
        with self.engine.connect() as conn:
            for oid, version, topic, state in conn.execute(query):
                yield to_domain_event(StoredEvent(_as_uuid(oid), version, topic, bytes(state)))

    def verify_draw(self, actor: Actor, tid: uuid.UUID) -> dict[str, Any]:
        """Recompute the pool from the log at the freeze position and re-run the draw: match or first difference."""
        task = self.task(tid)
        self._require_drawn_list(actor, task)
        if not task.draw:
            raise TaskStateError("the task has no draw to verify")
        if task.draw["record"].get("designated"):
            raise TaskStateError(
                "a case-triggered task (个案检查) names its targets: there is no random draw to verify"
            )
        record = task.draw["record"]
        position = record["freeze_position"]
        pool = self._replayed_pool(task, position)
        frozen = task.frozen or {}
        digest = (
            pool_digest([r.id for r in pool.rows]) if pool.rows else None
        )
        out: dict[str, Any] = {
            "task_id": str(task.id),
            "round": task.round,
            "freeze_position": position,
            "pool_size": len(pool.rows),
            "pool_digest": digest,
        }
        if digest != frozen.get("pool_digest"):
            return {
                **out,
                "match": False,
                "first_difference": f"pool_digest: frozen {frozen.get('pool_digest')}, recomputed {digest}",
            }
        outcome = verify(record, pool.rows)
        return {**out, "match": outcome.match, "first_difference": outcome.first_difference}

    # -- withdraw, overlaps, merge ----------------------------------------------------------------------------
    def withdraw(self, ctx: CommandContext, tid: uuid.UUID, reason: str) -> Done:
        """Redraw the whole task: end the round with a reason; its assignments are cancelled."""
        self._fresh()
        task = self.task(tid)
        access.require_lead(ctx.actor, task.lead)
        visits = self._assignments_of(tid, task.round) if task.state == "drawn" else []
        if any(len(a.tasks) > 1 for a in visits) or self._merged_away(tid):
            raise TaskStateError(
                "visits of this draw are merged with another task's: a redraw would cancel that "
                "task's visits too; withdraw it before merging, or redraw the members instead"
            )
        round_ = task.withdraw_draw(reason)
        aggs: list[Any] = [task]
        for a in visits:
            a.cancel(f"draw round {round_} withdrawn: {reason.strip()}")
            aggs.append(a)
        position = self.app.record(ctx, "withdraw_draw", *aggs)
        return self._done(task, position, round=round_)

    def _merged_away(self, tid: uuid.UUID) -> bool:
        t = TT["assignment"]
        with self.engine.connect() as conn:
            return (
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(t)
                    .where(t.c.task_id == str(tid), t.c.state == "merged")
                ).scalar_one()
                > 0
            )

    def _assignments_of(self, tid: uuid.UUID, round_: int) -> list[Assignment]:
        t = self.task(tid)
        ids = [assignment_id(tid, round_, target) for target in (t.selected if t.round == round_ else [])]
        t_rm = TT["assignment"]
        with self.engine.connect() as conn:
            ids += [
                uuid.UUID(r)
                for r in conn.execute(
                    sa.select(t_rm.c.id).where(t_rm.c.task_ids.like(f"%|{tid}|%"))
                ).scalars()
            ]
        found = self.app.load_many(Assignment, dict.fromkeys(ids))  # type: ignore[arg-type]
        return [
            a
            for a in found.values()
            if a.state not in ("cancelled", "merged")
            and any(str(x["task_id"]) == str(tid) and x.get("round", round_) == round_ for x in a.tasks)
        ]

    def overlaps_of(self, task: Task) -> list[dict[str, Any]]:
        """Targets this task's draw shares with another task's current draw in the same quarter (S: 一次检查)."""
        if not task.selected:
            return []
        tt, t = TT["task_target"], TT["task"]
        quarters = quarters_of(task.period)
        base = (
            sa.select(tt.c.task_id, tt.c.target_id, t.c.number, t.c.lead, t.c.round)
            .join(t, t.c.id == tt.c.task_id)
            .where(
                tt.c.year == task.year,
                tt.c.task_id != str(task.id),
                sa.or_(*[tt.c.quarters.like(f"%|{q}|%") for q in quarters]),
            )
        )
        rows: list[Any] = []
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":  # one query: the index on (target_id, year) per selected id
                rows = conn.execute(
                    base.where(
                        tt.c.target_id
                        == sa.func.any(sa.cast(sa.bindparam("mine", task.selected), sa.ARRAY(sa.String)))
                    )
                ).all()
            else:
                for start in range(0, len(task.selected), 500):
                    rows += conn.execute(
                        base.where(tt.c.target_id.in_(task.selected[start : start + 500]))
                    ).all()
        out = [
            {
                "target_id": r.target_id,
                "task_id": r.task_id,
                "task_number": r.number,
                "lead": r.lead,
                "assignment_id": str(assignment_id(r.task_id, r.round, r.target_id)),
                "this_assignment_id": str(assignment_id(task.id, task.round, r.target_id)),
            }
            for r in rows
        ]
        return sorted(out, key=lambda o: (o["target_id"], o["task_number"]))

    def overlaps(self, actor: Actor, tid: uuid.UUID) -> list[dict[str, Any]]:
        task = self.task(tid)
        self._require_drawn_list(actor, task)
        self._fresh()
        return self.overlaps_of(task)

    def merge(self, ctx: CommandContext, absorbed: uuid.UUID, into: uuid.UUID, reason: str) -> Done:
        """One visit for two tasks: ``into`` takes over ``absorbed``'s task, items and teams."""
        self._fresh()
        a = self._live_assignment(absorbed, "absorbed")
        b = self._live_assignment(into, "into")
        task_a = self.task(uuid.UUID(a.task_id))
        access.require_lead(ctx.actor, task_a.lead)
        if not set(quarters_of(a.period)) & set(quarters_of(b.period)):
            raise InvalidInputError(
                [FieldProblem("into", "quarter", "only visits in the same quarter merge")]
            )
        # An inspection keeps the items and the visit it was opened with: merging is planned before either
        # visit's inspections open (else the absorbed visit's findings would be stranded, the other's incomplete).
        begun = [
            FieldProblem(field, "inspection_begun",
                         f"{department}'s inspection of this visit has been opened: visits merge before that")
            for field, visit in (("absorbed", a), ("into", b)) for department in sorted(visit.items)
            if self.app.recorder.select_events(inspection_id(visit.id, department), limit=1)
        ]
        if begun:
            raise InvalidInputError(begun)
        b.absorb(a, reason)
        position = self.app.record(ctx, "merge_visits", b, a)
        return self._done(b, position, absorbed=str(a.id), tasks=[str(t["task_id"]) for t in b.tasks])

    def _live_assignment(self, aid: uuid.UUID, field: str) -> Assignment:
        try:
            return self.assignment(aid)
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

    # -- inspector draw -----------------------------------------------------------------------------------------
    def draw_inspectors(
        self, ctx: CommandContext, tid: uuid.UUID, department: str, visit_date: dt.date | None = None
    ) -> Done:
        """A participating department draws its team for every drawn target; assignments are created or
        completed (one per visit)."""
        self._fresh()
        task = self.task(tid)
        access.require_department_planner(ctx.actor, department)
        if task.state != "drawn":
            task.require_state("drawn", "inspectors are drawn after the targets")
        if department not in task.participants:
            raise InvalidInputError(
                [
                    FieldProblem(
                        "department",
                        "not_participant",
                        f"{department} does not take part in task {task.number}",
                    )
                ]
            )
        period = parse_period(task.period)
        today = dt.date.today()
        visit = visit_date or (today if period.start <= today <= period.end else period.start)
        if not period.start <= visit <= period.end:
            raise InvalidInputError(
                [
                    FieldProblem(
                        "visit_date", "period", f"must lie in {task.period} ({period.start}..{period.end})"
                    )
                ]
            )
        inspectors, experts = self._staff(department)
        items = self._items(task.participants[department])
        specialties = frozenset(i.get("specialty") for i in items.values() if i.get("specialty"))
        expert_fields = frozenset(
            (i.get("expert_field") or i.get("specialty") or i.get("name"))
            for i in items.values()
            if i.get("needs_expert")
        )
        targets = self._target_data(task.selected)
        needs = [
            VisitNeed(
                t,
                region=targets.get(t, {}).get("county", ""),
                specialties=specialties,
                needs_expert_fields=expert_fields,
            )
            for t in task.selected
        ]
        previous = self._previous_inspectors(department, task.selected, previous_period(task.period))
        key = team_key(task.draw["record"]["seed"], str(task.id), department)  # type: ignore[index]
        teams = matching.match_teams(
            key,
            department,
            needs,
            inspectors,
            visit,
            experts=experts,
            team_size=task.options["team_size"],
            previous=previous,
            exclude_previous=task.options["exclude_previous_inspectors"],
            match_region=task.options["match_region"],
        )
        digest = _digest([_info_dict(i) for i in inspectors] + [_info_dict(e) for e in experts])
        as_dicts = {
            t: {"leader": team.leader, "members": list(team.members), "experts": list(team.experts)}
            for t, team in teams.items()
        }
        task.record_teams(department, visit, as_dicts, digest)
        ids = {t: assignment_id(task.id, task.round, t) for t in task.selected}
        existing = self.app.load_many(Assignment, ids.values()) if ids else {}  # type: ignore[arg-type]
        off_site = set(task.draw["off_site_first"])  # type: ignore[index]
        aggs: list[Any] = [task]
        for target in task.selected:
            a = existing.get(ids[target])
            if a is None:
                a = Assignment.dispatch(
                    task_id=str(task.id),
                    task_number=task.number,
                    round=task.round,
                    target_id=target,
                    lead=task.lead,
                    period=task.period,
                    items=task.participants,
                    off_site_first=target in off_site,
                )
            elif a.state in ("merged", "cancelled"):
                continue
            team = teams[target]
            a.assign_team(department, team.leader, list(team.members), list(team.experts), visit.isoformat())
            aggs.append(a)
        position = self.app.record(ctx, "draw_inspectors", *aggs)
        return self._done(
            task,
            position,
            department=department,
            visit_date=visit.isoformat(),
            teams=len(teams),
            inspectors_digest=digest,
        )

    def _staff(self, department: str) -> tuple[list[InspectorInfo], list[ExpertInfo]]:
        ti, te = DIR["inspector"], DIR["expert"]
        with self.engine.connect() as conn:
            irows = conn.execute(sa.select(ti.c.id, ti.c.data).where(ti.c.owner == department)).all()
            erows = conn.execute(sa.select(te.c.id, te.c.data).where(te.c.owner == department)).all()
        inspectors = []
        for r in irows:
            d = json.loads(r.data)
            expiry = d.get("certificate_expiry")
            inspectors.append(
                InspectorInfo(
                    id=r.id,
                    department=department,
                    certificate_expiry=dt.date.fromisoformat(expiry) if expiry else None,
                    specialties=frozenset(d.get("specialties") or []),
                    region=d.get("region") or "",
                    active=bool(d.get("active", True)),
                    conflicts=frozenset(d.get("conflicts") or []),
                )
            )
        experts = [
            ExpertInfo(
                id=r.id,
                department=department,
                field=json.loads(r.data).get("field", ""),
                conflicts=frozenset(json.loads(r.data).get("conflicts") or []),
            )
            for r in erows
        ]
        return inspectors, experts

    def _target_data(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        t = DIR["target"]
        out: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                for r in conn.execute(
                    sa.select(t.c.id, t.c.data).where(t.c.id.in_(ids[start : start + 500]))
                ):
                    out[r.id] = json.loads(r.data)
        return out

    def _previous_inspectors(
        self, department: str, targets: Sequence[str], period: str
    ) -> dict[str, set[str]]:
        m = TT["member"]
        out: dict[str, set[str]] = {}
        wanted = set(targets)
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(m.c.target_id, m.c.person_id).where(
                    m.c.period == period, m.c.department == department, m.c.role != "expert"
                )
            ).all()
        for r in rows:
            if r.target_id in wanted:
                out.setdefault(r.target_id, set()).add(r.person_id)
        return out

    # -- recusal ----------------------------------------------------------------------------------------------
    def recuse(
        self,
        ctx: CommandContext,
        aid: uuid.UUID,
        inspector_id: str,
        reason: str,
        department: str | None = None,
    ) -> Done:
        """回避: the inspector (or the department's planner) declares a conflict; a deterministic redraw
        (team key + the department's redraw counter) replaces them; both are events."""
        self._fresh()
        a = self.assignment(aid)
        dept = department or next((d for d, t in a.teams.items() if inspector_id in t["members"]), None)
        if dept is None or inspector_id not in a.teams.get(dept, {}).get("members", []):
            raise InvalidInputError(
                [
                    FieldProblem(
                        "inspector_id", "not_a_member", f"{inspector_id} is not on a team of this visit"
                    )
                ]
            )
        access.require_recusal(ctx.actor, dept, inspector_id, self._staff_ids(inspector_id))
        task = self.task(uuid.UUID(a.task_id))
        if not task.draw or "seed" not in task.draw["record"]:
            raise TaskStateError("the task's draw is not available for a redraw")
        inspectors, _ = self._staff(dept)
        items = self._items(a.items.get(dept, []))
        specialties = frozenset(i.get("specialty") for i in items.values() if i.get("specialty"))
        target = self._target_data([a.target_id]).get(a.target_id, {})
        need = VisitNeed(a.target_id, region=target.get("county", ""), specialties=specialties)
        team = Team(
            leader=a.teams[dept]["leader"],
            members=tuple(a.teams[dept]["members"]),
            experts=tuple(a.teams[dept].get("experts", [])),
        )
        loads = self._loads(task, dept)
        n = max(len(task.selected), 1)
        eligible = max(len([i for i in inspectors if i.active]), 1)
        max_load = -(-task.options["team_size"] * n // eligible) + 1
        earlier = {r["inspector_id"] for r in a.recusals if r["department"] == dept}
        key = team_key(task.draw["record"]["seed"], str(task.id), dept)
        new = matching.redraw_member(
            key,
            a.next_redraw(dept),
            dept,
            need,
            team,
            inspector_id,
            inspectors,
            dt.date.fromisoformat(a.visit_date) if a.visit_date else dt.date.today(),
            previous=self._previous_inspectors(dept, [a.target_id], previous_period(a.period)),
            exclude_previous=task.options["exclude_previous_inspectors"],
            match_region=task.options["match_region"],
            loads=loads,
            max_load=max_load,
            excluded=earlier | {inspector_id},
        )
        a.recuse(dept, inspector_id, reason, ctx.actor.subject, new)
        position = self.app.record(ctx, "recuse_inspector", a)
        return self._done(
            a, position, department=dept, removed=inspector_id, new=new, counter=a.redraws[dept]
        )

    def _staff_ids(self, inspector_id: str) -> set[str]:
        """The inspector's entry id and staff id: a token's subject may be either."""
        t = DIR["inspector"]
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.c.id, t.c.staff_id).where(t.c.id == inspector_id)).first()
        return {inspector_id} | ({row.staff_id} if row else set())

    def _loads(self, task: Task, department: str) -> dict[str, int]:
        m = TT["member"]
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(m.c.person_id, sa.func.count())
                .where(m.c.task_id == str(task.id), m.c.department == department, m.c.role != "expert")
                .group_by(m.c.person_id)
            ).all()
        return {r[0]: int(r[1]) for r in rows}

    # -- reading -------------------------------------------------------------------------------------------------
    def _require_drawn_list(self, actor: Actor, task: Task) -> None:
        if not access.can_see_drawn_list(actor, task.departments):
            raise PermissionDeniedError(
                "the drawn list is confidential until the visit: only the task's departments' planners, "
                "its assigned inspectors (their own visits) and auditors see it"
            )

    def drawn_list(self, actor: Actor, tid: uuid.UUID) -> dict[str, Any]:
        """The current draw and its assignments. Planners of the task's departments and auditors see it
        all; an inspector of a participating department sees only the visits they are assigned to."""
        task = self.task(tid)
        full = access.can_see_drawn_list(actor, task.departments)
        mine: set[str] | None = None
        if not full:
            mine = self._visits_of(actor, task) if actor.department in task.departments else set()
            if not mine:
                self._require_drawn_list(actor, task)
        record = (task.draw or {}).get("record")
        selected = task.selected if mine is None else [t for t in task.selected if t in mine]
        visits = []
        for target in selected:
            aid = assignment_id(task.id, task.round, target)
            visits.append(
                {
                    "target_id": target,
                    "assignment_id": str(aid),
                    "off_site_first": target in set((task.draw or {}).get("off_site_first", [])),
                }
            )
        body: dict[str, Any] = {
            "task_id": str(task.id),
            "number": task.number,
            "round": task.round,
            "state": task.state,
            "visits": visits,
        }
        if mine is None and record is not None:
            body["record"] = record
            body["teams"] = task.teams
        return body

    def _fresh(self) -> None:
        """Commands and access decisions read the directory and tasks read models: bring them to the head of
        the log first, in this thread."""
        self.runner.catch_up_named(SNAPSHOT_PROJECTIONS)

    def _visits_of(self, actor: Actor, task: Task) -> set[str]:
        if not actor.has(Role.INSPECTOR):
            return set()
        self._fresh()
        m = TT["member"]
        with self.engine.connect() as conn:
            ids = _inspector_ids(conn, actor)
            if not ids:
                return set()
            rows = conn.execute(
                sa.select(m.c.target_id).where(m.c.task_id == str(task.id), m.c.person_id.in_(ids))
            )
            return set(rows.scalars())

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
            "drawn": len(task.selected),
            "teams_drawn": sorted(task.teams),
        }

    def list_tasks(
        self, actor: Actor, year: int | None, department: str | None, limit: int, offset: int
    ) -> dict[str, Any]:
        t = TT["task"]
        query = sa.select(t)
        dept = department
        if not access.can_read_all_tasks(actor):
            if dept is not None and dept != actor.department:
                raise PermissionDeniedError(f"tasks of {dept} are not yours to list")
            dept = actor.department
        if dept is not None:
            query = query.where(t.c.departments.like(f"%|{dept}|%"))
        if year is not None:
            query = query.where(t.c.year == year)
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
            rows = conn.execute(query.order_by(t.c.first_position).limit(limit).offset(offset)).all()
        return {"total": total, "limit": limit, "offset": offset, "items": [_task_summary(r) for r in rows]}

    def assignment_view(self, actor: Actor, aid: uuid.UUID) -> dict[str, Any]:
        a = self.assignment(aid)
        task = self.task(uuid.UUID(a.task_id))
        if not access.can_see_drawn_list(actor, a.departments):
            if not (actor.department in a.departments and self._visits_of(actor, task) & {a.target_id}):
                self._require_drawn_list(actor, task)
        return {
            "id": str(a.id),
            "version": a.version,
            "tasks": a.tasks,
            "target_id": a.target_id,
            "lead": a.lead,
            "departments": a.departments,
            "items": a.items,
            "teams": a.teams,
            "visit_date": a.visit_date,
            "period": a.period,
            "state": a.state,
            "off_site_first": a.off_site_first,
            "recusals": a.recusals,
            "redraws": a.redraws,
            "merged_into": a.merged_into,
        }

    def my_assignments(self, actor: Actor) -> list[dict[str, Any]]:
        self._fresh()
        m, ta = TT["member"], TT["assignment"]
        with self.engine.connect() as conn:
            ids = _inspector_ids(conn, actor)
            if not ids:
                return []
            rows = conn.execute(
                sa.select(
                    ta.c.id, ta.c.task_id, ta.c.target_id, ta.c.period, ta.c.state, ta.c.visit_date, m.c.role
                )
                .join(m, m.c.assignment_id == ta.c.id)
                .where(m.c.person_id.in_(ids))
                .order_by(ta.c.visit_date)
            ).all()
        return [
            {
                "id": r.id,
                "task_id": r.task_id,
                "target_id": r.target_id,
                "period": r.period,
                "state": r.state,
                "visit_date": r.visit_date,
                "role": r.role,
            }
            for r in rows
        ]


# -- helpers ------------------------------------------------------------------------------------------------------
def _is_period(text: Any) -> bool:
    try:
        parse_period(text)
        return True
    except (InvalidInputError, AttributeError):
        return False


def _as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _target_row(r: Any) -> dict[str, Any]:
    return {
        "county": r.county,
        "industry": r.industry,
        "supervision_class": r.supervision_class,
        "risk_class": r.risk_class,
        "tags": split_bars(r.tags),
        "status": r.status,
    }


def _inspector_ids(conn: Connection, actor: Actor) -> set[str]:
    """The inspector entries a token's subject names (entry id or staff id) in its department."""
    ti = DIR["inspector"]
    query = sa.select(ti.c.id).where(
        sa.or_(ti.c.id == actor.subject, ti.c.staff_id == actor.subject), ti.c.owner == actor.department
    )
    return set(conn.execute(query).scalars())


def _count_inspectors(conn: Connection, department: str, on: dt.date) -> int:
    t = DIR["inspector"]
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(t)
            .where(t.c.owner == department, t.c.active.is_(True), t.c.certificate_expiry >= on.isoformat())
        ).scalar_one()
    )


def _strata(
    task: Task, pool: Pool, inspectors: int, override: Mapping[str, int]
) -> dict[str, dict[str, Any]]:
    """Per stratum: pool size, quota (the rules' minimum, or a planner's larger figure) and how it was computed.

    Ratios apply to the targets in scope (before excluding those inspected this year); the quota is then
    capped by what is left in the pool, and ``once_a_year`` counts the excluded as already inspected.
    """
    p = parse_period(task.period)
    lines = compute_quotas(
        rules_from_dict(task.rules), pool.in_scope, inspectors, p.periods_in_year, p.index, pool.inspected
    )
    problems = []
    out: dict[str, dict[str, Any]] = {}
    for s, line in lines.items():
        size = pool.counts.get(split_stratum(s), 0)
        quota = min(line.quota, size)
        basis = line.basis
        if s in override:
            wanted = override[s]
            if isinstance(wanted, bool) or not isinstance(wanted, int) or wanted < quota:
                problems.append(
                    FieldProblem(
                        f"quotas.{s}",
                        "rule_minimum",
                        f"must be a whole number >= {quota} ({line.rule_text}: {line.basis})",
                    )
                )
                continue
            quota, basis = min(wanted, size), f"set by the planner: {wanted} (minimum {quota}: {line.basis})"
        out[s] = {
            "pool_size": size,
            "in_scope": line.pool_size,
            "quota": quota,
            "rule": line.rule_text,
            "basis": basis,
        }
    unknown = sorted(set(override) - set(lines))
    problems += [
        FieldProblem(f"quotas.{s}", "unknown_stratum", "no target of the pool is in this stratum")
        for s in unknown
    ]
    if problems:
        raise InvalidInputError(problems)
    return out


def _sum_lines(current: Any, line: Any) -> Any:
    if current is None:
        return line
    return dataclasses.replace(current, quota=current.quota + line.quota)


def _task_summary(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "number": r.number,
        "name": r.name,
        "lead": r.lead,
        "departments": split_bars(r.departments),
        "year": r.year,
        "period": r.period,
        "category": r.category,
        "origin": r.origin,
        "is_joint": bool(r.is_joint),
        "state": r.state,
        "round": r.round,
        "teams_drawn": split_bars(r.teams_done),
    }


def _info_dict(info: Any) -> dict[str, Any]:
    """An inspector's or expert's draw inputs as JSON values (sets sorted, dates ISO)."""
    return {
        k: sorted(v) if isinstance(v, frozenset) else v.isoformat() if isinstance(v, dt.date) else v
        for k, v in dataclasses.asdict(info).items()
    }


def _digest(values: list[dict[str, Any]]) -> str:
    data = json.dumps(
        sorted(values, key=lambda d: d["id"]), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(data.encode()).hexdigest()
