"""The public pages in-process, on SQLite and PostgreSQL: the filters on both stores, bad input refused, the rate
limit of the public API, the CSP on every response and the task link of each public result; the public answers'
cache shared with the JSON endpoint (a new publication in the next answer, ETag/304, one answer per query)."""

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from domain.access import SYSTEM
from services.api.app import create_app
from services.application import CommandContext
from services.cli.demo import load_demo
from services.runtime import Runtime
from tests.browser.conftest import SECRET, Seeded, draw_visit, seed
from tests.support.accounts import stored_token


@pytest.fixture
def seeded(runtime: Runtime) -> Iterator[tuple[TestClient[Any], Seeded]]:
    load_demo(runtime.app, CommandContext(actor=SYSTEM))
    runtime.runner.catch_up()
    with TestClient(create_app(runtime)) as client:
        yield client, seed(client, runtime.settings.secret_key, runtime.engine)


@pytest.fixture
def unlimited(runtime: Runtime) -> Iterator[tuple[TestClient[Any], Seeded]]:
    """``seeded`` without the public rate limit (the tests below ask hundreds of times)."""
    runtime.settings = replace(runtime.settings, public_rate_per_minute=0)
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


def test_the_draw_page_keeps_every_withdrawn_round_with_its_reason(seeded: tuple[TestClient[Any], Seeded],
                                                                  runtime: Runtime) -> None:
    client, _ = seeded
    eeb = {"Authorization": f"Bearer {stored_token(runtime.engine, runtime.settings.secret_key, 'hj-eeb', ['planner'])}"}
    task, listing, _visit, _items = draw_visit(client, eeb, "2024Q4")
    r = client.post(f"/api/v1/tasks/{task['id']}/redraw", json={"reason": "名录库未及时更新"}, headers=eeb)
    assert r.status_code == 200, r.text
    page = client.get(f"/public/tasks/{task['id']}/draw")
    assert page.status_code == 200 and 'id="withdrawn"' in page.text
    assert "第 1 轮" in page.text and "名录库未及时更新" in page.text and "已摇号" in page.text
    assert listing["record"]["commitment"] in page.text and "尚未重新摇号" in page.text
    assert all(v["target_id"] not in page.text for v in listing["visits"])  # who was drawn stays unpublished


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


# -- the public answers' cache (services/api/public_cache.py) ------------------------------------------------
def _publish_another(client: TestClient[Any], runtime: Runtime, s: Seeded) -> tuple[str, int]:
    """Through the HTTP API: the task's second visit inspected, approved and published (findings with a
    confidential description). Returns (inspection id, the publication's log position)."""
    key, engine = runtime.settings.secret_key, runtime.engine

    def h(role: str, subject: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {stored_token(engine, key, 'hj-eeb', [role], subject)}"}

    def ok(r: Any) -> Any:
        assert r.status_code == 200, r.text
        return r.json()

    planner = h("planner")
    listing = ok(client.get(f"/api/v1/tasks/{s.task['id']}/draw", headers=planner))
    visit = ok(client.get(f"/api/v1/assignments/{listing['visits'][1]['assignment_id']}", headers=planner))
    first = ok(client.get(f"/api/v1/inspections/{s.inspection_id}", headers=h("reviewer", "eeb-rev")))
    insp, rev = h("inspector", visit["teams"]["hj-eeb"]["members"][0]), h("reviewer", "eeb-rev")
    done = ok(client.post(f"/api/v1/assignments/{visit['id']}/inspections/hj-eeb/findings", headers=insp, json={
        "inspected_on": "2024-09-19", "methods": ["on_site"], "findings": {
            item: {"result": "no_problem", "description": f"现场良好，{SECRET}", "confidential": ["description"]}
            for item in first["items"]}}))
    ok(client.post(f"/api/v1/inspections/{done['id']}/submit", headers=insp))
    ok(client.post(f"/api/v1/inspections/{done['id']}/approve", json={"approved_on": "2024-09-21"}, headers=rev))
    published = ok(client.post(f"/api/v1/inspections/{done['id']}/publish", json={"published_on": "2024-10-09"},
                               headers=rev))
    return str(done["id"]), int(published["position"])


def test_a_new_publication_is_in_the_very_next_answer_after_its_position(
        seeded: tuple[TestClient[Any], Seeded], runtime: Runtime) -> None:
    client, s = seeded
    answers = client.app.state["public_answers"]
    page, api = client.get("/public/results"), client.get("/api/v1/public/results")
    assert page.status_code == api.status_code == 200 and "共 1 条" in page.text and api.json()["total"] == 1
    hits = answers.hits
    again = client.get("/public/results")
    assert again.text == page.text and again.headers["etag"] == page.headers["etag"] and answers.hits > hits
    inspection, position = _publish_another(client, runtime, s)
    assert runtime.runner.wait_for(position)  # the read models applied it: the next anonymous answer has it
    page2, api2 = client.get("/public/results"), client.get("/api/v1/public/results")
    assert "共 2 条" in page2.text and page2.headers["etag"] != page.headers["etag"]
    assert api2.json()["total"] == 2 and api2.json()["items"][0]["id"] == inspection
    assert api2.headers["etag"] != api.headers["etag"]
    assert SECRET not in page2.text + api2.text
    for kept in list(answers._entries.values()):  # nothing confidential is ever kept
        assert SECRET.encode() not in kept.body and SECRET not in json.dumps(kept.value, ensure_ascii=False)


def test_a_conditional_get_is_answered_304_while_the_answer_is_the_same(
        seeded: tuple[TestClient[Any], Seeded]) -> None:
    client, s = seeded
    for path in ("/public/results", "/api/v1/public/results"):
        first = client.get(path, params={"q": s.target["name"]})
        tag = first.headers["etag"]
        assert first.headers["cache-control"] == "no-cache"
        for asked in (tag, f"W/{tag}", f'"other", {tag}', "*"):
            r = client.get(path, params={"q": s.target["name"]}, headers={"If-None-Match": asked})
            assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == tag, (path, asked)
        other = client.get(path, params={"q": "不存在的企业"}, headers={"If-None-Match": tag})  # another answer
        assert other.status_code == 200 and other.headers["etag"] != tag
        assert client.get(path, params={"q": s.target["name"]}, headers={"If-None-Match": '"x"'}).status_code == 200


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(
    st.sampled_from(["", "获嘉", "公司", "不存在", " 获嘉 ", "9141"]), st.sampled_from(["", "hj-eeb", "hj-amr"]),
    st.sampled_from(["", "2024", "2023"]), st.sampled_from(["", "corrected", "no_problem"]),
    st.sampled_from(["", "1", "2"])), min_size=1, max_size=6))
