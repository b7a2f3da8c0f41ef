"""The planners' writing pages over HTTP, in-process on SQLite and PostgreSQL: drawing up the annual plan and its
entries (add, change, re-rule, remove; 409 once an entry's results are published), opening a task from an entry
and ad hoc (an undeclared overlap 409, then declared), recusals with the redraw named, and merging two visits of
one target. Each page: anonymous -> the login page, the wrong role -> the 403 page, a planner of another department
-> the use case's 403, bad input -> 422 naming the field, and nothing stored by a refusal."""

import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from litestar.testing import TestClient

from domain.access import SYSTEM, Actor
from domain.planning.plan import plan_id
from projections.directory.queries import list_entries
from services.api.app import create_app
from services.application import CommandContext
from services.cli.demo import load_demo
from services.runtime import Runtime
from tests.support.accounts import PERSON_PASSWORD, account_token, person

EEB = CommandContext(Actor("p-eeb", "hj-eeb", ("planner",)))  # hj-eeb's planner, for what a test sets up


@pytest.fixture
def console(runtime: Runtime) -> Iterator[TestClient[Any]]:
    load_demo(runtime.app, CommandContext(actor=SYSTEM))
    runtime.runner.catch_up()
    runtime.settings = replace(runtime.settings, session_cookie_secure=False)  # the test client speaks plain HTTP
    for username, roles, department, name in (("li", ["planner"], "hj-eeb", "李明"),
                                              ("amr", ["planner"], "hj-amr", "孙市监"),
                                              ("qian", ["auditor"], "hj-eeb", "钱审计"),
                                              ("boss", ["admin"], "hj-eeb", "王主任")):
        person(runtime, username, roles, department=department, display_name=name)
    with TestClient(create_app(runtime, background=False)) as client:
        yield client


