"""From visit to publication over HTTP: thin handlers over ``services.usecases.execution.Execution``."""

import datetime as dt
import uuid
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, JSONBody, Parameter, QueryParameter

from domain.errors import FieldProblem, InvalidInputError
from services.api.tasks import WRITE, MinPosition, _ctx, _done, _given, _wait

UNSET = msgspec.UNSET
Limit = Annotated[int, Parameter(ge=1, le=500)]
Offset = Annotated[int, Parameter(ge=0)]
DATE = " Dates are YYYY-MM-DD; omitted, today."


def _ex(request: Request) -> Any:
    return request.app.state.runtime.execution


def _html(view: dict[str, Any]) -> Response:
    return Response(
        view["html"], media_type="text/html; charset=utf-8", headers={"X-Notice-SHA256": view["sha256"]}
    )


class _In(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class Findings(_In):
    inspected_on: str
    methods: list[str]
    findings: dict[str, dict[str, Any]]


class Reason(_In):
    reason: str


class OnDate(_In):
    on: str | None = None


class Approval(_In):
    approved_on: str | None = None


class Publication(_In):
    published_on: str | None = None


class Push(_In):
    state: str
    on: str | None = None
    channel: str = "data_push"
    reference: str = ""
    reason: str = ""


class PreVisit(_In):
    issued_on: str | None = None
    visit_from: str | None = None
    visit_to: str | None = None


class Sending(_In):
    method: str
    sent_on: str | None = None
    recipient: str = ""
    note: str = ""


class Delivery(_In):
    method: str
    delivered_on: str | None = None
    recipient: str = ""
    note: str = ""


class ResultIssue(_In):
    issued_on: str | None = None


class Documents(_In):
    documents: list[dict[str, Any]]
    note: str = ""


class ReferralIn(_In):
    inspection_id: str
    item: str
    kind: str
    to: str
    reason: str
    copy_to: str = ""
    transferred_on: str | None = None
    documents: list[dict[str, Any]] = []
    respond_by: str | None = None
    outcome_by: str | None = None


class Receipt(_In):
    on: str | None = None
    reference: str = ""


class Acceptance(_In):
    on: str | None = None
    note: str = ""


class Rejection(_In):
    reason: str
    on: str | None = None


class Outcome(_In):
    text: str
    on: str | None = None
    documents: list[dict[str, Any]] = []


class Extension(_In):
    deadline: str
    new: str
    reason: str


class ClueIn(_In):
    source: str
    department: str
    target_id: str
    received_on: str
    summary: str
    items: list[str]
    reference: str = ""
    method: str = ""
    evidence: list[dict[str, Any]] = []
    period: str | msgspec.UnsetType = UNSET


class FollowUpPlan(_In):
    period: str
    department: str | msgspec.UnsetType = UNSET
    ratio: str | msgspec.UnsetType = UNSET


class FollowUpDraw(_In):
    external_entropy: str = ""


class Visit(_In):
    target_id: str
    method: str
    visited_on: str | None = None
    opinions: str = ""
    problems: str = ""


class Escalation(_In):
    target_id: str
    authority: str
    reason: str
    on: str | None = None


class EscalationOutcome(_In):
    target_id: str
    outcome: str
    on: str | None = None


class Feedback(_In):
    target_id: str
    feedback: str
    method: str = "letter"
    on: str | None = None


class Schedule(_In):
    year: int
    holidays: list[str]
    workdays: list[str]
    source: str = ""


# -- a visit's inspections -------------------------------------------------------------------------------------
@get(
    "/{assignment_id:uuid}/inspections",
    sync_to_thread=True,
    summary="A visit's inspections, per department",
    description="Each participating department's inspection of the visit: id, review state, deadline, overdue, "
    "push state (`not_entered` and `opened: false` before its first use). The visit's departments' staff, admins "
    "and auditors.",
)
def visit_inspections(
    request: Request, assignment_id: FromPath[uuid.UUID], min_position: MinPosition = None
) -> dict[str, Any]:
    _wait(request, min_position)
    return request.app.state.runtime.inspections.visit_inspections(request.user, assignment_id)  # type: ignore[no-any-return]


@post(
    "/{assignment_id:uuid}/inspections/{department:str}",
    sync_to_thread=True,
    summary="Open a department's inspection",
    description="Opens the department's inspection of the visit from the assignment (its items, its team); "
    "entering findings does it too. The department's staff or an admin. Its id is uuid5 of (assignment, "
    "department)." + WRITE,
)
def open_inspection(
    request: Request, assignment_id: FromPath[uuid.UUID], department: FromPath[str]
) -> Response:
    return _done(request, request.app.state.runtime.inspections.open_inspection(_ctx(request), assignment_id, department))


@post(
    "/{assignment_id:uuid}/inspections/{department:str}/findings",
    sync_to_thread=True,
    summary="Enter findings (谁检查、谁录入)",
    description="Only an inspector of the department's team on this visit (token subject = inspector id or staff "
    "id; the team follows recusals). `inspected_on` (not in the future), `methods` (on_site, documentary, testing, "
    "online_monitoring, video, drone, remote_sensing, power_use_monitoring, big_data, entrusted_body) and "
    "`findings`: item id -> `{result, description, evidence: [{sha256, size, name, media_type}], measures: "
    "[{kind, deadline, note}], confidential: [description|evidence|measures]}`. `result` is a code of the "
    "result vocabulary (no_problem, corrected, follow_up_pending, not_disclosed, falsified, unreachable, "
    "activity_not_found, closed, uncooperative, deregistered); a problem found needs a description; "
    "`order_correction` needs a deadline. Evidence must be uploaded first (POST /evidence). An item entered "
    "again is replaced; only before review or after a return. Anyone else: 403, nothing stored." + WRITE,
)
def record_findings(
    request: Request, assignment_id: FromPath[uuid.UUID], department: FromPath[str], data: JSONBody[Findings]
) -> Response:
    done = request.app.state.runtime.inspections.record_findings(
        _ctx(request), assignment_id, department, msgspec.structs.asdict(data)
    )
    return _done(request, done)


# -- notices ------------------------------------------------------------------------------------------------------
@get(
    "/{assignment_id:uuid}/notices",
    sync_to_thread=True,
    summary="A visit's notices and shared documents",
    description="The pre-visit notice (issued, documents listed, SHA-256 of the HTML, sendings), the result notice "
    "(issued, deliveries) and the documents the departments shared (资料互通). The visit's departments' staff, "
    "admins and auditors.",
)
def notices(request: Request, assignment_id: FromPath[uuid.UUID]) -> dict[str, Any]:
    return request.app.state.runtime.notices.notices_view(request.user, assignment_id)  # type: ignore[no-any-return]


@get(
    "/{assignment_id:uuid}/notices/pre-visit",
    sync_to_thread=True,
    summary="The pre-visit notice (一次告知书), HTML",
    media_type="text/html; charset=utf-8",
    description="Printable HTML (A4, Chinese): every document required by any item of any participating department, "
    "listed once with the departments needing it, and the items per department. Once issued, the issued notice "
    "(same bytes: `X-Notice-SHA256` equals the recorded SHA-256); before, a preview for `visit_from`/`visit_to`/"
    "`issued_on` (default: the visit date, today).",
)
def pre_visit_notice(
    request: Request,
    assignment_id: FromPath[uuid.UUID],
    visit_from: Annotated[str | None, Parameter()] = None,
    visit_to: Annotated[str | None, Parameter()] = None,
    issued_on: Annotated[str | None, Parameter()] = None,
) -> Response:
    params = {"visit_from": visit_from, "visit_to": visit_to, "issued_on": issued_on}
    return _html(request.app.state.runtime.notices.pre_visit_notice(request.user, assignment_id, params))


@post(
    "/{assignment_id:uuid}/notices/pre-visit",
    sync_to_thread=True,
    summary="Issue the pre-visit notice",
    description="The lead department's staff record the notice: visit window, the documents listed and the "
    "SHA-256 of the HTML. Re-issuing replaces it (before the result notice)." + DATE + WRITE,
)
def issue_pre_visit(
    request: Request, assignment_id: FromPath[uuid.UUID], data: JSONBody[PreVisit]
) -> Response:
    return _done(
        request,
        request.app.state.runtime.notices.issue_pre_visit_notice(_ctx(request), assignment_id, msgspec.structs.asdict(data)),
    )


@post(
    "/{assignment_id:uuid}/notices/pre-visit/sent",
    sync_to_thread=True,
    summary="Record the pre-visit notice as sent",
    description="When and how (`method`: in_person, post, electronic, other), to whom." + DATE + WRITE,
)
def pre_visit_sent(request: Request, assignment_id: FromPath[uuid.UUID], data: JSONBody[Sending]) -> Response:
    return _done(
        request,
        request.app.state.runtime.notices.record_pre_visit_sent(_ctx(request), assignment_id, msgspec.structs.asdict(data)),
    )


@post(
    "/{assignment_id:uuid}/documents",
    sync_to_thread=True,
    summary="Share documents with the visit's departments (资料互通)",
    description="Evidence-store files (uploaded with POST /evidence) a participating department shares before the "
    "visit; every department of the visit sees them (GET /notices)." + WRITE,
)
def share_documents(
    request: Request, assignment_id: FromPath[uuid.UUID], data: JSONBody[Documents]
) -> Response:
    return _done(
        request, request.app.state.runtime.notices.share_documents(_ctx(request), assignment_id, data.documents, data.note)
    )


@get(
    "/{assignment_id:uuid}/notices/result",
    sync_to_thread=True,
    summary="The result notice (一表告知), HTML",
    media_type="text/html; charset=utf-8",
    description="Every department's result per item on one printable form, once every participating department "
    "approved (else 422 naming who has not). Confidential fields and evidence never appear on it.",
)
def result_notice(
    request: Request, assignment_id: FromPath[uuid.UUID], issued_on: Annotated[str | None, Parameter()] = None
) -> Response:
    return _html(request.app.state.runtime.notices.result_notice(request.user, assignment_id, issued_on))


@post(
    "/{assignment_id:uuid}/notices/result",
    sync_to_thread=True,
    summary="Issue the result notice",
    description="The lead department's staff, once every department approved; records the HTML's SHA-256."
    + DATE
    + WRITE,
)
def issue_result(
    request: Request, assignment_id: FromPath[uuid.UUID], data: JSONBody[ResultIssue]
) -> Response:
    return _done(request, request.app.state.runtime.notices.issue_result_notice(_ctx(request), assignment_id, data.issued_on))


@post(
    "/{assignment_id:uuid}/notices/result/delivered",
    sync_to_thread=True,
    summary="Record the result notice's delivery",
    description="送达: when, how (`method`: in_person, post, electronic, other), to whom." + DATE + WRITE,
)
def result_delivered(
    request: Request, assignment_id: FromPath[uuid.UUID], data: JSONBody[Delivery]
) -> Response:
    return _done(
        request,
        request.app.state.runtime.notices.record_result_delivered(_ctx(request), assignment_id, msgspec.structs.asdict(data)),
    )


# -- inspections ----------------------------------------------------------------------------------------------------
@get(
    "/",
    sync_to_thread=True,
    summary="List inspections",
    description="Your department's inspections (admins and auditors: all, or `department`): state, deadline, "
    "`provisional`, `overdue` (approved, unpublished, past the deadline; computed for today or `as_of`), push "
    "state. Filters: state, assignment_id, target_id, overdue, provisional, push_state.",
)
def list_inspections(
    request: Request,
    department: Annotated[str | None, Parameter()] = None,
    review_state: Annotated[str | None, QueryParameter(name="state")] = None,
    assignment_id: Annotated[str | None, Parameter()] = None,
    target_id: Annotated[str | None, Parameter()] = None,
    overdue: Annotated[bool | None, Parameter()] = None,
    provisional: Annotated[bool | None, Parameter()] = None,
    push_state: Annotated[str | None, Parameter()] = None,
    as_of: Annotated[dt.date | None, Parameter()] = None,
    limit: Limit = 50,
    offset: Offset = 0,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    _wait(request, min_position)
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
    return request.app.state.runtime.inspections.list_inspections(request.user, filters, limit, offset)  # type: ignore[no-any-return]


@get(
    "/{inspection_id:uuid}",
    sync_to_thread=True,
    summary="An inspection",
    description="Items, team, state, findings, review history, deadline (`provisional` when it counts a year no "
    "calendar covers), overdue, working days left, publication, push state. Confidential fields: only the team, "
    "the department's reviewers and auditors; the visit's other departments see them redacted; others 403.",
)
def get_inspection(request: Request, inspection_id: FromPath[uuid.UUID]) -> dict[str, Any]:
    return request.app.state.runtime.inspections.inspection_view(request.user, inspection_id)  # type: ignore[no-any-return]


@post(
    "/{inspection_id:uuid}/submit",
    sync_to_thread=True,
    summary="Submit the findings for review",
    description="A team inspector, when every item has a finding: not_entered/returned -> awaiting_review."
    + WRITE,
)
def submit(request: Request, inspection_id: FromPath[uuid.UUID]) -> Response:
    return _done(request, request.app.state.runtime.inspections.submit(_ctx(request), inspection_id))


@post(
    "/{inspection_id:uuid}/return",
    sync_to_thread=True,
    summary="Return the findings (退回), with a reason",
    description="A reviewer of the department who is not on the team (no self-review): awaiting_review -> "
    "returned." + WRITE,
)
def return_(request: Request, inspection_id: FromPath[uuid.UUID], data: JSONBody[Reason]) -> Response:
    return _done(request, request.app.state.runtime.inspections.return_(_ctx(request), inspection_id, data.reason))


@post(
    "/{inspection_id:uuid}/approve",
    sync_to_thread=True,
    summary="Approve the findings",
    description="A reviewer of the department not on the team: awaiting_review -> approved, push state pending. "
    "The publication deadline is DUALRANDOM_PUBLICATION_WORKING_DAYS (20) working days after `approved_on` on "
    "the official calendar (holidays and make-up workdays); provisional when it counts a year no schedule "
    "covers." + DATE + WRITE,
)
def approve(
    request: Request, inspection_id: FromPath[uuid.UUID], data: JSONBody[Approval | None] = None
) -> Response:
    return _done(
        request, request.app.state.runtime.inspections.approve(_ctx(request), inspection_id, data.approved_on if data else None)
    )


@post(
    "/{inspection_id:uuid}/publish",
    sync_to_thread=True,
    summary="Publish approved results (一公开)",
    description="The department's reviewers or an admin; only approved results. They appear in the public search "
    "(confidential fields removed); `published_late` says whether the deadline was missed." + DATE + WRITE,
)
def publish(
    request: Request, inspection_id: FromPath[uuid.UUID], data: JSONBody[Publication | None] = None
) -> Response:
    return _done(
        request, request.app.state.runtime.inspections.publish(_ctx(request), inspection_id, data.published_on if data else None)
    )


@post(
    "/{inspection_id:uuid}/push",
    sync_to_thread=True,
    summary="Record the push state (国家企业信用信息公示系统)",
    description="`state`: `pushed` (from pending or failed; `channel` data_push or manual_entry, `reference`), "
    "`failed` (from pending or pushed; `reason` required) or `confirmed` (from pushed). The department's "
    "reviewers or an admin; approved results only." + DATE + WRITE,
)
def push(request: Request, inspection_id: FromPath[uuid.UUID], data: JSONBody[Push]) -> Response:
    return _done(request, request.app.state.runtime.inspections.push(_ctx(request), inspection_id, msgspec.structs.asdict(data)))


# -- referrals --------------------------------------------------------------------------------------------------------
@post(
    "/",
    sync_to_thread=True,
    status_code=201,
    summary="Refer a finding (移送)",
    description="`kind`: `department` (`to`: a department code; it records receipt, accepts or rejects with a "
    "reason and reports the outcome), `judicial` (移送司法机关: `to` the public security organ, `copy_to` the "
    "procuratorate, required) or `discipline` (纪检监察). The referring department's staff; `documents` are "
    "evidence references; `respond_by`/`outcome_by` deadlines. One referral per finding and destination (409)."
    + DATE
    + WRITE,
)
def refer(request: Request, data: JSONBody[ReferralIn]) -> Response:
    return _done(request, request.app.state.runtime.referrals.refer(_ctx(request), msgspec.structs.asdict(data)), 201)


@get(
    "/",
    sync_to_thread=True,
    summary="List referrals",
    description="Referrals your department made (`direction=outgoing`) or received (`incoming`), both by default; "
    "admins and auditors all. Each with state, deadlines and `overdue` (deadlines passed without their step).",
)
def list_referrals(
    request: Request,
    direction: Annotated[str | None, Parameter()] = None,
    department: Annotated[str | None, Parameter()] = None,
    referral_state: Annotated[str | None, QueryParameter(name="state")] = None,
    kind: Annotated[str | None, Parameter()] = None,
    limit: Limit = 50,
    offset: Offset = 0,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    _wait(request, min_position)
    if direction not in (None, "incoming", "outgoing"):
        raise InvalidInputError([FieldProblem("direction", "choice", "must be incoming or outgoing")])
    filters = {"direction": direction, "department": department, "state": referral_state, "kind": kind}
    return request.app.state.runtime.referrals.list_referrals(request.user, filters, limit, offset)  # type: ignore[no-any-return]


@get(
    "/{referral_id:uuid}",
    sync_to_thread=True,
    summary="A referral",
    description="Every step: transfer, documents, receipt, decision, outcome, deadline extensions. Both departments' "
    "staff, admins and auditors.",
)
def get_referral(request: Request, referral_id: FromPath[uuid.UUID]) -> dict[str, Any]:
    return request.app.state.runtime.referrals.referral_view(request.user, referral_id)  # type: ignore[no-any-return]


def _step(request: Request, rid: uuid.UUID, step: str, data: Any) -> Response:
    return _done(request, request.app.state.runtime.referrals.referral_step(_ctx(request), rid, step, msgspec.structs.asdict(data)))


@post(
    "/{referral_id:uuid}/receipt",
    sync_to_thread=True,
    summary="Record the receipt (回执)",
    description="The receiving department (outside authorities: the referring department records it)."
    + DATE
    + WRITE,
)
def receipt(request: Request, referral_id: FromPath[uuid.UUID], data: JSONBody[Receipt]) -> Response:
    return _step(request, referral_id, "receipt", data)


@post(
    "/{referral_id:uuid}/accept",
    sync_to_thread=True,
    summary="Accept the referral",
    description="The receiving side." + DATE + WRITE,
)
def accept(request: Request, referral_id: FromPath[uuid.UUID], data: JSONBody[Acceptance]) -> Response:
    return _step(request, referral_id, "accept", data)


@post(
    "/{referral_id:uuid}/reject",
    sync_to_thread=True,
    summary="Reject the referral, with a reason",
    description="The receiving side." + DATE + WRITE,
)
def reject(request: Request, referral_id: FromPath[uuid.UUID], data: JSONBody[Rejection]) -> Response:
    return _step(request, referral_id, "reject", data)


@post(
    "/{referral_id:uuid}/outcome",
    sync_to_thread=True,
    summary="Report the outcome (处理结果)",
    description="The receiving side, after accepting." + DATE + WRITE,
)
def outcome(request: Request, referral_id: FromPath[uuid.UUID], data: JSONBody[Outcome]) -> Response:
    return _step(request, referral_id, "outcome", data)


@post(
    "/{referral_id:uuid}/deadlines",
    sync_to_thread=True,
    summary="Extend a deadline",
    description="The referring department moves `respond_by` or `outcome_by` (`deadline`) to `new`, with a reason."
    + WRITE,
)
def extend(request: Request, referral_id: FromPath[uuid.UUID], data: JSONBody[Extension]) -> Response:
    return _step(request, referral_id, "deadline", data)


@post(
    "/{referral_id:uuid}/documents",
    sync_to_thread=True,
    summary="Hand over further documents",
    description="Either side, until the referral is closed." + WRITE,
)
def add_documents(request: Request, referral_id: FromPath[uuid.UUID], data: JSONBody[Documents]) -> Response:
    return _step(request, referral_id, "documents", data)


# -- clues ------------------------------------------------------------------------------------------------------------
@post(
    "/",
    sync_to_thread=True,
    status_code=201,
    summary="Record a clue and open a case-triggered task (个案检查)",
    description="`source`: monitoring_alert (with its off-site `method`), complaint, referral_in, other. The "
    "department's planner: the target's credit-risk class is raised one step (an event on the target, A..D), "
    "and a case-triggered task (origin `case`, never counted as random) is opened for `items` in `period` "
    "(default: this quarter) with the target named. The clue is the task's reason; the events share the "
    "request's correlation id and the clue's id as causation id.",
)
def record_clue(request: Request, data: JSONBody[ClueIn]) -> Response:
    body = request.app.state.runtime.clues.record_clue(_ctx(request), _given(data))
    request.app.state.runtime.after_write()
    headers = {"X-Log-Position": str(body["position"])} if body.get("position") is not None else {}
    return Response(body, status_code=201, headers=headers)


# -- follow-up visits -------------------------------------------------------------------------------------------------
@post(
    "/",
    sync_to_thread=True,
    status_code=201,
    summary="Plan a follow-up round (执法回访)",
    description="The department's planner: the pool is every target the department inspected in `period`; the "
    "quota is `ratio` (default 10%) of it, rounded up; a secret seed is committed (its SHA-256 recorded)."
    + WRITE,
)
def plan_follow_up(request: Request, data: JSONBody[FollowUpPlan]) -> Response:
    d = _given(data)
    done = request.app.state.runtime.follow_ups.plan_follow_up(
        _ctx(request), d.get("department", request.user.department), d["period"], d.get("ratio")
    )
    return _done(request, done, 201)


@get(
    "/",
    sync_to_thread=True,
    summary="List follow-up rounds",
    description="Your department's rounds (admins and auditors: all, or `department`).",
)
def list_follow_ups(
    request: Request, department: Annotated[str | None, Parameter()] = None, min_position: MinPosition = None
) -> dict[str, Any]:
    _wait(request, min_position)
    return {"items": request.app.state.runtime.follow_ups.list_follow_ups(request.user, department)}


@get(
    "/{round_id:uuid}",
    sync_to_thread=True,
    summary="A follow-up round",
    description="Pool, quota, commitment, draw record, selected targets and their visits, escalations and feedback. "
    "The visitees' opinions are confidential: only the department's reviewers and auditors see them (others get "
    "null).",
)
def get_follow_up(request: Request, round_id: FromPath[uuid.UUID]) -> dict[str, Any]:
    return request.app.state.runtime.follow_ups.follow_up_view(request.user, round_id)  # type: ignore[no-any-return]


@post(
    "/{round_id:uuid}/draw",
    sync_to_thread=True,
    summary="Draw the visitees",
    description="Reveals the seed and draws the quota with the verifiable sampler of the target draws."
    + WRITE,
)
def draw_follow_up(
    request: Request, round_id: FromPath[uuid.UUID], data: JSONBody[FollowUpDraw | None] = None
) -> Response:
    return _done(
        request, request.app.state.runtime.follow_ups.draw_follow_up(_ctx(request), round_id, data.external_entropy if data else "")
    )


@get(
    "/{round_id:uuid}/verification",
    sync_to_thread=True,
    summary="Verify the follow-up draw",
    description="Re-runs the recorded draw over the recorded pool: `match`, or the first difference.",
)
def verify_follow_up(request: Request, round_id: FromPath[uuid.UUID]) -> dict[str, Any]:
    return request.app.state.runtime.follow_ups.verify_follow_up(request.user, round_id)  # type: ignore[no-any-return]


def _fstep(request: Request, rid: uuid.UUID, step: str, data: Any) -> Response:
    return _done(request, request.app.state.runtime.follow_ups.follow_up_step(_ctx(request), rid, step, msgspec.structs.asdict(data)))


@post(
    "/{round_id:uuid}/visits",
    sync_to_thread=True,
    summary="Record a follow-up visit",
    description="`method`: direct_visit, phone, questionnaire, symposium, letter; `opinions` (confidential), "
    "`problems` found. The department's staff; drawn targets only." + DATE + WRITE,
)
def follow_up_visit(request: Request, round_id: FromPath[uuid.UUID], data: JSONBody[Visit]) -> Response:
    return _fstep(request, round_id, "visit", data)


@post(
    "/{round_id:uuid}/escalations",
    sync_to_thread=True,
    summary="Escalate to discipline inspection (纪检监察)",
    description="A serious problem found on a visit, with the authority and the reason." + DATE + WRITE,
)
def follow_up_escalation(
    request: Request, round_id: FromPath[uuid.UUID], data: JSONBody[Escalation]
) -> Response:
    return _fstep(request, round_id, "escalation", data)


@post(
    "/{round_id:uuid}/escalation-outcomes",
    sync_to_thread=True,
    summary="Record an escalation's outcome",
    description="What discipline inspection decided." + DATE + WRITE,
)
def follow_up_escalation_outcome(
    request: Request, round_id: FromPath[uuid.UUID], data: JSONBody[EscalationOutcome]
) -> Response:
    return _fstep(request, round_id, "escalation_outcome", data)


@post(
    "/{round_id:uuid}/feedback",
    sync_to_thread=True,
    summary="Give feedback to the visitee",
    description="How the opinions and problems were handled (反馈)." + DATE + WRITE,
)
def follow_up_feedback(request: Request, round_id: FromPath[uuid.UUID], data: JSONBody[Feedback]) -> Response:
    return _fstep(request, round_id, "feedback", data)


# -- calendar ---------------------------------------------------------------------------------------------------------
@get(
    "/",
    sync_to_thread=True,
    summary="The working-day calendar",
    description="Years covered (the chinese-calendar package's and those loaded), the schedules loaded by admins, "
    "and the publication deadline in working days.",
)
def calendar(request: Request) -> dict[str, Any]:
    return request.app.state.runtime.calendar.calendar_view()  # type: ignore[no-any-return]


@get(
    "/deadline",
    sync_to_thread=True,
    summary="Compute a working-day deadline",
    description="`start` + `working_days` (default: the publication deadline) working days: the date, and "
    "`provisional` with the uncovered years when a year counted has no schedule.",
)
def deadline(
    request: Request,
    start: Annotated[dt.date, Parameter()],
    working_days: Annotated[int | None, Parameter(ge=0, le=3650)] = None,
) -> dict[str, Any]:
    return request.app.state.runtime.calendar.deadline(start, working_days)  # type: ignore[no-any-return]


@post(
    "/schedules",
    sync_to_thread=True,
    summary="Load a year's official schedule (JSON)",
    description="Admins only. `{year, holidays: [dates], workdays: [make-up workdays, weekends], source}`; all dates "
    "in `year`. Replaces an earlier schedule of that year (the event keeps it). Provisional deadlines that counted "
    "the year are recomputed in the same transaction (`recomputed`)." + WRITE,
)
def load_schedule(request: Request, data: JSONBody[Schedule]) -> Response:
    done = request.app.state.runtime.calendar.load_schedule(_ctx(request), msgspec.json.encode(data), "json")
    return _done(request, done)


@post(
    "/schedules/import",
    sync_to_thread=True,
    summary="Load a year's schedule from a file (JSON or CSV)",
    description="Admins only. Multipart field `file`: `.json` as POST /calendar/schedules, or `.csv` with the header "
    "`date,kind` and one row per day (kind holiday/休 or workday/班), all in one year; optional field `source`."
    + WRITE,
)
def import_schedule(
    request: Request,
    data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)],
) -> Response:
    upload = data.get("file") if isinstance(data, dict) else None
    if not isinstance(upload, UploadFile):
        raise InvalidInputError(
            [FieldProblem("file", "required", "upload the file in the multipart field 'file'")]
        )
    name = (upload.filename or "").lower()
    fmt = "csv" if name.endswith(".csv") or "csv" in (upload.content_type or "") else "json"
    source = data.get("source") if isinstance(data.get("source"), str) else ""
    done = request.app.state.runtime.calendar.load_schedule(_ctx(request), upload.file.read(), fmt, source)
    return _done(request, done)


# -- evidence -------------------------------------------------------------------------------------------------------
@post(
    "/",
    sync_to_thread=True,
    status_code=201,
    summary="Upload an evidence file",
    description="Multipart field `file`. Stored once per content (SHA-256); answers the reference `{sha256, size, "
    "name, media_type}` to put in findings, shared documents or referrals. Allowed types: PDF, JPEG, PNG, TIFF, "
    "MP4, MP3, plain text, DOCX, XLSX, ZIP (the content must match the declared type); at most "
    "DUALRANDOM_MAX_UPLOAD_MB. Too large, empty or another type: 422 naming `file.size` / `file.media_type`.",
)
def upload_evidence(
    request: Request,
    data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)],
) -> dict[str, Any]:
    upload = data.get("file") if isinstance(data, dict) else None
    if not isinstance(upload, UploadFile):
        raise InvalidInputError(
            [FieldProblem("file", "required", "upload the file in the multipart field 'file'")]
        )
    return request.app.state.runtime.evidence.upload_evidence(
        request.user,
        upload.file,
        upload.filename or "",  # type: ignore[no-any-return]
        upload.content_type or "",
    )