def test_each_query_gets_its_own_answer_the_same_as_read_from_the_database(
        unlimited: tuple[TestClient[Any], Seeded], queries: list[tuple[str, str, str, str, str]]) -> None:
    """Asked anonymously (from the cache, in any order, twice) or with a token (from the database), every query
    of the page and of the JSON endpoint gets the same answer: different queries never share one."""
    client, _ = unlimited
    bearer = {"Authorization": "Bearer not-looked-at-on-public-paths"}
    for _ in range(2):
        for q, department, year, result, page in queries:
            params = {k: v for k, v in {"q": q, "department": department, "year": year, "result": result,
                                        "page": page}.items() if v}
            cached, fresh = client.get("/public/results", params=params), client.get("/public/results",
                                                                                       params=params, headers=bearer)
            assert cached.status_code == fresh.status_code == 200 and cached.text == fresh.text, params
            api = {"q": q, "offset": str((int(page or 1) - 1) * 5), "limit": "5"}
            cached, fresh = (client.get("/api/v1/public/results", params=api),
                             client.get("/api/v1/public/results", params=api, headers=bearer))
            assert cached.status_code == fresh.status_code == 200 and cached.json() == fresh.json(), api


def test_without_projections_here_the_stored_positions_decide(runtime: Runtime) -> None:
    """With the projections in worker processes (no runner loop in this process), an answer is kept while the
    stored positions stay, and read again once a worker moved them."""
    load_demo(runtime.app, CommandContext(actor=SYSTEM))
    runtime.runner.catch_up()
    with TestClient(create_app(runtime, background=False)) as client:
        answers = client.app.state["public_answers"]
        assert not runtime.runner.running_here
        first = client.get("/public/results")
        assert "实施部门" in first.text and "获嘉县测试新部门" not in first.text
        reads = answers.reads
        assert client.get("/public/results").text == first.text and answers.reads == reads
        token = stored_token(runtime.engine, runtime.settings.secret_key, "hj-admin", ["admin"])
        made = client.post("/api/v1/departments", headers={"Authorization": f"Bearer {token}"},
                           json={"code": "hj-new", "name": "获嘉县测试新部门", "city": "新乡市", "county": "获嘉县",
                                 "kind": "ecology"})
        assert made.status_code == 201, made.text
        assert "获嘉县测试新部门" not in client.get("/public/results").text  # not applied yet: the same answer
        runtime.runner.catch_up()  # the worker applies it
        assert "获嘉县测试新部门" in client.get("/public/results").text and answers.reads > reads
