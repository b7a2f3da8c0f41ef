"""The directory API over HTTP: authentication, scoping, problem+json, conflicts, read-your-writes."""

import threading
import time

import jwt

from domain.accounts import account_id
from tests.support.accounts import account_username
from tests.support.builders import a_department, a_target, an_expert, an_inspector, an_item

PROBLEM = "application/problem+json"


def head(runtime) -> int:
    return runtime.app.recorder.max_notification_id() or 0


def test_without_a_valid_token_every_api_call_is_401(client, runtime) -> None:
    expired = jwt.encode({"iss": "dualrandom", "sub": "x", "dept": "hj-eeb", "roles": ["admin"], "exp": int(time.time()) - 10},
                         runtime.settings.secret_key, algorithm="HS256")
    forged = jwt.encode({"iss": "dualrandom", "sub": "x", "dept": "hj-eeb", "roles": ["admin"], "exp": int(time.time()) + 99},
                        "another-key-of-sufficient-length-0123456789", algorithm="HS256")
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": f"Bearer {expired}"},
                    {"Authorization": f"Bearer {forged}"}):
        r = client.post("/api/v1/targets", json=a_target(), headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["content-type"].startswith(PROBLEM)
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert client.get("/api/v1/targets", headers=headers).status_code == 401
    assert head(runtime) == 0
    assert client.get("/health").status_code == 200


def _departments(client, auth, *codes: str) -> None:
    for code in codes:
        assert client.post("/api/v1/departments", json=a_department(code=code), headers=auth(code, "admin")).status_code == 201


def test_an_unknown_department_is_refused_for_items_inspectors_and_experts(client, runtime, auth) -> None:
    admin = auth("hj-eeb", "admin")
    before = head(runtime)
    for path, body in (("items", an_item(department="hj-nope")), ("inspectors", an_inspector(department="hj-nope")),
                       ("experts", an_expert(department="hj-nope"))):
        r = client.post(f"/api/v1/{path}", json=body, headers=admin)
        assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM), r.text
        assert r.json()["errors"][0]["field"] == "department" and r.json()["errors"][0]["rule"] == "unknown_department"
    assert head(runtime) == before


def test_a_planner_manages_its_own_inspectors_and_another_department_gets_403(client, runtime, auth) -> None:
    _departments(client, auth, "hj-eeb")
    r = client.post("/api/v1/inspectors", json=an_inspector(department="hj-eeb"), headers=auth("hj-eeb", "planner"))
    assert r.status_code == 201, r.text
    before = head(runtime)
    r = client.post("/api/v1/inspectors", json=an_inspector(department="hj-eeb"), headers=auth("hj-amr", "planner"))
    assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM)
    inspector_id = client.post("/api/v1/inspectors", json=an_inspector(), headers=auth("hj-eeb")).json()["id"]
    before = head(runtime)
    r = client.patch(f"/api/v1/inspectors/{inspector_id}", json={"region": "城关镇"}, headers=auth("hj-amr", "planner"))
    assert r.status_code == 403
    assert client.get(f"/api/v1/inspectors/{inspector_id}", headers=auth("hj-amr", "planner")).status_code == 403
    assert client.get("/api/v1/inspectors?department=hj-eeb", headers=auth("hj-amr", "planner")).status_code == 403
    # without a filter another department simply sees its own (none)
    assert client.get("/api/v1/inspectors", headers=auth("hj-amr", "planner")).json()["total"] == 0
    assert head(runtime) == before


def test_items_follow_the_same_rule_and_experts_too(client, runtime, auth) -> None:
    _departments(client, auth, "hj-eeb")
    assert client.post("/api/v1/items", json=an_item(), headers=auth("hj-eeb")).status_code == 201
    assert client.post("/api/v1/items", json=an_item(), headers=auth("hj-amr")).status_code == 403
    assert client.post("/api/v1/experts", json=an_expert(), headers=auth("hj-eeb")).status_code == 201
    assert client.post("/api/v1/experts", json=an_expert(), headers=auth("hj-em")).status_code == 403


def test_auditors_and_inspectors_change_nothing(client, runtime, auth) -> None:
    tid = client.post("/api/v1/targets", json=a_target(), headers=auth("hj-amr", "planner")).json()["id"]
    before = head(runtime)
    for role in ("auditor", "inspector", "reviewer", "partner"):
        h = auth("hj-eeb", role)
        assert client.post("/api/v1/targets", json=a_target(), headers=h).status_code == 403, role
        assert client.patch(f"/api/v1/targets/{tid}", json={"risk_class": "D"}, headers=h).status_code == 403, role
        assert client.post("/api/v1/departments", json=a_department(code="hj-x"), headers=h).status_code == 403, role
    assert head(runtime) == before
    assert client.get(f"/api/v1/targets/{tid}", headers=auth("hj-eeb", "auditor")).status_code == 200
    assert client.get(f"/api/v1/targets/{tid}/history", headers=auth("hj-eeb", "auditor")).status_code == 200


