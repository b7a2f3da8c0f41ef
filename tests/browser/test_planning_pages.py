"""The planners' writing pages in a real Chromium, against the served process: a planner draws up a year's plan,
adds an entry with the form, sees its quotas, opens the task from it and lands on the draw screen; a planner
declares a recusal on a drawn visit and sees the replacement by name; two tasks' visits of one target merge.
Nothing is requested from another host. Screenshots into docs/screenshots/."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.browser.conftest import SCREENSHOTS, Seeded, draw_visit
from tests.browser.test_staff_console import only_this_server, sign_in
from tests.support.accounts import PERSON_PASSWORD, stored_token

YEAR = 2026  # no other browser test plans this year


@pytest.fixture(scope="module")
def planner(server: Seeded) -> str:
    """A planner of hj-eeb with a password, created by an admin through the account API."""
    token = stored_token(sa.create_engine(server.database), server.key, "hj-eeb", ["admin"], "plan-admin")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c:
        r = c.post("/api/v1/accounts", json={"username": "plan-planner", "display_name": "周计划", "department": "hj-eeb",
                                             "roles": ["planner"], "password": PERSON_PASSWORD})
        assert r.status_code in (201, 409), r.text
    return "plan-planner"


@pytest.fixture
def api(server: Seeded) -> Iterator[httpx.Client]:
    token = stored_token(sa.create_engine(server.database), server.key, "hj-eeb", ["planner"], "plan-api")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        yield c




def test_a_planner_draws_up_a_plan_adds_an_entry_opens_its_task_and_reaches_the_draw_screen(
        page: Any, server: Seeded, planner: str, api: httpx.Client) -> None:
    items = [i for i in api.get("/api/v1/items", params={"department": "hj-eeb", "limit": 100}).json()["items"]
             if not i.get("needs_expert")][4:6]
    sign_in(page, server, planner, f"/staff/plans?year={YEAR}")
    page.locator("#no-plan").wait_for()
    page.get_by_role("button", name=f"制定 {YEAR} 年度计划").click()
    page.locator("#plan-name").filter(has_text=f"{YEAR}年").wait_for()
    page.get_by_role("link", name="新增计划条目").click()
    page.get_by_label("条目名称").fill("四季度重点排污单位抽查")
    for item in items:
        page.get_by_label(f"{item['name']}（{item['code']}）", exact=True).check()
    page.get_by_label("事项类别").select_option(label="重点检查事项")
    page.get_by_label("期间").select_option(label=f"{YEAR} 年第 4 季度")
    page.get_by_label("县区").fill("获嘉县")
    page.locator("#scope-set").get_by_label("重点监管", exact=True).check()
    page.get_by_label("第 1 条 最低比例").fill("百分之二十五")  # refused: the form comes back naming the field
    page.get_by_role("button", name="新增条目").click()
    page.locator("#problems").filter(has_text="rules[0].min_ratio").wait_for()
    assert "抽查比例第 1 条 · 最低比例" in page.locator("#problems").inner_text()
    assert page.get_by_label("条目名称").input_value() == "四季度重点排污单位抽查"  # the values kept
    page.get_by_label("第 1 条 最低比例").fill("25%")
    page.screenshot(path=str(SCREENSHOTS / "staff-plan-entry.png"), full_page=True)
    page.get_by_role("button", name="新增条目").click()
    entry = page.locator(f"#entry-{YEAR}001")
    entry.wait_for()
    assert "四季度重点排污单位抽查" in entry.inner_text()
    section = page.locator("section.entry").filter(has=entry)
    assert section.locator("tbody tr").count() >= 1  # quotas per stratum, from the directory
    assert all(i["name"] in section.inner_text() for i in items)
    page.screenshot(path=str(SCREENSHOTS / "staff-plan-edit.png"), full_page=True)
    section.get_by_role("link", name="开启任务").click()
    page.locator("#from-entry").filter(has_text=f"依据计划条目 {YEAR}001").wait_for()
    page.screenshot(path=str(SCREENSHOTS / "staff-task-open.png"), full_page=True)
    page.get_by_role("button", name="开启任务").click()
    page.locator("h1").filter(has_text=f"摇号 · {YEAR}-").wait_for()
    assert page.get_by_role("button", name="生成承诺").count() == 1  # the draw screen, ready for step 1
    tasks = api.get("/api/v1/plans", params={"year": YEAR}).json()["tasks"]
    # other tests on this shared server may open tasks of the year too: the one shown is the entry's (重点 items)
    shown = [task for task in tasks if page.locator("h1").inner_text().endswith(task["number"])]
    assert len(shown) == 1 and "重点检查事项" in shown[0]["name"], tasks
    only_this_server(page, server)


def test_a_planner_declares_a_recusal_and_sees_the_replacement_by_name_then_merges_two_visits(
        page: Any, server: Seeded, planner: str, api: httpx.Client) -> None:
    eeb = dict(api.headers)
    first, _, _, _ = draw_visit(api, eeb, "2024Q2", "专项检查（回避）")
    second, listing, visit, _ = draw_visit(api, eeb, "2024Q2", "第二项专项检查（合并）")
    sign_in(page, server, planner, f"/staff/tasks/{second['id']}/drawn")
    page.locator("#drawn").wait_for()
    page.locator(f'a[href="/staff/assignments/{visit["id"]}"]').click()
    page.locator("#teams").wait_for()
    members = visit["teams"]["hj-eeb"]["members"]
    people = {i: p["name"] for i, p in listing["inspectors"].items()}
    teams = page.locator("#teams").inner_text()
    assert all(people[m] in teams for m in members) and not any(m in teams for m in members)
    leaving = members[-1]
    page.get_by_label("回避人员").select_option(value=leaving)
    page.get_by_label("回避事由").fill("与企业负责人系近亲属")
    page.screenshot(path=str(SCREENSHOTS / "staff-visit-recusal.png"), full_page=True)
    page.get_by_role("button", name="申请回避并重新抽取").click()
    page.locator("#replacement").wait_for()
    after = api.get(f"/api/v1/assignments/{visit['id']}").json()
    new = next(m for m in after["teams"]["hj-eeb"]["members"] if m not in members)
    assert people[leaving] in page.locator("#removed").inner_text()
    assert after["people"][new]["name"] in page.locator("#replacement").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "staff-recused.png"))
    page.get_by_role("link", name="返回").click()
    page.locator("#recusals").filter(has_text="与企业负责人系近亲属").wait_for()

    # the two tasks drew the same key targets in 2024Q2: one visit for both (合并检查)
    page.goto(f"{server.url}/staff/tasks/{second['id']}/overlaps")
    rows = page.locator("#overlaps tbody tr").filter(has_text=first["number"])
    rows.first.wait_for()
    row = rows.first
    row.get_by_label("合并理由").fill("同一企业同一季度，一次检查")
    page.screenshot(path=str(SCREENSHOTS / "staff-overlaps.png"), full_page=True)
    row.get_by_role("button", name=f"并入 {first['number']} 的检查").click()
    page.locator("#visit-state").wait_for()
    facts = page.locator("dl.visit-facts").inner_text()
    assert first["number"] in facts and second["number"] in facts
    only_this_server(page, server)
