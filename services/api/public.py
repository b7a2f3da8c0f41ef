"""The public search of published results (no token)."""

from typing import Annotated, Any

from litestar import Router, get
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.params import Parameter

from services.api.common import (
    AnyRequest,
    MinPosition,
    Offset,
    answers,
    runtime,
    wait,
)
from services.api.schemas import Page


@get(
    "/results",
    responses=answers(200, Page, (400, 422), also=(429, 503)),
    sync_to_thread=True,
    summary="Search published results (public, no token)",
    description="Published results only, newest first, with confidential fields and evidence removed: plan, task, "
    "type, inspecting authority, date, enterprise name and credit code, per item its name, result and public "
    "description and measures. `q`: part of the enterprise name or the start of its credit code.",
)
def public_results(
    request: AnyRequest,
    q: Annotated[str | None, Parameter(description="part of the enterprise name, or the start of its credit code")] = None,
    limit: Annotated[int, Parameter(ge=1, le=100, description="page size")] = 20,
    offset: Offset = 0,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    rt = runtime(request)
    wait(request, min_position)
    return rt.publicity.public_results(q, limit, offset)


def router(rate_per_minute: int = 0) -> Router:
    """The public routes; requests (no token) limited per client address to ``rate_per_minute`` (0: no limit):
    429 problem+json with Retry-After past it (counted per process)."""
    limit = [RateLimitConfig(rate_limit=("minute", rate_per_minute)).middleware] if rate_per_minute else []
    return Router(
        "/public",
        route_handlers=[public_results],
        tags=["public"],
        middleware=limit,
    )
