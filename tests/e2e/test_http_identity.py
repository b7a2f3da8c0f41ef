"""One person, one identity: the self-review hole closed over HTTP. An inspector enters findings;
the same person then tries to approve them as a reviewer, identified every way a person can be (their inspector
entry id, their staff id, their own account given the reviewer role); each is refused 403 and nothing is
recorded. A reviewer who is another person approves."""

from typing import Any

from services.runtime import Runtime
from tests.e2e.test_http_execution import _ok, _task, _visits


def _account(client: Any, admin: dict[str, str], username: str, roles: list[str], inspector: str | None
             ) -> tuple[str, dict[str, str]]:
    made = _ok(client.post("/api/v1/accounts", headers=admin, json={
        "username": username, "display_name": username, "department": "hj-eeb", "roles": roles,
        "inspector": inspector, "kind": "service"}), 201)
    token = _ok(client.post(f"/api/v1/accounts/{made['id']}/tokens", headers=admin, json={"name": "t"}), 201)
    return made["id"], {"Authorization": f"Bearer {token['token']}"}


def _head(runtime: Runtime) -> int:
    return runtime.runner.head()


def test_nobody_reviews_their_own_findings_whichever_way_they_are_identified(demo, client, auth) -> None:
    admin = auth("hj-eeb", "admin")
    task, items = _task(client, auth, {"hj-eeb": 1})
    visit = _visits(client, auth, task)[0]
    entry = visit["teams"]["hj-eeb"]["members"][0]
    staff_id = _ok(client.get(f"/api/v1/inspectors/{entry}", headers=admin))["staff_id"]
    inspector_id, inspector = _account(client, admin, "zhang-inspects", ["inspector"], staff_id)
    item = items["hj-eeb"][0]["id"]
    made = _ok(client.post(f"/api/v1/assignments/{visit['id']}/inspections/hj-eeb/findings", headers=inspector,
                           json={"inspected_on": "2024-09-18", "methods": ["on_site"],
                                 "findings": {item: {"result": "no_problem"}}}))
    _ok(client.post(f"/api/v1/inspections/{made['id']}/submit", headers=inspector))
    same_person = [
        _account(client, admin, "zhang-by-entry", ["reviewer"], entry)[1],
        _account(client, admin, "zhang-by-staff-id", ["reviewer"], staff_id)[1],
    ]
    _ok(client.patch(f"/api/v1/accounts/{inspector_id}", headers=admin,  # the inspector's own account
                     json={"roles": ["inspector", "reviewer"], "reason": "兼任审核"}))
    same_person.append(inspector)
    before = _head(demo)
    for h in same_person:
        r = client.post(f"/api/v1/inspections/{made['id']}/approve", json={"approved_on": "2024-09-20"}, headers=h)
        assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json"), r.text
    assert _head(demo) == before
    other = _account(client, admin, "li-reviews", ["reviewer"], None)[1]
    _ok(client.post(f"/api/v1/inspections/{made['id']}/approve", json={"approved_on": "2024-09-20"}, headers=other))


def test_unknown_departments_are_refused_for_accounts_and_tokens_carry_no_authority(demo, client, auth) -> None:
    admin = auth("hj-eeb", "admin")
    r = client.post("/api/v1/accounts", headers=admin, json={
        "username": "nope", "display_name": "x", "department": "hj-nope", "roles": ["planner"], "kind": "service"})
    assert r.status_code == 422 and r.json()["errors"][0] == {**r.json()["errors"][0], "field": "department",
                                                              "rule": "unknown_department"}
