"""Read-your-writes waits that hold no worker thread.

A request with ``min_position`` waits, on the event loop, until the read models it reads have applied that log
position; only then does its (synchronous) handler take a worker thread. So a thousand waiting requests cost a
thousand small coroutines, and an authenticated request that does not wait is not queued behind them.

- **Who waits**: a request with a token waits up to ``WAIT_SECONDS`` (5 s), then 503. A request without a token
  (the public results) waits up to ``ANONYMOUS_WAIT_SECONDS`` (1 s), in a pool of its own.
- **How many**: at most ``MAX_WAITING`` (1,000) requests with a token and ``MAX_ANONYMOUS_WAITING`` (100)
  without wait at once per process; the next one gets 503 at once. Anonymous requests cannot fill the pool of
  the requests with a token.
- **How**: with the projections running in this process, the runner's progress wakes the waiters (no polling);
  with the projections in worker processes (``dualrandom worker``), one shared read of the stored positions per
  ``POLL_SECONDS`` (50 ms) serves every waiter of the process, in a worker thread for the length of one query.

The hook only waits: the handler's ``wait()`` still checks the position (a position beyond the log's head is a
422, a wait that ended without the position a 503), so the rules have one place.
"""

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

import anyio.to_thread

from projections.runner import ProjectionRunner

WAIT_SECONDS = 5.0
MAX_WAITING = 1000
ANONYMOUS_WAIT_SECONDS = 1.0
MAX_ANONYMOUS_WAITING = 100
POLL_SECONDS = 0.05
READ_MODELS_OPT = "read_models"  # a route's ``opt`` key: the read models its min_position waits for (default all)


class TooManyWaitsError(Exception):
    """More than MAX_WAITING requests are waiting already."""


class PositionWaits:
    """The waits of one process over one runner (created by the app, used by ``await_min_position``)."""

    def __init__(self, runner: ProjectionRunner, limit: int = MAX_WAITING, poll: float = POLL_SECONDS) -> None:
        self.runner = runner
        self.limit = limit
        self.poll = poll
        self.waiting = 0
        self.anonymous_limit = MAX_ANONYMOUS_WAITING
        self.anonymous_seconds = ANONYMOUS_WAIT_SECONDS
        self.anonymous_waiting = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._moved: asyncio.Event | None = None
        self._refreshing: asyncio.Lock | None = None
        self._refreshed = 0.0
        runner.listeners.append(self._notify)

    def close(self) -> None:
        if self._notify in self.runner.listeners:
            self.runner.listeners.remove(self._notify)

    def _notify(self) -> None:  # the runner's thread
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._pulse)

    def _pulse(self) -> None:  # the loop's thread: wake every waiter
        moved, self._moved = self._moved, asyncio.Event()
        if moved is not None:
            moved.set()

    async def _refresh(self) -> None:
        """One read of the stored positions per poll interval for all the waiters of this process."""
        assert self._refreshing is not None
        if self._refreshing.locked():
            return
        async with self._refreshing:
            if time.monotonic() - self._refreshed < self.poll:
                return
            await anyio.to_thread.run_sync(self.runner.refresh_positions)
            self._refreshed = time.monotonic()

    async def reached(self, position: int, names: Sequence[str] | None, timeout: float | None = None,
                      anonymous: bool = False) -> bool:
        """Wait, without a thread, until the named read models applied ``position``; False after ``timeout``
        (default: 5 s with a token, 1 s without)."""
        if self.runner.applied(position, names):
            return True
        if (self.anonymous_waiting >= self.anonymous_limit) if anonymous else (self.waiting >= self.limit):
            raise TooManyWaitsError
        if timeout is None:
            timeout = self.anonymous_seconds if anonymous else WAIT_SECONDS
        if anonymous:
            self.anonymous_waiting += 1
            try:
                return await self._wait(position, names, timeout)
            finally:
                self.anonymous_waiting -= 1
        self.waiting += 1
        try:
            return await self._wait(position, names, timeout)
        finally:
            self.waiting -= 1

    async def _wait(self, position: int, names: Sequence[str] | None, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._moved, self._refreshing = loop, asyncio.Event(), asyncio.Lock()
        deadline = loop.time() + timeout
        while True:
            if self.runner.running_here:
                self.runner.wake()
            else:
                await self._refresh()
            if self.runner.applied(position, names):
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            assert self._moved is not None
            moved = self._moved
            step = remaining if self.runner.running_here else min(remaining, self.poll)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(moved.wait(), step)


def requested_position(query: Any) -> int | None:
    """The request's ``min_position`` when it is a plain non-negative integer (anything else: the handler's 4xx)."""
    raw = query.get("min_position")
    if raw is None or not raw.isdigit() or len(raw) > 19:
        return None
    return int(raw)


async def await_min_position(request: Any) -> None:
    """``before_request``: a request with ``min_position`` waits here, on the event loop, for the read models of
    its route (``opt["read_models"]``, default all): at most WAIT_SECONDS with a token, ANONYMOUS_WAIT_SECONDS
    without. With a position the handler will refuse, it does not wait."""
    position = requested_position(request.query_params)
    if position is None:
        return
    waits: PositionWaits | None = request.app.state.get("position_waits")
    if waits is None:
        return
    names = request.route_handler.opt.get(READ_MODELS_OPT)
    if waits.runner.applied(position, names):
        return
    if position > await anyio.to_thread.run_sync(waits.runner.head):
        return  # never written: the handler's 422
    try:
        await waits.reached(position, names, anonymous=request.scope.get("user") is None)
    except TooManyWaitsError:
        from services.api.errors import NotReadyError

        raise NotReadyError("too many requests are waiting for positions already; try again") from None
