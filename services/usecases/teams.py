"""Teams: each participating department draws its inspectors for every drawn target (one assignment per
visit); an inspector recuses (回避) and a deterministic redraw replaces them; who sees the drawn list and visits."""

import dataclasses
import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from eventsourcing.domain import Aggregate
from sqlalchemy.engine import Engine

from domain.access import Actor, person_of
from domain.draw import matching
from domain.draw.matching import ExpertInfo, InspectorInfo, Team, VisitNeed
from domain.errors import FieldProblem, InvalidInputError, problem
from domain.execution.inspection import Inspection, ReviewState, inspection_id
from domain.planning.applicability import visit_items
from domain.planning.periods import previous_period
from domain.tasks import access
from domain.tasks.assignment import Assignment, assignment_id
from domain.tasks.drawn_list import DRAWN_PAGE_MAX, drawn_page, require_drawn_list
from domain.tasks.task import Task, TaskStateError, team_key
from domain.tasks.teams import (
    expert_info,
    inspector_info,
    joint_visit_date,
    max_load,
    redraw_day,
    specialties,
    staff_digest,
    visit_needs,
)
from domain.values import Role
from projections.directory import queries as directory
from projections.runner import ProjectionRunner
from projections.tasks import queries as tasks
from services.application import CommandContext, DualRandom, NotFoundError
from services.usecases.common import TASK_READ_MODELS, Done, UseCase
from services.usecases.lookups import Lookups


@dataclasses.dataclass(frozen=True)
class TeamInputs:
    """What a team draw or a redraw reads, all at ``position``."""

    position: int
    inspectors: list[InspectorInfo]
    experts: list[ExpertInfo]
    targets: dict[str, dict[str, Any]]
    items: dict[str, dict[str, Any]]
    previous: dict[str, set[str]]
    loads: dict[str, int]


