"""The litestar app factory: ``create_app(runtime)``."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Request, Router
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from services.api import (
    accounts,
    assignments,
    boards,
    calendar,
    clues,
    configuration,
    documents,
    evidence,
    followups,
    inspections,
    plans,
    public,
    publicity,
    referrals,
    tasks,
    visits,
)
from services.api.audit import audit_router
from services.api.body_limit import json_body_limit
from services.api.common import strict_body
from services.api.directory import directory_router
from services.api.errors import EXCEPTION_HANDLERS
from services.api.health import health, metrics, ready
from services.api.middleware import (
    PUBLIC_PATHS,
    BearerAuthMiddleware,
    PrincipalLookup,
    correlation_middleware,
    refuse_control_characters,
)
from services.api.overload import OverloadGuard
from services.api.public_cache import PublicAnswers
from services.api.waits import PositionWaits, await_min_position
from services.runtime import Runtime
from services.web import PUBLIC_PATTERNS, routes, security_headers, swagger_plugin, template_config
from services.web.redoc import redoc_plugin

DIRECTORIES = [
    ("department", "departments", "department (部门)", False),
    ("item", "items", "inspection item (抽查事项)", True),
    ("target", "targets", "target (检查对象)", True),
    ("inspector", "inspectors", "inspector (执法检查人员)", True),
    ("expert", "experts", "expert (专家库)", False),
]


def create_app(runtime: Runtime, *, background: bool = True) -> Litestar:
    """The HTTP app over an opened runtime; ``background`` runs projections in-process, and the relay and the
    checkpoint signer each while this process holds its lease (``services.infra.lease``)."""

    async def before_request(request: Request) -> None:
        await refuse_control_characters(request)
        await strict_body(request)
        await await_min_position(request)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        await app.state.principals.open()
        loop_writes = app.state.loop_writes = runtime.app.loop_writes()  # registrations (services/api/directory.py)
        if background and runtime.settings.projections_in_process:
            runtime.start_projections()
        if background:
            tasks.extend(asyncio.create_task(singleton) for singleton in runtime.singletons(stop))
        try:
            yield
        finally:
            stop.set()
            if tasks:  # together, not one after the other: the drain stays bounded
                _, late = await asyncio.wait(tasks, timeout=10)
                for t in late:
                    t.cancel()
            await app.state.principals.close()
            app.state.loop_writes = None
            if loop_writes is not None:
                await loop_writes.close()

    api = Router(
        path="/api/v1",
        route_handlers=[
            *[directory_router(*d) for d in DIRECTORIES],
            audit_router(),
            configuration.router(),
            *[m.router() for m in (accounts, plans, tasks, assignments, boards, visits, inspections, referrals, clues,
                                   followups, calendar, evidence, publicity, documents)],
        ],
        before_request=before_request,
    )
    # The public search reads only (GET): outside the guard, whose every call copies the route handler (litestar's
    # authorize_connection), a cost that counted at two thousand anonymous reads a second.
    public_api = Router(path="/api/v1", route_handlers=[public.router(runtime.settings.public_rate_per_minute)],
                        before_request=before_request)
    overload = OverloadGuard(runtime.settings.max_in_flight, runtime.settings.overload_retry_after)
    auth = DefineMiddleware(
        BearerAuthMiddleware,
        exclude=["^/schema", *[f"^{p}$" for p in PUBLIC_PATHS], *PUBLIC_PATTERNS],
    )
    config = AppConfig(
        route_handlers=[health, ready, metrics, api, public_api, *routes(runtime.settings.public_rate_per_minute)],
        middleware=[correlation_middleware, overload.middleware, json_body_limit(runtime.settings.max_json_bytes), auth],
        before_send=[security_headers],
        template_config=template_config(),
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        state=State({"runtime": runtime, "position_waits": PositionWaits(runtime.runner), "overload": overload,
                     "loop_writes": None,  # set by the lifespan on PostgreSQL
                     "principals": PrincipalLookup(runtime.engine, runtime.accounts.authenticate,
                                                   runtime.settings.account_keep_seconds),
                     "public_answers": PublicAnswers(runtime.runner),
                     "ready_caught_up": set()}),
        request_max_body_size=runtime.settings.max_upload_bytes,
        openapi_config=OpenAPIConfig(
            title="dualrandom",
            version="0.1.0",
            description="Coordination server for 双随机、一公开 joint random inspections. Every /api/v1 call needs "
            "`Authorization: Bearer <token>` (a login's `token`, an account's API token, or `dualrandom token "
            "issue`) or the session cookie of `POST /api/v1/session` (then state-changing requests also send "
            "`X-CSRF-Token`); errors are RFC 9457 problem+json naming the field and the rule.",
            path="/schema",
            render_plugins=[swagger_plugin(), redoc_plugin()],
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(
                        type="http", scheme="bearer", bearer_format="JWT",
                        description="a login's or an account's token (HS256, its id checked on every request)",
                    ),
                    "SessionCookie": SecurityScheme(
                        type="apiKey", name="dualrandom_session", security_scheme_in="cookie",
                        description="the session of POST /api/v1/session; state-changing requests also send "
                        "X-CSRF-Token",
                    ),
                }
            ),
        ),
    )
    return Litestar.from_config(config)
