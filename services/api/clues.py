"""Clues opening case-triggered tasks (个案检查)."""


from litestar import Response, Router, post
from litestar.params import JSONBody

from services.api.common import (
    SECURED,
    WRITE_PROBLEMS,
    AnyRequest,
    answers,
    ctx,
    given,
    runtime,
)
from services.api.schemas import ClueIn, ClueRecorded


@post(
    "/",
    responses=answers(201, ClueRecorded, WRITE_PROBLEMS),
    sync_to_thread=True,
    status_code=201,
    summary="Record a clue and open a case-triggered task (个案检查)",
    description="`source`: monitoring_alert (with its off-site `method`), complaint, referral_in, other. The "
    "department's planner: the target's credit-risk class is raised one step (an event on the target, A..D), "
    "and a case-triggered task (origin `case`, never counted as random) is opened for `items` in `period` "
    "(default: this quarter) with the target named. The clue is the task's reason; the events share the "
    "request's correlation id and the clue's id as causation id.",
)
def record_clue(request: AnyRequest, data: JSONBody[ClueIn]) -> Response:
    rt = runtime(request)
    body = rt.clues.record_clue(ctx(request), given(data))
    request.app.state.runtime.after_write()
    headers = {"X-Log-Position": str(body["position"])} if body.get("position") is not None else {}
    return Response(body, status_code=201, headers=headers)


def router() -> Router:
    return Router(
        "/clues",
        route_handlers=[record_clue],
        tags=["referrals"], security=SECURED,
    )
