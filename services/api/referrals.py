"""Referrals (移送) and their steps."""

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
    example,
    runtime,
    wait,
)
from services.api.schemas import (
    DIRECTIONS,
    REFERRAL_KINDS,
    REFERRAL_STATES,
    Acceptance,
    Documents,
    Extension,
    Json,
    Outcome,
    Page,
    Receipt,
    ReferralIn,
    ReferralView,
    Rejection,
)


@post(
    "/",
    **command(201),
    summary="Refer a finding (移送)",
    description="`kind`: `department` (`to`: a department code; it records receipt, accepts or rejects with a "
    "reason and reports the outcome), `judicial` (移送司法机关: `to` the public security organ, `copy_to` the "
    "procuratorate, required) or `discipline` (纪检监察). The referring department's staff; `documents` are "
    "evidence references; `respond_by`/`outcome_by` deadlines. One referral per finding and destination (409)."
    + DATE
    + WRITE,
)
def refer(request: AnyRequest, data: Annotated[ReferralIn, example("referral")]) -> Response[Json]:
    rt = runtime(request)
    return done(request, rt.referrals.refer(ctx(request), msgspec.structs.asdict(data)), 201)


@get(
    "/",
    responses=answers(200, Page, READ, also=(503,)),
    sync_to_thread=True,
    summary="List referrals",
    description="Referrals your department made (`direction=outgoing`) or received (`incoming`), both by default; "
    "admins and auditors all. Each with state, deadlines and `overdue` (deadlines passed without their step).",
)
def list_referrals(
    request: AnyRequest,
    direction: Annotated[
        str | None, Parameter(description="made or received; default both", schema_extra={"enum": DIRECTIONS})
    ] = None,
    department: Department = None,
    referral_state: Annotated[
        str | None, QueryParameter(name="state", description="referral state", schema_extra={"enum": REFERRAL_STATES})
    ] = None,
    kind: Annotated[str | None, Parameter(description="referral kind", schema_extra={"enum": REFERRAL_KINDS})] = None,
    limit: Limit = 50,
    offset: Offset = 0,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    rt = runtime(request)
    wait(request, min_position)
    if direction not in (None, "incoming", "outgoing"):
        raise InvalidInputError([FieldProblem("direction", "choice", "must be incoming or outgoing")])
    for name, value, allowed in (("state", referral_state, REFERRAL_STATES), ("kind", kind, REFERRAL_KINDS)):
        if value is not None and value not in allowed:
            raise InvalidInputError([FieldProblem(name, "choice", f"must be one of: {', '.join(allowed)}")])
    filters = {"direction": direction, "department": department, "state": referral_state, "kind": kind}
    return rt.referrals.list_referrals(request.user, filters, limit, offset)


@get(
    "/{referral_id:uuid}",
    responses=answers(200, ReferralView, READ),
    sync_to_thread=True,
    summary="A referral",
    description="Every step: transfer, documents, receipt, decision, outcome, deadline extensions. Both departments' "
    "staff, admins and auditors.",
)
def get_referral(request: AnyRequest, referral_id: FromPath[uuid.UUID]) -> dict[str, Any]:
    rt = runtime(request)
    return rt.referrals.referral_view(request.user, referral_id)


def _step(request: AnyRequest, rid: uuid.UUID, step: str, data: Any) -> Response:
    rt = runtime(request)
    return done(request, rt.referrals.referral_step(ctx(request), rid, step, msgspec.structs.asdict(data)))


@post(
    "/{referral_id:uuid}/receipt",
    **command(),
    summary="Record the receipt (回执)",
    description="The receiving department (outside authorities: the referring department records it)."
    + DATE
    + WRITE,
)
def receipt(request: AnyRequest, referral_id: FromPath[uuid.UUID], data: JSONBody[Receipt]) -> Response[Json]:
    return _step(request, referral_id, "receipt", data)


@post(
    "/{referral_id:uuid}/accept",
    **command(),
    summary="Accept the referral",
    description="The receiving side." + DATE + WRITE,
)
def accept(request: AnyRequest, referral_id: FromPath[uuid.UUID], data: JSONBody[Acceptance]) -> Response[Json]:
    return _step(request, referral_id, "accept", data)


@post(
    "/{referral_id:uuid}/reject",
    **command(),
    summary="Reject the referral, with a reason",
    description="The receiving side." + DATE + WRITE,
)
def reject(request: AnyRequest, referral_id: FromPath[uuid.UUID], data: JSONBody[Rejection]) -> Response[Json]:
    return _step(request, referral_id, "reject", data)


@post(
    "/{referral_id:uuid}/outcome",
    **command(),
    summary="Report the outcome (处理结果)",
    description="The receiving side, after accepting." + DATE + WRITE,
)
def outcome(request: AnyRequest, referral_id: FromPath[uuid.UUID], data: JSONBody[Outcome]) -> Response[Json]:
    return _step(request, referral_id, "outcome", data)


@post(
    "/{referral_id:uuid}/deadlines",
    **command(),
    summary="Extend a deadline",
    description="The referring department moves `respond_by` or `outcome_by` (`deadline`) to `new`, with a reason."
    + WRITE,
)
def extend(request: AnyRequest, referral_id: FromPath[uuid.UUID], data: JSONBody[Extension]) -> Response[Json]:
    return _step(request, referral_id, "deadline", data)


@post(
    "/{referral_id:uuid}/documents",
    **command(),
    summary="Hand over further documents",
    description="Either side, until the referral is closed." + WRITE,
)
def add_documents(request: AnyRequest, referral_id: FromPath[uuid.UUID], data: JSONBody[Documents]) -> Response[Json]:
    return _step(request, referral_id, "documents", data)


def router() -> Router:
    return Router(
        "/referrals",
        route_handlers=[refer, list_referrals, get_referral, receipt, accept, reject, outcome, extend, add_documents],
        tags=["referrals"], security=SECURED,
    )
