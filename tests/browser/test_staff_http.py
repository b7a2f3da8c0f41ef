"""The staff console over HTTP, in-process on SQLite and PostgreSQL: the login page (errors in Chinese, the lockout,
no login from another site, no redirect to another host), the guard (anonymous -> the login page and back; a
wrong role -> a 403 page in Chinese), logging out (needs the CSRF header, revokes the session)."""

import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from litestar.testing import TestClient

from domain.access import SYSTEM
from projections.directory.queries import list_entries
from services.api.app import create_app
from services.application import CommandContext
from services.cli.demo import load_demo, load_demo_plan
from services.runtime import Runtime
from tests.support.accounts import PERSON_PASSWORD, account_token, person
from tests.support.builders import credit_code


@pytest.fixture
def console(runtime: Runtime) -> Iterator[TestClient[Any]]:
    load_demo(runtime.app, CommandContext(actor=SYSTEM))
    runtime.runner.catch_up()
    runtime.settings = replace(runtime.settings, session_cookie_secure=False)  # the test client speaks plain HTTP
    for username, roles in (("li", ["planner"]), ("sun", ["partner"]), ("qian", ["auditor"])):
        person(runtime, username, roles, display_name={"li": "李明", "sun": "孙协同", "qian": "钱审计"}[username])
    with TestClient(create_app(runtime, background=False)) as client:
        yield client


def login(client: TestClient[Any], username: str, password: str = PERSON_PASSWORD, next_: str = "/staff",
          **headers: str) -> Any:
    return client.post("/login", data={"username": username, "password": password, "next": next_},
                       headers=headers, follow_redirects=False)


def csrf(client: TestClient[Any]) -> dict[str, str]:
    return {"X-CSRF-Token": client.cookies["dualrandom_csrf"], "HX-Request": "true"}


