"""What the rules leave to each county is deployment configuration over HTTP: the joint-share goal, the baseline
rules and the result vocabulary, changed by an administrator as events with history, and read by the plan
checks, the KPIs and the findings."""

from typing import Any

from domain.planning.plan import plan_id
from services.cli.demo import load_demo_plan


def _ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


def test_an_administrator_configures_goals_baseline_and_vocabulary_and_every_reader_follows(demo, client, auth) -> None:
    load_demo_plan(demo)
    admin, planner, auditor = auth("hj-eeb", "admin"), auth("hj-eeb", "planner"), auth("hj-audit", "auditor")
    shown = _ok(client.get("/api/v1/configuration", headers=planner))
    assert shown["version"] == 0 and shown["settings"] == shown["defaults"]
    assert shown["settings"]["joint_share_goal"] == "0.6"

    # An own random task next to the plan's joint one: joint share 1/2, below the default 60%.
    opened = _ok(client.post("/api/v1/tasks", json={"plan_entry": "2024002"}, headers=planner), 201)
    plan = _ok(client.get(f"/api/v1/plans/{plan_id('hj-eeb', 2024)}", params={"min_position": opened["position"]},
                          headers=planner))
    assert "joint_share" in {b["rule"] for b in plan["breaches"]}
    kpis = _ok(client.get("/api/v1/kpis", params={"year": 2024}, headers=planner))
    assert kpis["joint_share"]["goal"] == 0.6 and kpis["joint_share"]["meets_goal"] is False
    key_before = kpis["coverage"]["by_class"]["key"]

    # Refusals: not an administrator, a bad value, no reason; nothing is recorded.
    body = {"joint_share_goal": "50%", "reason": "县局2025年度目标调整"}
    for who in (planner, auditor, auth("hj-eeb", "reviewer")):
        assert client.patch("/api/v1/configuration", json=body, headers=who).status_code == 403
    r = client.patch("/api/v1/configuration", json={"joint_share_goal": "1.5", "reason": "x"}, headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "joint_share_goal"
    r = client.patch("/api/v1/configuration", headers=admin, json={
        "result_codes": [{"code": "corrected", "wording": "发现问题已责令改正", "problem_found": True}], "reason": "x"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "result_codes"
    assert client.patch("/api/v1/configuration", json={"joint_share_goal": "50%"}, headers=admin).status_code == 400
    assert _ok(client.get("/api/v1/configuration", headers=planner))["version"] == 0

    # The administrator changes all three; the plan checks, the KPIs and the findings read them.
    codes = [*shown["defaults"]["result_codes"],
             {"code": "partly_corrected", "wording": "发现问题部分整改", "english": "partly corrected",
              "problem_found": True}]
    baseline = [dict(r, min_ratio="0.5") if r["supervision_class"] == "key" else r
                for r in shown["defaults"]["baseline_rules"]]
    done = _ok(client.patch("/api/v1/configuration", headers={**admin, "If-Match": '"0"'}, json={
        **body, "baseline_rules": baseline, "result_codes": codes}))
    assert done["changed"] == ["baseline_rules", "joint_share_goal", "result_codes"]
    stale = client.patch("/api/v1/configuration", headers={**admin, "If-Match": '"0"'},
                         json={"joint_share_goal": "0.4", "reason": "x"})
    assert stale.status_code == 409
    plan = _ok(client.get(f"/api/v1/plans/{plan_id('hj-eeb', 2024)}", headers=planner))
    assert "joint_share" not in {b["rule"] for b in plan["breaches"]}
    kpis = _ok(client.get("/api/v1/kpis", params={"year": 2024}, headers=planner))
    assert kpis["joint_share"]["goal"] == 0.5 and kpis["joint_share"]["meets_goal"] is True
    key_after = kpis["coverage"]["by_class"]["key"]
    size = key_before["directory_size"]
    assert key_before["baseline_minimum"] == -(-size // 4) * 4 and key_after["baseline_minimum"] == -(-size // 2) * 4

    task = plan["tasks"][0]["id"]
    visit = _ok(client.get(f"/api/v1/tasks/{task}/draw", headers=planner))["visits"][0]
    a = _ok(client.get(f"/api/v1/assignments/{visit['assignment_id']}", headers=planner))
    inspector = auth("hj-eeb", "inspector", subject=a["teams"]["hj-eeb"]["leader"])
    item = a["items"]["hj-eeb"][0]
    url = f"/api/v1/assignments/{a['id']}/inspections/hj-eeb/findings"
    finding = {"result": "partly_corrected", "description": "废水排放口标识不全，已部分整改"}
    _ok(client.post(url, headers=inspector, json={"inspected_on": "2024-03-05", "methods": ["on_site"],
                                                  "findings": {item: finding}}))
    # Removing the code again: a new finding with it is refused (a recorded one keeps its code and wording).
    _ok(client.patch("/api/v1/configuration", headers=admin, json={"result_codes": shown["defaults"]["result_codes"],
                                                                   "reason": "恢复国家公示系统用语"}))
    r = client.post(url, headers=inspector, json={"inspected_on": "2024-03-05", "methods": ["on_site"],
                                                  "findings": {item: finding}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"].endswith(".result")

    history = _ok(client.get("/api/v1/configuration/history", headers=auditor))["events"]
    assert [e["type"] for e in history] == ["started", "changed", "changed"]
    assert history[1]["data"]["reason"] == "县局2025年度目标调整" and history[1]["data"]["changes"]["joint_share_goal"] == "0.5"
    assert client.get("/api/v1/configuration/history", headers=planner).status_code == 403
