"""Follow-up rounds (执法回访)."""

import uuid
from typing import Any

import msgspec
from litestar import Response, Router, get, post
from litestar.params import FromPath, JSONBody

from services.api.common import (
    DATE,
    READ,
    SECURED,
    WRITE,
    AnyRequest,
    Department,
    MinPosition,
    answers,
    command,
    ctx,
    done,
    given,
    runtime,
    wait,
)
from services.api.schemas import (
    Draw,
    Escalation,
    EscalationOutcome,
    Feedback,
    FollowUpPlan,
    FollowUpView,
    Items,
    Json,
    Verification,
    Visit,
)


@post(
    "/",
    **command(201),
    summary="Plan a follow-up round (执法回访)",
    description="The department's planner: the pool is every target the department inspected in `period`; the "
    "quota is `ratio` (default 10%) of it, rounded up; a secret seed is committed (its SHA-256 recorded). A period "
    "sharing a month with another round of the department (`2024-05` and `2024Q2`) is refused (409 naming it) "
    "unless `overlaps` names every such round and `overlap_reason` says why; the round records them. "
    "`entropy_source` declares the public source of the draw's external entropy (e.g. "
    "`福彩3D 2024年第150期开奖号码`; '' for none), fixed before anyone knows its value."
    + WRITE,
)
def plan_follow_up(request: AnyRequest, data: JSONBody[FollowUpPlan]) -> Response[Json]:
    rt = runtime(request)
    d = given(data)
    result = rt.follow_ups.plan_follow_up(
        ctx(request), d.get("department", request.user.department), d["period"], d.get("ratio"),
        d.get("overlaps") or [], d.get("overlap_reason") or "", d.get("entropy_source") or "",
    )
    return done(request, result, 201)


@get(
    "/",
    responses=answers(200, Items, READ, also=(503,)),
    sync_to_thread=True,
    summary="List follow-up rounds",
    description="Your department's rounds (admins and auditors: all, or `department`).",
)
def list_follow_ups(
    request: AnyRequest, department: Department = None, min_position: MinPosition = None
) -> dict[str, Any]:
    rt = runtime(request)
    wait(request, min_position)
    return {"items": rt.follow_ups.list_follow_ups(request.user, department)}


@get(
    "/{round_id:uuid}",
    responses=answers(200, FollowUpView, READ),
    sync_to_thread=True,
    summary="A follow-up round",
    description="Pool, quota, commitment, draw record, selected targets and their visits, escalations and feedback. "
    "The visitees' opinions are confidential: only the department's reviewers and auditors see them (others get "
    "null).",
)
def get_follow_up(request: AnyRequest, round_id: FromPath[uuid.UUID]) -> dict[str, Any]:
    rt = runtime(request)
    return rt.follow_ups.follow_up_view(request.user, round_id)


@post(
    "/{round_id:uuid}/draw",
    **command(),
    summary="Draw the visitees",
    description="Reveals the seed and draws the quota with the verifiable sampler of the target draws, with the "
    "value published for the entropy source declared when the round was planned (`entropy_source` repeats it; a "
    "known kind's value has one form, e.g. 福彩3D: `159`; a round that declared none takes no external entropy). "
    "Waits (409 `checkpoint`, Retry-After, nothing recorded) until a signed checkpoint covering the round's "
    "planning (its pool) was published to partners, as a task's draw waits for its freeze."
    + WRITE,
)
def draw_follow_up(
    request: AnyRequest, round_id: FromPath[uuid.UUID], data: JSONBody[Draw | None] = None
) -> Response[Json]:
    rt = runtime(request)
    return done(request, rt.follow_ups.draw_follow_up(
        ctx(request), round_id, data.external_entropy if data else "", data.entropy_source if data else ""))


@get(
    "/{round_id:uuid}/verification",
    responses=answers(200, Verification, READ),
    sync_to_thread=True,
    summary="Verify the follow-up draw",
    description="Checks what the standalone verifier (docs/verifier/verify_draws.py) checks, in its order and with "
    "its texts (docs/verifying-a-draw.md section 17, \"What a verifier checks\"): one `Drawn` event; `position` an "
    "integer below the `Planned` event's own; the pool re-derived from the log's inspection events up to `position` "
    "(inclusive) equal to the recorded one; the quota from the ratio; the commitment, the entropy source and "
    "`strata.all.quota` of the draw against the plan; then the draw re-run over that pool. `match`, or the first "
    "difference. A version 1 round (`position` null) is re-derived from the events before its `Planned` event: "
    "when that pool differs, `skipped` is true (neither a match nor a mismatch).",
)
def verify_follow_up(request: AnyRequest, round_id: FromPath[uuid.UUID]) -> dict[str, Any]:
    rt = runtime(request)
    return rt.follow_ups.verify_follow_up(request.user, round_id)


def _fstep(request: AnyRequest, rid: uuid.UUID, step: str, data: Any) -> Response:
    rt = runtime(request)
    return done(request, rt.follow_ups.follow_up_step(ctx(request), rid, step, msgspec.structs.asdict(data)))


@post(
    "/{round_id:uuid}/visits",
    **command(),
    summary="Record a follow-up visit",
    description="`method`: direct_visit, phone, questionnaire, symposium, letter; `opinions` (confidential), "
    "`problems` found. The department's staff; drawn targets only." + DATE + WRITE,
)
def follow_up_visit(request: AnyRequest, round_id: FromPath[uuid.UUID], data: JSONBody[Visit]) -> Response[Json]:
    return _fstep(request, round_id, "visit", data)


@post(
    "/{round_id:uuid}/escalations",
    **command(),
    summary="Escalate to discipline inspection (纪检监察)",
    description="A serious problem found on a visit, with the authority and the reason." + DATE + WRITE,
)
def follow_up_escalation(
    request: AnyRequest, round_id: FromPath[uuid.UUID], data: JSONBody[Escalation]
) -> Response[Json]:
    return _fstep(request, round_id, "escalation", data)


@post(
    "/{round_id:uuid}/escalation-outcomes",
    **command(),
    summary="Record an escalation's outcome",
    description="What discipline inspection decided." + DATE + WRITE,
)
def follow_up_escalation_outcome(
    request: AnyRequest, round_id: FromPath[uuid.UUID], data: JSONBody[EscalationOutcome]
) -> Response[Json]:
    return _fstep(request, round_id, "escalation_outcome", data)


@post(
    "/{round_id:uuid}/feedback",
    **command(),
    summary="Give feedback to the visitee",
    description="How the opinions and problems were handled (反馈)." + DATE + WRITE,
)
def follow_up_feedback(request: AnyRequest, round_id: FromPath[uuid.UUID], data: JSONBody[Feedback]) -> Response[Json]:
    return _fstep(request, round_id, "feedback", data)


def router() -> Router:
    return Router(
        "/follow-ups",
        route_handlers=[plan_follow_up, list_follow_ups, get_follow_up, draw_follow_up, verify_follow_up, follow_up_visit, follow_up_escalation, follow_up_escalation_outcome, follow_up_feedback],
        tags=["follow-ups"], security=SECURED,
    )