class Teams(UseCase):
    """Inspector draws, recusals, and the confidential drawn list and visits."""

    def __init__(self, app: DualRandom, engine: Engine, runner: ProjectionRunner, lookups: Lookups) -> None:
        super().__init__(app, engine, runner)
        self.lookups = lookups

    def assignment(self, aid: uuid.UUID) -> Assignment:
        return self.load(Assignment, aid, "assignment")

    def draw_inspectors(
        self, ctx: CommandContext, tid: uuid.UUID, department: str, visit_date: dt.date | None = None
    ) -> Done:
        """A participating department draws its team for every drawn target; assignments are created or
        completed (one per visit)."""
        self.fresh()
        task = self.load(Task, tid, "task")
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
        day = joint_visit_date(task.period, dt.date.today(), department, task.teams, visit_date)
        inputs = self._inputs(department, list(task.items), task.selected, previous_period(task.period))
        inspectors, experts = inputs.inspectors, inputs.experts
        # 多项合一 merges only what applies: each visit carries the items that apply to its target (all of them
        # when none does: a pool frozen before the freeze refused such targets, or a case task's designation)
        on_visit = {t: visit_items(task.participants, inputs.items, inputs.targets.get(t, {})) or task.participants
                    for t in task.selected}
        needs = visit_needs(
            task.selected, inputs.targets, inputs.items, {t: v.get(department, []) for t, v in on_visit.items()}
        )
        previous = inputs.previous
        key = team_key(task.draw["record"]["seed"], str(task.id), department)  # type: ignore[index]
        try:
            teams = matching.match_teams(
                key,
                department,
                needs,
                inspectors,
                day,
                experts=experts,
                team_size=task.options["team_size"],
                previous=previous,
                exclude_previous=task.options["exclude_previous_inspectors"],
                match_region=task.options["match_region"],
            )
        except matching.InsufficientInspectorsError as exc:  # people read names, not ids: say which enterprise
            raise matching.InsufficientInspectorsError([dataclasses.replace(
                s, target_name=_label(inputs.targets.get(s.target_id, {}))) for s in exc.shortfalls]) from None
        digest = staff_digest(inspectors, experts)
        as_dicts = {
            t: {"leader": team.leader, "members": list(team.members), "experts": list(team.experts)}
            for t, team in teams.items()
        }
        task.record_teams(department, day, as_dicts, digest, inputs.position,
                          not_needed=[t for t in task.selected if department not in on_visit[t]])
        ids = {t: assignment_id(task.id, task.round, t) for t in task.selected}
        existing = self.load_many(Assignment, ids.values()) if ids else {}
        off_site = set(task.draw["off_site_first"])  # type: ignore[index]
        aggs: list[Aggregate] = [task]
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
                    items=on_visit[target],
                    off_site_first=target in off_site,
                )
            elif a.state in ("merged", "cancelled"):
                continue
            team = teams.get(target)
            if team is None or department not in a.items:  # none of the department's items applies here
                continue
            a.assign_team(department, team.leader, list(team.members), list(team.experts), day.isoformat())
            aggs.append(a)
        position = self.app.record(ctx, "draw_inspectors", *aggs)
        return self.done(
            task,
            position,
            department=department,
            visit_date=day.isoformat(),
            teams=len(teams),
            inspectors_digest=digest,
        )

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
        self.fresh()
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
        access.require_recusal(ctx.actor, dept, inspector_id, self.lookups.inspector_aliases(inspector_id))
        task = self.load(Task, uuid.UUID(a.task_id), "task")
        if not task.draw or "seed" not in task.draw["record"]:
            raise TaskStateError("the task's draw is not available for a redraw")
        inputs = self._inputs(dept, a.items.get(dept, []), [a.target_id], previous_period(a.period), str(task.id))
        inspectors = inputs.inspectors
        wanted = specialties(inputs.items)
        region = inputs.targets.get(a.target_id, {}).get("county", "")
        need = VisitNeed(a.target_id, region=region, specialties=wanted)
        team = Team(
            leader=a.teams[dept]["leader"],
            members=tuple(a.teams[dept]["members"]),
            experts=tuple(a.teams[dept].get("experts", [])),
        )
        loads = inputs.loads
        eligible = len([i for i in inspectors if i.active])
        cap = max_load(task.options["team_size"], len(task.selected), eligible)
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
            redraw_day(a.visit_date, dt.date.today()),
            previous=inputs.previous,
            exclude_previous=task.options["exclude_previous_inspectors"],
            match_region=task.options["match_region"],
            loads=loads,
            max_load=cap,
            excluded=earlier | {inspector_id},
        )
        a.recuse(dept, inspector_id, reason, person_of(ctx.actor), new, inputs.position)  # declared_by: entry or account
        # The recusal outlives the visit: the inspector's declared conflicts (回避对象) gain the target in the same
        # transaction, so no later draw (next quarter, another task) sends them there again, until the department
        # withdraws the conflict in the directory.
        changed: list[Aggregate] = [a]
        try:
            entry = self.app.load("inspector", uuid.UUID(inspector_id))
        except (NotFoundError, ValueError):
            entry = None
        if entry is not None and a.target_id not in entry.data.get("conflicts", []):
            entry.change({"conflicts": [*entry.data.get("conflicts", []), a.target_id]})
            changed.append(entry)
        position = self.app.record(ctx, "recuse_inspector", *changed)
        return self.done(
            a, position, department=dept, removed=inspector_id, new=new, counter=a.redraws[dept]
        )

    def _inputs(
        self, department: str, item_ids: list[str], targets: list[str], previous: str, loads_of: str | None = None
    ) -> "TeamInputs":
        """Every input of a team draw or a redraw read in one transaction at one log position (the directory and
        tasks read models aligned to it), so that the event can record the position and anyone can rebuild the
        same inputs from the log (docs/verifying-a-draw.md section 16)."""
        with self.engine.begin() as conn:
            position = self.runner.align(conn, TASK_READ_MODELS)
            people, experts = directory.staff(conn, department)
            return TeamInputs(
                position=position,
                inspectors=[inspector_info(i, department, data) for i, data in people],
                experts=[expert_info(i, department, data) for i, data in experts],
                targets=directory.target_data(conn, targets),
                items=directory.items(conn, item_ids),
                previous=tasks.previous_inspectors(conn, department, previous, targets),
                loads=tasks.member_loads(conn, loads_of, department) if loads_of else {},
            )

    # -- reading -------------------------------------------------------------------------------------------
    def drawn_list(
        self, actor: Actor, tid: uuid.UUID, cursor: str | None = None, limit: int = DRAWN_PAGE_MAX
    ) -> dict[str, Any]:
        """One page of the current draw and its assignments, in the order drawn. Planners of the task's
        departments and auditors see it all; an inspector of a participating department sees only the visits
        they are assigned to. The record and the teams come with the first page only (no ``cursor``);
        ``next_cursor`` (opaque, None after the last page) asks for the next page of the same round."""
        task = self.load(Task, tid, "task")
        full = access.can_see_drawn_list(actor, task.departments)
        mine: set[str] | None = None
        if not full:
            mine = self._visits_of(actor, task) if actor.department in task.departments else set()
            if not mine:
                require_drawn_list(actor, task.departments)
        start = 0 if cursor is None else _drawn_cursor(cursor, task.round)
        record = (task.draw or {}).get("record")
        rows, after = drawn_page(task.selected, (task.draw or {}).get("off_site_first", []), mine, start, limit)
        found = self.lookups.target_data([target for target, _ in rows])
        visits = [
            {
                "target_id": target,
                "target_name": found.get(target, {}).get("name", ""),
                "credit_code": found.get(target, {}).get("credit_code", ""),
                "address": found.get(target, {}).get("address", ""),
                "assignment_id": str(assignment_id(task.id, task.round, target)),
                "off_site_first": off,
            }
            for target, off in rows
        ]
        body: dict[str, Any] = {
            "task_id": str(task.id),
            "number": task.number,
            "round": task.round,
            "state": task.state,
            "visits": visits,
            "next_cursor": None if after is None else f"{task.round}.{after}",
        }
        if mine is None and record is not None and cursor is None:
            body["record"] = record
            body["teams"] = task.teams
            body["inspectors"] = self._people(task.teams)
        return body

    def _people(self, teams: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, str]]:
        """Names and certificate numbers of every inspector on the teams (抽查名单 for signature), by id."""
        out: dict[str, dict[str, str]] = {}
        for department, drawn in teams.items():
            wanted = {m for team in (drawn.get("teams") or {}).values() for m in team.get("members", [])}
            if not wanted:
                continue
            inspectors, _ = directory.staff(self.engine, department)
            for i, data in inspectors:
                if i in wanted:
                    out[i] = {"name": str(data.get("name", "")), "certificate_no": str(data.get("certificate_no", "")),
                              "department": department}
        return out

    def _visits_of(self, actor: Actor, task: Task) -> set[str]:
        if not actor.has(Role.INSPECTOR):
            return set()
        self.fresh()
        return self.lookups.visited_targets(actor, str(task.id))

    def assignment_view(self, actor: Actor, aid: uuid.UUID) -> dict[str, Any]:
        a = self.assignment(aid)
        task = self.load(Task, uuid.UUID(a.task_id), "task")
        if not access.can_see_drawn_list(actor, a.departments) and not (
            actor.department in a.departments and self._visits_of(actor, task) & {a.target_id}
        ):
            require_drawn_list(actor, task.departments)
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
            "state": self._visit_state(a),
            "off_site_first": a.off_site_first,
            "recusals": a.recusals,
            "redraws": a.redraws,
            "merged_into": a.merged_into,
            **self._visit_names(a),
        }

    def _visit_names(self, a: Assignment) -> dict[str, Any]:
        """The names next to a visit's ids: its target (name, credit code, address), its departments, its items
        (code, name) and everyone on its teams (name, certificate number; experts: field), batched by kind."""
        on_teams = {p for t in a.teams.values() for p in (*t.get("members", []), *t.get("experts", []))}
        on_teams |= {r["inspector_id"] for r in a.recusals if r.get("inspector_id")}
        blank = {"target_name": "", "credit_code": "", "address": ""}
        return {
            "target": self.lookups.target_names([a.target_id]).get(a.target_id, blank),
            "department_names": self.lookups.department_names(a.departments),
            "item_names": self.lookups.item_names(i for ids in a.items.values() for i in ids),
            "people": self.lookups.people(on_teams),
        }

    def _visit_state(self, a: Assignment) -> str:
        """Where the visit is: ``awaiting_teams``, ``dispatched``, then, read from its departments' inspections,
        ``in_progress`` (findings entered by one of them) and ``published`` (every department's result published);
        ``merged`` / ``cancelled`` as recorded."""
        if a.state != "dispatched":
            return str(a.state)
        found = self.load_many(Inspection, [inspection_id(a.id, d) for d in a.departments])
        states = [i.state for i in found.values()]
        if len(states) == len(a.departments) and all(s == ReviewState.PUBLISHED.value for s in states):
            return "published"
        if any(s != ReviewState.NOT_ENTERED.value for s in states):
            return "in_progress"
        return str(a.state)

    def my_assignments(self, actor: Actor) -> list[dict[str, Any]]:
        self.fresh()
        return self.lookups.assignments_of(actor)


def _label(target: Mapping[str, Any]) -> str:
    """A target as people name it: 名称（统一社会信用代码）."""
    name, code = str(target.get("name", "")), str(target.get("credit_code", ""))
    return f"{name}（{code}）" if name and code else name or code


def _drawn_cursor(cursor: str, current_round: int) -> int:
    """The index a drawn-list cursor points at; refused when malformed or issued for another round (a redraw
    since: the list has changed, start again without a cursor)."""
    round_, _, index = cursor.partition(".")
    if not (round_.isdigit() and index.isdigit() and len(cursor) <= 40):
        raise problem("cursor", "format", "the cursor is not one this endpoint returned in next_cursor")
    if int(round_) != current_round:
        raise problem("cursor", "round", "the cursor belongs to an earlier round of the draw: start again without it")
    return int(index)
