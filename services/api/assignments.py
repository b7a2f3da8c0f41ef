"""Assignments (one visit each): an inspector's own, one visit, recusals and merges."""

import uuid
from typing import Any

from litestar import Response, Router, get, post
from litestar.params import FromPath, JSONBody

from services.api.common import (
    READ,
    SECURED,
    WRITE,
    AnyRequest,
    MinPosition,
    answers,
    command,
    ctx,
    done,
    runtime,
    wait,
)
from services.api.schemas import UNSET, AssignmentView, Items, Json, Merge, Recusal


@get(
    "/mine",
    responses=answers(200, Items, READ, also=(503,)),
    sync_to_thread=True,
    summary="My assignments (inspectors)",
    description="The visits the calling inspector (token subject = inspector id or staff id) is assigned to.",
)
def mine(request: AnyRequest, min_position: MinPosition = None) -> dict[str, Any]:
    rt = runtime(request)
    wait(request, min_position)
    return {"items": rt.teams.my_assignments(request.user)}


@get(
    "/{assignment_id:uuid}",
    responses=answers(200, AssignmentView, READ),
    sync_to_thread=True,
    summary="An assignment (one visit)",
    description="Task(s), target, items and team per department, visit date, state, recusals and redraws. Same "
    "confidentiality as the drawn list.",
)
def get_assignment(request: AnyRequest, assignment_id: FromPath[uuid.UUID]) -> dict[str, Any]:
    rt = runtime(request)
    return rt.teams.assignment_view(request.user, assignment_id)


@post(
    "/{assignment_id:uuid}/recusals",
    **command(),
    summary="Recuse an inspector (回避)",
    description="The inspector concerned, or a planner of their department, declares a conflict with a reason; a "
    "deterministic redraw (team key + the department's redraw counter) replaces them. Both are events."
    + WRITE,
)
def recuse(request: AnyRequest, assignment_id: FromPath[uuid.UUID], data: JSONBody[Recusal]) -> Response[Json]:
    rt = runtime(request)
    dept = data.department if data.department is not UNSET else None
    result = rt.teams.recuse(ctx(request), assignment_id, data.inspector_id, data.reason, dept)
    return done(request, result)


@post(
    "/{assignment_id:uuid}/merge",
    **command(),
    summary="Merge this visit into another",
    description="When one target is drawn by two tasks in the same quarter: this visit (its task's items and teams) "
    "joins `into`, one visit for both tasks. The planners of this visit's lead department decide. Refused (422, "
    "`inspection_begun`) once a department's inspection of either visit has been opened: an inspection keeps the "
    "items and the visit it was opened with." + WRITE,
)
def merge(request: AnyRequest, assignment_id: FromPath[uuid.UUID], data: JSONBody[Merge]) -> Response[Json]:
    rt = runtime(request)
    return done(request, rt.merges.merge(ctx(request), assignment_id, data.into, data.reason))


def router() -> Router:
    return Router(
        "/assignments",
        route_handlers=[mine, get_assignment, recuse, merge],
        tags=["assignments"], security=SECURED,
    )
