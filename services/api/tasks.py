"""Plans, tasks, draws and assignments over HTTP: thin handlers over ``services.usecases.tasks.Tasks``."""

import datetime as dt
import uuid
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get, patch, post
from litestar.params import FromPath, JSONBody, Parameter

from services.api.errors import NotReadyError
from services.application import CommandContext
from services.usecases.common import Done

UNSET = msgspec.UNSET
WRITE = (
    " Answers with the aggregate id, its version and the log position of the write (`X-Log-Position`); pass "
    "that position as `min_position` to a listing to read your own write."
)


class PlanCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    year: int
    department: str | msgspec.UnsetType = UNSET
    name: str | msgspec.UnsetType = UNSET


class EntryCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    items: list[str]
    category: str
    period: str
    rules: list[dict[str, Any]] = []
    scope: dict[str, Any] | msgspec.UnsetType = UNSET


class EntryChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str | msgspec.UnsetType = UNSET
    items: list[str] | msgspec.UnsetType = UNSET
    category: str | msgspec.UnsetType = UNSET
    period: str | msgspec.UnsetType = UNSET
    scope: dict[str, Any] | msgspec.UnsetType = UNSET


class RulesAdjust(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    rules: list[dict[str, Any]]
    reason: str


class Reason(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: str


class TaskCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    plan_entry: str | msgspec.UnsetType = UNSET
    lead: str | msgspec.UnsetType = UNSET
    participants: dict[str, list[str]] | msgspec.UnsetType = UNSET
    period: str | msgspec.UnsetType = UNSET
    category: str | msgspec.UnsetType = UNSET
    scope: dict[str, Any] | msgspec.UnsetType = UNSET
    rules: list[dict[str, Any]] | msgspec.UnsetType = UNSET
    options: dict[str, Any] | msgspec.UnsetType = UNSET
    origin: str | msgspec.UnsetType = UNSET
    reason: str | msgspec.UnsetType = UNSET
    name: str | msgspec.UnsetType = UNSET


class Freeze(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    quotas: dict[str, int] = {}


class Draw(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    external_entropy: str = ""


class Designate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    targets: list[str]


class Teams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    visit_date: dt.date | msgspec.UnsetType = UNSET


class Recusal(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    inspector_id: str
    reason: str
    department: str | msgspec.UnsetType = UNSET


class Merge(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    into: uuid.UUID
    reason: str


def _given(struct: Any) -> dict[str, Any]:
    return {k: v for k, v in msgspec.structs.asdict(struct).items() if v is not UNSET}


def _ctx(request: Request) -> CommandContext:
    return CommandContext(actor=request.user, correlation_id=request.scope["state"]["correlation_id"])


def _done(request: Request, done: Done, status: int = 200) -> Response:
    request.app.state.runtime.after_write()
    headers = {"ETag": f'"{done.version}"'}
    if done.position is not None:
        headers["X-Log-Position"] = str(done.position)
    return Response(done.body, status_code=status, headers=headers)


def _tasks(request: Request) -> Any:
    return request.app.state.runtime.tasks


def _wait(request: Request, min_position: int | None, names: list[str] | None = None) -> None:
    """Read your writes: wait (up to 5 s) until the read models (``names``, default all) reached the position."""
    rt = request.app.state.runtime
    if min_position is not None and not rt.runner.wait_for(min_position, timeout=5.0, names=names):
        raise NotReadyError(f"the read models have not yet reached position {min_position}")


MinPosition = Annotated[
    int | None, Parameter(ge=0, description="read your writes: wait for this log position")
]


# -- plans ----------------------------------------------------------------------------------------------------
@post(
    "/",
    sync_to_thread=True,
    status_code=201,
    summary="Draw up an annual plan (年度抽查工作计划)",
    description="One plan per department and year; the department's planners only. The name defaults to "
    "`<year>年“双随机、一公开”监管随机抽查工作计划`." + WRITE,
)
def create_plan(request: Request, data: JSONBody[PlanCreate]) -> Response:
    d = _given(data)
    done = request.app.state.runtime.plans.draw_up_plan(
        _ctx(request), d.get("department", request.user.department), d["year"], d.get("name")
    )
    return _done(request, done, 201)


@get(
    "/{plan_id:uuid}",
    sync_to_thread=True,
    summary="A plan with its quotas and breaches",
    description="The plan's entries, each with its quotas per stratum (supervision class/risk class) computed "
    "from the current directory, with the arithmetic (`basis`); the department's tasks of the year; and every "
    "breach of the seed's rules (S3: at least one task per quarter, key >= 25%, general >= 5% or 6 per "
    "inspector, the entries' own rules; S7: joint share >= 60%). `as_of` (a date) checks only the quarters "
    "ended by then for tasks.",
)
def get_plan(
    request: Request,
    plan_id: FromPath[uuid.UUID],
    as_of: Annotated[dt.date | None, Parameter()] = None,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    _wait(request, min_position)
    return request.app.state.runtime.plans.plan_view(request.user, plan_id, as_of)  # type: ignore[no-any-return]


@get(
    "/",
    sync_to_thread=True,
    summary="Find a department's plan of a year",
    description="The plan of `department` (default: yours) for `year`, as `GET /plans/{id}`.",
)
def find_plan(
    request: Request,
    year: Annotated[int, Parameter(description="the plan year")],
    department: Annotated[str | None, Parameter()] = None,
    as_of: Annotated[dt.date | None, Parameter()] = None,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    from domain.planning.plan import plan_id

    _wait(request, min_position)
    return request.app.state.runtime.plans.plan_view(
        request.user, plan_id(department or request.user.department, year), as_of
    )  # type: ignore[no-any-return]


@post(
    "/{plan_id:uuid}/entries",
    sync_to_thread=True,
    status_code=201,
    summary="Add a plan entry",
    description="Entries are numbered YYYYnnn in order (2024001...). `items`: item ids of the department (several "
    "items make one visit, 多项合一); `category`: general/key; `period`: 2024Q1, 2024-03, 2024H1 or 2024; "
    '`rules`: sampling rules per supervision class (and risk class): `min_ratio` ("25%"), `min_per_inspector`, '
    "`combine` (`either`: either bound suffices, the seed's default; `larger`), `full` (100%), `once_a_year`; "
    "`scope`: county, industries, supervision_classes, risk_classes, tags, description." + WRITE,
)
def add_entry(request: Request, plan_id: FromPath[uuid.UUID], data: JSONBody[EntryCreate]) -> Response:
    return _done(request, request.app.state.runtime.plans.add_plan_entry(_ctx(request), plan_id, _given(data)), 201)


@patch(
    "/{plan_id:uuid}/entries/{number:str}",
    sync_to_thread=True,
    summary="Change a plan entry",
    description="Name, items, category, period or scope; rules change only with a reason (the rules endpoint)."
    + WRITE,
)
def change_entry(
    request: Request, plan_id: FromPath[uuid.UUID], number: FromPath[str], data: JSONBody[EntryChange]
) -> Response:
    return _done(request, request.app.state.runtime.plans.change_plan_entry(_ctx(request), plan_id, number, _given(data)))


@post(
    "/{plan_id:uuid}/entries/{number:str}/rules",
    sync_to_thread=True,
    summary="Adjust an entry's ratios",
    description="Changing sampling ratios during the year (适时调整) is an event with the reason and the rules "
    "it replaced." + WRITE,
)
def adjust_rules(
    request: Request, plan_id: FromPath[uuid.UUID], number: FromPath[str], data: JSONBody[RulesAdjust]
) -> Response:
    done = request.app.state.runtime.plans.adjust_plan_rules(_ctx(request), plan_id, number, data.rules, data.reason)
    return _done(request, done)


@post(
    "/{plan_id:uuid}/entries/{number:str}/removal",
    sync_to_thread=True,
    summary="Withdraw a plan entry",
    description="With a reason; the number is never reused." + WRITE,
)
def remove_entry(
    request: Request, plan_id: FromPath[uuid.UUID], number: FromPath[str], data: JSONBody[Reason]
) -> Response:
    return _done(request, request.app.state.runtime.plans.remove_plan_entry(_ctx(request), plan_id, number, data.reason))


# -- tasks ----------------------------------------------------------------------------------------------------
@post(
    "/",
    sync_to_thread=True,
    status_code=201,
    summary="Open a task (抽查任务)",
    description="From a plan entry (`plan_entry`: its number; items, period, scope and rules come from it), or ad "
    "hoc with a `reason`, or case-triggered (`origin: case`, 个案检查, with a reason; never counted as random). "
    "`participants` maps each participating department to the items it brings (joint task, 部门联合抽查); the "
    "lead (your department) always takes part. `name` follows S5 (新乡市+县区+部门+时间+任务类型): generated "
    "when omitted, refused with the rule quoted when it breaks it. `options`: exclude_inspected_this_year "
    "(default true), exclude_previous_inspectors (true), match_region (false), team_size (2), weighted (false), "
    "risk_weights. The lead department's planners only." + WRITE,
)
def open_task(request: Request, data: JSONBody[TaskCreate]) -> Response:
    return _done(request, request.app.state.runtime.task_opening.open_task(_ctx(request), _given(data)), 201)


@get(
    "/",
    sync_to_thread=True,
    summary="List tasks",
    description="Tasks your department leads or joins (admins and auditors: all, or `department`), by `year`; "
    "no drawn targets in the listing.",
)
def list_tasks(
    request: Request,
    year: Annotated[int | None, Parameter()] = None,
    department: Annotated[str | None, Parameter()] = None,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
    offset: Annotated[int, Parameter(ge=0)] = 0,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    _wait(request, min_position)
    return request.app.state.runtime.task_opening.list_tasks(request.user, year, department, limit, offset)  # type: ignore[no-any-return]


@get(
    "/{task_id:uuid}",
    sync_to_thread=True,
    summary="A task",
    description="Its participants, scope, rules, options, state, the current round's commitment and frozen pool "
    "(digest, strata, quotas), withdrawn rounds with their reasons; not the drawn targets (see /draw).",
)
def get_task(request: Request, task_id: FromPath[uuid.UUID]) -> dict[str, Any]:
    return request.app.state.runtime.task_opening.task_view(request.user, task_id)  # type: ignore[no-any-return]


@post(
    "/{task_id:uuid}/commitment",
    sync_to_thread=True,
    summary="Commit to a secret seed",
    description="Step 1 of the draw. The server generates a 32-byte secret seed and records only its SHA-256 "
    "(the commitment, published before the pool is frozen); the seed is revealed by the draw." + WRITE,
)
def commit(request: Request, task_id: FromPath[uuid.UUID]) -> Response:
    return _done(request, request.app.state.runtime.target_draws.commit(_ctx(request), task_id))


@post(
    "/{task_id:uuid}/freeze",
    sync_to_thread=True,
    summary="Freeze the candidate pool",
    description="Step 2. The pool as of the current log position: targets in scope, active (not closed or "
    "deregistered), minus those another draw of the year selected for one of the task's items (option). "
    "Records the position, the pool digest, per-stratum pool sizes and quotas (the rules' minimum; `quotas` may "
    "raise a stratum's, never lower it). An empty pool is a 422 and records nothing." + WRITE,
)
def freeze(request: Request, task_id: FromPath[uuid.UUID], data: JSONBody[Freeze | None] = None) -> Response:
    return _done(request, request.app.state.runtime.target_draws.freeze(_ctx(request), task_id, data.quotas if data else {}))


@post(
    "/{task_id:uuid}/draw",
    sync_to_thread=True,
    summary="Draw the targets",
    description="Step 3. Reveals the seed, mixes in `external_entropy` (e.g. a public lottery number) and "
    "selects per stratum the lowest keyed-hash ranks (see README, Verifying a draw). The answer counts what was "
    "drawn and lists targets another task of the same quarter drew too (`overlaps`: merge them into one "
    "visit)." + WRITE,
)
def draw_targets(
    request: Request, task_id: FromPath[uuid.UUID], data: JSONBody[Draw | None] = None
) -> Response:
    return _done(
        request, request.app.state.runtime.target_draws.draw_targets(_ctx(request), task_id, data.external_entropy if data else "")
    )


@post(
    "/{task_id:uuid}/targets",
    sync_to_thread=True,
    summary="Name a case task's targets (个案检查)",
    description="Only for a case-triggered task: its targets come from the case, not from a draw." + WRITE,
)
def designate(request: Request, task_id: FromPath[uuid.UUID], data: JSONBody[Designate]) -> Response:
    return _done(request, request.app.state.runtime.task_opening.designate(_ctx(request), task_id, data.targets))


@get(
    "/{task_id:uuid}/draw",
    sync_to_thread=True,
    summary="The drawn list (confidential)",
    description="Confidential until the visit: the planners of the task's departments and auditors see the whole "
    "record (seed, entropy, digest, strata, selected ids) and the teams; an assigned inspector sees only their "
    "own visits; anyone else gets 403.",
)
def drawn_list(request: Request, task_id: FromPath[uuid.UUID]) -> dict[str, Any]:
    return request.app.state.runtime.teams.drawn_list(request.user, task_id)  # type: ignore[no-any-return]


@get(
    "/{task_id:uuid}/draw/verification",
    sync_to_thread=True,
    summary="Verify the draw",
    description="Recomputes the pool from the log as it stood at the freeze position (not from a read model) and "
    "re-runs the draw: `match` true, or the first difference. Same access as the drawn list.",
)
def verification(request: Request, task_id: FromPath[uuid.UUID]) -> dict[str, Any]:
    return request.app.state.runtime.target_draws.verify_draw(request.user, task_id)  # type: ignore[no-any-return]


@get(
    "/{task_id:uuid}/overlaps",
    sync_to_thread=True,
    summary="Targets drawn twice in one quarter",
    description="Targets of this draw that another task's current draw in the same quarter selected too, with both "
    "assignment ids: merge them into one visit (POST /assignments/{id}/merge).",
)
def overlaps(request: Request, task_id: FromPath[uuid.UUID]) -> dict[str, Any]:
    return {"overlaps": request.app.state.runtime.merges.overlaps(request.user, task_id)}


@post(
    "/{task_id:uuid}/redraw",
    sync_to_thread=True,
    summary="Withdraw the draw (redraw the whole task)",
    description="Needs a recorded reason; ends the current round (its assignments are cancelled) and keeps it in "
    "the history. A new round starts with a new commitment." + WRITE,
)
def redraw(request: Request, task_id: FromPath[uuid.UUID], data: JSONBody[Reason]) -> Response:
    return _done(request, request.app.state.runtime.target_draws.withdraw(_ctx(request), task_id, data.reason))


@post(
    "/{task_id:uuid}/teams/{department:str}",
    sync_to_thread=True,
    summary="Draw a department's inspectors",
    description="Each participating department's planner draws its own teams (S9), deterministically from the "
    "revealed seed: at least `team_size` (2) inspectors per drawn target, certificate valid on the visit date, "
    "the items' specialty, no declared conflict, not who inspected the target last period (option), workload "
    "at most ceil(mean)+1 per inspector, a leader per team, an expert where an item needs one. Creates or "
    "completes the assignments (one per visit). Too few eligible inspectors: 422 naming the department and the "
    "shortfall." + WRITE,
)
def draw_teams(
    request: Request,
    task_id: FromPath[uuid.UUID],
    department: FromPath[str],
    data: JSONBody[Teams | None] = None,
) -> Response:
    visit = data.visit_date if data is not None and data.visit_date is not UNSET else None
    return _done(request, request.app.state.runtime.teams.draw_inspectors(_ctx(request), task_id, department, visit))


# -- assignments ----------------------------------------------------------------------------------------------------
@get(
    "/mine",
    sync_to_thread=True,
    summary="My assignments (inspectors)",
    description="The visits the calling inspector (token subject = inspector id or staff id) is assigned to.",
)
def mine(request: Request, min_position: MinPosition = None) -> dict[str, Any]:
    _wait(request, min_position)
    return {"items": request.app.state.runtime.teams.my_assignments(request.user)}


@get(
    "/{assignment_id:uuid}",
    sync_to_thread=True,
    summary="An assignment (one visit)",
    description="Task(s), target, items and team per department, visit date, state, recusals and redraws. Same "
    "confidentiality as the drawn list.",
)
def get_assignment(request: Request, assignment_id: FromPath[uuid.UUID]) -> dict[str, Any]:
    return request.app.state.runtime.teams.assignment_view(request.user, assignment_id)  # type: ignore[no-any-return]


@post(
    "/{assignment_id:uuid}/recusals",
    sync_to_thread=True,
    summary="Recuse an inspector (回避)",
    description="The inspector concerned, or a planner of their department, declares a conflict with a reason; a "
    "deterministic redraw (team key + the department's redraw counter) replaces them. Both are events."
    + WRITE,
)
def recuse(request: Request, assignment_id: FromPath[uuid.UUID], data: JSONBody[Recusal]) -> Response:
    dept = data.department if data.department is not UNSET else None
    done = request.app.state.runtime.teams.recuse(_ctx(request), assignment_id, data.inspector_id, data.reason, dept)
    return _done(request, done)


@post(
    "/{assignment_id:uuid}/merge",
    sync_to_thread=True,
    summary="Merge this visit into another",
    description="When one target is drawn by two tasks in the same quarter: this visit (its task's items and teams) "
    "joins `into`, one visit for both tasks. The planners of this visit's lead department decide. Refused (422, "
    "`inspection_begun`) once a department's inspection of either visit has been opened: an inspection keeps the "
    "items and the visit it was opened with." + WRITE,
)
def merge(request: Request, assignment_id: FromPath[uuid.UUID], data: JSONBody[Merge]) -> Response:
    return _done(request, request.app.state.runtime.merges.merge(_ctx(request), assignment_id, data.into, data.reason))


def task_routers() -> list[Router]:
    return [
        Router(
            "/plans",
            route_handlers=[
                create_plan,
                find_plan,
                get_plan,
                add_entry,
                change_entry,
                adjust_rules,
                remove_entry,
            ],
            tags=["plans"],
        ),
        Router(
            "/tasks",
            route_handlers=[
                open_task,
                list_tasks,
                get_task,
                commit,
                freeze,
                draw_targets,
                designate,
                drawn_list,
                verification,
                overlaps,
                redraw,
                draw_teams,
            ],
            tags=["tasks"],
        ),
        Router("/assignments", route_handlers=[mine, get_assignment, recuse, merge], tags=["assignments"]),
    ]
