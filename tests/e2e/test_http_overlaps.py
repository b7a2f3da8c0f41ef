"""No silent re-rolls: a random task overlapping a current one is refused (409) unless declared with a reason."""

import uuid
from typing import Any


def _ok(r: Any, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()


def _items(client: Any, h: dict[str, str], department: str) -> list[str]:
    r = client.get("/api/v1/items", params={"department": department, "limit": 100}, headers=h)
    return [i["id"] for i in _ok(r)["items"]]


def test_an_overlapping_random_task_is_refused_unless_declared(demo, client, auth) -> None:
    eeb, amr = auth("hj-eeb", "planner"), auth("hj-amr", "planner")
    items, amr_items = _items(client, eeb, "hj-eeb"), _items(client, amr, "hj-amr")
    base = {"reason": "专项整治", "scope": {"county": "获嘉县"}}
    first = _ok(client.post("/api/v1/tasks", headers=eeb, json={
        **base, "period": "2024Q2", "participants": {"hj-eeb": items[:2]}}), 201)

    # A May task on one of the same items re-rolls the second quarter's draw: refused, naming the task.
    again = {**base, "period": "2024-05", "participants": {"hj-eeb": items[1:3]}}
    r = client.post("/api/v1/tasks", headers=eeb, json=again)
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert [e["field"] for e in problem["errors"]] == ["overlaps"]
    assert first["id"] in problem["errors"][0]["message"] and first["number"] in problem["detail"]
    # A joint task led by another department overlaps through the department they share.
    r = client.post("/api/v1/tasks", headers=amr, json={
        **base, "period": "2024Q2", "participants": {"hj-amr": amr_items[:1], "hj-eeb": items[:1]}})
    assert r.status_code == 409 and first["id"] in r.text
    assert _ok(client.get("/api/v1/tasks", params={"year": 2024}, headers=eeb))["total"] == 1  # nothing stored

    # Declared without a reason, or naming a task that does not overlap: 422, nothing stored.
    r = client.post("/api/v1/tasks", headers=eeb, json={**again, "overlaps": [first["id"]]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "overlap_reason"
    r = client.post("/api/v1/tasks", headers=eeb, json={
        **base, "period": "2024Q3", "participants": {"hj-eeb": items[:1]}, "overlaps": [first["id"]],
        "overlap_reason": "复查"})
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "not_overlapping"
    assert _ok(client.get("/api/v1/tasks", params={"year": 2024}, headers=eeb))["total"] == 1

    # Not overlapping: another quarter, other items, a disjoint scope, or a case task (个案检查).
    _ok(client.post("/api/v1/tasks", headers=eeb, json={
        **base, "period": "2024Q3", "participants": {"hj-eeb": items[:2]}}), 201)
    _ok(client.post("/api/v1/tasks", headers=eeb, json={
        **base, "period": "2024Q2", "participants": {"hj-eeb": items[3:4]}}), 201)
    _ok(client.post("/api/v1/tasks", headers=eeb, json={
        **base, "period": "2024Q2", "participants": {"hj-eeb": items[:2]}, "scope": {"county": "原阳县"}}), 201)
    _ok(client.post("/api/v1/tasks", headers=eeb, json={
        **base, "period": "2024Q2", "origin": "case", "participants": {"hj-eeb": items[:2]}}), 201)

    # Declared with a reason: opened, and the task shows what it overlaps and why.
    second = _ok(client.post("/api/v1/tasks", headers=eeb, json={
        **again, "overlaps": [first["id"]], "overlap_reason": "群众举报集中，五月加抽"}), 201)
    view = _ok(client.get(f"/api/v1/tasks/{second['id']}", headers=eeb))
    assert view["overlaps"] == [{"id": first["id"], "number": first["number"], "name": first["name"],
                                 "period": "2024Q2"}]
    assert view["overlap_reason"] == "群众举报集中，五月加抽"
    assert _ok(client.get(f"/api/v1/tasks/{first['id']}", headers=eeb))["overlaps"] == []
    # The plan view and the KPIs show the declared overlap (per period and department); the other department does
    # not count it, and another quarter counts nothing.
    plan = _ok(client.post("/api/v1/plans", json={"year": 2024}, headers=eeb), 201)
    listed = {t["id"]: t for t in _ok(client.get(f"/api/v1/plans/{plan['id']}", params={"min_position": second["position"]},
                                                 headers=eeb))["tasks"]}
    assert listed[second["id"]]["overlaps"] == view["overlaps"] and listed[first["id"]]["overlaps"] == []
    kpis = _ok(client.get("/api/v1/kpis", params={"year": 2024, "min_position": second["position"]}, headers=eeb))
    assert kpis["declared_overlaps"]["tasks"] == 1 and kpis["declared_overlaps"]["by_period"] == {
        "2024-05": {"tasks": 1, "follow_ups": 0}}
    q3 = _ok(client.get("/api/v1/kpis", params={"year": 2024, "quarter": 3}, headers=eeb))["declared_overlaps"]
    assert q3["tasks"] == 0 and q3["by_period"] == {}
    assert _ok(client.get("/api/v1/kpis", params={"year": 2024}, headers=amr))["declared_overlaps"]["tasks"] == 0


def test_a_follow_up_round_over_an_overlapping_period_is_refused_unless_declared(demo, client, auth) -> None:
    """回访 rounds are draws too: a May round would redraw the second quarter's inspected targets."""
    from tests.e2e.test_http_execution import _enter, _one_department

    _, visits, items = _one_department(client, auth, period="2024Q2")
    for v in visits[:4]:
        _enter(client, auth, v, items[0], result="no_problem", day="2024-05-10")
    eeb = auth("hj-eeb", "planner")
    quarter = _ok(client.post("/api/v1/follow-ups", json={"period": "2024Q2"}, headers=eeb), 201)
    assert quarter["overlaps"] == []
    may = {"period": "2024-05"}
    r = client.post("/api/v1/follow-ups", json=may, headers=eeb)
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    assert [(e["field"], e["rule"]) for e in r.json()["errors"]] == [("overlaps", "undeclared_overlap")]
    assert quarter["id"] in r.json()["errors"][0]["message"] and "2024Q2" in r.json()["detail"]
    # Named without a reason; a reason naming a round that does not overlap; another department's planner: refused.
    r = client.post("/api/v1/follow-ups", json={**may, "overlaps": [quarter["id"]]}, headers=eeb)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["overlap_reason"]
    r = client.post("/api/v1/follow-ups", json={**may, "overlaps": [quarter["id"], str(uuid.uuid4())],
                                                "overlap_reason": "复查"}, headers=eeb)
    assert r.status_code == 422 and [(e["field"], e["rule"]) for e in r.json()["errors"]] == [
        ("overlaps[1]", "not_overlapping")]
    r = client.post("/api/v1/follow-ups", json={**may, "department": "hj-eeb", "overlaps": [quarter["id"]],
                                                "overlap_reason": "复查"}, headers=auth("hj-amr", "planner"))
    assert r.status_code == 403
    assert [f["period"] for f in _ok(client.get("/api/v1/follow-ups", params={"min_position": quarter["position"]},
                                                headers=eeb))["items"]] == ["2024Q2"]
    # Declared with a reason: planned; the round, the KPIs show it.
    planned = _ok(client.post("/api/v1/follow-ups", json={**may, "overlaps": [quarter["id"]],
                                                          "overlap_reason": "五月投诉集中，加做回访"}, headers=eeb), 201)
    view = _ok(client.get(f"/api/v1/follow-ups/{planned['id']}", headers=eeb))
    assert view["overlaps"] == [{"id": quarter["id"], "period": "2024Q2"}]
    assert view["overlap_reason"] == "五月投诉集中，加做回访"
    assert _ok(client.get(f"/api/v1/follow-ups/{quarter['id']}", headers=eeb))["overlaps"] == []
    kpis = _ok(client.get("/api/v1/kpis", params={"year": 2024, "min_position": planned["position"]}, headers=eeb))
    assert kpis["declared_overlaps"]["follow_ups"] == 1
    assert kpis["declared_overlaps"]["by_period"] == {"2024-05": {"tasks": 0, "follow_ups": 1}}
