"""The litestar app factory: ``create_app(runtime)``."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from litestar import Litestar, Request, Response, Router, get
from litestar.config.app import AppConfig
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin

from services.api.audit import audit_router, auditors_change_nothing
from services.api.directory import directory_router
from services.api.errors import EXCEPTION_HANDLERS
from services.api.middleware import PUBLIC_PATHS, BearerAuthMiddleware, correlation_middleware
from services.logging import get_logger
from services.runtime import Runtime

log = get_logger(__name__)

DIRECTORIES = [
    ("department", "departments", "department (部门)", False),
    ("item", "items", "inspection item (抽查事项)", True),
    ("target", "targets", "target (检查对象)", True),
    ("inspector", "inspectors", "inspector (执法检查人员)", True),
    ("expert", "experts", "expert (专家库)", False),
]


def _status(rt: Runtime) -> dict[str, Any]:
    head = rt.runner.head()
    projections = {}
    for p in rt.runner.projections:
        pos = rt.runner.position(p.name)
        projections[p.name] = {"position": pos, "lag": max(head - pos, 0)}
    relay = None
    if rt.relay is not None:
        pos = rt.relay.position()
        relay = {"position": pos, "lag": max(head - pos, 0)}
    return {"head": head, "projections": projections, "relay": relay}


@get("/health", summary="Liveness", description="200 while the process serves requests. No token needed.",
     include_in_schema=True)
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready", summary="Readiness", sync_to_thread=True,
     description="200 when the database answers; shows the log head and each read model's and the relay's "
     "position and lag. 503 (problem+json) when the database does not answer. No token needed.")
def ready(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    try:
        with rt.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        body = {"status": "ready", **_status(rt)}
        return Response(body)
    except Exception as exc:  # noqa: BLE001
        log.warning("not_ready", error=type(exc).__name__)
        return Response(
            {"type": "https://dualrandom.example/problems/not-ready", "title": "Not ready", "status": 503,
             "detail": "the database does not answer"},
            status_code=503, media_type="application/problem+json",
        )


@get("/metrics", summary="Prometheus metrics", sync_to_thread=True, media_type="text/plain; version=0.0.4",
     description="Log head, read-model and relay positions and lag, in the Prometheus text format.")
def metrics(request: Request) -> str:
    s = _status(request.app.state.runtime)
    lines = [
        "# HELP dualrandom_log_head Position of the last event in the store.",
        "# TYPE dualrandom_log_head gauge",
        f"dualrandom_log_head {s['head']}",
        "# HELP dualrandom_projection_position Last log position applied by a read model.",
        "# TYPE dualrandom_projection_position gauge",
        *[f'dualrandom_projection_position{{name="{n}"}} {v["position"]}' for n, v in s["projections"].items()],
        "# HELP dualrandom_projection_lag Events a read model is behind the log head.",
        "# TYPE dualrandom_projection_lag gauge",
        *[f'dualrandom_projection_lag{{name="{n}"}} {v["lag"]}' for n, v in s["projections"].items()],
    ]
    if s["relay"] is not None:
        lines += [
            "# HELP dualrandom_relay_lag Events not yet acknowledged by JetStream.",
            "# TYPE dualrandom_relay_lag gauge",
            f"dualrandom_relay_lag {s['relay']['lag']}",
        ]
    return "\n".join(lines) + "\n"


def create_app(runtime: Runtime, *, background: bool = True) -> Litestar:
    """The HTTP app over an opened runtime; ``background`` runs projections and relay in-process."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks = []
        if background and runtime.settings.projections_in_process:
            runtime.start_projections()
        if background and runtime.relay is not None:
            tasks.append(asyncio.create_task(runtime.relay.run(stop)))
        if background and runtime.checkpointer is not None:
            tasks.append(asyncio.create_task(runtime.checkpointer.run(stop)))
        try:
            yield
        finally:
            stop.set()
            for t in tasks:
                try:
                    await asyncio.wait_for(t, timeout=10)
                except Exception:  # noqa: BLE001
                    t.cancel()

    api = Router(
        path="/api/v1",
        route_handlers=[*[directory_router(*d) for d in DIRECTORIES], audit_router()],
        guards=[auditors_change_nothing],
    )
    auth = DefineMiddleware(
        BearerAuthMiddleware,
        exclude=["^/schema", *[f"^{p}$" for p in PUBLIC_PATHS]],
    )
    config = AppConfig(
        route_handlers=[health, ready, metrics, api],
        middleware=[correlation_middleware, auth],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        state=None,
        request_max_body_size=runtime.settings.max_upload_bytes,
        openapi_config=OpenAPIConfig(
            title="dualrandom",
            version="0.1.0",
            description="Coordination server for 双随机、一公开 joint random inspections. Every /api/v1 call needs "
            "`Authorization: Bearer <token>` (issued by `dualrandom token issue`); errors are RFC 9457 "
            "problem+json naming the field and the rule.",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
        ),
    )
    from litestar.datastructures import State

    config.state = State({"runtime": runtime})
    return Litestar.from_config(config)
