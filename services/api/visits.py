"""A visit's inspections per department, findings, notices and shared documents."""

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Response, Router, get, post
from litestar.params import FromPath, JSONBody, Parameter

from services.api.common import (
    DATE,
    READ,
    SECURED,
    WRITE,
    AnyRequest,
    MinPosition,
    answers,
    command,
    ctx,
    done,
    example,
    runtime,
    wait,
)
from services.api.documents import Format, PrintableOperation, printed
from services.api.schemas import (
    Delivery,
    Documents,
    Findings,
    Json,
    NoticesView,
    PreVisit,
    ResultIssue,
    Sending,
    VisitInspections,
)


def _notice(request: AnyRequest, view: dict[str, Any], fmt: str | None, name: str) -> Response[Any]:
    """The notice as HTML (the bytes whose SHA-256 is recorded when issued: ``X-Notice-SHA256``) or PDF."""
    return printed(request, view["document"], fmt, name, html=view["html"], headers={"X-Notice-SHA256": view["sha256"]})


@get(
    "/{assignment_id:uuid}/inspections",
    responses=answers(200, VisitInspections, READ, also=(503,)),
    sync_to_thread=True,
    summary="A visit's inspections, per department",
    description="Each participating department's inspection of the visit: id, review state, deadline, overdue, "
    "push state (`not_entered` and `opened: false` before its first use). The visit's departments' staff, admins "
    "and auditors.",
)
def visit_inspections(
    request: AnyRequest, assignment_id: FromPath[uuid.UUID], min_position: MinPosition = None
) -> dict[str, Any]:
    rt = runtime(request)
    wait(request, min_position)
    return rt.inspections.visit_inspections(request.user, assignment_id)


@post(
    "/{assignment_id:uuid}/inspections/{department:str}",
    **command(),
    summary="Open a department's inspection",
    description="Opens the department's inspection of the visit from the assignment (its items, its team); "
    "entering findings does it too. The department's staff or an admin. Its id is uuid5 of (assignment, "
    "department)." + WRITE,
)
def open_inspection(
    request: AnyRequest, assignment_id: FromPath[uuid.UUID], department: FromPath[str]
) -> Response[Json]:
    rt = runtime(request)
    return done(request, rt.inspections.open_inspection(ctx(request), assignment_id, department))


@post(
    "/{assignment_id:uuid}/inspections/{department:str}/findings",
    **command(),
    summary="Enter findings (谁检查、谁录入)",
    description="Only an inspector of the department's team on this visit (token subject = inspector id or staff "
    "id; the team follows recusals). `inspected_on` (not in the future), `methods` (on_site, documentary, testing, "
    "online_monitoring, video, drone, remote_sensing, power_use_monitoring, big_data, entrusted_body) and "
    "`findings`: item id -> `{result, description, evidence: [{sha256, size, name, media_type}], measures: "
    "[{kind, deadline, note}], confidential: [description|evidence|measures]}`. `result` is a code of the "
    "result vocabulary (no_problem, corrected, follow_up_pending, not_disclosed, falsified, unreachable, "
    "activity_not_found, closed, uncooperative, deregistered); a problem found needs a description; "
    "`order_correction` needs a deadline. Evidence must be uploaded first (POST /evidence). An item entered "
    "again is replaced; only before review or after a return. Answers the state after the write (`entered`, "
    "or `returned` after a return). Anyone else: 403, nothing stored." + WRITE,
)
def record_findings(
    request: AnyRequest, assignment_id: FromPath[uuid.UUID], department: FromPath[str], data: Annotated[Findings, example("findings")]
) -> Response[Json]:
    rt = runtime(request)
    result = rt.inspections.record_findings(
        ctx(request), assignment_id, department, msgspec.structs.asdict(data)
    )
    return done(request, result)


@get(
    "/{assignment_id:uuid}/notices",
    responses=answers(200, NoticesView, READ),
    sync_to_thread=True,
    summary="A visit's notices and shared documents",
    description="The pre-visit notice (issued, documents listed, SHA-256 of the HTML, sendings), the result notice "
    "(issued, deliveries) and the documents the departments shared (资料互通). The visit's departments' staff, "
    "admins and auditors.",
)
def notices(request: AnyRequest, assignment_id: FromPath[uuid.UUID]) -> dict[str, Any]:
    rt = runtime(request)
    return rt.notices.notices_view(request.user, assignment_id)


