"""The public answers' fast path (``services.api.public_cache.fast_path``) in-process, on SQLite and PostgreSQL: a
repeated anonymous request is answered in front of the handler and still counted by the rate limit, with its
correlation id, its access log line, the security headers and ETag/304; gzip decompresses to the same bytes;
requests with a token or a session never come from the cache; totals are capped at 1,000; the stored positions
(projections in another process, or in this one) are read once for many requests.

The access log is observed through the logger the correlation middleware calls (``services.api.middleware.log``),
replaced for the test by a recorder that also passes every line on: no dependence on how structlog was configured
by whichever test ran before, and the test waits for the line itself (an event), never for a duration."""

import asyncio
import gzip
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
from litestar.testing import TestClient

import services.api.middleware as middleware
from domain.access import SYSTEM
from projections.execution.projection import TABLES as EXECUTION
from services.api.app import create_app
from services.api.public_cache import PublicAnswers
from services.application import CommandContext
from services.cli.demo import load_demo
from services.runtime import Runtime
from tests.browser.conftest import SECRET, Seeded, seed
from tests.support.accounts import stored_token

PATHS = ("/api/v1/public/results", "/public/results")


class AccessLog:
    """Records the access log lines (``request``) as the middleware logs them, and passes them on."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.lines: list[dict[str, Any]] = []
        self.changed = threading.Condition()

    def info(self, event: str, **fields: Any) -> None:
        bound = structlog.contextvars.get_contextvars()  # the request's, as the real logger merges them
        with self.changed:
            self.lines.append({**bound, "event": event, **fields})
            self.changed.notify_all()
        self.real.info(event, **fields)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def wait_for(self, path: str, correlation_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The line of the request with that path and correlation id, once logged (bounded wait on the event)."""

        def found() -> dict[str, Any] | None:
            return next((line for line in self.lines
                         if line.get("path") == path and line.get("correlation_id") == correlation_id), None)

        with self.changed:
            assert self.changed.wait_for(lambda: found() is not None, timeout), (path, correlation_id, self.lines)
            line = found()
        assert line is not None
        return line


@pytest.fixture
def access_log(monkeypatch: pytest.MonkeyPatch) -> AccessLog:
    recorder = AccessLog(middleware.log)
    monkeypatch.setattr(middleware, "log", recorder)
    return recorder


@pytest.fixture
def published(runtime: Runtime) -> Seeded:
    """The demo county and one published result (its finding's description confidential), projected."""
    load_demo(runtime.app, CommandContext(actor=SYSTEM))
    runtime.runner.catch_up()
    runtime.settings = replace(runtime.settings, public_rate_per_minute=0)
    with TestClient(create_app(runtime)) as client:
        s = seed(client, runtime.settings.secret_key, runtime.engine)
    runtime.runner.catch_up()
    return s


def _client(runtime: Runtime, background: bool, rate: int = 0) -> TestClient[Any]:
    """An app with the projections in this process (``background``), or without them (as ``serve --role api``:
    the read models' positions are read from the database)."""
    runtime.settings = replace(runtime.settings, public_rate_per_minute=rate)
    if not background:
        runtime.stop_projections()
        assert not runtime.runner.running_here
    return TestClient(create_app(runtime, background=background))


@dataclass(frozen=True)
class Got:
    status_code: int
    headers: Any
    raw: bytes  # the body as sent (not decompressed)


def _get(client: TestClient[Any], path: str, **headers: str) -> Got:
    """GET (``Accept-Encoding: identity`` unless given)."""
    headers = {"Accept-Encoding": "identity", **headers}
    with client.stream("GET", path, headers=headers) as r:
        return Got(r.status_code, r.headers, b"".join(r.iter_raw()))


