"""Overload is refused, not queued: a real server (``dualrandom serve``, uvicorn) at its in-flight limit answers
503 problem+json with Retry-After at once, keeps answering /health, and serves again once requests finish.

Requests are held in flight by their bodies: each sends its headers and then waits for the test to release the
rest of its JSON, so the test knows, from the server's own metrics, exactly how many are in flight (no timing)."""

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from services.infra.nats_embedded import free_port
from tests.support.serve import BIN, admin_token, stop, wait_ready

LIMIT = 2


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUALRANDOM_")}
    env.update({"DUALRANDOM_VAR_DIR": str(tmp_path / "var"), "DUALRANDOM_RELAY_ENABLED": "false",
                "DUALRANDOM_LOG_FORMAT": "json", "DUALRANDOM_MAX_IN_FLIGHT": str(LIMIT),
                "DUALRANDOM_OVERLOAD_RETRY_AFTER": "3", "DUALRANDOM_DATABASE_URL": database_url})
    port = free_port()
    proc = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        token = admin_token(env)
        yield url, {"Authorization": f"Bearer {token}"}
    finally:
        stop(proc)


async def _gauge(client: httpx.AsyncClient, name: str) -> int:
    text = (await client.get("/metrics")).text
    return int(next(line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")))


async def _flood(url: str, h: dict[str, str]) -> None:
    release = asyncio.Event()

    async def held_body(i: int) -> AsyncIterator[bytes]:
        yield b'{"code": "hj-x%d", ' % i
        await release.wait()
        yield '"name": "某局", "city": "新乡市", "county": "获嘉县", "kind": "ecology"}'.encode()

    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        held = [asyncio.create_task(client.post("/api/v1/departments", content=held_body(i),
                                                headers={**h, "content-type": "application/json"}))
                for i in range(LIMIT)]
        deadline = time.monotonic() + 30
        while await _gauge(client, "dualrandom_http_in_flight") < LIMIT:
            assert time.monotonic() < deadline, "the held requests never reached the server"
            await asyncio.sleep(0.05)
        # At the limit: a flood of concurrent clients is refused at once, each with 503 and Retry-After.
        flood = await asyncio.gather(*[client.get("/api/v1/departments", headers=h) for _ in range(30)])
        for r in flood:
            assert r.status_code == 503, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.headers["retry-after"] == "3"
            assert r.json()["type"].endswith("/overloaded") and r.json()["status"] == 503
        # Liveness, readiness and metrics are exempt: they answer while the process is at its limit.
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/ready")).status_code == 200
        assert await _gauge(client, "dualrandom_http_overload_refused_total") >= 30
        release.set()
        for r in await asyncio.gather(*held):
            assert r.status_code == 201, r.text
        # Below the limit again: served.
        r = await client.get("/api/v1/departments", headers=h)
        assert r.status_code == 200, r.text
        assert await _gauge(client, "dualrandom_http_in_flight") == 0


def test_past_the_in_flight_limit_requests_are_refused_at_once(server: tuple[str, dict[str, str]]) -> None:
    asyncio.run(_flood(*server))
