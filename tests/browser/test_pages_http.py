"""The public pages in-process, on SQLite and PostgreSQL: the filters on both stores, bad input refused, the rate
limit of the public API, the CSP on every response and the task link of each public result."""

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from litestar.testing import TestClient

from domain.access import SYSTEM
from services.api.app import create_app
from services.application import CommandContext
from services.cli.demo import load_demo
from services.runtime import Runtime
from tests.browser.conftest import SECRET, Seeded, seed


@pytest.fixture
def seeded(runtime: Runtime) -> Iterator[tuple[TestClient[Any], Seeded]]:
    load_demo(runtime.app, CommandContext(actor=SYSTEM))
    runtime.runner.catch_up()
    with TestClient(create_app(runtime)) as client:
        yield client, seed(client, runtime.settings.secret_key, runtime.engine)


def _count(client: TestClient[Any], **params: str) -> str:
    r = client.get("/public/results", params=params)
    assert r.status_code == 200, r.text
    assert SECRET not in r.text
    return r.text.split('id="count"', 1)[1].split("</p>", 1)[0]


def test_the_filters_narrow_the_results_on_both_stores(seeded: tuple[TestClient[Any], Seeded]) -> None:
    client, s = seeded
    name = s.target["name"]
    assert "共 1 条" in _count(client, q=name)
    assert "共 1 条" in _count(client, q=s.target["credit_code"][:10].lower())
    assert "共 1 条" in _count(client, q=name, department="hj-eeb", year="2024", result="corrected")
    assert "共 1 条" in _count(client, q=name, result="no_problem")  # the other item's result
    assert "共 0 条" in _count(client, q=name, department="hj-amr")
    assert "共 0 条" in _count(client, q=name, year="2023")
    assert "共 0 条" in _count(client, q=name, result="closed")
    assert "共 0 条" in _count(client, q="100%_不存在的企业")  # LIKE wildcards are text here
    page = client.get("/public/results", params={"q": name}).text
    assert f"/public/tasks/{s.task['id']}/draw" in page and "责令改正（期限 2024-10-18）" in page
    api = client.get("/api/v1/public/results", params={"q": name}).json()
    assert api["items"][0]["task_id"] == s.task["id"]
    draw = client.get(f"/public/tasks/{s.task['id']}/draw")
    assert draw.status_code == 200 and s.commitment in draw.text and 'id="verification" class="ok"' in draw.text
    assert s.target["id"] not in draw.text and name not in draw.text
    for ref in ("notauuid", "00000000-0000-0000-0000-000000000000", "%E4%B8%AD"):  # no task: one HTML 404 page
        missing = client.get(f"/public/tasks/{ref}/draw")
        assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html"), ref
        assert "没有这个抽查任务" in missing.text


@pytest.mark.parametrize(("params", "field"), [
    ({"year": "24"}, "year"), ({"year": "２０２４"}, "year"), ({"result": "nope"}, "result"),
    ({"department": "nobody"}, "department"), ({"page": "0"}, "page"), ({"page": "x"}, "page"),
    ({"q": "x" * 101}, "q"), ({"q": "a\x01b"}, "q"),
])
def test_bad_input_is_a_400_page_naming_the_field(seeded: tuple[TestClient[Any], Seeded], params: dict[str, str],
                                                  field: str) -> None:
    client, _ = seeded
    r = client.get("/public/results", params=params)
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    assert f"<code>{field}</code>" in r.text


def test_pages_carry_the_csp_and_share_the_public_rate_limit(runtime: Runtime) -> None:
    runtime.settings = replace(runtime.settings, public_rate_per_minute=5)
    with TestClient(create_app(runtime, background=False)) as client:
        for path in ("/static/site.css", "/schema/swagger", "/health"):  # none of them counted
            csp = client.get(path).headers["content-security-policy"]
            assert csp.startswith("default-src 'self'") and "http" not in csp, path
        # one budget per client for the pages and the public API
        answers = [client.get(p).status_code for p in ["/public/results"] * 3 + ["/api/v1/public/results"] * 2]
        assert answers == [200] * 5
        limited = client.get("/")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        assert limited.headers["content-security-policy"].startswith("default-src 'self'")
        assert client.get("/api/v1/public/results").status_code == 429
        assert client.get("/static/site.css").status_code == 200
