"""Inspections: review, publication and push state."""

import datetime as dt
import uuid
from typing import Annotated, Any

import msgspec
from litestar import Response, Router, get, post
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter

from domain.errors import FieldProblem, InvalidInputError
from services.api.common import (
    DATE,
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
    runtime,
    wait,
)
from services.api.schemas import (
    ALL_PUSH_STATES,
    REVIEW_STATES,
    Approval,
    InspectionView,
    Json,
    Page,
    Publication,
    Push,
    Reason,
)


@get(
    "/",
    responses=answers(200, Page, READ, also=(503,)),
    sync_to_thread=True,
    summary="List inspections",
    description="Your department's inspections (admins and auditors: all, or `department`): state, deadline, "
    "`provisional`, `overdue` (approved, unpublished, past the deadline; computed for today or `as_of`), push "
    "state. Filters: state, assignment_id, target_id, overdue, provisional, push_state.",
)
def list_inspections(
    request: AnyRequest,
    department: Department = None,
    review_state: Annotated[
        str | None, QueryParameter(name="state", description="review state", schema_extra={"enum": REVIEW_STATES})
    ] = None,
    assignment_id: Annotated[str | None, Parameter(description="the visit")] = None,
    target_id: Annotated[str | None, Parameter(description="the target")] = None,
    overdue: Annotated[bool | None, Parameter(description="approved, unpublished, past the deadline")] = None,
    provisional: Annotated[bool | None, Parameter(description="deadline counts a year no calendar covers")] = None,
    push_state: Annotated[
        str | None, Parameter(description="push state", schema_extra={"enum": ALL_PUSH_STATES})
    ] = None,
    as_of: Annotated[dt.date | None, Parameter(description="compute `overdue` for this date; default: today")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    if push_state is not None and push_state not in ALL_PUSH_STATES:  # the documented enum, enforced
        raise InvalidInputError([FieldProblem("push_state", "choice", f"must be one of: {', '.join(ALL_PUSH_STATES)}")])
    rt = runtime(request)
    wait(request, min_position)
    filters = {
        "department": department,
        "state": review_state,
        "assignment_id": assignment_id,
        "target_id": target_id,
        "overdue": overdue,
        "provisional": provisional,
        "push_state": push_state,
        "as_of": as_of,
    }
    return rt.inspections.list_inspections(request.user, filters, limit, offset)


@get(
    "/{inspection_id:uuid}",
    responses=answers(200, InspectionView, READ),
    sync_to_thread=True,
    summary="An inspection",
    description="Items, team, state, findings, review history, deadline (`provisional` when it counts a year no "
    "calendar covers), overdue, working days left, publication, push state. Confidential fields: only the team, "
    "the department's reviewers and auditors; the visit's other departments see them redacted; others 403.",
)
def get_inspection(request: AnyRequest, inspection_id: FromPath[uuid.UUID]) -> dict[str, Any]:
    rt = runtime(request)
    return rt.inspections.inspection_view(request.user, inspection_id)


@post(
    "/{inspection_id:uuid}/submit",
    **command(),
    summary="Submit the findings for review",
    description="A team inspector, when every item has a finding: entered/returned -> awaiting_review."
    + WRITE,
)
def submit(request: AnyRequest, inspection_id: FromPath[uuid.UUID]) -> Response[Json]:
    rt = runtime(request)
    return done(request, rt.inspections.submit(ctx(request), inspection_id))


@post(
    "/{inspection_id:uuid}/return",
    **command(),
    summary="Return the findings (退回), with a reason",
    description="A reviewer of the department who is not on the team (no self-review): awaiting_review -> "
    "returned." + WRITE,
)
def return_(request: AnyRequest, inspection_id: FromPath[uuid.UUID], data: JSONBody[Reason]) -> Response[Json]:
    rt = runtime(request)
    return done(request, rt.inspections.return_(ctx(request), inspection_id, data.reason))


@post(
    "/{inspection_id:uuid}/approve",
    **command(),
    summary="Approve the findings",
    description="A reviewer of the department not on the team: awaiting_review -> approved, push state pending. "
    "The publication deadline is DUALRANDOM_PUBLICATION_WORKING_DAYS (20) working days after `approved_on` on "
    "the official calendar (holidays and make-up workdays); provisional when it counts a year no schedule "
    "covers." + DATE + WRITE,
)
def approve(
    request: AnyRequest, inspection_id: FromPath[uuid.UUID], data: JSONBody[Approval | None] = None
) -> Response[Json]:
    rt = runtime(request)
    return done(
        request, rt.inspections.approve(ctx(request), inspection_id, data.approved_on if data else None)
    )


@post(
    "/{inspection_id:uuid}/publish",
    **command(),
    summary="Publish approved results (一公开)",
    description="The department's reviewers or an admin; only approved results. They appear in the public search "
    "(confidential fields removed); `published_late` says whether the deadline was missed." + DATE + WRITE,
)
def publish(
    request: AnyRequest, inspection_id: FromPath[uuid.UUID], data: JSONBody[Publication | None] = None
) -> Response[Json]:
    rt = runtime(request)
    return done(
        request, rt.inspections.publish(ctx(request), inspection_id, data.published_on if data else None)
    )


@post(
    "/{inspection_id:uuid}/push",
    **command(),
    summary="Record the push state (国家企业信用信息公示系统)",
    description="`state`: `pushed` (from pending or failed; `channel` data_push or manual_entry, `reference`), "
    "`failed` (from pending or pushed; `reason` required) or `confirmed` (from pushed). The department's "
    "reviewers or an admin; approved results only." + DATE + WRITE,
)
def push(request: AnyRequest, inspection_id: FromPath[uuid.UUID], data: JSONBody[Push]) -> Response[Json]:
    rt = runtime(request)
    return done(request, rt.inspections.push(ctx(request), inspection_id, msgspec.structs.asdict(data)))


def router() -> Router:
    return Router(
        "/inspections",
        route_handlers=[list_inspections, get_inspection, submit, return_, approve, publish, push],
        tags=["execution"], security=SECURED,
    )
