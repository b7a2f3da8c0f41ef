"""The staff console in a real Chromium: log in through the form, the frame (name, department, navigation by role),
htmx from this server sending the CSRF header, logging out; a wrong role refused with a page in Chinese; nothing
requested from another host. Screenshots into docs/screenshots/."""

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa

from tests.browser.conftest import SCREENSHOTS, Seeded
from tests.support.accounts import PERSON_PASSWORD, stored_token

PEOPLE = {"console-planner": ("李明", ["planner"]), "console-auditor": ("钱审计", ["auditor"]),
          "console-partner": ("孙协同", ["partner"])}


@pytest.fixture(scope="module")
def people(server: Seeded) -> dict[str, str]:
    """People with passwords, created by an admin through the account API of the served process."""
    token = stored_token(sa.create_engine(server.database), server.key, "hj-eeb", ["admin"], "console-admin")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c:
        for username, (name, roles) in PEOPLE.items():
            r = c.post("/api/v1/accounts", json={"username": username, "display_name": name, "department": "hj-eeb",
                                                 "roles": roles, "password": PERSON_PASSWORD})
            assert r.status_code in (201, 409), r.text
    return {u: n for u, (n, _) in PEOPLE.items()}




def sign_in(page: Any, server: Seeded, username: str, path: str = "/staff") -> None:
    page.goto(server.url + path)
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PERSON_PASSWORD)
    page.get_by_role("button", name="登录").click()


def only_this_server(page: Any, server: Seeded) -> None:
    hosts = {urlsplit(u).netloc for u in page.requested if urlsplit(u).scheme in ("http", "https", "ws", "wss")}
    assert hosts == {urlsplit(server.url).netloc}
    assert not [e for e in page.errors if "Content Security Policy" in e], page.errors


