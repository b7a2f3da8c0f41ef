"""多项合一 merges only what applies, over HTTP on the demo county: an item names the targets it applies to;
a visit's items, pre-visit notice and team specialties come from the items that apply to its target; a pool
holding a target no item applies to is refused at the freeze."""

from typing import Any

from tests.support.draws import http_commit_shares, http_open_declaring_overlaps, http_reveal_shares


def _ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


def _item(client: Any, h: dict[str, str], department: str, code: str, **over: Any) -> str:
    body = {"department": department, "code": code, "name": f"适用性事项{code}", "category": "general",
            "methods": ["on_site"], **over}
    return str(_ok(client.post("/api/v1/items", json=body, headers=h), 201)["id"])


def _open(client: Any, auth: Any, participants: dict[str, list[str]], industries: list[str]) -> dict[str, Any]:
    classes = ["key", "general", "special"]
    r = http_open_declaring_overlaps(client, auth("hj-eeb", "planner"), {
        "period": "2024Q3", "reason": "专项检查", "participants": participants,
        "scope": {"county": "获嘉县", "industries": industries, "supervision_classes": classes},
        "rules": [{"supervision_class": c, "full": True} for c in classes]})
    return _ok(r, 201)


def test_a_visit_merges_only_the_items_that_apply_to_its_target(demo, client, auth) -> None:
    eeb, amr = auth("hj-eeb", "planner"), auth("hj-amr", "planner")
    admin_eeb = auth("hj-eeb", "admin")
    general = _item(client, admin_eeb, "hj-eeb", "APP-1", documents=["排污许可证"])
    radiation = _item(client, admin_eeb, "hj-eeb", "APP-2", documents=["辐射安全许可证"], specialty="辐射",
                      applies_to_tags=["radiation"])
    medical = _item(client, admin_eeb, "hj-eeb", "APP-3", documents=["医疗废物台账"],
                    applies_to_industries=["医疗卫生"])
    food = _item(client, auth("hj-amr", "admin"), "hj-amr", "APP-4", documents=["食品经营许可证"],
                 applies_to_industries=["食品加工"])
    stored = _ok(client.get(f"/api/v1/items/{radiation}", headers=eeb))
    assert stored["applies_to_tags"] == ["radiation"] and stored["applies_to_industries"] == []
    bad = client.post("/api/v1/items", headers=admin_eeb, json={
        "department": "hj-eeb", "code": "APP-9", "name": "错误事项", "category": "general",
        "applies_to_classes": ["重要"]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "applies_to_classes"

    # Only restricted items, over a scope with targets none of them applies to: the freeze is refused.
    narrow = _open(client, auth, {"hj-eeb": [radiation, medical]}, ["医疗卫生", "金属制品"])
    _ok(client.post(f"/api/v1/tasks/{narrow['id']}/commitment", headers=eeb))
    r = client.post(f"/api/v1/tasks/{narrow['id']}/freeze", json={}, headers=eeb)
    assert r.status_code == 422, r.text
    problem = r.json()["errors"][0]
    assert (problem["field"], problem["rule"]) == ("scope", "no_item_applies") and "有限公司" in problem["message"]
    assert _ok(client.get(f"/api/v1/tasks/{narrow['id']}", headers=eeb))["state"] == "committed"

    # With an item that applies to every target, the task draws; each visit carries what applies to it.
    task = _open(client, auth, {"hj-eeb": [general, radiation, medical], "hj-amr": [food]}, ["医疗卫生", "金属制品"])
    tid = task["id"]
    _ok(client.post(f"/api/v1/tasks/{tid}/commitment", headers=eeb))
    http_commit_shares(client, auth, tid, ["hj-amr", "hj-eeb"])
    _ok(client.post(f"/api/v1/tasks/{tid}/freeze", json={}, headers=eeb))
    http_reveal_shares(client, auth, tid, ["hj-amr", "hj-eeb"])
    _ok(client.post(f"/api/v1/tasks/{tid}/draw", json={}, headers=eeb))
    # hj-amr's only item applies to no target of this scope: it draws no team, and goes on no visit
    _ok(client.post(f"/api/v1/tasks/{tid}/teams/hj-eeb", json={}, headers=eeb))
    _ok(client.post(f"/api/v1/tasks/{tid}/teams/hj-amr", json={}, headers=amr))
    listing = _ok(client.get(f"/api/v1/tasks/{tid}/draw", headers=eeb))
    staff = _ok(client.get("/api/v1/inspectors", params={"department": "hj-eeb", "limit": 100}, headers=eeb))["items"]
    specialties = {i["id"]: i["specialties"] for i in staff}
    seen = {"metal": 0, "radiation": 0}
    for v in listing["visits"]:
        visit = _ok(client.get(f"/api/v1/assignments/{v['assignment_id']}", headers=eeb))
        target = _ok(client.get(f"/api/v1/targets/{v['target_id']}", headers=eeb))
        expected = [general] + ([radiation] if "radiation" in target["tags"] else []) + (
            [medical] if target["industry"] == "医疗卫生" else [])
        assert visit["items"] == {"hj-eeb": expected} and visit["departments"] == ["hj-eeb"]
        assert visit["state"] == "dispatched"
        html = client.get(f"/api/v1/assignments/{v['assignment_id']}/notices/pre-visit", headers=eeb).text
        assert "排污许可证" in html
        assert ("辐射安全许可证" in html) is (radiation in expected)
        assert ("医疗废物台账" in html) is (medical in expected) and "食品经营许可证" not in html
        members = visit["teams"]["hj-eeb"]["members"]
        if radiation in expected:
            seen["radiation"] += 1
            assert any("辐射" in specialties[m] for m in members)
        if target["industry"] == "金属制品":
            seen["metal"] += 1
    assert seen["metal"] and seen["radiation"]  # both kinds of visit were drawn
