"""`min_position` waits hold no worker thread: many waiting requests do not delay one that does not wait.

The read models are not running here (``background=False``), so a write's position stays unapplied until the
test applies it (``runner.catch_up()``): the waits are ordered by that event, not by the clock."""

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx

from services.api.app import create_app
from services.api.waits import PositionWaits
from tests.e2e.conftest import contract_recorder
from tests.support.builders import a_target
from tests.support.serve import served as _served


def _app(runtime: Any) -> Any:
    """The app without background projections, its responses checked against the contract. Waiting requests
    count as in flight (DUALRANDOM_MAX_IN_FLIGHT): the limit is raised here past the 80 this test holds."""
    runtime.settings = dataclasses.replace(runtime.settings, max_in_flight=1000)
    app = create_app(runtime, background=False)
    app.asgi_handler = contract_recorder(app.asgi_handler)
    return app


def _client(base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, timeout=30, limits=httpx.Limits(max_connections=200))


async def _until(condition: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    """Yield to the loop until ``condition`` holds (a deadline, not a duration)."""
    with anyio.fail_after(seconds):
        while not condition():
            await anyio.sleep(0.005)
    assert condition(), what


def _run(main: Callable[[], Awaitable[None]]) -> None:
    anyio.run(main)


def test_many_waiting_requests_do_not_delay_a_request_that_does_not_wait(runtime, auth) -> None:
    app = _app(runtime)
    waits: PositionWaits = app.state["position_waits"]
    headers = auth("hj-eeb", "planner")

    async def main() -> None:
        async with _client(base) as client:
            r = await client.post("/api/v1/targets", json=a_target(), headers=headers)
            assert r.status_code == 201, r.text
            position = r.json()["position"]
            answers: list[int] = []

            async def waiting() -> None:
                got = await client.get(f"/api/v1/targets?min_position={position}", headers=headers)
                answers.append(got.status_code)

            async with anyio.create_task_group() as tg:
                for _ in range(80):  # twice anyio's 40 worker threads
                    tg.start_soon(waiting)
                await _until(lambda: waits.waiting == 80, "80 requests wait")
                plain = await client.get("/api/v1/targets", headers=headers)
                assert plain.status_code == 200, plain.text
                assert answers == [] and waits.waiting == 80, "the plain request was answered before any waiter"
                await anyio.to_thread.run_sync(runtime.runner.catch_up)  # the event every waiter waits for
            assert answers == [200] * 80
            listed = await client.get(f"/api/v1/targets?min_position={position}", headers=headers)
            assert listed.json()["total"] == 1

    with _served(app) as base:
        _run(main)


def test_requests_without_a_token_wait_in_a_pool_of_their_own(runtime, auth) -> None:
    """Anonymous waits (the public results) have their own smaller cap: filling it refuses the next anonymous
    request at once, and a request with a token still waits."""
    app = _app(runtime)
    waits: PositionWaits = app.state["position_waits"]
    waits.anonymous_limit = 2
    waits.anonymous_seconds = 60.0  # ended by the catch-up below, not by the clock
    headers = auth("hj-eeb", "planner")

    async def main() -> None:
        async with _client(base) as client:
            r = await client.post("/api/v1/targets", json=a_target(), headers=headers)
            position = r.json()["position"]
            answers: list[int] = []

            async def waiting(path: str, with_token: bool) -> None:
                got = await client.get(f"{path}?min_position={position}", headers=headers if with_token else {})
                answers.append(got.status_code)

            async with anyio.create_task_group() as tg:
                for _ in range(2):
                    tg.start_soon(waiting, "/api/v1/public/results", False)
                await _until(lambda: waits.anonymous_waiting == 2, "2 anonymous requests wait")
                third = await client.get(f"/api/v1/public/results?min_position={position}")
                assert third.status_code == 503 and third.headers["content-type"].startswith(
                    "application/problem+json"), third.text
                tg.start_soon(waiting, "/api/v1/targets", True)
                await _until(lambda: waits.waiting == 1, "the request with a token waits")
                assert answers == []
                await anyio.to_thread.run_sync(runtime.runner.catch_up)
            assert answers == [200] * 3

    with _served(app) as base:
        _run(main)


def test_past_the_cap_a_waiting_request_is_a_503_at_once(runtime, auth) -> None:
    app = _app(runtime)
    waits: PositionWaits = app.state["position_waits"]
    waits.limit = 3
    headers = auth("hj-eeb", "planner")

    async def main() -> None:
        async with _client(base) as client:
            r = await client.post("/api/v1/targets", json=a_target(), headers=headers)
            position = r.json()["position"]
            answers: list[int] = []

            async def waiting() -> None:
                got = await client.get(f"/api/v1/targets?min_position={position}", headers=headers)
                answers.append(got.status_code)

            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(waiting)
                await _until(lambda: waits.waiting == 3, "3 requests wait")
                fourth = await client.get(f"/api/v1/targets?min_position={position}", headers=headers)
                assert fourth.status_code == 503 and "waiting" in fourth.json()["detail"], fourth.text
                assert answers == []
                await anyio.to_thread.run_sync(runtime.runner.catch_up)
            assert answers == [200] * 3

    with _served(app) as base:
        _run(main)
