"""Operations endpoints outside /api/v1, no token needed: liveness, readiness (positions and lag) and
Prometheus metrics."""

import datetime as dt
from typing import Any

import sqlalchemy as sa
from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec

from services.api.common import answers, runtime
from services.api.schemas import Health, Readiness
from services.infra.logging import get_logger
from services.infra.metrics import METRICS
from services.runtime import Runtime

log = get_logger(__name__)


def _status(rt: Runtime) -> dict[str, Any]:
    """Log head, each read model's position, lag and failure (and copies being rebuilt), the relay's; three
    queries. A failure shows the exception's type only: its message may quote stored data, and these endpoints
    need no token (the operator's ``dualrandom projections status`` shows it whole)."""
    from projections.runner import REBUILD_SUFFIX

    head = rt.runner.head()
    stored = rt.runner.positions()
    failed = {f.name: f for f in rt.runner.failures()}
    max_lag = rt.settings.ready_max_lag
    projections = {}
    for p in rt.runner.projections:
        pos = stored.get(p.name, 0)
        lag = max(head - pos, 0)
        failure = failed.get(p.name)
        projections[p.name] = {
            "position": pos, "lag": lag, "ready": failure is None and (not max_lag or lag <= max_lag),
            "failed": None if failure is None else {
                "position": failure.position, "error": failure.error.split(":", 1)[0],
                "since": failure.since.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")},
        }
    rebuilding = {
        n[: -len(REBUILD_SUFFIX)]: {"position": pos, "lag": max(head - pos, 0)}
        for n, pos in stored.items() if n.endswith(REBUILD_SUFFIX)
    }
    relay = None
    if rt.relay is not None:
        pos = rt.relay.position()
        failure = rt.relay.failure()
        # JetStream's refusal is shown whole (the server's words, no stored data); another error by its type, as
        # a read model's (an event that does not fit its contract: the message may quote the data).
        error = None if failure is None else (
            failure.error if failure.error.startswith("PublishRefusedError:") else failure.error.split(":", 1)[0])
        relay = {"position": pos, "lag": max(head - pos, 0), "failed": None if failure is None else {
            "position": failure.position, "error": error,
            "since": failure.since.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")}}
    from services.audit.external import read_alarm

    alarm = read_alarm(rt.settings.var_dir)
    return {"head": head, "max_lag": max_lag or None, "projections": projections, "rebuilding": rebuilding,
            "relay": relay,
            "audit_signer_alarm": None if alarm is None else {"since": alarm.get("since"),
                                                             "external_tree_size": alarm.get("external_tree_size")}}


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
     "lag is events behind the head). After the process starts, 503 with `status: starting` and the same body "
     "until every read model has once been within DUALRANDOM_READY_STARTUP_LAG events of the head (default "
     "1000; a cold start over a long log). After that a read model's lag makes the process not ready only when "
     "DUALRANDOM_READY_MAX_LAG is set (> 0) and exceeded: then 503 with `status: lagging` and the same body. "
     "A read model that cannot apply an event (`failed`: its position, the error's type, since when) makes it "
     "503 with `status: failed`, whatever the lag. "
     "The relay's `failed` (the position, JetStream's refusal or the error's type, since when) is set while JetStream refuses an event for a "
     "reason other than its size (an event too large is published without its data) or an event has no "
     "contract: 503 with `status: failed` too. "
     "503 (problem+json) when the database does not answer. `audit_signer_alarm` ({since, external_tree_size}, "
     "else null) is set while the audit signer refuses to sign because the store does not reproduce a checkpoint "
     "published outside the database (`dualrandom audit alarm`); it does not change the status. No token needed.")
def ready(request: Request) -> Response:
    rt = runtime(request)
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
    starting = _starting(request, rt, status)
    relay_failed = bool(status["relay"] and status["relay"]["failed"])
    if all(p["ready"] for p in status["projections"].values()) and not relay_failed:
        return Response({"status": "ready", **status})
    failed = relay_failed or any(p["failed"] for p in status["projections"].values())
    state = "failed" if failed else "starting" if starting else "lagging"
    return Response({"status": state, **status}, status_code=503)


def _starting(request: Request, rt: Runtime, status: dict[str, Any]) -> bool:
    """The start-up gate: a read model that has not once been within DUALRANDOM_READY_STARTUP_LAG events of the
    head since this process started makes it not ready (a cold start with a long log would otherwise be ready
    and serve stale lists); once it has been, lag alone no longer does (only DUALRANDOM_READY_MAX_LAG). Marks
    such read models not ready in ``status``; True while any is."""
    threshold = rt.settings.ready_startup_lag
    status["startup_max_lag"] = threshold or None
    if not threshold:
        return False
    caught_up: set[str] = request.app.state.setdefault("ready_caught_up", set())
    starting = False
    for name, p in status["projections"].items():
        if name not in caught_up and p["lag"] <= threshold:
            caught_up.add(name)
        if name not in caught_up:
            p["ready"] = False
            starting = True
    return starting


@get("/metrics", summary="Prometheus metrics", sync_to_thread=True, media_type="text/plain; version=0.0.4",
     responses=answers(200, None, (), media_type="text/plain; version=0.0.4"),
     description="Log head, read-model and relay positions and lag (events behind the head), and copies being "
     "rebuilt, logins (ok, failed), lockouts, token revocations and role changes, in the Prometheus text format. "
     "No token needed.")
def metrics(request: Request) -> str:
    s = _status(runtime(request))
    projections = s["projections"]

    def gauge(name: str, help_: str, samples: list[tuple[str, int]]) -> list[str]:
        return [f"# HELP {name} {help_}", f"# TYPE {name} gauge", *[f"{name}{labels} {v}" for labels, v in samples]]

    lines = [
        *gauge("dualrandom_log_head", "Position of the last event in the store.", [("", s["head"])]),
        *gauge("dualrandom_projection_position", "Last log position applied by a read model.",
               [(f'{{projection="{n}"}}', v["position"]) for n, v in projections.items()]),
        *gauge("dualrandom_projection_lag_events", "Events a read model is behind the log head.",
               [(f'{{projection="{n}"}}', v["lag"]) for n, v in projections.items()]),
        *gauge("dualrandom_projection_failed",
               "1 while a read model cannot apply an event (the position in dualrandom_projection_failed_position).",
               [(f'{{projection="{n}"}}', int(v["failed"] is not None)) for n, v in projections.items()]),
        *gauge("dualrandom_projection_failed_position", "The log position of the event a read model cannot apply.",
               [(f'{{projection="{n}"}}', v["failed"]["position"]) for n, v in projections.items() if v["failed"]]),
        *gauge("dualrandom_projection_rebuild_position",
               "Last log position applied by a copy of a read model being rebuilt (absent when none is).",
               [(f'{{projection="{n}"}}', v["position"]) for n, v in s["rebuilding"].items()]),
    ]
    lines += gauge("dualrandom_audit_signer_alarm",
                   "1 while the audit signer refuses to sign: the store does not reproduce a checkpoint published "
                   "outside the database (see `dualrandom audit alarm`).",
                   [("", int(s["audit_signer_alarm"] is not None))])
    overload = request.app.state.get("overload")
    if overload is not None:
        lines += [
            *gauge("dualrandom_http_in_flight", "Requests being served now (health, readiness and metrics not "
                   "counted).", [("", overload.in_flight)]),
            *gauge("dualrandom_http_in_flight_limit", "DUALRANDOM_MAX_IN_FLIGHT (0: no limit).",
                   [("", overload.limit)]),
            "# HELP dualrandom_http_overload_refused_total Requests refused with 503 at the in-flight limit.",
            "# TYPE dualrandom_http_overload_refused_total counter",
            f"dualrandom_http_overload_refused_total {overload.refused}",
        ]
    if s["relay"] is not None:
        lines += [
            *gauge("dualrandom_relay_position", "Last log position acknowledged by JetStream.",
                   [("", s["relay"]["position"])]),
            *gauge("dualrandom_relay_lag_events", "Events not yet acknowledged by JetStream.",
                   [("", s["relay"]["lag"])]),
            *gauge("dualrandom_relay_failed",
                   "1 while the relay cannot publish an event (the position in dualrandom_relay_failed_position).",
                   [("", int(s["relay"]["failed"] is not None))]),
            *gauge("dualrandom_relay_failed_position", "The log position of the event the relay cannot publish.",
                   [("", s["relay"]["failed"]["position"])] if s["relay"]["failed"] else []),
        ]
    lines += METRICS.lines()
    return "\n".join(lines) + "\n"
