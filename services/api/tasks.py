"""Tasks: opening, the target draw (commitment, freeze, draw, verification), overlaps, redraws and
the inspector draw."""

import uuid
from typing import Annotated, Any

from litestar import Response, Router, get, post
from litestar.params import FromPath, JSONBody, Parameter

from domain.tasks.drawn_list import DRAWN_PAGE_MAX
from services.api.common import (
    READ,
    SECURED,
    WRITE,
    AnyRequest,
    Department,
    Limit,
    MinPosition,
    Offset,
    answers,
    command,
    ctx,
    done,
    example,
    given,
    runtime,
    wait,
)
from services.api.schemas import (
    UNSET,
    Commit,
    Designate,
    Draw,
    DrawnList,
    DrawRound,
    DrawRounds,
    Freeze,
    Json,
    Overlaps,
    Page,
    Reason,
    ShareCommitment,
    ShareReveal,
    TaskCreate,
    TaskView,
    Teams,
    Verification,
)


@post(
    "/",
    **command(201),
    summary="Open a task (抽查任务)",
    description="From a plan entry (`plan_entry`: its number; items, period, scope and rules come from it), or ad "
    "hoc with a `reason`, or case-triggered (`origin: case`, 个案检查, with a reason; never counted as random). "
    "`participants` maps each participating department to the items it brings (joint task, 部门联合抽查); the "
    "lead (your department) always takes part. `name` follows the naming rule (新乡市+县区+部门+时间+任务类型): generated "
    "when omitted, refused with the rule quoted when it breaks it. `options`: exclude_inspected_this_year "
    "(default true), exclusion_per_visit (true: a target goes only once every item the lead brings was drawn on it "
    "this year, and never from a stratum a `full` rule governs), exclude_previous_inspectors (true), match_region (false), team_size (2), weighted (false), "
    "risk_weights. The lead department's planners only." + WRITE,
)
def open_task(request: AnyRequest, data: Annotated[TaskCreate, example("task")]) -> Response[Json]:
    rt = runtime(request)
    return done(request, rt.task_opening.open_task(ctx(request), given(data)), 201)