@pytest.mark.parametrize("background", [True, False], ids=["projections-here", "api-role"])
def test_a_repeated_anonymous_request_is_answered_before_the_handler_keeping_every_rule(
        runtime: Runtime, published: Seeded, access_log: AccessLog, background: bool) -> None:
    with _client(runtime, background, rate=len(PATHS) * 4) as client:
        answers: PublicAnswers = client.app.state["public_answers"]
        for path in PATHS:
            first = _get(client, path, **{"X-Correlation-ID": f"first-{path[1:4]}"})
            assert first.status_code == 200 and SECRET not in first.raw.decode()
            fast = answers.fast_hits
            cid = f"fast-{uuid.uuid4().hex[:12]}"
            again = _get(client, path, **{"X-Correlation-ID": cid})
            assert answers.fast_hits == fast + 1  # answered by the fast path
            assert again.status_code == 200 and again.raw == first.raw and again.headers["etag"] == first.headers["etag"]
            assert again.headers["x-correlation-id"] == cid
            assert again.headers["content-security-policy"].startswith("default-src 'self'")
            assert again.headers["x-content-type-options"] == "nosniff"
            assert again.headers["vary"] == "Accept-Encoding" and again.headers["cache-control"] == "no-cache"
            assert again.headers["content-type"] == first.headers["content-type"]
            line = access_log.wait_for(path, cid)
            assert (line["event"], line["method"], line["status"]) == ("request", "GET", 200)
            conditional = _get(client, path, **{"If-None-Match": first.headers["etag"]})
            assert conditional.status_code == 304 and conditional.raw == b""
            assert conditional.headers["etag"] == first.headers["etag"] and answers.fast_hits == fast + 2
        # 3 answers per path so far, 2 of them from the fast path: the rate limit counted every one
        for path in PATHS:
            assert _get(client, path).status_code == 200
        limited = [_get(client, path) for path in PATHS]
        assert [r.status_code for r in limited] == [429, 429], [r.raw for r in limited]
        assert all(int(r.headers["retry-after"]) > 0 for r in limited)


def test_the_access_log_line_carries_the_correlation_id_of_a_fast_answer(
        runtime: Runtime, published: Seeded, access_log: AccessLog) -> None:
    with _client(runtime, True) as client:
        assert _get(client, "/public/results?q=x&year=2024").status_code == 200
        fast = client.app.state["public_answers"].fast_hits
        cid = f"order-{uuid.uuid4().hex[:12]}"
        r = _get(client, "/public/results?year=2024&q=x", **{"X-Correlation-ID": cid})  # the same query, reordered
        assert r.status_code == 200 and client.app.state["public_answers"].fast_hits == fast + 1
        assert access_log.wait_for("/public/results", cid)["status"] == 200


