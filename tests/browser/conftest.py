"""A real server for the browser tests: `dualrandom demo` then `dualrandom serve` (uvicorn, SQLite, embedded NATS)
in a subprocess on a free port, seeded through the HTTP API with one published result whose finding is
confidential, and the system's Chromium (/usr/bin/chromium) driven by Playwright."""

import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from services.infra.nats_embedded import free_port
from tests.support.accounts import stored_token
from tests.support.draws import http_open_declaring_overlaps
from tests.support.serve import BIN, spawn, stop, wait_ready

CHROMIUM = "/usr/bin/chromium"
SECRET = "保密工艺参数XJ-7"
# The tests take the screenshots of docs/screenshots/; they write them there when asked
# (DUALRANDOM_SCREENSHOTS_DIR=docs/screenshots pytest tests/browser), else to a temporary folder, so a test run
# leaves the checkout clean.
SCREENSHOTS = Path(os.environ.get("DUALRANDOM_SCREENSHOTS_DIR") or tempfile.mkdtemp(prefix="dualrandom-screens-"))


@dataclass
class Seeded:
    url: str
    task: dict[str, Any]
    target: dict[str, Any]
    inspection_id: str
    commitment: str
    key: str = ""  # the server's signing key and database URL: tests make accounts with them (tests/support/accounts)
    database: str = ""


def _ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


def draw_visit(c: Any, eeb: dict[str, str], period: str, reason: str = "专项检查") -> tuple[Any, Any, Any, Any]:
    """Through the HTTP API as hj-eeb's planner (``eeb``: its headers): a task of ``period`` over the key
    targets with two items, committed, frozen, drawn, its teams drawn. Returns (task, drawn list, its first visit,
    the items)."""
    items = [i for i in _ok(c.get("/api/v1/items", params={"department": "hj-eeb", "limit": 100}, headers=eeb))[
        "items"] if not i.get("needs_expert")][:2]
    # another test's task over the same targets may exist: declared as an overlap, as a planner would
    task = _ok(http_open_declaring_overlaps(c, eeb, {
        "period": period, "reason": reason, "participants": {"hj-eeb": [i["id"] for i in items]},
        "scope": {"county": "获嘉县", "supervision_classes": ["key"]},
        "rules": [{"supervision_class": "key", "full": True}]}), 201)
    for step in ("commitment", "freeze"):
        _ok(c.post(f"/api/v1/tasks/{task['id']}/{step}", json={} if step != "commitment" else None, headers=eeb))
    # The draw waits for a published checkpoint covering the freeze: 409 with Retry-After until then.
    deadline = time.monotonic() + 60
    while (r := c.post(f"/api/v1/tasks/{task['id']}/draw", json={}, headers=eeb)).status_code == 409:
        assert "retry-after" in r.headers and time.monotonic() < deadline, r.text
        time.sleep(0.2)
    _ok(r)
    _ok(c.post(f"/api/v1/tasks/{task['id']}/teams/hj-eeb", json={}, headers=eeb))
    listing = _ok(c.get(f"/api/v1/tasks/{task['id']}/draw", headers=eeb))
    visit = _ok(c.get(f"/api/v1/assignments/{listing['visits'][0]['assignment_id']}", headers=eeb))
    return task, listing, visit, items


def seed(c: Any, key: str, engine: sa.Engine, url: str = "") -> Seeded:
    """Through the HTTP API: a task drawn, its team, findings (one confidential), submitted, approved, published.
    Tokens are of accounts put into the server's credential store (``engine``: the server's database)."""

    def h(department: str, role: str, subject: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {stored_token(engine, key, department, [role], subject)}"}

    eeb = h("hj-eeb", "planner")
    task, listing, visit, items = draw_visit(c, eeb, "2024Q3")
    target = _ok(c.get(f"/api/v1/targets/{visit['target_id']}", headers=eeb))
    member = visit["teams"]["hj-eeb"]["members"][0]
    insp = h("hj-eeb", "inspector", member)
    rev = h("hj-eeb", "reviewer", "eeb-rev")
    done = _ok(c.post(f"/api/v1/assignments/{visit['id']}/inspections/hj-eeb/findings", headers=insp, json={
        "inspected_on": "2024-09-18", "methods": ["on_site"], "findings": {
            items[0]["id"]: {"result": "corrected", "description": f"废气处理设施未正常运行，{SECRET}",
                             "confidential": ["description"],
                             "measures": [{"kind": "order_correction", "deadline": "2024-10-18"}]},
            items[1]["id"]: {"result": "no_problem"}}}))
    _ok(c.post(f"/api/v1/inspections/{done['id']}/submit", headers=insp))
    _ok(c.post(f"/api/v1/inspections/{done['id']}/approve", json={"approved_on": "2024-09-20"}, headers=rev))
    published = _ok(c.post(f"/api/v1/inspections/{done['id']}/publish", json={"published_on": "2024-10-08"},
                           headers=rev))
    # read our write: the public read model has the result before any page is opened
    _ok(c.get("/api/v1/public/results", params={"min_position": published["position"]}))
    return Seeded(url, task, target, str(done["id"]), listing["record"]["commitment"])


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    var = tmp_path_factory.mktemp("browser") / "var"
    key = secrets.token_hex(32)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DUALRANDOM_")},
           "DUALRANDOM_VAR_DIR": str(var), "DUALRANDOM_NATS_EMBEDDED_PORT": str(free_port()),
           "DUALRANDOM_SECRET_KEY": key, "DUALRANDOM_LOG_FORMAT": "json",
           "DUALRANDOM_SESSION_COOKIE_SECURE": "false"}  # plain HTTP: the browser logs in with the session cookie
    demo = subprocess.run([str(BIN), "demo"], env=env, capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stderr
    port = free_port()
    proc = spawn(["serve", "--port", str(port)], env, var.parent / "serve.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, timeout=90)
        with httpx.Client(base_url=url, timeout=60) as c:
            database = f"sqlite:///{var / 'dualrandom.db'}"
            seeded = seed(c, key, sa.create_engine(database), url)
            seeded.key, seeded.database = key, database
        yield seeded
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (.ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, server: Seeded) -> Iterator[Any]:
    """A fresh browser context (no session) whose page records every request and every console error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    pg = context.new_page()
    pg.requested = []
    pg.errors = []
    pg.on("request", lambda r: pg.requested.append(r.url))
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(f"pageerror: {e}"))
    yield pg
    context.close()
