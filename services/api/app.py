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
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from services.api import (
    assignments,
    boards,
    calendar,
    clues,
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
from services.api.audit import audit_router, auditors_change_nothing
from services.api.common import answers
from services.api.directory import directory_router
from services.api.errors import EXCEPTION_HANDLERS
from services.api.middleware import PUBLIC_PATHS, BearerAuthMiddleware, correlation_middleware
from services.api.schemas import Health, Readiness
from services.infra.logging import get_logger
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
    """Log head, each read model's position and lag (and copies being rebuilt), the relay's; two queries."""
    from projections.runner import REBUILD_SUFFIX

    head = rt.runner.head()
    stored = rt.runner.positions()
    max_lag = rt.settings.ready_max_lag
    projections = {}
    for p in rt.runner.projections:
        pos = stored.get(p.name, 0)
        lag = max(head - pos, 0)
        projections[p.name] = {"position": pos, "lag": lag, "ready": not max_lag or lag <= max_lag}
    rebuilding = {
        n[: -len(REBUILD_SUFFIX)]: {"position": pos, "lag": max(head - pos, 0)}
        for n, pos in stored.items() if n.endswith(REBUILD_SUFFIX)
    }
    relay = None
    if rt.relay is not None:
        pos = rt.relay.position()
        relay = {"position": pos, "lag": max(head - pos, 0)}
    return {"head": head, "max_lag": max_lag or None, "projections": projections, "rebuilding": rebuilding,
            "relay": relay}


@get("/health", summary="Liveness", responses=answers(200, Health, ()), description="200 while the process serves requests. No token needed.",
     include_in_schema=True)
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready", summary="Readiness", sync_to_thread=True, responses={
         **answers(200, Readiness, ()),
         503: ResponseSpec(Readiness, description="a read model lags (`status: lagging`); problem+json (Problem) "
                           "when the database does not answer", generate_examples=False),
     },
     description="200 when the database answers: `{status: ready, head, max_lag, projections: {name: {position, "
     "lag, ready}}, rebuilding: {name: {position, lag}}, relay: {position, lag}}` (positions are log positions, "
     "lag is events behind the head). A read model's lag makes the process not ready only when "
     "DUALRANDOM_READY_MAX_LAG is set (> 0) and exceeded: then 503 with `status: lagging` and the same body. "
     "503 (problem+json) when the database does not answer. No token needed.")
def ready(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    try:
        with rt.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        status = _status(rt)
    except Exception as exc:  # noqa: BLE001
        log.warning("not_ready", error=type(exc).__name__)
        return Response(
            {"type": "https://dualrandom.example/problems/not-ready", "title": "Not ready", "status": 503,
             "detail": "the database does not answer"},
            status_code=503, media_type="application/problem+json",
        )
    if all(p["ready"] for p in status["projections"].values()):
        return Response({"status": "ready", **status})
    return Response({"status": "lagging", **status}, status_code=503)


@get("/metrics", summary="Prometheus metrics", sync_to_thread=True, media_type="text/plain; version=0.0.4",
     responses=answers(200, None, (), media_type="text/plain; version=0.0.4"),
     description="Log head, read-model and relay positions and lag (events behind the head), and copies being "
     "rebuilt, in the Prometheus text format. No token needed.")
def metrics(request: Request) -> str:
    s = _status(request.app.state.runtime)
    projections = s["projections"]

    def gauge(name: str, help_: str, samples: list[tuple[str, int]]) -> list[str]:
        return [f"# HELP {name} {help_}", f"# TYPE {name} gauge", *[f"{name}{labels} {v}" for labels, v in samples]]

    lines = [
        *gauge("dualrandom_log_head", "Position of the last event in the store.", [("", s["head"])]),
        *gauge("dualrandom_projection_position", "Last log position applied by a read model.",
               [(f'{{projection="{n}"}}', v["position"]) for n, v in projections.items()]),
        *gauge("dualrandom_projection_lag_events", "Events a read model is behind the log head.",
               [(f'{{projection="{n}"}}', v["lag"]) for n, v in projections.items()]),
        *gauge("dualrandom_projection_rebuild_position",
               "Last log position applied by a copy of a read model being rebuilt (absent when none is).",
               [(f'{{projection="{n}"}}', v["position"]) for n, v in s["rebuilding"].items()]),
    ]
    if s["relay"] is not None:
        lines += [
            *gauge("dualrandom_relay_position", "Last log position acknowledged by JetStream.",
                   [("", s["relay"]["position"])]),
            *gauge("dualrandom_relay_lag_events", "Events not yet acknowledged by JetStream.",
                   [("", s["relay"]["lag"])]),
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
        route_handlers=[
            *[directory_router(*d) for d in DIRECTORIES],
            audit_router(),
            *[m.router() for m in (plans, tasks, assignments, boards, visits, inspections, referrals, clues,
                                   followups, calendar, evidence, publicity, public)],
        ],
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
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(
                        type="http", scheme="bearer", bearer_format="JWT",
                        description="a token issued by `dualrandom token issue` (HS256: department, roles, expiry)",
                    )
                }
            ),
        ),
    )
    from litestar.datastructures import State

    config.state = State({"runtime": runtime})
    return Litestar.from_config(config)