def test_only_an_admin_registers_departments(client, auth) -> None:
    assert client.post("/api/v1/departments", json=a_department(), headers=auth("hj-eeb", "planner")).status_code == 403
    assert client.post("/api/v1/departments", json=a_department(), headers=auth("hj-eeb", "admin")).status_code == 201
    again = client.post("/api/v1/departments", json=a_department(), headers=auth("hj-eeb", "admin"))
    assert again.status_code == 409 and again.headers["content-type"].startswith(PROBLEM)


def test_bad_input_is_a_problem_naming_the_field_and_changes_nothing(client, runtime, auth) -> None:
    h = auth()
    bad = a_target(credit_code="91410724MA0000000X", supervision_class="vip")
    r = client.post("/api/v1/targets", json=bad, headers=h)
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert {(e["field"], e["rule"]) for e in body["errors"]} == {("credit_code", "check_digit"), ("supervision_class", "choice")}
    assert "GB 32100-2015" in body["errors"][0]["message"] or "GB 32100-2015" in body["errors"][1]["message"]
    r = client.post("/api/v1/targets", json={**a_target(), "name": 7}, headers=h)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "name"
    r = client.post("/api/v1/targets", json={**a_target(), "colour": "red"}, headers=h)
    assert r.status_code == 400 and "colour" in r.json()["detail"]
    r = client.post("/api/v1/targets", content=b"{not json", headers={**h, "content-type": "application/json"})
    assert r.status_code == 400 and r.headers["content-type"].startswith(PROBLEM)
    tid = client.post("/api/v1/targets", json=a_target(), headers=h).json()["id"]
    before = head(runtime)
    r = client.patch(f"/api/v1/targets/{tid}", json={"risk_class": "E", "name": "新名"}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "risk_class"
    assert client.patch(f"/api/v1/targets/{tid}", json={"credit_code": "x"}, headers=h).status_code == 400
    assert client.get("/api/v1/targets?colour=red", headers=h).json()["errors"][0]["field"] == "colour"
    assert client.get("/api/v1/targets?risk_class=Z", headers=h).status_code == 400
    assert client.get("/api/v1/targets?limit=0", headers=h).status_code == 400
    assert client.get("/api/v1/targets/not-a-uuid", headers=h).status_code in (400, 404)
    assert client.get(f"/api/v1/inspectors/{tid}", headers=auth("hj-eeb", "admin")).status_code == 404
    assert head(runtime) == before


def test_concurrent_writes_to_one_target_never_lose_an_update(client, runtime, auth) -> None:
    h = auth()
    tid = client.post("/api/v1/targets", json=a_target(), headers=h).json()["id"]
    # Same version twice: the first wins, the second is a 409.
    assert client.patch(f"/api/v1/targets/{tid}", json={"industry": "造纸"}, headers={**h, "If-Match": '"1"'}).status_code == 200
    r = client.patch(f"/api/v1/targets/{tid}", json={"industry": "化工"}, headers={**h, "If-Match": '"1"'})
    assert r.status_code == 409 and r.headers["content-type"].startswith(PROBLEM)
    # Many writers at once: every 200 is in the history, every other answer is a 409.
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def write(i: int) -> None:
        barrier.wait()
        statuses.append(client.patch(f"/api/v1/targets/{tid}", json={"address": f"地址{i}"}, headers=h).status_code)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(statuses) <= {200, 409} and 200 in statuses
    history = client.get(f"/api/v1/targets/{tid}/history", headers=h).json()["events"]
    assert len(history) == 2 + statuses.count(200)


def test_the_correlation_id_reaches_the_events_and_reads_see_their_writes(client, auth) -> None:
    h = {**auth("hj-eeb", "planner", subject="staff-42"), "X-Correlation-ID": "req-abc-123"}
    r = client.post("/api/v1/targets", json=a_target(name="获嘉县读写一致有限公司"), headers=h)
    assert r.headers["x-correlation-id"] == "req-abc-123"
    written = r.json()
    listing = client.get(f"/api/v1/targets?name=读写一致&min_position={written['position']}", headers=h).json()
    assert [i["id"] for i in listing["items"]] == [written["id"]]
    event = client.get(f"/api/v1/targets/{written['id']}/history", headers=h).json()["events"][0]
    assert event["meta"]["correlation_id"] == "req-abc-123"
    assert event["meta"]["actor_name"] == "staff-42" and event["meta"]["role"] == "planner"
    assert event["meta"]["actor"] == account_id(account_username("hj-eeb", ["planner"], "staff-42"))
    assert event["meta"]["department"] == "hj-eeb" and event["meta"]["causation_id"]
    one = client.get(f"/api/v1/targets/{written['id']}", headers=h)
    assert one.json()["name"] == "获嘉县读写一致有限公司" and one.headers["etag"] == '"1"'


def test_a_listing_is_paged_by_cursor_and_a_bad_cursor_is_refused(client, auth) -> None:
    h = auth("hj-eeb", "planner")
    position = 0
    for _ in range(5):
        position = client.post("/api/v1/targets", json=a_target(name="获嘉县游标分页有限公司"), headers=h).json()["position"]
    query = {"name": "游标分页", "min_position": position}
    whole = client.get("/api/v1/targets", params={**query, "limit": 50}, headers=h).json()
    assert whole["next_cursor"] is None and whole["total"] == 5 and whole["total_exact"] is True
    ids, params = [], {**query, "limit": 2}
    while True:
        page = client.get("/api/v1/targets", params=params, headers=h).json()
        ids += [i["id"] for i in page["items"]]
        if page["next_cursor"] is None:
            break
        params = {**query, "limit": 2, "cursor": page["next_cursor"]}
    assert ids == [i["id"] for i in whole["items"]]
    exact = client.get("/api/v1/targets", params={**query, "count": "exact"}, headers=h).json()
    assert exact["total"] == 5
    for bad, status in (({"cursor": "offset-3"}, 422), ({"count": "some"}, 400)):
        r = client.get("/api/v1/targets", params=bad, headers=h)
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json") and next(iter(bad)) in r.text


def test_the_schema_describes_every_operation(client) -> None:
    schema = client.get("/schema/openapi.json").json()
    operations = [(p, m, op) for p, ops in schema["paths"].items() for m, op in ops.items()]
    assert len(operations) >= 25
    missing = [(p, m) for p, m, op in operations if not op.get("description")]
    assert missing == []


def test_ready_and_metrics_report_positions(client, auth) -> None:
    written = client.post("/api/v1/targets", json=a_target(), headers=auth()).json()
    client.get(f"/api/v1/targets?min_position={written['position']}", headers=auth())
    ready = client.get("/ready").json()
    assert ready["status"] == "ready" and ready["projections"]["directory"]["position"] >= written["position"]
    text = client.get("/metrics").text
    assert 'dualrandom_projection_lag_events{projection="directory"}' in text


def test_a_partner_reads_departments_and_items_but_no_personal_data_of_its_own_department(
    client, runtime, auth
) -> None:
    _departments(client, auth, "hj-eeb")
    inspector_id = client.post("/api/v1/inspectors", json=an_inspector(department="hj-eeb"),
                               headers=auth("hj-eeb")).json()["id"]
    expert_id = client.post("/api/v1/experts", json=an_expert(), headers=auth("hj-eeb")).json()["id"]
    partner = auth("hj-eeb", "partner")
    for path in ("/api/v1/inspectors", "/api/v1/experts", "/api/v1/inspectors?department=hj-eeb",
                 f"/api/v1/inspectors/{inspector_id}", f"/api/v1/experts/{expert_id}",
                 f"/api/v1/inspectors/{inspector_id}/history", "/api/v1/targets"):
        r = client.get(path, headers=partner)
        assert r.status_code == 403, (path, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
    assert client.get("/api/v1/items", headers=partner).status_code == 200
    assert client.get("/api/v1/departments", headers=partner).status_code == 200


def test_a_registration_is_written_on_the_event_loop_on_postgresql_and_answers_as_in_a_thread(
    client, runtime, auth
) -> None:
    """A target or department needs no read before its write: on PostgreSQL it is validated and written on the
    event loop (``loop_writes``); an inspector's department is read first, so it takes a worker thread. Both
    answer alike, refusals included (403, 409, 422), and a refused one stores nothing."""
    group = client.app.state.loop_writes
    on_loop = runtime.engine.dialect.name == "postgresql"
    assert (group is not None) == on_loop
    _departments(client, auth, "hj-eeb")  # an admin's registration: on the loop too
    before = group.grouped if on_loop else 0
    h = auth()
    target = a_target()
    first = client.post("/api/v1/targets", json=target, headers=h)
    assert first.status_code == 201 and first.headers["etag"] == '"1"'
    assert first.headers["x-log-position"] == str(first.json()["position"]) == str(head(runtime))
    again = client.post("/api/v1/targets", json=target, headers=h)
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    at = head(runtime)
    assert client.post("/api/v1/departments", json=a_department(), headers=h).status_code == 403
    assert client.post("/api/v1/targets", json={**a_target(), "risk_class": "Z"}, headers=h).status_code == 422
    assert head(runtime) == at
    inspector = client.post("/api/v1/inspectors", json=an_inspector(), headers=h)
    assert inspector.status_code == 201 and inspector.json()["version"] == 1
    if on_loop:
        assert group.grouped == before + 2  # the target and its duplicate; not the inspector, nothing refused
    got = client.get(f"/api/v1/targets/{first.json()['id']}?min_position={first.json()['position']}", headers=h)
    assert got.status_code == 200 and got.json()["credit_code"] == target["credit_code"]