@get(
    "/{assignment_id:uuid}/notices/pre-visit",
    responses=answers(200, None, READ, media_type="application/octet-stream"),
    sync_to_thread=True,
    summary="The pre-visit notice (一次告知书), HTML or PDF",
    media_type="application/octet-stream",
    operation_class=PrintableOperation,
    description="Printable (A4, Chinese): the 文号 (`<lead>-<task number>-<nn>`), the enterprise's name, credit code "
    "and address, every document required by any item of any participating department, listed once with the "
    "departments needing it, the items and the inspectors (names, certificate numbers) per department, the lead's "
    "contact and phone, every department in the signature. Once issued, the issued notice (same bytes: "
    "`X-Notice-SHA256` equals the recorded SHA-256 of the HTML); before, a preview for `visit_from`/`visit_to`/"
    "`issued_on` (default: the visit's date as one day, or 另行通知 while it has none; today). `format=pdf` (or "
    "`Accept: application/pdf`): the same notice as PDF.",
)
def pre_visit_notice(
    request: AnyRequest,
    assignment_id: FromPath[uuid.UUID],
    visit_from: Annotated[str | None, Parameter(description="preview: first visit day (YYYY-MM-DD)")] = None,
    visit_to: Annotated[str | None, Parameter(description="preview: last visit day (YYYY-MM-DD)")] = None,
    issued_on: Annotated[str | None, Parameter(description="preview: issue date (YYYY-MM-DD); default: today")] = None,
    format: Format = None,
) -> Response:
    rt = runtime(request)
    params = {"visit_from": visit_from, "visit_to": visit_to, "issued_on": issued_on}
    return _notice(request, rt.notices.pre_visit_notice(request.user, assignment_id, params), format,
                   f"pre-visit-notice-{assignment_id}")


@post(
    "/{assignment_id:uuid}/notices/pre-visit",
    **command(),
    summary="Issue the pre-visit notice",
    description="The lead department's staff record the notice: visit window, the documents listed and the "
    "SHA-256 of the HTML. Re-issuing replaces it (before the result notice)." + DATE + WRITE,
)
def issue_pre_visit(
    request: AnyRequest, assignment_id: FromPath[uuid.UUID], data: JSONBody[PreVisit]
) -> Response[Json]:
    rt = runtime(request)
    return done(
        request,
        rt.notices.issue_pre_visit_notice(ctx(request), assignment_id, msgspec.structs.asdict(data)),
    )


@post(
    "/{assignment_id:uuid}/notices/pre-visit/sent",
    **command(),
    summary="Record the pre-visit notice as sent",
    description="When and how (`method`: in_person, post, electronic, other), to whom." + DATE + WRITE,
)
def pre_visit_sent(request: AnyRequest, assignment_id: FromPath[uuid.UUID], data: JSONBody[Sending]) -> Response[Json]:
    rt = runtime(request)
    return done(
        request,
        rt.notices.record_pre_visit_sent(ctx(request), assignment_id, msgspec.structs.asdict(data)),
    )


@post(
    "/{assignment_id:uuid}/documents",
    **command(),
    summary="Share documents with the visit's departments (资料互通)",
    description="Evidence-store files (uploaded with POST /evidence) a participating department shares before the "
    "visit; every department of the visit sees them (GET /notices)." + WRITE,
)
def share_documents(
    request: AnyRequest, assignment_id: FromPath[uuid.UUID], data: JSONBody[Documents]
) -> Response[Json]:
    rt = runtime(request)
    return done(
        request, rt.notices.share_documents(ctx(request), assignment_id, data.documents, data.note)
    )


@get(
    "/{assignment_id:uuid}/notices/result",
    responses=answers(200, None, READ, media_type="application/octet-stream"),
    sync_to_thread=True,
    summary="The result notice (一表告知), HTML or PDF",
    media_type="application/octet-stream",
    operation_class=PrintableOperation,
    description="Every department's result per item on one printable form, once every participating department "
    "approved (else 422 naming who has not), with the 文号, the enterprise's credit code and address, each "
    "department's inspection date and inspectors (names, certificate numbers), the lead's contact and phone and "
    "every department in the signature. Evidence never appears on it. `format=pdf` (or `Accept: "
    "application/pdf`): the same notice as PDF.",
)
def result_notice(
    request: AnyRequest, assignment_id: FromPath[uuid.UUID],
    issued_on: Annotated[str | None, Parameter(description="preview: issue date (YYYY-MM-DD); default: today")] = None,
    format: Format = None,
) -> Response:
    rt = runtime(request)
    return _notice(request, rt.notices.result_notice(request.user, assignment_id, issued_on), format,
                   f"result-notice-{assignment_id}")


@post(
    "/{assignment_id:uuid}/notices/result",
    **command(),
    summary="Issue the result notice",
    description="The lead department's staff, once every department approved; records the HTML's SHA-256."
    + DATE
    + WRITE,
)
def issue_result(
    request: AnyRequest, assignment_id: FromPath[uuid.UUID], data: JSONBody[ResultIssue]
) -> Response[Json]:
    rt = runtime(request)
    return done(request, rt.notices.issue_result_notice(ctx(request), assignment_id, data.issued_on))


@post(
    "/{assignment_id:uuid}/notices/result/delivered",
    **command(),
    summary="Record the result notice's delivery",
    description="送达: when, how (`method`: in_person, post, electronic, other), to whom." + DATE + WRITE,
)
def result_delivered(
    request: AnyRequest, assignment_id: FromPath[uuid.UUID], data: JSONBody[Delivery]
) -> Response[Json]:
    rt = runtime(request)
    return done(
        request,
        rt.notices.record_result_delivered(ctx(request), assignment_id, msgspec.structs.asdict(data)),
    )


def router() -> Router:
    return Router(
        "/assignments",
        route_handlers=[visit_inspections, open_inspection, record_findings, notices, pre_visit_notice, issue_pre_visit, pre_visit_sent, share_documents, result_notice, issue_result, result_delivered],
        tags=["execution"], security=SECURED,
    )
