"""The public search of published results (no token), answered from the public answers' cache
(``services.api.public_cache``) when asked anonymously without ``min_position``."""

from typing import Annotated, Any, Literal

import anyio.to_thread
import msgspec
from litestar import Request, Response, Router, get
from litestar.exceptions import ValidationException
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi import ResponseSpec
from litestar.params import Parameter

from domain.execution.vocabulary import DEFAULT_RESULT_CODES
from domain.text import normalise_newlines
from projections.directory.queries import COUNT_CAP
from services.api.common import (
    AnyRequest,
    MinPosition,
    Offset,
    answers,
    runtime,
    wait,
)
from services.api.middleware import SESSION_COOKIE
from services.api.public_cache import Answer, PublicAnswers, fast_path, representation
from services.api.schemas import Page
from services.runtime import Runtime

JSON = "application/json"
NOT_MODIFIED = ResponseSpec(data_container=None, media_type="application/octet-stream", generate_examples=False,
                            description="not modified: `If-None-Match` named the ETag of the answer as it is now "
                            "(no body)")


def personal(request: Request[Any, Any, Any]) -> bool:
    """A request that carries a token or a session cookie: read from the database, never from the cache."""
    return bool(request.headers.get("authorization") or request.cookies.get(SESSION_COOKIE))


def data_key(q: str | None, limit: int, offset: int, department: str | None = None, year: int | None = None,
             result_code: str | None = None, exact_total: bool = False) -> tuple[Any, ...]:
    return ("data", q, limit, offset, department, year, result_code, exact_total)


def read_data(rt: Runtime, q: str | None, limit: int, offset: int, department: str | None = None,
              year: int | None = None, result_code: str | None = None, exact_total: bool = False) -> tuple[bytes, Any]:
    """The use case's answer of a normalised query and its JSON bytes (a worker thread): a data entry."""
    found = rt.publicity.public_results(q, limit, offset, department=department, year=year, result_code=result_code,
                                        exact_total=exact_total)
    return msgspec.json.encode(found), found


def cached_response(request: Request[Any, Any, Any], answer: Answer, media_type: str,
                    answers: PublicAnswers | None = None, year: int | None = None) -> Response[bytes]:
    """200 with the body (gzip when accepted), or 304 when ``If-None-Match`` names its ETag; revalidated on every
    use (no-cache). With ``answers``, the fast path answers the same path and query from now on while the read
    models stay where they are (``year``: and while it is that year)."""
    if answers is not None:
        answers.remember(request.scope, answer, media_type, year)
    status, headers, body = representation(answer, media_type, request.headers.get("accept-encoding"),
                                           request.headers.get("if-none-match"))
    named = {k.decode(): v.decode() for k, v in headers if k != b"content-type"}
    # litestar adds "; charset=utf-8" to a text/* type itself
    return Response(body, status_code=status, headers=named, media_type=media_type.partition(";")[0])


PARAMETERS = ("q", "limit", "offset", "min_position", "department", "year", "result", "count")
RESULT_CODES = tuple(c.code for c in DEFAULT_RESULT_CODES)


def _known_parameters(request: Request[Any, Any, Any]) -> None:
    """A parameter the search does not know is a 400 naming it (as every listing's unknown filter), never
    silently ignored: a reader who asks for ``year=2023`` must not get every year."""
    unknown = sorted(k for k in request.query_params if k not in PARAMETERS)
    if unknown:
        raise ValidationException("invalid query parameters", extra=[
            {"key": k, "message": f"unknown parameter; use one of {', '.join(PARAMETERS)}", "source": "query"}
            for k in unknown])


@get(
    "/results",
    responses={**answers(200, Page, (400, 422), also=(429, 503)), 304: NOT_MODIFIED},
    summary="Search published results (public, no token)",
    description="Published results only, newest first, with confidential fields and evidence removed: plan, task, "
    "type, inspecting authority, date, enterprise name and credit code, per item its name, result and public "
    "description and measures. `q`: part of the enterprise name or the start of its credit code. Answers carry an "
    "`ETag` (`Cache-Control: no-cache`): `If-None-Match` with it gets 304 while the published results are "
    "unchanged. A new publication is in the answer of the first request after the read model applied it. "
    "`department`, `year` and `result` filter as the results page does; any other parameter is a 400 naming it. "
    f"`total` is exact up to {COUNT_CAP} matches, else {COUNT_CAP} with `total_exact: false` (`count=exact` counts "
    "all); `next_offset` is the next page's `offset` (null after the last).",
)
async def public_results(
    request: AnyRequest,
    q: Annotated[str | None, Parameter(description="part of the enterprise name, or the start of its credit code")] = None,
    limit: Annotated[int, Parameter(ge=1, le=100, description="page size")] = 20,
    offset: Offset = 0,
    min_position: MinPosition = None,
    department: Annotated[str | None, Parameter(
        pattern=r"^[a-z][a-z0-9-]{1,31}$", description="the inspecting department's code (e.g. hj-eeb)")] = None,
    year: Annotated[int | None, Parameter(ge=2000, le=2100, description="the year of the inspection")] = None,
    result: Annotated[str | None, Parameter(
        description="a result code: " + ", ".join(RESULT_CODES))] = None,
    count: Annotated[Literal["capped", "exact"], Parameter(
        description=f"`capped` (default): `total` counts up to {COUNT_CAP} matches (`total_exact: false` when there "
        "are more); `exact`: counts them all (slow over many matches)")] = "capped",
) -> Response[Any]:
    _known_parameters(request)
    if result is not None and result not in RESULT_CODES:
        raise ValidationException("invalid query parameters", extra=[
            {"key": "result", "message": f"must be one of {', '.join(RESULT_CODES)}", "source": "query"}])
    rt = runtime(request)
    text = normalise_newlines(q or "").strip() or None
    exact = count == "exact"
    if min_position is not None or personal(request):  # exact read-your-writes: the database, not the cache

        def read() -> dict[str, Any]:
            wait(request, min_position)
            return rt.publicity.public_results(text, limit, offset, department=department, year=year,
                                               result_code=result, exact_total=exact)

        return Response(await anyio.to_thread.run_sync(read), media_type=JSON)
    answers: PublicAnswers = request.app.state["public_answers"]
    token = await answers.token()
    found = await answers.answer(data_key(text, limit, offset, department, year, result, exact), token,
                                 lambda _: read_data(rt, text, limit, offset, department, year, result, exact))
    return cached_response(request, found, JSON, answers)


def router(rate_per_minute: int = 0) -> Router:
    """The public routes; requests (no token) limited per client address to ``rate_per_minute`` (0: no limit):
    429 problem+json with Retry-After past it (counted per process)."""
    limit = [RateLimitConfig(rate_limit=("minute", rate_per_minute)).middleware] if rate_per_minute else []
    return Router(
        "/public",
        route_handlers=[public_results],
        tags=["public"],
        middleware=[*limit, fast_path],  # the fast path after the rate limit: it counts every request
    )