def test_an_anonymous_visitor_logs_in_and_comes_back_to_the_page_asked_for(console: TestClient[Any]) -> None:
    r = console.get("/staff?tab=1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fstaff%3Ftab%3D1"
    page = console.get(r.headers["location"])
    assert page.status_code == 200 and 'name="next" value="/staff?tab=1"' in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    r = login(console, "li", next_="/staff?tab=1")
    assert r.status_code == 303 and r.headers["location"] == "/staff?tab=1", r.text
    assert "httponly" in r.headers["set-cookie"].lower()
    home = console.get("/staff")
    assert home.status_code == 200
    # the frame: the person's name, department name and roles in Chinese; htmx from this server with the CSRF token
    assert "李明" in home.text and "新乡市生态环境局获嘉分局" in home.text and "抽查计划员" in home.text
    assert '<script src="/static/vendor/htmx/htmx.min.js"' in home.text
    assert console.cookies["dualrandom_csrf"] in home.text
    assert console.get("/static/vendor/htmx/htmx.min.js").status_code == 200


@pytest.mark.parametrize("next_", ["//evil.example/staff", "https://evil.example/staff", "/staff//evil.example",
                                   "/\\evil.example", "/public/results", "/staffing"])
def test_after_login_the_browser_never_goes_to_another_host(console: TestClient[Any], next_: str) -> None:
    r = login(console, "li", next_=next_)
    assert r.status_code == 303 and r.headers["location"] == "/staff"


def test_bad_logins_are_answered_in_chinese_and_change_nothing(console: TestClient[Any], runtime: Runtime) -> None:
    r = console.post("/login", data={"username": "", "password": ""}, follow_redirects=False)
    assert r.status_code == 400 and "请填写用户名" in r.text and "请填写密码" in r.text
    r = login(console, "li", "a" * 257)
    assert r.status_code == 400 and "密码不超过 256 个字符" in r.text
    r = login(console, "li\x01")
    assert r.status_code == 400 and "不含控制字符" in r.text
    assert "dualrandom_session" not in console.cookies
    r = login(console, "li", origin="https://evil.example")  # a login form on another site (login CSRF)
    assert r.status_code == 403 and "须从本站页面提交" in r.text and "dualrandom_session" not in console.cookies
    r = login(console, "li", **{"sec-fetch-site": "cross-site"})
    assert r.status_code == 403
    r = login(console, "li", "wrong password!!")
    assert r.status_code == 401 and "用户名或密码错误" in r.text and 'value="li"' in r.text
    assert "wrong password" not in r.text


def test_repeated_failures_lock_the_account_with_a_message_in_chinese(console: TestClient[Any],
                                                                       runtime: Runtime) -> None:
    runtime.accounts.slow_seconds = 600  # the wait after the 3rd failure, long enough for a loaded machine
    assert [login(console, "li", "wrong password!!").status_code for _ in range(3)] == [401, 401, 401]
    r = login(console, "li")  # the right password during the wait: still refused
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 500
    assert "账户已暂时锁定" in r.text and "分钟后再试" in r.text
    assert "dualrandom_session" not in console.cookies


def test_a_role_without_a_staff_page_gets_a_403_page_in_chinese(console: TestClient[Any]) -> None:
    assert login(console, "sun").status_code == 303
    r = console.get("/staff")
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
    assert "无权访问" in r.text and "此页面仅限" in r.text and "孙协同" in r.text


def test_logging_out_needs_the_csrf_header_and_revokes_the_session(console: TestClient[Any]) -> None:
    assert login(console, "qian").status_code == 303
    assert console.get("/staff").status_code == 200
    session = console.cookies["dualrandom_session"]
    r = console.post("/staff/logout", follow_redirects=False)  # no CSRF header: another site's form
    assert r.status_code == 403 and "防伪令牌" in r.text
    assert console.get("/staff").status_code == 200  # still signed in
    r = console.post("/staff/logout", headers=csrf(console), follow_redirects=False)
    assert r.status_code == 200 and r.headers["hx-redirect"] == "/login?out=1"
    assert "dualrandom_session" not in console.cookies
    console.cookies.set("dualrandom_session", session)  # the old cookie, replayed: refused
    r = console.get("/staff", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert console.get(r.headers["location"]).status_code == 200
    # an htmx request without a session is told to load the login page
    r = console.post("/staff/logout", headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.status_code == 401 and r.headers["hx-redirect"].startswith("/login?next=")


def _task(client: TestClient[Any], runtime: Runtime, period: str = "2024Q4") -> dict[str, Any]:
    h = {"Authorization": f"Bearer {account_token(runtime, 'hj-eeb', ['planner'], 'api-planner')}"}
    items = [i for i in client.get("/api/v1/items", params={"department": "hj-eeb", "limit": 100},
                                   headers=h).json()["items"] if not i.get("needs_expert")][:2]
    r = client.post("/api/v1/tasks", headers=h, json={
        "period": period, "reason": "专项检查", "participants": {"hj-eeb": [i["id"] for i in items]},
        "scope": {"county": "获嘉县", "supervision_classes": ["key"]},
        "rules": [{"supervision_class": "key", "min_ratio": "0.25"}]})
    assert r.status_code == 201, r.text
    task: dict[str, Any] = r.json()
    return task


def _state(client: TestClient[Any], runtime: Runtime, task_id: str) -> str:
    h = {"Authorization": f"Bearer {account_token(runtime, 'hj-eeb', ['planner'], 'api-planner')}"}
    state: str = client.get(f"/api/v1/tasks/{task_id}", headers=h).json()["state"]
    return state


def test_the_draw_screen_records_each_step_and_refuses_bad_input(console: TestClient[Any], runtime: Runtime) -> None:
    task = _task(console, runtime)
    base = f"/staff/tasks/{task['id']}"
    assert login(console, "li").status_code == 303
    h = csrf(console)
    for bad, rule in (("", "必填"), ("x" * 201, "不超过 200 个字"), ("a\x01b", "控制字符")):
        r = console.post(f"{base}/commitment", data={"entropy_source": bad}, headers=h)
        assert r.status_code == 422 and "<code>entropy_source</code>" in r.text and rule in r.text
    assert _state(console, runtime, task["id"]) == "open"  # nothing recorded
    r = console.post(f"{base}/commitment", data={"entropy_source": "福彩3D 2024年第300期开奖号码"}, headers=h)
    assert r.status_code == 200 and "承诺值已记录" in r.text, r.text
    r = console.post(f"{base}/commitment", data={"entropy_source": "again"}, headers=h)  # the state refuses it
    assert r.status_code == 422 and 'id="problems"' in r.text
    r = console.post(f"{base}/freeze", headers=h)
    assert r.status_code == 200 and "候选池已记录" in r.text and 'id="pool-size"' in r.text, r.text
    r = console.post(f"{base}/draw", data={"external_entropy": "", "entropy_source": "x"}, headers=h)
    assert r.status_code == 422 and "<code>external_entropy</code>" in r.text
    r = console.post(f"{base}/draw", data={"external_entropy": "386", "entropy_source": "福彩3D 2024年第300期开奖号码"},
                     headers=h)
    assert r.status_code == 200 and "摇号结果已记录" in r.text, r.text
    r = console.post(f"{base}/teams", headers=h)
    assert r.status_code == 200 and "检查组已记录" in r.text, r.text
    drawn = console.get(f"{base}/drawn")
    assert drawn.status_code == 200
    names = [v["target_name"] for v in runtime.teams.drawn_list(SYSTEM, uuid.UUID(task["id"]))["visits"]]
    assert names and all(n in drawn.text for n in names)
    assert console.get("/staff/tasks").status_code == 200 and task["number"] in console.get("/staff/tasks").text


def test_the_task_pages_refuse_the_wrong_role_and_department(console: TestClient[Any], runtime: Runtime) -> None:
    task = _task(console, runtime)
    base = f"/staff/tasks/{task['id']}"
    person(runtime, "amr", ["planner"], department="hj-amr", display_name="孙市监")
    person(runtime, "wu", ["inspector"], display_name="吴检查")
    assert console.get(base, follow_redirects=False).status_code == 303  # anonymous: to the login page
    assert login(console, "wu").status_code == 303
    for path in ("/staff/tasks", base, f"{base}/drawn"):
        r = console.get(path)
        assert r.status_code == 403 and "此页面仅限" in r.text, path
    assert console.post(f"{base}/freeze", headers=csrf(console)).status_code == 403
    assert login(console, "qian").status_code == 303  # an auditor reads, never acts
    assert console.get(base).status_code == 200
    r = console.post(f"{base}/commitment", data={"entropy_source": "x"}, headers=csrf(console))
    assert r.status_code == 403 and "抽查计划员" in r.text
    assert login(console, "amr").status_code == 303  # a planner of another department
    r = console.post(f"{base}/commitment", data={"entropy_source": "x"}, headers=csrf(console))
    assert r.status_code == 403, r.text
    assert console.get(f"{base}/drawn").status_code == 403
    assert _state(console, runtime, task["id"]) == "open"


def test_the_directories_search_and_page_by_cursor_with_the_apis_rules(console: TestClient[Any],
                                                                        runtime: Runtime) -> None:
    assert login(console, "li").status_code == 303
    first = console.get("/staff/directory/targets")
    assert first.status_code == 200 and 'id="next"' in first.text
    api = {"Authorization": f"Bearer {account_token(runtime, 'hj-eeb', ['planner'], 'api-planner')}"}
    listing = console.get("/api/v1/targets", params={"limit": 50}, headers=api).json()
    assert all(t["name"] in first.text for t in listing["items"])
    following = first.text.split('id="next"', 1)[0].rsplit('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    second = console.get(following)
    assert second.status_code == 200 and "（续）" in second.text
    page2 = console.get("/api/v1/targets", params={"limit": 50, "cursor": listing["next_cursor"]}, headers=api).json()
    assert all(t["name"] in second.text for t in page2["items"])
    one = listing["items"][0]
    found = console.get("/staff/directory/targets", params={"credit_code": one["credit_code"]})
    assert "共 1 条" in found.text and one["name"] in found.text
    assert "共 0 条" in console.get("/staff/directory/targets", params={"name": "不存在的企业%_"}).text
    r = console.get("/staff/directory/targets", params={"supervision_class": "nope"})
    assert r.status_code == 400 and "<code>supervision_class</code>" in r.text
    assert console.get("/staff/directory/targets", params={"cursor": "zz"}).status_code == 400
    assert console.get("/staff/directory/nope").status_code == 404
    # inspectors are personal data: a planner sees only their own department's
    assert console.get("/staff/directory/inspectors", params={"department": "hj-amr"}).status_code == 400
    eeb = console.get("/staff/directory/inspectors")
    amr = [e["name"] for e in list_entries(runtime.engine, "inspector", {"department": "hj-amr"}, limit=100).items]
    assert eeb.status_code == 200 and amr and "新乡市生态环境局获嘉分局" in eeb.text
    assert not any(name in eeb.text for name in amr)
    assert console.get("/staff/directory/items", params={"department": "hj-amr"}).status_code == 200


def test_an_import_lists_every_bad_row_and_stores_nothing(console: TestClient[Any], runtime: Runtime) -> None:
    assert login(console, "li").status_code == 303
    assert console.get("/staff/directory/targets/import").status_code == 200
    head = "统一社会信用代码,企业名称,地址,县区,行业,监管类别,信用风险等级\n"
    bad = head + "91410724MA0000000X,甲公司,获嘉县一路1号,获嘉县,化工,key,A\n,乙公司,获嘉县二路2号,获嘉县,化工,nope,A\n"
    before = runtime.runner.head()
    r = console.post("/staff/directory/targets/import", files={"file": ("bad.csv", bad.encode(), "text/csv")},
                     headers=csrf(console))
    assert r.status_code == 422 and 'id="bad-rows"' in r.text, r.text
    assert "统一社会信用代码" in r.text and "监管类别" in r.text
    rows = r.text.split('id="bad-rows"', 1)[1]
    assert rows.count("<tr><td") >= 2  # every bad row, not the first one only
    assert runtime.runner.head() == before  # nothing stored
    assert console.post("/staff/directory/targets/import", headers=csrf(console),
                        files={"file": ("", b"", "text/csv")}).status_code in (400, 422)
    code = credit_code(777001)
    good = head + f"{code},丙公司,获嘉县三路3号,获嘉县,化工,key,A\n"
    r = console.post("/staff/directory/targets/import", files={"file": ("good.csv", good.encode(), "text/csv")},
                     headers=csrf(console))
    assert r.status_code == 200 and "新增 1 条" in r.text, r.text
    runtime.runner.catch_up()
    assert list_entries(runtime.engine, "target", {"credit_code": code}).items[0]["name"] == "丙公司"
    r = console.post("/staff/directory/targets/import", files={"file": ("good.csv", good.encode(), "text/csv")})
    assert r.status_code == 403  # no CSRF header: refused before anything is read


def test_the_directory_pages_refuse_the_wrong_role(console: TestClient[Any], runtime: Runtime) -> None:
    person(runtime, "wu", ["inspector"], display_name="吴检查")
    assert login(console, "qian").status_code == 303  # an auditor reads, never imports
    assert console.get("/staff/directory/targets").status_code == 200
    assert console.get("/staff/directory/targets/import").status_code == 403
    r = console.post("/staff/directory/targets/import", headers=csrf(console),
                     files={"file": ("a.csv", b"x\n", "text/csv")})
    assert r.status_code == 403
    assert login(console, "wu").status_code == 303
    assert console.get("/staff/directory/targets").status_code == 403


def test_the_plan_inbox_and_kpis_show_what_the_api_reads_with_names_and_charts(console: TestClient[Any],
                                                                              runtime: Runtime) -> None:
    assert login(console, "li").status_code == 303
    assert "尚未制定 2024 年度抽查计划" in console.get("/staff/plans", params={"year": "2024"}).text
    load_demo_plan(runtime)
    runtime.runner.catch_up()
    api = {"Authorization": f"Bearer {account_token(runtime, 'hj-eeb', ['planner'], 'api-planner')}"}
    plan = console.get("/api/v1/plans", params={"year": 2024}, headers=api).json()
    page = console.get("/staff/plans", params={"year": "2024"})
    assert page.status_code == 200 and plan["name"] in page.text
    assert plan["breaches"] and "每季度抽查任务不少于 1 次" in page.text
    assert page.text.count("<tr><td data-label=\"规则\">") == len(plan["breaches"])
    items = runtime.lookups.items(plan["entries"][0]["items"])
    assert all(i["name"] in page.text for i in items.values()) and plan["entries"][0]["items"][0] not in page.text
    kpis = console.get("/api/v1/kpis", params={"year": 2024}, headers=api).json()
    page = console.get("/staff/kpis", params={"year": "2024"})
    assert page.status_code == 200 and page.text.count("<svg") == 3
    key = kpis["coverage"]["by_class"]["key"]
    assert f"{key['drawn']} / {key['baseline_minimum']}" in page.text
    assert f"{kpis['joint_share']['value'] * 100:.0f}%" in page.text
    inbox = console.get("/staff/inbox", params={"year": "2024"})
    assert inbox.status_code == 200 and plan["tasks"][0]["number"] in inbox.text
    names = [e["name"] for e in list_entries(runtime.engine, "inspector", {"department": "hj-eeb"}, limit=100).items]
    assert any(n in inbox.text for n in names)


def test_the_boards_refuse_another_department_and_the_wrong_role(console: TestClient[Any], runtime: Runtime) -> None:
    person(runtime, "wu", ["inspector"], display_name="吴检查")
    assert login(console, "li").status_code == 303
    for path in ("/staff/plans", "/staff/inbox", "/staff/kpis"):
        r = console.get(path, params={"department": "hj-amr"})
        assert r.status_code == 400 and "<code>department</code>" in r.text, path
        assert console.get(path, params={"year": "24"}).status_code == 400
    assert login(console, "qian").status_code == 303  # auditors read every department's
    for path in ("/staff/plans", "/staff/inbox", "/staff/kpis"):
        assert console.get(path, params={"department": "hj-amr"}).status_code == 200, path
    assert login(console, "wu").status_code == 303
    for path in ("/staff/plans", "/staff/inbox", "/staff/kpis"):
        assert console.get(path).status_code == 403, path


def test_an_auditor_browses_the_log_an_aggregate_as_of_a_version_and_verifies_a_draw(
        console: TestClient[Any], runtime: Runtime) -> None:
    load_demo_plan(runtime)
    runtime.runner.catch_up()
    task = runtime.task_opening.list_tasks(SYSTEM, 2024, "hj-eeb", 1, 0)["items"][0]
    assert login(console, "qian").status_code == 303
    log = console.get("/staff/audit/log")
    assert log.status_code == 200 and 'id="next"' in log.text and "新乡市生态环境局获嘉分局" in log.text
    second = console.get("/staff/audit/log", params={"after": "50"})
    assert second.status_code == 200 and "<td data-label=\"位置\">51</td>" in second.text
    assert "<td data-label=\"位置\">50</td>" not in second.text
    history = console.get(f"/staff/audit/aggregates/{task['id']}")
    assert history.status_code == 200 and task["number"] in history.text
    first = console.get(f"/staff/audit/aggregates/{task['id']}", params={"version": "1"})
    assert first.status_code == 200 and "下表为第 1 版" in first.text
    cell = '<th scope="row"><code>state</code></th><td data-label="值" class="small">{}</td>'
    assert cell.format("open") in first.text and cell.format("drawn") in history.text  # as opened; as it is now
    for params, field in (({"version": "0"}, "version"), ({"at": "yesterday"}, "at"),
                          ({"version": "1", "at": "2025-03-01T10:00:00+08:00"}, "at"), ({"after": "x"}, "after")):
        path = "/staff/audit/log" if "after" in params else f"/staff/audit/aggregates/{task['id']}"
        r = console.get(path, params=params)
        assert r.status_code == 400 and f"<code>{field}</code>" in r.text, params
    r = console.get(f"/staff/audit/tasks/{task['id']}/verification")
    assert r.status_code == 200 and 'id="verification" class="ok"' in r.text and "一致" in r.text
    r = console.get("/staff/audit/checkpoints")
    assert r.status_code == 200 and 'id="coverage"' in r.text


def test_the_audit_pages_refuse_planners_and_other_departments(console: TestClient[Any], runtime: Runtime) -> None:
    load_demo_plan(runtime)
    runtime.runner.catch_up()
    task = runtime.task_opening.list_tasks(SYSTEM, 2024, "hj-eeb", 1, 0)["items"][0]
    person(runtime, "zhou", ["planner"], department="hj-wr", display_name="周水利")
    assert login(console, "li").status_code == 303
    for path in ("/staff/audit/log", f"/staff/audit/aggregates/{task['id']}", "/staff/audit/checkpoints"):
        r = console.get(path)
        assert r.status_code == 403 and "审计人员" in r.text, path
    # the task's own planner may verify its draw (as GET /api/v1/tasks/{id}/draw/verification) ...
    assert console.get(f"/staff/audit/tasks/{task['id']}/verification").status_code == 200
    assert login(console, "zhou").status_code == 303  # ... a planner of a department not in the task may not
    assert console.get(f"/staff/audit/tasks/{task['id']}/verification").status_code == 403


def test_a_joint_tasks_seed_shares_are_committed_and_revealed_on_the_draw_screen(console: TestClient[Any],
                                                                                runtime: Runtime) -> None:
    import hashlib

    h = {"Authorization": f"Bearer {account_token(runtime, 'hj-eeb', ['planner'], 'api-planner')}"}
    items = {d: [i["id"] for i in console.get("/api/v1/items", params={"department": d, "limit": 100},
                                              headers=h).json()["items"] if not i.get("needs_expert")][:1]
             for d in ("hj-eeb", "hj-amr")}
    r = console.post("/api/v1/tasks", headers=h, json={
        "period": "2024Q4", "reason": "联合检查", "participants": items,
        "scope": {"county": "获嘉县", "supervision_classes": ["key"]},
        "rules": [{"supervision_class": "key", "min_ratio": "0.25"}]})
    assert r.status_code == 201, r.text
    base = f"/staff/tasks/{r.json()['id']}"
    assert login(console, "li").status_code == 303
    assert "各部门种子份额" in console.get(base).text
    r = console.post(f"{base}/commitment", data={"entropy_source": "福彩3D 2024年第301期开奖号码"}, headers=csrf(console))
    assert r.status_code == 200 and 'id="share-commitment"' in r.text
    share = "ab" * 32
    r = console.post(f"{base}/shares", data={"commitment": "not hex"}, headers=csrf(console))
    assert r.status_code == 422 and "<code>commitment</code>" in r.text and "64 位十六进制数" in r.text
    digest = hashlib.sha256(bytes.fromhex(share)).hexdigest()
    r = console.post(f"{base}/shares", data={"commitment": digest}, headers=csrf(console))
    assert r.status_code == 200 and "本部门份额承诺已记录" in r.text, r.text
    r = console.post(f"{base}/freeze", headers=csrf(console))  # hj-amr has not committed its share: refused
    assert r.status_code == 409 and 'id="problems"' in r.text and _state(console, runtime, base[13:]) == "committed"
    person(runtime, "amr", ["planner"], department="hj-amr", display_name="孙市监")
    assert login(console, "amr").status_code == 303
    amr_share = "cd" * 32
    r = console.post(f"{base}/shares", data={"commitment": hashlib.sha256(bytes.fromhex(amr_share)).hexdigest()},
                     headers=csrf(console))
    assert r.status_code == 200, r.text
    r = console.post(f"{base}/freeze", headers=csrf(console))  # the lead department freezes, not a participant
    assert r.status_code == 403 and "冻结候选池</button>" not in console.get(base).text
    assert login(console, "li").status_code == 303
    assert console.post(f"{base}/freeze", headers=csrf(console)).status_code == 200
    assert login(console, "amr").status_code == 303
    r = console.post(f"{base}/shares", data={"share": "ef" * 32}, headers=csrf(console))  # not what was committed
    assert r.status_code == 422 and 'id="problems"' in r.text
    r = console.post(f"{base}/shares", data={"share": amr_share}, headers=csrf(console))
    assert r.status_code == 200 and "本部门种子份额已记录" in r.text, r.text
