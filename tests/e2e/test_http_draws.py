"""The 2024 notice's plan over the demo county, through HTTP: four quarterly tasks (three joint), verifiable
draws, inspector teams, confidentiality, recusal, redraw, overlaps and merges."""

import math
from typing import Any

from domain.planning.plan import NOTICE_ITEMS, NOTICE_SCOPE
from tests.support.draws import http_commit_shares, http_open_declaring_overlaps, http_reveal_shares

NOTICE_RULES = [
    {"supervision_class": "key", "min_ratio": "25%"},
    {"supervision_class": "general", "min_ratio": "5%", "min_per_inspector": 6, "combine": "either"},
    {"supervision_class": "special"},
]
PARTNERS = {"2024Q1": "hj-amr", "2024Q2": "hj-em", "2024Q3": None, "2024Q4": "hj-amr"}


def _items(client: Any, h: dict[str, str], department: str) -> dict[str, str]:
    r = client.get("/api/v1/items", params={"department": department, "limit": 100}, headers=h)
    assert r.status_code == 200, r.text
    return {i["name"]: i["id"] for i in r.json()["items"]}


def _ok(r: Any, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()


def test_the_seed_plan_of_2024_runs_four_quarterly_tasks_with_verifiable_draws(demo, client, auth) -> None:
    eeb = auth("hj-eeb", "planner")
    plan = _ok(client.post("/api/v1/plans", json={"year": 2024}, headers=eeb), 201)
    items = _items(client, eeb, "hj-eeb")
    seed_items = [items[name] for name in NOTICE_ITEMS]
    for q, word in enumerate("一二三四", start=1):
        entry = _ok(client.post(f"/api/v1/plans/{plan['id']}/entries", headers=eeb, json={
            "name": f"{word}季度随机抽查", "items": seed_items, "category": "general", "period": f"2024Q{q}",
            "rules": NOTICE_RULES, "scope": NOTICE_SCOPE,
        }), 201)
        assert entry["number"] == f"202400{q}"

    # Before any task: every quarter breaks "at least one task per quarter".
    view = _ok(client.get(f"/api/v1/plans/{plan['id']}", headers=eeb))
    assert {b["period"] for b in view["breaches"] if b["rule"] == "tasks_per_quarter"} == {
        "2024Q1", "2024Q2", "2024Q3", "2024Q4"}
    quotas = view["entries"][0]["quotas"]
    key_pool = sum(v["pool_size"] for s, v in quotas.items() if s.startswith("key/"))
    assert key_pool > 0
    # Nothing drawn yet: the coverage the plan promises fails in every quarter and the year, and the plan says so.
    key = [b for b in view["breaches"] if b["rule"] == "key_coverage"]
    assert [b["period"] for b in key] == ["2024Q1", "2024Q2", "2024Q3", "2024Q4", "2024"]
    assert key[0]["stratum"] == "key" and f"0 of {math.ceil(key_pool / 4)} targets drawn in 2024Q1" in key[0]["message"]
    assert f"0 of {min(key_pool, 4 * math.ceil(key_pool / 4))} targets drawn in 2024 " in key[-1]["message"]
    assert [b["period"] for b in _ok(client.get(f"/api/v1/plans/{plan['id']}", params={"as_of": "2024-07-01"},
                                                headers=eeb))["breaches"] if b["rule"] == "key_coverage"] == [
        "2024Q1", "2024Q2"]  # only the quarters ended by then

    tasks = []
    for q in range(1, 5):
        period = f"2024Q{q}"
        body: dict[str, Any] = {"plan_entry": f"202400{q}"}
        partner = PARTNERS[period]
        if partner:
            partner_items = _items(client, auth(partner, "planner"), partner)
            body["participants"] = {partner: list(partner_items.values())[:1]}
        task = _ok(client.post("/api/v1/tasks", json=body, headers=eeb), 201)
        assert task["is_joint"] == bool(partner)
        assert task["name"].startswith("新乡市获嘉县生态环境局获嘉分局2024年第")
        source = f"福彩3D 2024年第0{q}9期开奖号码"
        commit = _ok(client.post(f"/api/v1/tasks/{task['id']}/commitment", json={"entropy_source": source},
                                 headers=eeb))
        assert len(commit["commitment"]) == 64 and commit["entropy_source"] == source
        joint = sorted(["hj-eeb", partner]) if partner else []
        assert commit["shares_needed"] == joint
        http_commit_shares(client, auth, task["id"], joint)
        frozen = _ok(client.post(f"/api/v1/tasks/{task['id']}/freeze", json={}, headers=eeb))
        http_reveal_shares(client, auth, task["id"], joint)
        drawn = _ok(client.post(f"/api/v1/tasks/{task['id']}/draw",
                                json={"external_entropy": f"{q}{q}7", "entropy_source": source}, headers=eeb))
        # The 2024 notice's quotas: key >= 25% and general >= 5% (either bound suffices) of the strata in scope, rounded up.
        for stratum, line in frozen["strata"].items():
            cls = stratum.split("/")[0]
            minimum = {"key": math.ceil(line["in_scope"] / 4), "general": math.ceil(line["in_scope"] / 20),
                       "special": 0}[cls]
            assert line["quota"] >= min(minimum, line["pool_size"]), (stratum, line)
            assert drawn["strata"][stratum]["selected"] == min(line["quota"], line["pool_size"])
        verified = _ok(client.get(f"/api/v1/tasks/{task['id']}/draw/verification", headers=eeb))
        assert verified["match"] is True, verified
        tasks.append((task, drawn))

    # Later quarters exclude targets already drawn this year for the same items.
    first = _ok(client.get(f"/api/v1/tasks/{tasks[0][0]['id']}/draw", headers=eeb))
    second = _ok(client.get(f"/api/v1/tasks/{tasks[1][0]['id']}/draw", headers=eeb))
    assert not set(first["record"]["selected"]) & set(second["record"]["selected"])

    view = _ok(client.get(f"/api/v1/plans/{plan['id']}", params={"min_position": drawn["position"]}, headers=eeb))
    assert [b for b in view["breaches"] if b["rule"] in ("tasks_per_quarter", "joint_share")] == []
    # The yearly exclusion leaves Q4 short of the quarter's key minimum: the plan shows the breach (the KPI agrees).
    (short,) = [b for b in view["breaches"] if b["rule"].endswith("_coverage")]
    q4 = _ok(client.get("/api/v1/kpis", params={"year": 2024, "quarter": 4}, headers=eeb))["coverage"]["by_class"]["key"]
    assert q4["meets_baseline_minimum"] is False and (short["rule"], short["period"]) == ("key_coverage", "2024Q4")
    assert short["message"].startswith(f"key: {q4['drawn']} of {q4['baseline_minimum']} targets drawn in 2024Q4")
    assert len(view["tasks"]) == 4

    # Each participating department draws its own inspectors for the joint task.
    task = tasks[0][0]
    teams = _ok(client.post(f"/api/v1/tasks/{task['id']}/teams/hj-eeb", json={}, headers=eeb))
    assert teams["teams"] == tasks[0][1]["selected"]
    r = client.post(f"/api/v1/tasks/{task['id']}/teams/hj-amr", json={}, headers=eeb)
    assert r.status_code == 403  # another department's inspectors are not ours to draw
    amr = auth("hj-amr", "planner")
    _ok(client.post(f"/api/v1/tasks/{task['id']}/teams/hj-amr", json={}, headers=amr))
    listing = _ok(client.get(f"/api/v1/tasks/{task['id']}/draw", headers=amr))
    visit = _ok(client.get(f"/api/v1/assignments/{listing['visits'][0]['assignment_id']}", headers=amr))
    assert visit["state"] == "dispatched"
    for dept in ("hj-eeb", "hj-amr"):
        team = visit["teams"][dept]
        assert len(set(team["members"])) >= 2 and team["leader"] in team["members"]


def _small_task(client: Any, auth: Any, lead: str, participants: dict[str, list[str]] | None = None,
                **extra: Any) -> dict[str, Any]:
    h = auth(lead, "planner")
    items = list(_items(client, h, lead).values())
    body = {"period": extra.pop("period", "2024Q2"), "reason": "专项整治", "participants": {lead: items[:1], **(participants or {})},
            "scope": {"county": "获嘉县", "supervision_classes": ["key"]},
            "rules": [{"supervision_class": "key", "full": True}], **extra}
    task = _ok(http_open_declaring_overlaps(client, h, body), 201)
    departments = {lead, *(participants or {})}
    joint = sorted(departments) if len(departments) > 1 else []
    _ok(client.post(f"/api/v1/tasks/{task['id']}/commitment", headers=h))
    http_commit_shares(client, auth, task["id"], joint)
    _ok(client.post(f"/api/v1/tasks/{task['id']}/freeze", json={}, headers=h))
    http_reveal_shares(client, auth, task["id"], joint)
    return {**task, "drawn": _ok(client.post(f"/api/v1/tasks/{task['id']}/draw", json={}, headers=h))}


def test_the_drawn_list_is_confidential_and_inspectors_see_only_their_visits(demo, client, auth) -> None:
    task = _small_task(client, auth, "hj-eeb")
    tid = task["id"]
    _ok(client.post(f"/api/v1/tasks/{tid}/teams/hj-eeb", json={}, headers=auth("hj-eeb", "planner")))
    for headers in (auth("hj-amr", "planner"), auth("hj-eeb", "reviewer"), auth("hj-eeb", "partner"),
                    auth("hj-eeb", "inspector", subject="nobody")):
        r = client.get(f"/api/v1/tasks/{tid}/draw", headers=headers)
        assert r.status_code == 403, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    assert client.get(f"/api/v1/tasks/{tid}/draw").status_code == 401
    full = _ok(client.get(f"/api/v1/tasks/{tid}/draw", headers=auth("hj-audit", "auditor")))
    assert full["record"]["selected"]
    # Names next to ids: the enterprise (name, credit code, address) and each inspector (name, certificate no.).
    first = full["visits"][0]
    target = _ok(client.get(f"/api/v1/targets/{first['target_id']}", headers=auth("hj-eeb", "planner")))
    assert (first["target_name"], first["credit_code"], first["address"]) == (
        target["name"], target["credit_code"], target["address"])
    member = full["teams"]["hj-eeb"]["teams"][first["target_id"]]["members"][0]
    person = _ok(client.get(f"/api/v1/inspectors/{member}", headers=auth("hj-eeb", "planner")))
    assert full["inspectors"][member] == {"name": person["name"], "certificate_no": person["certificate_no"],
                                          "department": "hj-eeb"}
    # An assigned inspector sees their own visits only, without the draw record.
    member = full["teams"]["hj-eeb"]["teams"][full["record"]["selected"][0]]["members"][0]
    own = _ok(client.get(f"/api/v1/tasks/{tid}/draw", headers=auth("hj-eeb", "inspector", subject=member)))
    assert "record" not in own
    mine = {v["target_id"] for v in own["visits"]}
    expected = {t for t, team in full["teams"]["hj-eeb"]["teams"].items() if member in team["members"]}
    assert mine == expected and mine
    my = _ok(client.get("/api/v1/assignments/mine", headers=auth("hj-eeb", "inspector", subject=member)))
    assert {a["target_id"] for a in my["items"]} == expected


def test_the_drawn_list_is_read_page_by_page(demo, client, auth) -> None:
    task = _small_task(client, auth, "hj-eeb")
    tid, eeb = task["id"], auth("hj-eeb", "planner")
    whole = _ok(client.get(f"/api/v1/tasks/{tid}/draw", headers=eeb))
    assert whole["next_cursor"] is None and len(whole["visits"]) >= 2
    first = _ok(client.get(f"/api/v1/tasks/{tid}/draw", params={"limit": 1}, headers=eeb))
    assert first["record"] == whole["record"] and first["next_cursor"]
    visits, cursor = first["visits"], first["next_cursor"]
    while cursor is not None:
        page = _ok(client.get(f"/api/v1/tasks/{tid}/draw", params={"limit": 1, "cursor": cursor}, headers=eeb))
        assert "record" not in page and len(page["visits"]) == 1
        visits, cursor = visits + page["visits"], page["next_cursor"]
    assert visits == whole["visits"]
    # A cursor of another round, a malformed one and a page size past the maximum are refused, naming the field.
    for params, field, status in (({"cursor": "9.1"}, "cursor", 422), ({"cursor": "x"}, "cursor", 422),
                                  ({"limit": 5001}, "limit", 400)):
        r = client.get(f"/api/v1/tasks/{tid}/draw", params=params, headers=eeb)
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json") and field in r.text
    # The cursor does not open the list to anyone else.
    r = client.get(f"/api/v1/tasks/{tid}/draw", params={"cursor": first["next_cursor"]},
                   headers=auth("hj-amr", "planner"))
    assert r.status_code == 403


def test_a_recused_inspector_is_replaced_by_a_recorded_redraw(demo, client, auth) -> None:
    task = _small_task(client, auth, "hj-eeb")
    eeb = auth("hj-eeb", "planner")
    _ok(client.post(f"/api/v1/tasks/{task['id']}/teams/hj-eeb", json={}, headers=eeb))
    listing = _ok(client.get(f"/api/v1/tasks/{task['id']}/draw", headers=eeb))
    aid = listing["visits"][0]["assignment_id"]
    before = _ok(client.get(f"/api/v1/assignments/{aid}", headers=eeb))["teams"]["hj-eeb"]
    leaving = before["members"][0]
    # Someone else's inspector token may not recuse this inspector.
    r = client.post(f"/api/v1/assignments/{aid}/recusals", json={"inspector_id": leaving, "reason": "亲属"},
                    headers=auth("hj-eeb", "inspector", subject="somebody-else"))
    assert r.status_code == 403
    r = client.post(f"/api/v1/assignments/{aid}/recusals", json={"inspector_id": leaving, "reason": " "},
                    headers=auth("hj-eeb", "inspector", subject=leaving))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"
    done = _ok(client.post(f"/api/v1/assignments/{aid}/recusals", json={"inspector_id": leaving, "reason": "亲属关系"},
                           headers=auth("hj-eeb", "inspector", subject=leaving)))
    after = _ok(client.get(f"/api/v1/assignments/{aid}", headers=eeb))
    team = after["teams"]["hj-eeb"]
    assert leaving not in team["members"] and done["new"] in team["members"] and len(team["members"]) == len(
        before["members"])
    assert after["recusals"] == [{"department": "hj-eeb", "inspector_id": leaving, "reason": "亲属关系",
                                  "declared_by": leaving}]
    history = _ok(client.get(f"/api/v1/audit/aggregates/{aid}", headers=auth("hj-audit", "auditor")))
    kinds = [e["type"] for e in history["events"]]
    assert kinds[-2:] == ["inspector_recused", "member_redrawn"]
    # The recusal persists: the target joins the inspector's declared conflicts (回避对象), so next quarter's
    # draw never sends them there again.
    target = after["target_id"]
    assert target in _ok(client.get(f"/api/v1/inspectors/{leaving}", headers=eeb))["conflicts"]
    later = _small_task(client, auth, "hj-eeb", period="2024Q3", options={"exclude_inspected_this_year": False})
    _ok(client.post(f"/api/v1/tasks/{later['id']}/teams/hj-eeb", json={}, headers=eeb))
    visits = _ok(client.get(f"/api/v1/tasks/{later['id']}/draw", headers=eeb))["visits"]
    again = next(v for v in visits if v["target_id"] == target)
    assert leaving not in _ok(client.get(f"/api/v1/assignments/{again['assignment_id']}", headers=eeb))["teams"][
        "hj-eeb"]["members"]


def test_a_redraw_needs_a_reason_and_keeps_the_earlier_round(demo, client, auth) -> None:
    task = _small_task(client, auth, "hj-eeb")
    eeb = auth("hj-eeb", "planner")
    r = client.post(f"/api/v1/tasks/{task['id']}/redraw", json={"reason": ""}, headers=eeb)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"
    r = client.post(f"/api/v1/tasks/{task['id']}/commitment", headers=eeb)
    assert r.status_code == 422  # drawn: a new commitment needs the redraw first
    _ok(client.post(f"/api/v1/tasks/{task['id']}/redraw", json={"reason": "名录库未及时更新"}, headers=eeb))
    view = _ok(client.get(f"/api/v1/tasks/{task['id']}", headers=eeb))
    assert view["state"] == "open" and view["withdrawn"] == [{"round": 1, "reason": "名录库未及时更新", "stage": "drawn"}]
    _ok(client.post(f"/api/v1/tasks/{task['id']}/commitment", headers=eeb))
    _ok(client.post(f"/api/v1/tasks/{task['id']}/freeze", json={}, headers=eeb))
    _ok(client.post(f"/api/v1/tasks/{task['id']}/draw", json={}, headers=eeb))
    assert _ok(client.get(f"/api/v1/tasks/{task['id']}/draw/verification", headers=eeb))["match"] is True


def test_a_target_drawn_twice_in_a_quarter_becomes_one_visit(demo, client, auth) -> None:
    eeb_task = _small_task(client, auth, "hj-eeb")
    em_task = _small_task(client, auth, "hj-em")
    overlaps = em_task["drawn"]["overlaps"]
    assert overlaps and {o["task_id"] for o in overlaps} == {eeb_task["id"]}
    em, eeb = auth("hj-em", "planner"), auth("hj-eeb", "planner")
    _ok(client.post(f"/api/v1/tasks/{eeb_task['id']}/teams/hj-eeb", json={}, headers=eeb))
    _ok(client.post(f"/api/v1/tasks/{em_task['id']}/teams/hj-em", json={}, headers=em))
    o = overlaps[0]
    r = client.post(f"/api/v1/assignments/{o['this_assignment_id']}/merge",
                    json={"into": o["assignment_id"], "reason": "同一季度一次检查"}, headers=eeb)
    assert r.status_code == 403  # the absorbed visit's lead decides
    merged = _ok(client.post(f"/api/v1/assignments/{o['this_assignment_id']}/merge",
                             json={"into": o["assignment_id"], "reason": "同一季度一次检查"}, headers=em))
    assert set(merged["tasks"]) == {eeb_task["id"], em_task["id"]}
    visit = _ok(client.get(f"/api/v1/assignments/{o['assignment_id']}", headers=eeb))
    assert set(visit["items"]) == {"hj-eeb", "hj-em"} and set(visit["teams"]) == {"hj-eeb", "hj-em"}
    absorbed = _ok(client.get(f"/api/v1/assignments/{o['this_assignment_id']}", headers=em))
    assert absorbed["state"] == "merged" and absorbed["merged_into"] == o["assignment_id"]


def test_task_names_follow_s5_and_bad_input_changes_nothing(demo, client, auth) -> None:
    eeb = auth("hj-eeb", "planner")
    items = list(_items(client, eeb, "hj-eeb").values())
    base = {"period": "2024Q3", "reason": "专项", "participants": {"hj-eeb": items[:1]}}
    r = client.post("/api/v1/tasks", json={**base, "name": "随便起的名字"}, headers=eeb)
    assert r.status_code == 422 and "新乡市+县区名称+部门名称+时间+任务类型" in r.text
    r = client.post("/api/v1/tasks", json={**base, "participants": {"hj-eeb": ["no-such-item"]}}, headers=eeb)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "participants.hj-eeb[0]"
    r = client.post("/api/v1/tasks", json={**base, "reason": ""}, headers=eeb)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"
    r = client.post("/api/v1/tasks", json={**base, "lead": "hj-amr"}, headers=eeb)
    assert r.status_code == 403
    assert _ok(client.get("/api/v1/tasks", headers=eeb))["total"] == 0
    ok = _ok(client.post("/api/v1/tasks", json={**base, "name": "新乡市获嘉县生态环境局获嘉分局2024年第三季度一般检查事项随机抽查"},
                         headers=eeb), 201)
    assert ok["number"] == "2024-001"


def test_an_empty_pool_is_a_clear_error_and_records_nothing(demo, client, auth) -> None:
    eeb = auth("hj-eeb", "planner")
    items = list(_items(client, eeb, "hj-eeb").values())
    task = _ok(client.post("/api/v1/tasks", headers=eeb, json={
        "period": "2024Q3", "reason": "专项", "participants": {"hj-eeb": items[:1]},
        "scope": {"county": "原阳县"}}), 201)
    _ok(client.post(f"/api/v1/tasks/{task['id']}/commitment", headers=eeb))
    r = client.post(f"/api/v1/tasks/{task['id']}/freeze", json={}, headers=eeb)
    assert r.status_code == 422 and "empty" in r.text
    assert _ok(client.get(f"/api/v1/tasks/{task['id']}", headers=eeb))["state"] == "committed"


def test_a_case_triggered_task_names_its_targets_and_is_not_random(demo, client, auth) -> None:
    eeb = auth("hj-eeb", "planner")
    items = list(_items(client, eeb, "hj-eeb").values())
    targets = _ok(client.get("/api/v1/targets", params={"limit": 2}, headers=eeb))["items"]
    task = _ok(client.post("/api/v1/tasks", headers=eeb, json={
        "period": "2024Q3", "origin": "case", "reason": "在线监测数据异常", "participants": {"hj-eeb": items[:1]}}), 201)
    r = client.post(f"/api/v1/tasks/{task['id']}/commitment", headers=eeb)
    assert r.status_code == 422
    _ok(client.post(f"/api/v1/tasks/{task['id']}/targets", json={"targets": [t["id"] for t in targets]}, headers=eeb))
    view = _ok(client.get(f"/api/v1/tasks/{task['id']}", headers=eeb))
    assert view["is_random"] is False and view["drawn"] == 2
    plan = client.get("/api/v1/plans", params={"year": 2024}, headers=eeb)
    assert plan.status_code == 404  # no plan drawn up in this test


def test_kpis_and_inbox_show_the_joint_share_and_the_coverage(demo, client, auth) -> None:
    eeb, amr = auth("hj-eeb", "planner"), auth("hj-amr", "planner")
    amr_items = list(_items(client, amr, "hj-amr").values())
    joint = _small_task(client, auth, "hj-eeb", {"hj-amr": amr_items[:1]})
    own = _small_task(client, auth, "hj-eeb", period="2024Q3", options={"exclude_inspected_this_year": False})
    kpis = _ok(client.get("/api/v1/kpis", params={"year": 2024, "min_position": own["drawn"]["position"]},
                          headers=eeb))
    assert kpis["tasks"]["own"] == 1 and kpis["tasks"]["joint"] == 1
    assert kpis["joint_share"]["value"] == 0.5 and kpis["joint_share"]["meets_goal"] is False
    key = kpis["coverage"]["by_class"]["key"]
    assert key["drawn"] == key["quota"] > 0 and key["meets_baseline_minimum"] is True
    assert "joint / (own + joint)" in kpis["joint_share"]["formula"]
    q2 = _ok(client.get("/api/v1/kpis", params={"year": 2024, "quarter": 2}, headers=amr))
    assert q2["tasks"] == {**q2["tasks"], "own": 0, "joint": 1}
    teams = _ok(client.post(f"/api/v1/tasks/{joint['id']}/teams/hj-amr", json={}, headers=amr))
    board = _ok(client.get("/api/v1/inbox", params={"min_position": teams["position"]}, headers=amr))
    assert [t["role"] for t in board["tasks"]] == ["participant"] and board["tasks"][0]["teams_drawn"] is True
    assert board["inspectors"] and all(v["state"] == "awaiting_teams" for i in board["inspectors"] for v in i["visits"])
    assert client.get("/api/v1/inbox", params={"department": "hj-eeb"}, headers=amr).status_code == 403
    assert client.get("/api/v1/kpis", params={"year": 2024}, headers=auth("hj-eeb", "partner")).status_code == 403
    assert client.get("/api/v1/kpis", params={"year": 2024, "department": "hj-amr"},
                      headers=auth("hj-audit", "auditor")).status_code == 200


def test_the_yearly_exclusion_takes_a_target_only_once_all_own_items_were_drawn_and_never_against_a_full_rule(
        demo, client, auth) -> None:
    eeb, amr = auth("hj-eeb", "planner"), auth("hj-amr", "planner")
    eeb_items = list(_items(client, eeb, "hj-eeb").values())
    every_key = [{"supervision_class": "key", "min_ratio": "100%"}]
    # hj-amr's joint task brings one of hj-eeb's items and draws every key target.
    joint = _small_task(client, auth, "hj-amr", {"hj-eeb": eeb_items[:1]}, rules=every_key)
    def selected(task: dict[str, Any], h: dict[str, str]) -> set[str]:
        return set(_ok(client.get(f"/api/v1/tasks/{task['id']}/draw", headers=h))["record"]["selected"])

    shared = selected(joint, amr)
    # hj-eeb's own three-item visits keep those targets: two of their items are still to do.
    own = _small_task(client, auth, "hj-eeb", participants={"hj-eeb": eeb_items[:3]}, rules=every_key,
                      overlaps=[joint["id"]], overlap_reason="本部门其余事项仍需检查")
    frozen = _ok(client.get(f"/api/v1/tasks/{own['id']}", headers=eeb))["frozen"]
    assert frozen["excluded"]["inspected_this_year"] == 0
    assert shared and shared <= selected(own, eeb)
    # Once every one of a task's own items was drawn on them, they go (same item, same target, once a year) ...
    again = _ok(http_open_declaring_overlaps(client, eeb, {
        "period": "2024Q3", "reason": "专项整治", "participants": {"hj-eeb": eeb_items[1:2]},
        "scope": {"county": "获嘉县", "supervision_classes": ["key"]}, "rules": every_key}), 201)
    _ok(client.post(f"/api/v1/tasks/{again['id']}/commitment", headers=eeb))
    r = client.post(f"/api/v1/tasks/{again['id']}/freeze", json={}, headers=eeb)
    assert r.status_code == 422 and "inspected this year" in r.text
    # ... unless a full (100% every period) rule governs them: full wins, and the freeze shows what it kept.
    full = _small_task(client, auth, "hj-eeb", participants={"hj-eeb": eeb_items[1:2]}, period="2024Q3",
                       overlaps=[again["id"]], overlap_reason="满额规则：每期全部检查")
    frozen = _ok(client.get(f"/api/v1/tasks/{full['id']}", headers=eeb))["frozen"]
    assert frozen["excluded"]["kept_by_full_rule"] == len(selected(own, eeb)) > 0
    assert _ok(client.get(f"/api/v1/tasks/{full['id']}/draw/verification", headers=eeb))["match"] is True
    assert client.get(f"/api/v1/tasks/{joint['id']}", headers=amr).status_code == 200


def test_a_joint_visit_has_one_agreed_date(demo, client, auth) -> None:
    eeb, amr = auth("hj-eeb", "planner"), auth("hj-amr", "planner")
    amr_items = list(_items(client, amr, "hj-amr").values())
    joint = _small_task(client, auth, "hj-eeb", {"hj-amr": amr_items[:1]})
    proposed = _ok(client.post(f"/api/v1/tasks/{joint['id']}/teams/hj-eeb", json={"visit_date": "2024-05-20"},
                               headers=eeb))
    assert proposed["visit_date"] == "2024-05-20"
    # Another date is refused, naming the agreed one; nothing is drawn.
    r = client.post(f"/api/v1/tasks/{joint['id']}/teams/hj-amr", json={"visit_date": "2024-05-27"}, headers=amr)
    assert r.status_code == 422 and r.json()["errors"][0] == {**r.json()["errors"][0], "field": "visit_date",
                                                              "rule": "joint_visit_date"}
    assert "2024-05-20" in r.json()["errors"][0]["message"]
    assert _ok(client.get(f"/api/v1/tasks/{joint['id']}", headers=amr))["teams_drawn"] == ["hj-eeb"]
    # Without a date the partner takes the agreed one, and so does every visit.
    accepted = _ok(client.post(f"/api/v1/tasks/{joint['id']}/teams/hj-amr", json={}, headers=amr))
    assert accepted["visit_date"] == "2024-05-20"
    listing = _ok(client.get(f"/api/v1/tasks/{joint['id']}/draw", headers=amr))
    for v in listing["visits"]:
        assert _ok(client.get(f"/api/v1/assignments/{v['assignment_id']}", headers=amr))["visit_date"] == "2024-05-20"


def _overlapping_tasks_with_teams(client: Any, auth: Any) -> tuple[dict[str, Any], dict[str, Any], Any, Any]:
    """An ecology task and an emergency task that drew overlapping targets, each with its teams drawn:
    (eeb task, em task, eeb planner's headers, em planner's headers)."""
    eeb_task = _small_task(client, auth, "hj-eeb")
    em_task = _small_task(client, auth, "hj-em")
    em, eeb = auth("hj-em", "planner"), auth("hj-eeb", "planner")
    _ok(client.post(f"/api/v1/tasks/{eeb_task['id']}/teams/hj-eeb", json={}, headers=eeb))
    _ok(client.post(f"/api/v1/tasks/{em_task['id']}/teams/hj-em", json={}, headers=em))
    return eeb_task, em_task, eeb, em


def test_a_draw_whose_visit_was_merged_cannot_be_withdrawn(demo, client, auth) -> None:
    eeb_task, em_task, eeb, em = _overlapping_tasks_with_teams(client, auth)
    o = em_task["drawn"]["overlaps"][0]
    _ok(client.post(f"/api/v1/assignments/{o['this_assignment_id']}/merge",
                    json={"into": o["assignment_id"], "reason": "一次检查"}, headers=em))
    for task, h in ((eeb_task, eeb), (em_task, em)):
        r = client.post(f"/api/v1/tasks/{task['id']}/redraw", json={"reason": "重抽"}, headers=h)
        assert r.status_code == 422 and "merged" in r.text
    assert _ok(client.get(f"/api/v1/assignments/{o['assignment_id']}", headers=eeb))["state"] == "dispatched"


def test_visits_whose_inspection_was_opened_do_not_merge(demo, client, auth) -> None:
    _eeb_task, em_task, eeb, em = _overlapping_tasks_with_teams(client, auth)
    o = em_task["drawn"]["overlaps"][0]
    _ok(client.post(f"/api/v1/assignments/{o['assignment_id']}/inspections/hj-eeb", headers=eeb))
    r = client.post(f"/api/v1/assignments/{o['this_assignment_id']}/merge",
                    json={"into": o["assignment_id"], "reason": "一次检查"}, headers=em)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert [(e["field"], e["rule"]) for e in r.json()["errors"]] == [("into", "inspection_begun")]
    for aid in (o["this_assignment_id"], o["assignment_id"]):  # nothing recorded
        assert _ok(client.get(f"/api/v1/assignments/{aid}", headers=auth("hj-audit", "auditor")))["state"] == "dispatched"


def test_a_round_whose_inspection_was_opened_is_not_withdrawn(demo, client, auth) -> None:
    """A round that was carried out (an inspection opened on one of its visits) stays: withdrawing it would
    cancel a done visit and hide its published results' draw."""
    eeb_task = _small_task(client, auth, "hj-eeb")
    eeb = auth("hj-eeb", "planner")
    _ok(client.post(f"/api/v1/tasks/{eeb_task['id']}/teams/hj-eeb", json={}, headers=eeb))
    visit = _ok(client.get(f"/api/v1/tasks/{eeb_task['id']}/draw", headers=eeb))["visits"][0]["assignment_id"]
    before = _ok(client.get(f"/api/v1/tasks/{eeb_task['id']}", headers=eeb))
    _ok(client.post(f"/api/v1/assignments/{visit}/inspections/hj-eeb", headers=eeb))
    r = client.post(f"/api/v1/tasks/{eeb_task['id']}/redraw", json={"reason": "不喜欢结果"}, headers=eeb)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json"), r.text
    assert [(e["field"], e["rule"]) for e in r.json()["errors"]] == [("round", "inspection_begun")]
    after = _ok(client.get(f"/api/v1/tasks/{eeb_task['id']}", headers=eeb))
    assert (after["round"], after["state"]) == (before["round"], "drawn")
    assert _ok(client.get(f"/api/v1/assignments/{visit}", headers=eeb))["state"] != "cancelled"


def test_only_the_department_planner_changes_its_plan_and_bad_entries_change_nothing(demo, client, auth) -> None:
    eeb = auth("hj-eeb", "planner")
    plan = _ok(client.post("/api/v1/plans", json={"year": 2024}, headers=eeb), 201)
    assert client.post("/api/v1/plans", json={"year": 2024}, headers=eeb).status_code == 409
    items = list(_items(client, eeb, "hj-eeb").values())
    entry = {"name": "一季度", "items": items[:2], "category": "general", "period": "2024Q1", "rules": NOTICE_RULES}
    url = f"/api/v1/plans/{plan['id']}/entries"
    for headers in (auth("hj-amr", "planner"), auth("hj-eeb", "inspector"), auth("hj-audit", "auditor")):
        assert client.post(url, json=entry, headers=headers).status_code == 403
    amr_item = next(iter(_items(client, auth("hj-amr", "planner"), "hj-amr").values()))
    bad = [({**entry, "items": [amr_item]}, "items[0]"), ({**entry, "period": "2025Q1"}, "period"),
           ({**entry, "rules": [{"supervision_class": "key", "min_ratio": "125%"}]}, "min_ratio")]
    for body, field in bad:
        r = client.post(url, json=body, headers=eeb)
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
        assert any(field in e["field"] for e in r.json()["errors"]), (field, r.text)
    done = _ok(client.post(url, json=entry, headers=eeb), 201)
    assert done["number"] == "2024001"  # the refused entries took no number
    r = client.post(f"{url}/2024001/rules", json={"rules": NOTICE_RULES[:1], "reason": " "}, headers=eeb)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"
    _ok(client.post(f"{url}/2024001/rules", json={"rules": NOTICE_RULES[:1], "reason": "上级通知调整比例"}, headers=eeb))
    view = _ok(client.get(f"/api/v1/plans/{plan['id']}", headers=auth("hj-eeb", "reviewer")))
    assert view["entries"][0]["adjustments"][0]["reason"] == "上级通知调整比例"
    assert client.get(f"/api/v1/plans/{plan['id']}", headers=auth("hj-amr", "planner")).status_code == 403
    assert client.get("/api/v1/plans", params={"year": 2023}, headers=eeb).status_code == 404


def test_every_round_is_listed_read_and_verified_by_admins_and_auditors(demo, client, auth) -> None:
    task = _small_task(client, auth, "hj-eeb")
    tid, eeb = task["id"], auth("hj-eeb", "planner")
    first = _ok(client.get(f"/api/v1/tasks/{tid}/draw", headers=eeb))["record"]["selected"]
    _ok(client.post(f"/api/v1/tasks/{tid}/redraw", json={"reason": "名录库未及时更新"}, headers=eeb))
    for step in ("commitment", "freeze", "draw"):
        _ok(client.post(f"/api/v1/tasks/{tid}/{step}", json={}, headers=eeb))
    for who in (auth("hj-admin", "admin"), auth("hj-audit", "auditor"), eeb):
        listed = _ok(client.get(f"/api/v1/tasks/{tid}/draws", headers=who))
        assert [(r["round"], r["status"], r["stage"]) for r in listed["rounds"]] == [
            (1, "withdrawn", "drawn"), (2, "current", "drawn")]
        assert listed["rounds"][0]["withdrawn_reason"] == "名录库未及时更新"
        assert _ok(client.get(f"/api/v1/tasks/{tid}/draws/1", headers=who))["record"]["selected"] == first
        for n in (1, 2):
            out = _ok(client.get(f"/api/v1/tasks/{tid}/draws/{n}/verification", headers=who))
            assert out["match"] is True and out["round"] == n
        assert _ok(client.get(f"/api/v1/tasks/{tid}/draw", headers=who))["record"]["selected"]
    assert client.get(f"/api/v1/tasks/{tid}/draws/9", headers=eeb).status_code == 404
    assert client.get(f"/api/v1/tasks/{tid}/draws/0", headers=eeb).status_code == 400
    for path in ("draws", "draws/1", "draws/1/verification"):
        r = client.get(f"/api/v1/tasks/{tid}/{path}", headers=auth("hj-amr", "planner"))
        assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
        assert client.get(f"/api/v1/tasks/{tid}/{path}").status_code == 401


def _rewrite(runtime: Any, tid: str, topic: str, change: Any, department: str | None = None) -> None:
    """Change one stored event of the task in place (what a tamperer with database access could do)."""
    import json
    import uuid

    import sqlalchemy as sa

    table = runtime.app.recorder.events_record_cls.__table__
    with runtime.engine.begin() as conn:
        rows = conn.execute(sa.select(table.c.id, table.c.state).where(
            table.c.originator_id == uuid.UUID(tid), table.c.topic.like(f"%Task.{topic}")).order_by(table.c.id)).all()
        for row in rows:
            state = json.loads(bytes(row.state))
            if department is None or state.get("department") == department:
                change(state)
                conn.execute(table.update().where(table.c.id == row.id).values(state=json.dumps(state).encode()))
                return
    raise AssertionError(f"no {topic} of {tid}")


def test_the_servers_verification_checks_the_rounds_chain(demo, client, auth) -> None:
    """The verification answer reports the chain of section 13.1 check by check; a stored commitment, entropy
    source or revealed share changed after the draw makes it a mismatch naming the first difference."""
    amr_items = list(_items(client, auth("hj-amr", "planner"), "hj-amr").values())
    joint = _small_task(client, auth, "hj-eeb", {"hj-amr": amr_items[:1]})
    tid, eeb = joint["id"], auth("hj-eeb", "planner")
    url = f"/api/v1/tasks/{tid}/draw/verification"
    names = ["freeze", "commitment", "entropy_source", "share_commitments", "seed_shares"]
    for who in (eeb, auth("hj-audit", "auditor"), auth("hj-admin", "admin")):
        out = _ok(client.get(url, headers=who))
        assert out["match"] is True and out["first_difference"] is None
        assert out["chain"] == {"match": True, "first_difference": None, "checks": [
            {"check": n, "status": "ok", "detail": None} for n in names]}
    assert client.get(url, headers=auth("hj-amr", "reviewer")).status_code == 403
    # a revealed share changed: it no longer hashes to the share committed before the freeze
    _rewrite(demo, tid, "ShareRevealed", lambda s: s.update(share="ab" * 32), "hj-amr")
    out = _ok(client.get(url, headers=eeb))
    assert out["match"] is False and out["chain"]["match"] is False
    assert out["first_difference"] == out["chain"]["first_difference"]
    assert out["first_difference"].startswith("seed_shares['hj-amr']: the share revealed at position ")
    assert [c["status"] for c in out["chain"]["checks"]] == ["ok", "ok", "ok", "ok", "differs"]
    # a source declared afterwards: the earlier check in section 13.1's order is the first difference
    _rewrite(demo, tid, "SeedCommitted", lambda s: s.update(entropy_source="体彩排列3"))
    out = _ok(client.get(f"/api/v1/tasks/{tid}/draws/1/verification", headers=auth("hj-audit", "auditor")))
    assert out["match"] is False and out["round"] == 1 and out["first_difference"].startswith(
        "entropy_source: the draw record's '' is not the one declared with the commitment "
        "('体彩排列3' at position ")
    assert [c["status"] for c in out["chain"]["checks"]] == ["ok", "ok", "differs", "ok", "differs"]
    # the freeze's recorded position moved: nothing relative to the freeze can be checked
    _rewrite(demo, tid, "PoolFrozen", lambda s: s.update(position=s["position"] - 1))
    out = _ok(client.get(url, headers=eeb))
    assert out["first_difference"] == "freeze_position: no freeze of this round at the recorded position"
    assert [c["status"] for c in out["chain"]["checks"]] == ["differs", "not_checked", "not_checked", "not_checked",
                                                              "not_checked"]
