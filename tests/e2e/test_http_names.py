"""People read names, not ids: a visit, an inspector's visits, the inbox, a plan's entries and the "too few
inspectors" refusal carry names, credit codes, addresses and certificate numbers next to the ids (over HTTP, on
the demo county and the 2024 notice's plan)."""

from typing import Any

import pytest

from domain.planning.plan import plan_id
from services.cli.demo import load_demo_plan
from tests.support.draws import http_open_declaring_overlaps


def _ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


@pytest.fixture
def planned(demo):
    load_demo_plan(demo)
    return demo


def test_a_visit_the_inbox_and_an_inspectors_visits_name_everyone(planned, client, auth) -> None:
    eeb = auth("hj-eeb", "planner")
    plan = _ok(client.get(f"/api/v1/plans/{plan_id('hj-eeb', 2024)}", headers=eeb))
    task_id = plan["tasks"][0]["id"]
    listing = _ok(client.get(f"/api/v1/tasks/{task_id}/draw", headers=eeb))
    visit = _ok(client.get(f"/api/v1/assignments/{listing['visits'][0]['assignment_id']}", headers=eeb))
    target = _ok(client.get(f"/api/v1/targets/{visit['target_id']}", headers=eeb))
    assert visit["target"] == {"target_name": target["name"], "credit_code": target["credit_code"],
                               "address": target["address"]}
    assert visit["department_names"] == {"hj-amr": "获嘉县市场监督管理局", "hj-eeb": "新乡市生态环境局获嘉分局"}
    members = [m for team in visit["teams"].values() for m in team["members"]]
    for m in members:
        entry = _ok(client.get(f"/api/v1/inspectors/{m}", headers=auth(visit["people"][m]["department"], "planner")))
        assert visit["people"][m]["name"] == entry["name"]
        assert visit["people"][m]["certificate_no"] == entry["certificate_no"]
    items = [i for ids in visit["items"].values() for i in ids]
    assert set(visit["item_names"]) == set(items) and all(v["name"] and v["code"] for v in visit["item_names"].values())

    # The inspector's own list and the department's inbox name the targets and the inspectors.
    leader = visit["teams"]["hj-eeb"]["leader"]
    mine = _ok(client.get("/api/v1/assignments/mine", headers=auth("hj-eeb", "inspector", subject=leader)))["items"]
    row = next(v for v in mine if v["id"] == visit["id"])
    assert (row["target_name"], row["credit_code"], row["address"]) == (
        target["name"], target["credit_code"], target["address"])
    inbox = _ok(client.get("/api/v1/inbox", headers=eeb))
    person = next(i for i in inbox["inspectors"] if i["inspector_id"] == leader)
    assert person["name"] == visit["people"][leader]["name"] and person["certificate_no"].startswith("豫环执")
    assert all(v["target_name"] and v["credit_code"] for v in person["visits"])

    # A plan's entries name their items; the plan names its department.
    assert plan["department_name"] == "新乡市生态环境局获嘉分局"
    entry = plan["entries"][0]
    assert list(entry["item_names"]) == entry["items"] and all(v["name"] for v in entry["item_names"].values())
    # Another department's planner reads no visit (names do not widen who reads).
    r = client.get(f"/api/v1/assignments/{visit['id']}", headers=auth("hj-em", "planner"))
    assert r.status_code == 403


def test_too_few_inspectors_names_each_enterprise(demo, client, auth) -> None:
    admin, eeb = auth("hj-eeb", "admin"), auth("hj-eeb", "planner")
    item = _ok(client.post("/api/v1/items", headers=admin, json={
        "department": "hj-eeb", "code": "NAME-1", "name": "核设施安全检查", "category": "general",
        "specialty": "核安全"}), 201)["id"]
    r = http_open_declaring_overlaps(client, eeb, {
        "period": "2024Q3", "reason": "专项检查", "participants": {"hj-eeb": [item]},
        "scope": {"county": "获嘉县", "industries": ["造纸"], "supervision_classes": ["key", "general", "special"]},
        "rules": [{"supervision_class": c, "full": True} for c in ("key", "general", "special")]})
    tid = _ok(r, 201)["id"]
    for step in ("commitment", "freeze", "draw"):
        _ok(client.post(f"/api/v1/tasks/{tid}/{step}", json={} if step != "commitment" else None, headers=eeb))
    r = client.post(f"/api/v1/tasks/{tid}/teams/hj-eeb", json={}, headers=eeb)
    assert r.status_code == 422
    drawn = _ok(client.get(f"/api/v1/tasks/{tid}/draw", headers=eeb))["visits"]
    messages = [e["message"] for e in r.json()["errors"]]
    assert len(messages) == len(drawn)
    for v in drawn:
        assert any(f"{v['target_name']}（{v['credit_code']}） [{v['target_id']}]" in m and "核安全" in m
                   for m in messages)