def test_gzip_answers_decompress_to_the_same_bytes_with_their_own_etag(runtime: Runtime, published: Seeded) -> None:
    with _client(runtime, True) as client:
        answers: PublicAnswers = client.app.state["public_answers"]
        for path in PATHS:
            plain = _get(client, path, **{"Accept-Encoding": "identity"})  # the handler's answer
            assert "content-encoding" not in plain.headers and plain.headers["vary"] == "Accept-Encoding"
            for _ in range(2):  # the handler's then the fast path's (same bytes: computed once)
                zipped = _get(client, path, **{"Accept-Encoding": "gzip, deflate, br"})
                assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["vary"] == "Accept-Encoding"
                assert gzip.decompress(zipped.raw) == plain.raw and len(zipped.raw) < len(plain.raw)
                assert zipped.headers["etag"] != plain.headers["etag"]
                assert int(zipped.headers["content-length"]) == len(zipped.raw)
            fast = answers.fast_hits
            refused = _get(client, path, **{"Accept-Encoding": "gzip;q=0, identity"})
            assert "content-encoding" not in refused.headers and refused.raw == plain.raw
            again = _get(client, path, **{"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["etag"]})
            assert again.status_code == 304 and again.headers["etag"] == zipped.headers["etag"]
            assert _get(client, path, **{"If-None-Match": zipped.headers["etag"]}).status_code == 200  # not plain's
            assert answers.fast_hits == fast + 3


def test_requests_with_a_token_or_a_session_are_never_answered_from_the_cache(
        runtime: Runtime, published: Seeded) -> None:
    token = stored_token(runtime.engine, runtime.settings.secret_key, "hj-eeb", ["planner"])
    with _client(runtime, True) as client:
        answers: PublicAnswers = client.app.state["public_answers"]
        for path in PATHS:
            assert _get(client, path).status_code == 200 and _get(client, path).status_code == 200
        hits, fast = answers.hits, answers.fast_hits
        for path in PATHS:
            assert _get(client, path, Authorization=f"Bearer {token}").status_code == 200
            assert _get(client, path, Authorization="Bearer not-a-token").status_code == 200  # read, not cached
            assert _get(client, path, Cookie=f"{middleware.SESSION_COOKIE}={token}").status_code == 200
        assert (answers.hits, answers.fast_hits) == (hits, fast)


def test_totals_are_capped_at_1000_and_the_page_says_so(runtime: Runtime, published: Seeded) -> None:
    public = EXECUTION["public"]
    with runtime.engine.begin() as conn:
        row = dict(conn.execute(sa.select(public).where(public.c.inspection_id == published.inspection_id))
                   .mappings().one())
        top = int(conn.execute(sa.select(sa.func.max(public.c.position))).scalar_one())
        conn.execute(public.insert(), [{**row, "inspection_id": str(uuid.UUID(int=(1 << 64) + n)),
                                        "position": top + 1 + n} for n in range(1001)])
    with _client(runtime, True) as client:
        client.app.state["public_answers"].clear()  # the rows above moved no position
        capped = client.get("/api/v1/public/results", params={"limit": 20}).json()
        assert (capped["total"], capped["total_exact"], capped["next_offset"]) == (1000, False, 20)
        exact = client.get("/api/v1/public/results", params={"count": "exact"}).json()
        assert (exact["total"], exact["total_exact"]) == (1002, True)
        last = client.get("/api/v1/public/results", params={"count": "exact", "offset": 1000, "limit": 5}).json()
        assert (len(last["items"]), last["next_offset"]) == (2, None)
        bad = client.get("/api/v1/public/results", params={"count": "all"})
        assert bad.status_code == 400 and "count" in bad.text
        page = client.get("/public/results").text
        assert "共 1,000 条以上，第 1 页" in page and 'rel="next"' in page
        assert client.get("/public/results", params={"count": "exact"}).status_code == 200  # the page: capped
        one = client.get("/public/results", params={"q": published.target["credit_code"][:6] + "不存在"}).text
        assert "共 0 条" in one


def test_the_stored_positions_are_read_once_for_many_requests(runtime: Runtime, published: Seeded) -> None:
    runtime.stop_projections()  # the read models are another process's: their positions are read from the database
    assert not runtime.runner.running_here
    answers = PublicAnswers(runtime.runner)

    async def many() -> list[Any]:
        return list(await asyncio.gather(*(answers.token() for _ in range(50))))

    with ThreadPoolExecutor(1) as pool:  # a loop of its own, whatever loop this thread has (Playwright's)
        tokens = pool.submit(asyncio.run, many()).result(timeout=60)
    stored = runtime.runner.positions()
    assert tokens == [(stored["execution"], stored["directory"])] * 50
    assert answers.position_reads <= 3  # one read in flight, one after it for those who came meanwhile



def test_with_the_projections_in_process_the_requests_of_a_turn_wait_for_one_shared_read(
        runtime: Runtime, published: Seeded) -> None:
    """One plain ``serve``: the in-memory positions too are read once, in a worker thread, for the requests that
    came together (an answer that never waits was written in the turn that read its request: a second's p99)."""
    with _client(runtime, background=True) as client:
        answers: PublicAnswers = client.app.state["public_answers"]
        assert runtime.runner.running_here
        before = answers.position_reads

        async def many() -> list[Any]:
            return list(await asyncio.gather(*(answers.token() for _ in range(50))))

        with ThreadPoolExecutor(1) as pool:  # a loop of its own, whatever loop this thread has (Playwright's)
            tokens = pool.submit(asyncio.run, many()).result(timeout=60)
        known = answers.known_token()
        assert known is not None and tokens == [known] * 50
        assert 1 <= answers.position_reads - before <= 3  # one read in flight, one after it for who came meanwhile