@get(
    "/",
    responses=answers(200, Page, READ, also=(503,)),
    sync_to_thread=True,
    summary="List tasks",
    description="Tasks your department leads or joins (admins and auditors: all, or `department`), by `year`; "
    "no drawn targets in the listing.",
)
def list_tasks(
    request: AnyRequest,
    year: Annotated[int | None, Parameter(ge=1, le=9999, description="the tasks' year")] = None,
    department: Department = None,
    limit: Limit = 50,
    offset: Offset = 0,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    rt = runtime(request)
    wait(request, min_position)
    return rt.task_opening.list_tasks(request.user, year, department, limit, offset)


@get(
    "/{task_id:uuid}",
    responses=answers(200, TaskView, READ),
    sync_to_thread=True,
    summary="A task",
    description="Its participants, scope, rules, options, state, the current round's commitment and frozen pool "
    "(digest, strata, quotas), withdrawn rounds with their reasons; not the drawn targets (see /draw).",
)
def get_task(request: AnyRequest, task_id: FromPath[uuid.UUID]) -> dict[str, Any]:
    rt = runtime(request)
    return rt.task_opening.task_view(request.user, task_id)


@post(
    "/{task_id:uuid}/commitment",
    **command(),
    summary="Commit to a secret seed",
    description="Step 1 of the draw. The server generates a 32-byte secret seed and records only its SHA-256 "
    "(the commitment, published before the pool is frozen) with `entropy_source`, the public source whose "
    "value the draw will mix in (e.g. `福彩3D 2024年第059期开奖号码`); the seed is revealed by the draw. A joint "
    "task then takes a seed share from every participating department (`shares_needed`)." + WRITE,
)
def commit(request: AnyRequest, task_id: FromPath[uuid.UUID], data: JSONBody[Commit | None] = None) -> Response[Json]:
    rt = runtime(request)
    return done(request, rt.target_draws.commit(ctx(request), task_id, data.entropy_source if data else ""))


@post(
    "/{task_id:uuid}/shares/{department:str}",
    **command(),
    summary="Commit a department's seed share (joint tasks)",
    description="After the commitment, before the freeze: the department's planner sends SHA-256 of 32 random "
    "bytes only they know (e.g. `openssl rand -hex 32`). The freeze of a joint task waits (409) until every "
    "participating department committed one. Once per round." + WRITE,
)
def commit_share(
    request: AnyRequest, task_id: FromPath[uuid.UUID], department: FromPath[str], data: JSONBody[ShareCommitment]
) -> Response[Json]:
    rt = runtime(request)
    return done(request, rt.target_draws.commit_share(ctx(request), task_id, department, data.commitment))


@post(
    "/{task_id:uuid}/shares/{department:str}/reveal",
    **command(),
    summary="Reveal a department's seed share (joint tasks)",
    description="After the freeze, before the draw: the 32 bytes (hex) whose SHA-256 was committed; another "
    "value is a 422. The draw of a joint task waits (409) until every participating department revealed its "
    "share; the draw key then uses all of them (docs/plans-tasks-and-draws.md)." + WRITE,
)
def reveal_share(
    request: AnyRequest, task_id: FromPath[uuid.UUID], department: FromPath[str], data: JSONBody[ShareReveal]
) -> Response[Json]:
    rt = runtime(request)
    return done(request, rt.target_draws.reveal_share(ctx(request), task_id, department, data.share))


@post(
    "/{task_id:uuid}/freeze",
    **command(),
    summary="Freeze the candidate pool",
    description="Step 2. The pool as of the current log position: targets in scope, active (not closed or "
    "deregistered), minus those another draw of the year selected for one of the task's items (option). "
    "Records the position, the pool digest, per-stratum pool sizes and quotas (the rules' minimum; `quotas` may "
    "raise a stratum's, never lower it). An empty pool is a 422 and records nothing." + WRITE,
)
def freeze(request: AnyRequest, task_id: FromPath[uuid.UUID], data: JSONBody[Freeze | None] = None) -> Response[Json]:
    rt = runtime(request)
    return done(request, rt.target_draws.freeze(ctx(request), task_id, data.quotas if data else {}))


@post(
    "/{task_id:uuid}/draw",
    **command(),
    summary="Draw the targets",
    description="Step 3. Reveals the seed, mixes in `external_entropy`, the value published for the source "
    "declared with the commitment (`entropy_source` repeats it; a known kind's value has one form, e.g. 福彩3D: "
    "three digits), with every department's seed share of a joint task (409 until all are revealed), and "
    "selects per stratum the lowest keyed-hash ranks (see docs/verifying-a-draw.md). The answer counts what was "
    "drawn and lists targets another task of the same quarter drew too (`overlaps`: merge them into one "
    "visit)." + WRITE,
)
def draw_targets(
    request: AnyRequest, task_id: FromPath[uuid.UUID], data: JSONBody[Draw | None] = None
) -> Response[Json]:
    rt = runtime(request)
    return done(
        request,
        rt.target_draws.draw_targets(
            ctx(request), task_id, data.external_entropy if data else "", data.entropy_source if data else ""
        ),
    )


@post(
    "/{task_id:uuid}/targets",
    **command(),
    summary="Name a case task's targets (个案检查)",
    description="Only for a case-triggered task: its targets come from the case, not from a draw." + WRITE,
)
def designate(request: AnyRequest, task_id: FromPath[uuid.UUID], data: JSONBody[Designate]) -> Response[Json]:
    rt = runtime(request)
    return done(request, rt.task_opening.designate(ctx(request), task_id, data.targets))


@get(
    "/{task_id:uuid}/draw",
    responses=answers(200, DrawnList, READ),
    sync_to_thread=True,
    summary="The drawn list (confidential)",
    description="Confidential until the visit: the planners of the task's departments and auditors see the whole "
    "record (seed, entropy, digest, strata, selected ids) and the teams; an assigned inspector sees only their "
    "own visits; anyone else gets 403. Paged in the order drawn: at most `limit` visits (default and maximum "
    "5000) per page; `next_cursor` (opaque; null after the last page) passed as `cursor` returns the next page. "
    "The record and the teams come with the first page only. A cursor from an earlier round (a redraw since) "
    "or one this endpoint did not return: 422 naming `cursor`.",
)
def drawn_list(
    request: AnyRequest,
    task_id: FromPath[uuid.UUID],
    cursor: Annotated[str | None, Parameter(max_length=40, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Parameter(ge=1, le=DRAWN_PAGE_MAX, description="visits per page")] = DRAWN_PAGE_MAX,
) -> dict[str, Any]:
    rt = runtime(request)
    return rt.teams.drawn_list(request.user, task_id, cursor, limit)


@get(
    "/{task_id:uuid}/draw/verification",
    responses=answers(200, Verification, READ),
    sync_to_thread=True,
    summary="Verify the draw",
    description="Checks the round's chain first (`chain`: the commitment and declared entropy source recorded "
    "before the freeze, every seed share committed before it and revealed after it, as the draw record repeats them; "
    "docs/verifying-a-draw.md section 13.1), then recomputes the pool from the log as it stood at the freeze "
    "position (not from a read model) and re-runs the draw: `match` true, or the first difference (the chain's "
    "first). Same access as the drawn list.",
)
def verification(request: AnyRequest, task_id: FromPath[uuid.UUID]) -> dict[str, Any]:
    rt = runtime(request)
    return rt.target_draws.verify_draw(request.user, task_id)


RoundNumber = Annotated[int, Parameter(ge=1, le=2**31 - 1, description="the round number")]


@get(
    "/{task_id:uuid}/draws",
    responses=answers(200, DrawRounds, READ),
    sync_to_thread=True,
    summary="Every round of the target draw",
    description="Current and withdrawn rounds in round order (status, how far each got, the withdrawal reason, "
    "the commitment, the freeze position and pool size, how many targets were selected). Same access as the "
    "drawn list: the task's departments' planners, admins and auditors.",
)
def draw_rounds(request: AnyRequest, task_id: FromPath[uuid.UUID]) -> dict[str, Any]:
    rt = runtime(request)
    return rt.target_draws.rounds(request.user, task_id)


@get(
    "/{task_id:uuid}/draws/{round:int}",
    responses=answers(200, DrawRound, READ),
    sync_to_thread=True,
    summary="One round of the target draw",
    description="The round in full, as its events recorded it: commitment, frozen pool, draw record (seed, "
    "entropy, digest, strata, selected ids) and teams. 404 for a round the task never had. Same access as the "
    "drawn list.",
)
def draw_round(
    request: AnyRequest,
    task_id: FromPath[uuid.UUID],
    round: RoundNumber,
) -> dict[str, Any]:
    rt = runtime(request)
    return rt.target_draws.read_round(request.user, task_id, round)


@get(
    "/{task_id:uuid}/draws/{round:int}/verification",
    responses=answers(200, Verification, READ),
    sync_to_thread=True,
    summary="Verify one round of the target draw",
    description="As /draw/verification, for any drawn round, current or withdrawn: the round's chain checked "
    "(`chain`), the pool recomputed from the log at that round's freeze position and the draw re-run. 422 for a round that was never drawn or "
    "a case task's named targets; 404 for a round the task never had.",
)
def draw_round_verification(
    request: AnyRequest,
    task_id: FromPath[uuid.UUID],
    round: RoundNumber,
) -> dict[str, Any]:
    rt = runtime(request)
    return rt.target_draws.verify_draw(request.user, task_id, round)


@get(
    "/{task_id:uuid}/overlaps",
    responses=answers(200, Overlaps, READ),
    sync_to_thread=True,
    summary="Targets drawn twice in one quarter",
    description="Targets of this draw that another task's current draw in the same quarter selected too, with both "
    "assignment ids: merge them into one visit (POST /assignments/{id}/merge).",
)
def overlaps(request: AnyRequest, task_id: FromPath[uuid.UUID]) -> dict[str, Any]:
    rt = runtime(request)
    return {"overlaps": rt.merges.overlaps(request.user, task_id)}


@post(
    "/{task_id:uuid}/redraw",
    **command(),
    summary="Withdraw the draw (redraw the whole task)",
    description="Needs a recorded reason; ends the current round (its assignments are cancelled) and keeps it in "
    "the history. A new round starts with a new commitment." + WRITE,
)
def redraw(request: AnyRequest, task_id: FromPath[uuid.UUID], data: JSONBody[Reason]) -> Response[Json]:
    rt = runtime(request)
    return done(request, rt.target_draws.withdraw(ctx(request), task_id, data.reason))


@post(
    "/{task_id:uuid}/teams/{department:str}",
    **command(),
    summary="Draw a department's inspectors",
    description="Each participating department's planner draws its own teams, deterministically from the "
    "revealed seed: at least `team_size` (2) inspectors per drawn target, certificate valid on the visit date, "
    "the items' specialty, no declared conflict, not who inspected the target last period (option), workload "
    "at most ceil(mean)+1 per inspector, a leader per team, an expert where an item needs one. Creates or "
    "completes the assignments (one per visit). Too few eligible inspectors: 422 naming the department and the "
    "shortfall." + WRITE,
)
def draw_teams(
    request: AnyRequest,
    task_id: FromPath[uuid.UUID],
    department: FromPath[str],
    data: JSONBody[Teams | None] = None,
) -> Response[Json]:
    rt = runtime(request)
    visit = data.visit_date if data is not None and data.visit_date is not UNSET else None
    return done(request, rt.teams.draw_inspectors(ctx(request), task_id, department, visit))


def router() -> Router:
    return Router(
        "/tasks",
        route_handlers=[open_task, list_tasks, get_task, commit, commit_share, reveal_share, freeze, draw_targets,
                        designate, drawn_list, verification, draw_rounds, draw_round, draw_round_verification,
                        overlaps, redraw, draw_teams],
        tags=["tasks"], security=SECURED,
    )