def login(client: TestClient[Any], username: str) -> None:
    r = client.post("/login", data={"username": username, "password": PERSON_PASSWORD, "next": "/staff"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text


def hx(client: TestClient[Any]) -> dict[str, str]:
    return {"X-CSRF-Token": client.cookies["dualrandom_csrf"], "HX-Request": "true"}


def items_of(runtime: Runtime, department: str, n: int = 2) -> list[dict[str, Any]]:
    found = list_entries(runtime.engine, "item", {"department": department}, limit=100).items
    return [i for i in found if not i.get("needs_expert")][:n]


def entry_form(chosen: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
    form: dict[str, Any] = {"name": "二季度重点排污单位抽查", "items": [i["id"] for i in chosen], "category": "key",
                            "period": "2025Q2", "county": "获嘉县", "supervision_classes": ["key"],
                            "rule0_class": "key", "rule0_ratio": "25%", "rule0_combine": "either"}
    form.update(over)
    return form


def test_a_planner_draws_up_a_plan_and_adds_changes_rerules_and_removes_an_entry(
        console: TestClient[Any], runtime: Runtime) -> None:
    login(console, "li")
    page = console.get("/staff/plans", params={"year": "2025"})
    assert page.status_code == 200 and 'id="create-plan"' in page.text and "制定 2025 年度计划" in page.text
    before = runtime.runner.head()
    r = console.post("/staff/plans", data={"year": "25"}, headers=hx(console))
    assert r.status_code == 422 and "<code>year</code>" in r.text and runtime.runner.head() == before
    r = console.post("/staff/plans", data={"year": "2025"}, headers=hx(console))
    assert r.status_code == 200 and r.headers["hx-redirect"] == "/staff/plans?year=2025", r.text
    r = console.post("/staff/plans", data={"year": "2025"}, headers=hx(console))  # one plan a year
    assert r.status_code == 409 and 'id="problems"' in r.text
    pid = plan_id("hj-eeb", 2025)
    page = console.get("/staff/plans", params={"year": "2025"})
    assert "新乡市生态环境局获嘉分局2025年" in page.text and f"/staff/plans/{pid}/entries/new" in page.text
    form = console.get(f"/staff/plans/{pid}/entries/new")
    items = items_of(runtime, "hj-eeb")
    assert form.status_code == 200 and all(i["name"] in form.text for i in items)
    assert 'for="rule0_ratio"' in form.text and 'id="rule0_ratio"' in form.text  # every control labelled

    # bad input: 422 naming the field (in Chinese too), the values kept, nothing stored
    before = runtime.runner.head()
    r = console.post(f"/staff/plans/{pid}/entries", data=entry_form(items, items=[]), headers=hx(console))
    assert r.status_code == 422 and "<code>items</code>（抽查事项）" in r.text and "二季度重点排污单位抽查" in r.text
    r = console.post(f"/staff/plans/{pid}/entries", data=entry_form(items, rule0_ratio="百分之二十五"),
                     headers=hx(console))
    assert r.status_code == 422 and "<code>rules[0].min_ratio</code>（抽查比例第 1 条 · 最低比例）" in r.text, r.text
    r = console.post(f"/staff/plans/{pid}/entries", data=entry_form(items, period="2026Q1"), headers=hx(console))
    assert r.status_code == 422 and "<code>period</code>" in r.text
    assert runtime.runner.head() == before

    r = console.post(f"/staff/plans/{pid}/entries", data=entry_form(items), headers=hx(console))
    assert r.status_code == 200 and r.headers["hx-redirect"].startswith("/staff/plans?year=2025"), r.text
    plan = runtime.plans.plan_view(SYSTEM, pid)
    (entry,) = plan["entries"]
    assert entry["number"] == "2025001" and entry["items"] == [i["id"] for i in items]
    assert entry["scope"]["supervision_classes"] == ["key"] and entry["rules"][0]["min_ratio"] == "0.25"
    page = console.get("/staff/plans", params={"year": "2025"})
    assert entry["quotas"]  # per stratum of the key targets, computed from the directory
    for quota in entry["quotas"].values():
        assert f'<td data-label="应抽数">{quota["quota"]}</td>' in page.text and quota["basis"] in page.text
    assert page.text.count('<tr><td data-label="规则">') == len(plan["breaches"])
    assert "/staff/tasks/new?plan_entry=2025001" in page.text

    base = f"/staff/plans/{pid}/entries/2025001"
    assert console.get(base).status_code == 200
    assert console.get(f"/staff/plans/{pid}/entries/2025099").status_code == 404
    r = console.post(base, data=entry_form(items, name="三季度重点排污单位抽查", period="2025Q3"), headers=hx(console))
    assert r.status_code == 200 and "hx-redirect" in r.headers, r.text
    assert runtime.plans.plan_view(SYSTEM, pid)["entries"][0]["period"] == "2025Q3"
    r = console.post(f"{base}/rules", data={"rule0_class": "key", "rule0_ratio": "50%"}, headers=hx(console))
    assert r.status_code == 422 and "<code>reason</code>（理由）" in r.text  # a reason is required
    r = console.post(f"{base}/rules", data={"rule0_class": "key", "rule0_ratio": "50%", "reason": "上级要求提高比例"},
                     headers=hx(console))
    assert r.status_code == 200, r.text
    entry = runtime.plans.plan_view(SYSTEM, pid)["entries"][0]
    assert entry["rules"][0]["min_ratio"] == "0.5" and entry["adjustments"][0]["reason"] == "上级要求提高比例"
    assert "上级要求提高比例" in console.get("/staff/plans", params={"year": "2025"}).text
    r = console.post(f"{base}/removal", data={"removal_reason": ""}, headers=hx(console))
    assert r.status_code == 422 and "<code>removal_reason</code>" in r.text
    r = console.post(f"{base}/removal", data={"removal_reason": "与二季度专项重复"}, headers=hx(console))
    assert r.status_code == 200, r.text
    page = console.get("/staff/plans", params={"year": "2025"})
    assert 'id="removed"' in page.text and "2025001：与二季度专项重复" in page.text
    assert console.get(base).status_code == 404


def test_the_plan_pages_refuse_the_anonymous_the_wrong_role_and_another_department(
        console: TestClient[Any], runtime: Runtime) -> None:
    runtime.plans.draw_up_plan(EEB, "hj-eeb", 2025)
    pid = plan_id("hj-eeb", 2025)
    items = items_of(runtime, "hj-eeb")
    new = f"/staff/plans/{pid}/entries/new"
    r = console.get(new, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    login(console, "qian")  # an auditor reads the plan, never changes it
    assert console.get("/staff/plans", params={"year": "2025"}).status_code == 200
    r = console.get(new)
    assert r.status_code == 403 and "抽查计划员" in r.text
    assert console.post(f"/staff/plans/{pid}/entries", data=entry_form(items), headers=hx(console)).status_code == 403
    login(console, "amr")  # a planner of another department: the use case's 403
    before = runtime.runner.head()
    assert console.get(new).status_code == 403
    r = console.post(f"/staff/plans/{pid}/entries", data=entry_form(items), headers=hx(console))
    assert r.status_code == 403 and 'id="problems"' in r.text
    assert runtime.runner.head() == before
    login(console, "li")  # (a login is an event of its own)
    before = runtime.runner.head()
    r = console.post(f"/staff/plans/{pid}/entries", data=entry_form(items))  # no CSRF header: refused
    assert r.status_code == 403 and "防伪令牌" in r.text and runtime.runner.head() == before


def _api(runtime: Runtime, role: str = "planner", subject: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {account_token(runtime, 'hj-eeb', [role], subject or 'api-' + role)}"}


def _drawn(console: TestClient[Any], runtime: Runtime, task_id: str) -> list[dict[str, Any]]:
    h = _api(runtime)
    for step in ("commitment", "freeze", "draw"):
        r = console.post(f"/api/v1/tasks/{task_id}/{step}", json={} if step != "commitment" else None, headers=h)
        assert r.status_code == 200, r.text
    assert console.post(f"/api/v1/tasks/{task_id}/teams/hj-eeb", json={}, headers=h).status_code == 200
    visits: list[dict[str, Any]] = console.get(f"/api/v1/tasks/{task_id}/draw", headers=h).json()["visits"]
    return visits


def test_a_task_is_opened_from_a_plan_entry_and_ad_hoc_with_overlaps_declared(
        console: TestClient[Any], runtime: Runtime) -> None:
    plan = runtime.plans.draw_up_plan(EEB, "hj-eeb", 2025)
    items = items_of(runtime, "hj-eeb")
    runtime.plans.add_plan_entry(EEB, uuid.UUID(plan.id), {
        "name": "二季度重点排污单位抽查", "items": [i["id"] for i in items], "category": "key", "period": "2025Q2",
        "scope": {"county": "获嘉县", "supervision_classes": ["key"]},
        "rules": [{"supervision_class": "key", "min_ratio": "25%"}]})
    login(console, "li")
    form = console.get("/staff/tasks/new", params={"plan_entry": "2025001"})
    assert form.status_code == 200 and "二季度重点排污单位抽查" in form.text and items[0]["name"] in form.text
    assert console.get("/staff/tasks/new", params={"plan_entry": "abc"}).status_code == 400
    amr_items = items_of(runtime, "hj-amr", 1)
    frag = console.get("/staff/tasks/new/items", params={"row": "0", "partner0": "hj-amr"})
    assert frag.status_code == 200 and amr_items[0]["name"] in frag.text and 'name="partner0_items"' in frag.text
    assert console.get("/staff/tasks/new/items", params={"row": "0", "partner0": "nope"}).status_code == 400
    before = runtime.runner.head()
    r = console.post("/staff/tasks", data={"plan_entry": "2025009", "team_size": "2"}, headers=hx(console))
    assert r.status_code == 422 and "<code>number</code>" in r.text and runtime.runner.head() == before, r.text
    r = console.post("/staff/tasks", data={"plan_entry": "2025001", "team_size": "two"}, headers=hx(console))
    assert r.status_code == 422 and "<code>options.team_size</code>（选项 · 每组人数）" in r.text
    r = console.post("/staff/tasks", data={"plan_entry": "2025001", "team_size": "2", "period": "2025Q3",
                                           "exclude_previous_inspectors": "on", "partner0": "hj-amr",
                                           "partner0_items": [amr_items[0]["id"]]}, headers=hx(console))
    assert r.status_code == 200 and r.headers["hx-redirect"].startswith("/staff/tasks/"), r.text
    task_id = r.headers["hx-redirect"].rsplit("/", 1)[1]
    task = runtime.task_opening.task_view(SYSTEM, uuid.UUID(task_id))
    assert task["plan_entry"] == "2025001" and task["period"] == "2025Q3" and task["is_joint"]
    assert task["participants"]["hj-amr"] == [amr_items[0]["id"]]
    screen = console.get(r.headers["hx-redirect"])
    assert screen.status_code == 200 and task["number"] in screen.text and "各部门种子份额" in screen.text

    # ad hoc: a reason is required; the same items and scope in an overlapping period: 409, then declared
    adhoc = {"reason": "", "period": "2025Q3", "category": "key", "items": [items[0]["id"]], "county": "获嘉县",
             "supervision_classes": ["key"], "rule0_class": "key", "rule0_ratio": "25%", "team_size": "2"}
    r = console.post("/staff/tasks", data=adhoc, headers=hx(console))
    assert r.status_code == 422 and "<code>reason</code>（理由）" in r.text
    before = runtime.runner.head()
    r = console.post("/staff/tasks", data={**adhoc, "reason": "群众举报较多"}, headers=hx(console))
    assert r.status_code == 409 and 'id="overlaps-set"' in r.text and task["number"] in r.text, r.text
    assert runtime.runner.head() == before
    r = console.post("/staff/tasks", data={**adhoc, "reason": "群众举报较多", "overlaps": [task_id]}, headers=hx(console))
    assert r.status_code == 422 and "<code>overlap_reason</code>" in r.text
    r = console.post("/staff/tasks", data={**adhoc, "reason": "群众举报较多", "overlaps": [task_id],
                                           "overlap_reason": "举报集中，需要加抽"}, headers=hx(console))
    assert r.status_code == 200 and "hx-redirect" in r.headers, r.text


def test_opening_a_task_refuses_the_wrong_role_and_another_departments_entry(
        console: TestClient[Any], runtime: Runtime) -> None:
    plan = runtime.plans.draw_up_plan(EEB, "hj-eeb", 2025)
    items = items_of(runtime, "hj-eeb")
    runtime.plans.add_plan_entry(EEB, uuid.UUID(plan.id), {
        "name": "二季度抽查", "items": [i["id"] for i in items], "category": "key", "period": "2025Q2",
        "rules": [{"supervision_class": "key", "min_ratio": "25%"}]})
    assert console.get("/staff/tasks/new", follow_redirects=False).status_code == 303
    login(console, "boss")  # an admin: no planner's page (only a department's planners open tasks)
    assert console.get("/staff/tasks/new").status_code == 403
    login(console, "qian")
    assert console.post("/staff/tasks", data={"plan_entry": "2025001"}, headers=hx(console)).status_code == 403
    login(console, "amr")  # hj-amr has no such entry: its own plan of 2025 does not exist
    before = runtime.runner.head()
    r = console.post("/staff/tasks", data={"plan_entry": "2025001", "team_size": "2"}, headers=hx(console))
    assert r.status_code == 422 and "<code>plan_entry</code>" in r.text and runtime.runner.head() == before
    r = console.post("/staff/tasks", data={"reason": "x", "period": "2025Q3", "items": [items[0]["id"]],
                                           "team_size": "2"}, headers=hx(console))  # another department's item
    assert r.status_code == 422 and "participants.hj-amr" in r.text and runtime.runner.head() == before


def _published_entry_task(console: TestClient[Any], runtime: Runtime) -> tuple[uuid.UUID, list[dict[str, Any]]]:
    """hj-eeb's plan of 2024 with an entry, a task opened from it, drawn, its teams drawn."""
    plan = runtime.plans.draw_up_plan(EEB, "hj-eeb", 2024)
    items = items_of(runtime, "hj-eeb", 1)
    runtime.plans.add_plan_entry(EEB, uuid.UUID(plan.id), {
        "name": "三季度重点检查", "items": [items[0]["id"]], "category": "key", "period": "2024Q3",
        "scope": {"county": "获嘉县", "supervision_classes": ["key"]}, "rules": [{"supervision_class": "key",
                                                                                   "full": True}]})
    task = runtime.task_opening.open_task(EEB, {"plan_entry": "2024001"})
    return uuid.UUID(plan.id), _drawn(console, runtime, task.id)


def test_an_entry_whose_task_published_results_cannot_be_removed(console: TestClient[Any], runtime: Runtime) -> None:
    pid, visits = _published_entry_task(console, runtime)
    h = _api(runtime)
    visit = console.get(f"/api/v1/assignments/{visits[0]['assignment_id']}", headers=h).json()
    member = visit["teams"]["hj-eeb"]["members"][0]
    item = visit["items"]["hj-eeb"][0]
    insp = _api(runtime, "inspector", member)
    done = console.post(f"/api/v1/assignments/{visit['id']}/inspections/hj-eeb/findings", headers=insp, json={
        "inspected_on": "2024-09-10", "methods": ["on_site"], "findings": {item: {"result": "no_problem"}}})
    assert done.status_code == 200, done.text
    iid = done.json()["id"]
    rev = _api(runtime, "reviewer", "eeb-rev")
    assert console.post(f"/api/v1/inspections/{iid}/submit", headers=insp).status_code == 200
    assert console.post(f"/api/v1/inspections/{iid}/approve", json={"approved_on": "2024-09-11"},
                        headers=rev).status_code == 200
    assert console.post(f"/api/v1/inspections/{iid}/publish", json={"published_on": "2024-09-12"},
                        headers=rev).status_code == 200
    login(console, "li")
    before = runtime.runner.head()
    r = console.post(f"/staff/plans/{pid}/entries/2024001/removal", data={"removal_reason": "录入错误"},
                     headers=hx(console))
    assert r.status_code == 409 and "<code>number</code>" in r.text and "条目须保留在计划中" in r.text, r.text
    assert runtime.runner.head() == before and runtime.plans.plan_view(SYSTEM, pid)["entries"]


def test_a_planner_and_the_inspector_concerned_declare_recusals_and_see_the_replacement_by_name(
        console: TestClient[Any], runtime: Runtime) -> None:
    _, visits = _published_entry_task(console, runtime)
    aid = visits[0]["assignment_id"]
    visit = runtime.teams.assignment_view(SYSTEM, uuid.UUID(aid))
    members = visit["teams"]["hj-eeb"]["members"]
    people = runtime.lookups.people(members)
    page = f"/staff/assignments/{aid}"
    assert console.get(page, follow_redirects=False).status_code == 303
    login(console, "li")
    shown = console.get(page)
    assert shown.status_code == 200 and all(people[m]["name"] in shown.text for m in members)
    assert visit["target"]["target_name"] in shown.text and 'id="recusal-form"' in shown.text
    assert all(m not in shown.text.split('id="teams"', 1)[1].split("</table>", 1)[0] for m in members)  # names, no ids
    before = runtime.runner.head()
    r = console.post(f"{page}/recusals", data={"inspector_id": members[0], "reason": ""}, headers=hx(console))
    assert r.status_code == 422 and "<code>reason</code>" in r.text and runtime.runner.head() == before
    r = console.post(f"{page}/recusals", data={"inspector_id": "nobody", "reason": "亲属"}, headers=hx(console))
    assert r.status_code == 422 and "<code>inspector_id</code>" in r.text and runtime.runner.head() == before
    r = console.post(f"{page}/recusals", data={"inspector_id": members[0], "reason": "与企业负责人系近亲属"},
                     headers=hx(console))
    assert r.status_code == 200 and 'id="replacement"' in r.text, r.text
    after = runtime.teams.assignment_view(SYSTEM, uuid.UUID(aid))
    new = next(m for m in after["teams"]["hj-eeb"]["members"] if m not in members)
    names = runtime.lookups.people([members[0], new])
    assert names[members[0]]["name"] in r.text.split('id="removed"', 1)[1].split("</strong>", 1)[0]
    assert names[new]["name"] in r.text.split('id="replacement"', 1)[1].split("</strong>", 1)[0]
    assert "与企业负责人系近亲属" in console.get(page).text

    # the inspector concerned declares their own recusal; another inspector of the visit may not do it for them
    second, third = after["teams"]["hj-eeb"]["members"][:2]
    person(runtime, "wu", ["inspector"], display_name="吴检查", inspector=second)
    person(runtime, "zhao", ["inspector"], display_name="赵检查", inspector=third)
    login(console, "zhao")
    mine = console.get(page)
    assert mine.status_code == 200 and 'id="recusal-form"' in mine.text
    r = console.post(f"{page}/recusals", data={"inspector_id": second, "reason": "代为申请"}, headers=hx(console))
    assert r.status_code == 403 and 'id="problems"' in r.text
    login(console, "wu")
    r = console.post(f"{page}/recusals", data={"inspector_id": second, "reason": "曾在该企业任职"}, headers=hx(console))
    assert r.status_code == 200 and 'id="replacement"' in r.text and 'href="/staff/visits"' in r.text, r.text
    assert console.get(page).status_code == 403  # no longer on the visit

    # wrong role and another department
    login(console, "qian")
    assert console.get(page).status_code == 200  # auditors read the drawn list
    assert console.post(f"{page}/recusals", data={"inspector_id": third, "reason": "x"},
                        headers=hx(console)).status_code == 403
    login(console, "amr")
    assert console.get(page).status_code == 403
    before = runtime.runner.head()
    assert console.post(f"{page}/recusals", data={"inspector_id": third, "reason": "x"},
                        headers=hx(console)).status_code == 403
    assert runtime.runner.head() == before


def test_two_tasks_visits_of_one_target_merge_into_one(console: TestClient[Any], runtime: Runtime) -> None:
    h = _api(runtime)
    items = items_of(runtime, "hj-eeb", 4)
    opened = []
    for pair, reason in ((items[:2], "专项检查"), (items[2:4], "第二项专项检查")):
        r = console.post("/api/v1/tasks", headers=h, json={
            "period": "2024Q4", "reason": reason, "participants": {"hj-eeb": [i["id"] for i in pair]},
            "scope": {"county": "获嘉县", "supervision_classes": ["key"]},
            "rules": [{"supervision_class": "key", "full": True}]})
        assert r.status_code == 201, r.text
        opened.append(r.json())
        _drawn(console, runtime, opened[-1]["id"])
    first, second = opened
    page = f"/staff/tasks/{second['id']}/overlaps"
    assert console.get(page, follow_redirects=False).status_code == 303
    login(console, "li")
    shown = console.get(page)
    rows = runtime.merges.overlaps(SYSTEM, uuid.UUID(second["id"]))
    assert shown.status_code == 200 and rows and first["number"] in shown.text
    names = runtime.lookups.target_names([rows[0]["target_id"]])
    assert names[rows[0]["target_id"]]["target_name"] in shown.text
    row = rows[0]
    url = f"/staff/assignments/{row['this_assignment_id']}/merge"
    before = runtime.runner.head()
    r = console.post(url, data={"into": row["assignment_id"], "reason": ""}, headers=hx(console))
    assert r.status_code == 422 and "<code>reason</code>" in r.text and runtime.runner.head() == before
    r = console.post(url, data={"into": "not-a-visit", "reason": "一次检查"}, headers=hx(console))
    assert r.status_code == 422 and "<code>into</code>" in r.text
    for who, reads in (("qian", 200), ("amr", 403)):  # an auditor reads, never merges; another department neither
        login(console, who)
        before = runtime.runner.head()
        shown = console.get(page)
        assert shown.status_code == reads and "并入" not in shown.text.split('id="overlaps"')[-1], who
        r = console.post(url, data={"into": row["assignment_id"], "reason": "x"}, headers=hx(console))
        assert r.status_code == 403 and runtime.runner.head() == before, who
    login(console, "li")
    r = console.post(url, data={"into": row["assignment_id"], "reason": "同一企业，一次检查"}, headers=hx(console))
    assert r.status_code == 200 and r.headers["hx-redirect"] == f"/staff/assignments/{row['assignment_id']}", r.text
    merged = console.get(r.headers["hx-redirect"])
    assert merged.status_code == 200 and first["number"] in merged.text and second["number"] in merged.text
    assert "已并入另一次检查" in console.get(f"/staff/assignments/{row['this_assignment_id']}").text
    r = console.post(url, data={"into": row["assignment_id"], "reason": "again"}, headers=hx(console))
    assert r.status_code in (409, 422) and 'id="problems"' in r.text  # merged already: refused by the state