def test_a_planner_logs_in_sees_the_frame_and_logs_out(page: Any, server: Seeded, people: dict[str, str]) -> None:
    page.goto(server.url + "/staff")
    assert urlsplit(page.url).path == "/login"
    page.get_by_label("用户名").fill("console-planner")
    page.get_by_label("密码").fill("wrong password!!")
    page.get_by_role("button", name="登录").click()
    page.locator("#problems").filter(has_text="用户名或密码错误").wait_for()
    page.screenshot(path=str(SCREENSHOTS / "login.png"))
    page.get_by_label("密码").fill(PERSON_PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.locator("#me").filter(has_text="李明").wait_for()
    me = page.locator("#me").inner_text()
    assert "新乡市生态环境局获嘉分局" in me and "抽查计划员" in me
    nav = page.get_by_role("navigation", name="工作台导航").inner_text()
    assert "工作台" in nav and "审核与公示" not in nav  # a planner is not a reviewer
    page.wait_for_function("() => window.htmx !== undefined")
    page.screenshot(path=str(SCREENSHOTS / "staff-home.png"))
    page.get_by_role("button", name="退出登录").click()  # htmx, with the CSRF header
    page.locator("#notice").filter(has_text="您已退出登录").wait_for()
    page.goto(server.url + "/staff")
    assert urlsplit(page.url).path == "/login"
    only_this_server(page, server)


def test_a_wrong_role_is_refused_with_a_page_in_chinese(page: Any, server: Seeded, people: dict[str, str]) -> None:
    sign_in(page, server, "console-partner")
    page.locator("#problems").filter(has_text="此页面仅限").wait_for()
    assert page.locator("h1").inner_text() == "无权访问"
    assert "孙协同" in page.locator("#me").inner_text()
    only_this_server(page, server)


def _open_task(server: Seeded, period: str) -> dict[str, Any]:
    """A task opened through the API by a planner of hj-eeb (opening is the API's; the draw is the screen's)."""
    token = stored_token(sa.create_engine(server.database), server.key, "hj-eeb", ["planner"], "console-api")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        items = [i for i in c.get("/api/v1/items", params={"department": "hj-eeb", "limit": 100}).json()["items"]
                 if not i.get("needs_expert")][2:4]  # not the seeded task's items: its draw took every key target
        r = c.post("/api/v1/tasks", json={
            "period": period, "reason": "专项检查", "participants": {"hj-eeb": [i["id"] for i in items]},
            "scope": {"county": "获嘉县", "supervision_classes": ["key"]},
            "rules": [{"supervision_class": "key", "min_ratio": "0.25"}]})
        assert r.status_code == 201, r.text
        task: dict[str, Any] = r.json()
        return task


def test_a_planner_draws_a_task_on_the_draw_screen_and_sees_the_drawn_list_with_names(
        page: Any, server: Seeded, people: dict[str, str]) -> None:
    task = _open_task(server, "2024Q4")
    sign_in(page, server, "console-planner", f"/staff/tasks/{task['id']}")
    page.locator("h1").filter(has_text=f"摇号 · {task['number']}").wait_for()
    page.get_by_label("外部随机源（摇号时取其公布值）").fill("福彩3D 2024年第300期开奖号码")
    page.get_by_role("button", name="生成承诺").click()
    page.locator("#recorded").filter(has_text="承诺值已记录").wait_for()
    commitment = page.locator("#commitment").inner_text()
    assert len(commitment) == 64
    page.get_by_role("button", name="冻结候选池").click()
    page.locator("#recorded").filter(has_text="候选池已记录").wait_for()
    assert int(page.locator("#pool-size").inner_text()) > 0
    assert page.locator("#strata tbody tr").count() >= 1
    page.get_by_label("福彩3D 2024年第300期开奖号码的公布值").fill("386")
    page.get_by_role("button", name="摇号").click()
    # the draw waits for a signed checkpoint covering the freeze: the screen retries by itself until then
    page.locator("#drawn-count").wait_for(timeout=90_000)
    drawn = int(page.locator("#drawn-count").inner_text())
    assert drawn > 0 and page.locator("#external-entropy").inner_text() == "386"
    page.get_by_role("button", name="为本部门匹配检查人员").click()
    page.locator("#recorded").filter(has_text="检查组已记录").wait_for()
    page.screenshot(path=str(SCREENSHOTS / "staff-draw.png"), full_page=True)
    page.get_by_role("link", name="查看抽取名单").click()
    rows = page.locator("#drawn tbody tr")
    rows.first.wait_for()
    assert rows.count() == drawn
    token = stored_token(sa.create_engine(server.database), server.key, "hj-eeb", ["planner"], "console-api")
    listing = httpx.get(f"{server.url}/api/v1/tasks/{task['id']}/draw",
                        headers={"Authorization": f"Bearer {token}"}).json()
    names = {v["target_name"] for v in listing["visits"]}
    table = page.locator("#drawn").inner_text()
    assert all(n in table for n in names)
    inspectors = {p["name"] for p in listing["inspectors"].values()}
    assert inspectors and all(n in table for n in inspectors)
    assert not any(i in table for i in listing["inspectors"])  # names, never bare ids
    page.screenshot(path=str(SCREENSHOTS / "staff-drawn.png"), full_page=True)
    only_this_server(page, server)


def test_a_planner_searches_the_directory_and_imports_a_file_with_bad_rows(
        page: Any, server: Seeded, people: dict[str, str]) -> None:
    sign_in(page, server, "console-planner", "/staff/directory/targets")
    page.get_by_label("统一社会信用代码").fill(server.target["credit_code"])
    page.get_by_role("button", name="查询").click()
    page.locator("#count").filter(has_text="共 1 条").wait_for()
    assert server.target["name"] in page.locator("#entries").inner_text()
    page.get_by_role("link", name="导入表格").click()
    head = "统一社会信用代码,企业名称,地址,县区,行业,监管类别,信用风险等级\n"
    body = head + ",甲公司,获嘉县一路1号,获嘉县,化工,key,A\n" + "91410724MA0000000X,乙公司,获嘉县二路2号,获嘉县,化工,nope,A\n"
    page.get_by_label("文件").set_input_files(
        files=[{"name": "名录.csv", "mimeType": "text/csv", "buffer": body.encode()}])
    page.get_by_role("button", name="导入").click()
    page.locator("#bad-rows").wait_for()
    assert page.locator("#bad-rows tbody tr").count() >= 2
    assert page.locator("#upload-progress").get_attribute("value") == "100"
    page.screenshot(path=str(SCREENSHOTS / "staff-import.png"), full_page=True)
    only_this_server(page, server)


def test_a_planner_sees_the_kpis_as_charts_and_the_plan(page: Any, server: Seeded, people: dict[str, str]) -> None:
    sign_in(page, server, "console-planner", "/staff/kpis?year=2024")
    page.locator("svg.chart").first.wait_for()
    assert page.locator("svg.chart").count() == 3
    assert page.get_by_role("img", name="2024 年部门联合抽查占比").count() == 1
    page.screenshot(path=str(SCREENSHOTS / "staff-kpis.png"), full_page=True)
    page.get_by_role("navigation", name="工作台导航").get_by_role("link", name="年度计划").click()
    page.locator("h1").filter(has_text="年度抽查计划").wait_for()
    only_this_server(page, server)


def test_an_auditor_browses_the_log_and_verifies_a_draw(page: Any, server: Seeded, people: dict[str, str]) -> None:
    sign_in(page, server, "console-auditor")
    page.get_by_role("navigation", name="工作台导航").get_by_role("link", name="日志").click()
    page.locator("#log tbody tr").first.wait_for()
    assert page.locator("#log tbody tr").count() == 50
    page.get_by_role("link", name="下一页").click()
    page.locator("#log tbody tr").first.filter(has_text="51").wait_for()
    page.screenshot(path=str(SCREENSHOTS / "staff-log.png"))
    page.locator("#log a").first.click()  # one aggregate's history
    page.locator("#history").wait_for()
    page.get_by_label("截至版本").fill("1")
    page.get_by_role("button", name="查看当时状态").click()
    page.locator("p").filter(has_text="下表为第 1 版").wait_for()
    page.goto(f"{server.url}/staff/audit/tasks/{server.task['id']}/verification")
    page.locator("#verification.ok").filter(has_text="一致").wait_for()
    page.get_by_role("navigation", name="工作台导航").get_by_role("link", name="检查点与见证").click()
    page.locator("#coverage").wait_for()
    assert page.locator("#checkpoints tbody tr").count() >= 1  # the served process signs checkpoints
    page.screenshot(path=str(SCREENSHOTS / "staff-checkpoints.png"), full_page=True)
    # an auditor reads and never acts: the draw screen has no buttons for them
    page.goto(f"{server.url}/staff/tasks/{server.task['id']}")
    page.locator("#steps").wait_for()
    assert page.locator("#steps button").count() == 0
    only_this_server(page, server)


def test_redoc_renders_offline_and_swaggers_authorize_sends_the_token(page: Any, server: Seeded,
                                                                      people: dict[str, str]) -> None:
    raw = httpx.get(server.url + "/schema/redoc").text
    assert "https://" not in raw and "http://" not in raw and "<script>" not in raw  # no CDN, no inline script
    page.goto(server.url + "/schema/redoc")
    page.get_by_role("heading", name="dualrandom").first.wait_for(timeout=60_000)
    page.get_by_role("heading", name="Log in").first.wait_for()  # an operation, from /schema/openapi.json
    only_this_server(page, server)
    # Swagger UI: Authorize with a token, then an operation declaring BearerToken is sent with it
    token = httpx.post(server.url + "/api/v1/session", json={"username": "console-planner",
                                                              "password": PERSON_PASSWORD}).json()["token"]
    page.goto(server.url + "/schema/swagger")
    page.locator("button.authorize").first.click()
    bearer = page.locator(".dialog-ux .auth-container").filter(has_text="BearerToken")
    bearer.locator("input").fill(token)
    bearer.locator("button.authorize").click()
    bearer.locator("button", has_text="Logout").wait_for()  # authorized
    page.locator(".dialog-ux button.close-modal").click()
    page.locator(".dialog-ux").wait_for(state="detached")
    # GET /api/v1/departments (BearerToken): among the first operations Swagger UI renders
    op = page.locator(".opblock-get").filter(has=page.locator(".opblock-summary-description",
                                                              has_text="List departments"))
    op.wait_for(timeout=60_000)
    try_it = op.get_by_role("button", name="Try it out")
    if not try_it.is_visible():  # the deep link opened it already
        op.locator("button.opblock-summary-control").click()
    try_it.click()
    op.get_by_role("button", name="Execute").click()
    op.locator(".live-responses-table .response-col_status").filter(has_text="200").wait_for()
    answer = op.locator(".live-responses-table").inner_text()
    assert "Bearer " + token[:20] in op.inner_text().replace("\n", " ") and "新乡市生态环境局获嘉分局" in answer
    only_this_server(page, server)
