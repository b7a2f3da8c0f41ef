"""Annual plans and their entries."""

import datetime as dt
import uuid
from typing import Annotated, Any

from litestar import Response, Router, get, patch, post
from litestar.params import FromPath, JSONBody, Parameter

from services.api.common import (
    READ,
    SECURED,
    WRITE,
    WRITE_PROBLEMS,
    AnyRequest,
    Department,
    MinPosition,
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
    EntryChange,
    EntryCreate,
    Json,
    PlanCreate,
    PlanView,
    Reason,
    Recorded,
    RulesAdjust,
)


@post(
    "/",
    **command(201),
    summary="Draw up an annual plan (年度抽查工作计划)",
    description="One plan per department and year; the department's planners only. The name defaults to "
    "`<year>年“双随机、一公开”监管随机抽查工作计划`." + WRITE,
)
def create_plan(request: AnyRequest, data: Annotated[PlanCreate, example("plan")]) -> Response[Json]:
    rt = runtime(request)
    d = given(data)
    result = rt.plans.draw_up_plan(
        ctx(request), d.get("department", request.user.department), d["year"], d.get("name")
    )
    return done(request, result, 201)


@get(
    "/",
    responses=answers(200, PlanView, READ, also=(503,)),
    sync_to_thread=True,
    summary="Find a department's plan of a year",
    description="The plan of `department` (default: yours) for `year`, as `GET /plans/{id}`.",
)
def find_plan(
    request: AnyRequest,
    year: Annotated[int, Parameter(ge=1, le=9999, description="the plan year")],
    department: Department = None,
    as_of: Annotated[dt.date | None, Parameter(description="check only the quarters ended by then (YYYY-MM-DD)")] = None,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    rt = runtime(request)
    from domain.planning.plan import plan_id

    wait(request, min_position)
    return rt.plans.plan_view(
        request.user, plan_id(department or request.user.department, year), as_of
    )


@get(
    "/{plan_id:uuid}",
    responses=answers(200, PlanView, READ, also=(503,)),
    sync_to_thread=True,
    summary="A plan with its quotas and breaches",
    description="The plan's entries, each with its quotas per stratum (supervision class/risk class) computed "
    "from the current directory, with the arithmetic (`basis`); the department's tasks of the year; and every "
    "breach, named by its rule: `tasks_per_quarter` (at least one task per quarter), `key_ratio` (key >= 25%), "
    "`general_ratio` (general >= 5% or 6 per inspector), `rule_minimum` (the entries' own rules), `joint_share` "
    "(joint share >= 60%); the minimums are the 2024 notice's unless the plan's rules say otherwise. `as_of` (a date) checks only the quarters "
    "ended by then for tasks.",
)
def get_plan(
    request: AnyRequest,
    plan_id: FromPath[uuid.UUID],
    as_of: Annotated[dt.date | None, Parameter(description="check only the quarters ended by then (YYYY-MM-DD)")] = None,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    rt = runtime(request)
    wait(request, min_position)
    return rt.plans.plan_view(request.user, plan_id, as_of)


@post(
    "/{plan_id:uuid}/entries",
    **command(201),
    summary="Add a plan entry",
    description="Entries are numbered YYYYnnn in order (2024001...). `items`: item ids of the department (several "
    "items make one visit, 多项合一); `category`: general/key; `period`: 2024Q1, 2024-03, 2024H1 or 2024; "
    '`rules`: sampling rules per supervision class (and risk class): `min_ratio` ("25%"), `min_per_inspector`, '
    "`combine` (`either`: either bound suffices, the 2024 notice's default; `larger`), `full` (100%), `once_a_year`; "
    "`scope`: county, industries, supervision_classes, risk_classes, tags, description." + WRITE,
)
def add_entry(request: AnyRequest, plan_id: FromPath[uuid.UUID], data: Annotated[EntryCreate, example("entry")]) -> Response[Json]:
    rt = runtime(request)
    return done(request, rt.plans.add_plan_entry(ctx(request), plan_id, given(data)), 201)


@patch(
    "/{plan_id:uuid}/entries/{number:str}",
    responses=answers(200, Recorded, WRITE_PROBLEMS),
    sync_to_thread=True,
    summary="Change a plan entry",
    description="Name, items, category, period or scope; rules change only with a reason (the rules endpoint)."
    + WRITE,
)
def change_entry(
    request: AnyRequest, plan_id: FromPath[uuid.UUID], number: FromPath[str], data: JSONBody[EntryChange]
) -> Response[Json]:
    rt = runtime(request)
    return done(request, rt.plans.change_plan_entry(ctx(request), plan_id, number, given(data)))


@post(
    "/{plan_id:uuid}/entries/{number:str}/rules",
    **command(),
    summary="Adjust an entry's ratios",
    description="Changing sampling ratios during the year (适时调整) is an event with the reason and the rules "
    "it replaced." + WRITE,
)
def adjust_rules(
    request: AnyRequest, plan_id: FromPath[uuid.UUID], number: FromPath[str], data: JSONBody[RulesAdjust]
) -> Response[Json]:
    rt = runtime(request)
    result = rt.plans.adjust_plan_rules(ctx(request), plan_id, number, data.rules, data.reason)
    return done(request, result)


@post(
    "/{plan_id:uuid}/entries/{number:str}/removal",
    **command(),
    summary="Withdraw a plan entry",
    description="With a reason; the number is never reused." + WRITE,
)
def remove_entry(
    request: AnyRequest, plan_id: FromPath[uuid.UUID], number: FromPath[str], data: JSONBody[Reason]
) -> Response[Json]:
    rt = runtime(request)
    return done(request, rt.plans.remove_plan_entry(ctx(request), plan_id, number, data.reason))


def router() -> Router:
    return Router(
        "/plans",
        route_handlers=[create_plan, find_plan, get_plan, add_entry, change_entry, adjust_rules, remove_entry],
        tags=["plans"], security=SECURED,
    )