@get(
    "/{sha256:str}",
    sync_to_thread=True,
    summary="Download an evidence file",
    media_type="application/octet-stream",
    description="By SHA-256; every role but `partner`.",
)
def download_evidence(request: Request, sha256: FromPath[str]) -> Response:
    content = b"".join(request.app.state.runtime.evidence.open_evidence(request.user, sha256))
    return Response(content, media_type="application/octet-stream")


# -- publicity ------------------------------------------------------------------------------------------------------
@get(
    "/export",
    sync_to_thread=True,
    summary="Export for 国家企业信用信息公示系统（河南）",
    media_type="application/octet-stream",
    description="`format=json`: the data-push file (raninsPlanId, raninsPlaneName, raninsTaskId, raninsTaskName, "
    "raninsTypeName 定向/不定向, insAuth, insDate, uniscid, entName, details[raninsItemName, raninsCheckResName]); "
    "`xlsx` / `csv` (UTF-8 with BOM): the manual-entry sheet, one row per item. Approved results of `department` "
    "(default yours; `published_only`, approval date `since`/`until`); confidential fields never. The department's "
    "reviewers and planners, admins, auditors.",
)
def export(
    request: Request,
    format: Annotated[str, Parameter()] = "json",
    department: Annotated[str | None, Parameter()] = None,  # noqa: A002
    published_only: Annotated[bool, Parameter()] = False,
    since: Annotated[dt.date | None, Parameter()] = None,
    until: Annotated[dt.date | None, Parameter()] = None,
    min_position: MinPosition = None,
) -> Response:
    _wait(request, min_position)
    content, media, name = request.app.state.runtime.publicity.export(request.user, format, department, published_only, since, until)
    return Response(
        content, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@get(
    "/results",
    sync_to_thread=True,
    summary="Search published results (public, no token)",
    description="Published results only, newest first, with confidential fields and evidence removed: plan, task, "
    "type, inspecting authority, date, enterprise name and credit code, per item its name, result and public "
    "description and measures. `q`: part of the enterprise name or the start of its credit code.",
)
def public_results(
    request: Request,
    q: Annotated[str | None, Parameter()] = None,
    limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
    offset: Offset = 0,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    _wait(request, min_position)
    return request.app.state.runtime.publicity.public_results(q, limit, offset)  # type: ignore[no-any-return]


def execution_routers() -> list[Router]:
    return [
        Router(
            "/assignments",
            route_handlers=[
                visit_inspections,
                open_inspection,
                record_findings,
                notices,
                pre_visit_notice,
                issue_pre_visit,
                pre_visit_sent,
                share_documents,
                result_notice,
                issue_result,
                result_delivered,
            ],
            tags=["execution"],
        ),
        Router(
            "/inspections",
            route_handlers=[list_inspections, get_inspection, submit, return_, approve, publish, push],
            tags=["execution"],
        ),
        Router(
            "/referrals",
            route_handlers=[
                refer,
                list_referrals,
                get_referral,
                receipt,
                accept,
                reject,
                outcome,
                extend,
                add_documents,
            ],
            tags=["referrals"],
        ),
        Router("/clues", route_handlers=[record_clue], tags=["referrals"]),
        Router(
            "/follow-ups",
            route_handlers=[
                plan_follow_up,
                list_follow_ups,
                get_follow_up,
                draw_follow_up,
                verify_follow_up,
                follow_up_visit,
                follow_up_escalation,
                follow_up_escalation_outcome,
                follow_up_feedback,
            ],
            tags=["follow-ups"],
        ),
        Router(
            "/calendar",
            route_handlers=[calendar, deadline, load_schedule, import_schedule],
            tags=["calendar"],
        ),
        Router("/evidence", route_handlers=[upload_evidence, download_evidence], tags=["execution"]),
        Router("/publicity", route_handlers=[export], tags=["publicity"]),
        Router("/public", route_handlers=[public_results], tags=["public"]),
    ]
