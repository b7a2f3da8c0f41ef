"""Overload is refused, not queued: a bounded number of requests in flight per process.

Past ``DUALRANDOM_MAX_IN_FLIGHT`` requests being served at once, a new request is answered at once with 503
problem+json and ``Retry-After`` (``DUALRANDOM_OVERLOAD_RETRY_AFTER`` seconds) instead of waiting in the worker
thread pool's queue, where under a flood it would wait without bound and answer long after its client gave up.
Liveness, readiness and metrics (``EXEMPT_PATHS``) are never refused and not counted: an orchestrator must see an
overloaded process as alive, and an operator must see its metrics. The counter lives in the event loop's thread
(ASGI middleware runs there), so no lock is needed."""

import json

from litestar.types import ASGIApp, Receive, Scope, Send

from services.infra.logging import get_logger

log = get_logger(__name__)
EXEMPT_PATHS = frozenset({"/health", "/ready", "/metrics"})
OVERLOAD_TYPE = "https://dualrandom.example/problems/overloaded"


class OverloadGuard:
    """At most ``limit`` HTTP requests in flight in this process (0: no limit); the rest get 503 at once.
    litestar builds its middleware stack once per route, so one guard is shared by all the stacks it wraps
    (``middleware``): the limit is per process, not per route."""

    def __init__(self, limit: int, retry_after: int) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self.in_flight = 0
        self.refused = 0
        self._body = json.dumps({
            "type": OVERLOAD_TYPE, "title": "Overloaded", "status": 503,
            "detail": f"the server is at its limit of {limit} requests in flight: retry after {retry_after} s",
        }, ensure_ascii=False).encode()

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """The ASGI middleware litestar's ``middleware=[...]`` takes (called once per route)."""

        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or not self.limit or scope.get("path") in EXEMPT_PATHS:
                await app(scope, receive, send)
                return
            if self.in_flight >= self.limit:
                await self._refuse(send)
                return
            self.in_flight += 1
            try:
                await app(scope, receive, send)
            finally:
                self.in_flight -= 1

        return guarded

    async def _refuse(self, send: Send) -> None:
        self.refused += 1
        if self.refused in (1, 10, 100) or self.refused % 1000 == 0:
            log.warning("overloaded", in_flight=self.in_flight, limit=self.limit, refused=self.refused)
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(self._body)).encode()),
            (b"retry-after", str(self.retry_after).encode()),
        ]})
        await send({"type": "http.response.body", "body": self._body, "more_body": False})
