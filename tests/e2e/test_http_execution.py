"""From visit to publication over HTTP, on the demo county: a joint visit from the draw to the public
search and the exports, the refusals of 谁检查、谁录入、谁公开, working-day deadlines, referrals, a case-triggered
task from a clue and a follow-up round."""

import csv
import datetime as dt
import io
import json
from typing import Any

from openpyxl import load_workbook

from domain.accounts import account_id
from domain.execution.evidence import EvidencePolicy
from services.infra.evidence import EvidenceStore
from tests.support.accounts import account_username
from tests.support.draws import http_commit_shares, http_reveal_shares
from tests.support.projections import assert_rebuild_equals_live

SECRET = "保密工艺参数XJ-7"
FUCAI_150 = "福彩3D 2024年第150期开奖号码"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


def _items(client: Any, h: dict[str, str], department: str) -> list[dict[str, Any]]:
    found = _ok(client.get("/api/v1/items", params={"department": department, "limit": 100}, headers=h))["items"]
    return [i for i in found if not i.get("needs_expert")]


def _task(client: Any, auth: Any, participants: dict[str, int], period: str = "2024Q3",
          classes: tuple[str, ...] = ("key",)) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """A task led by hj-eeb with ``n`` items of each participating department, drawn, teams drawn."""
    eeb = auth("hj-eeb", "planner")
    items = {d: _items(client, auth(d, "planner"), d)[:n] for d, n in participants.items()}
    task = _ok(client.post("/api/v1/tasks", headers=eeb, json={
        "period": period, "reason": "专项检查", "participants": {d: [i["id"] for i in v] for d, v in items.items()},
        "scope": {"county": "获嘉县", "supervision_classes": list(classes)},
        "rules": [{"supervision_class": c, "full": True} for c in classes]}), 201)
    joint = sorted(participants) if len(participants) > 1 else []
    for step in ("commitment", "freeze", "draw"):
        if step == "draw":
            http_reveal_shares(client, auth, task["id"], joint)
        _ok(client.post(f"/api/v1/tasks/{task['id']}/{step}", json={} if step != "commitment" else None, headers=eeb))
        if step == "commitment":
            http_commit_shares(client, auth, task["id"], joint)
    for d in participants:
        _ok(client.post(f"/api/v1/tasks/{task['id']}/teams/{d}", json={}, headers=auth(d, "planner")))
    return task, items


def _visits(client: Any, auth: Any, task: dict[str, Any]) -> list[dict[str, Any]]:
    eeb = auth("hj-eeb", "planner")
    listing = _ok(client.get(f"/api/v1/tasks/{task['id']}/draw", headers=eeb))
    return [_ok(client.get(f"/api/v1/assignments/{v['assignment_id']}", headers=eeb)) for v in listing["visits"]]


def _upload(client: Any, h: dict[str, str], content: bytes = PNG, name: str = "现场照片.png",
            media: str = "image/png") -> Any:
    return client.post("/api/v1/evidence", files={"file": (name, content, media)}, headers=h)


def test_a_joint_visit_goes_from_the_draw_to_the_public_search_and_the_exports(demo, client, auth) -> None:
    task, items = _task(client, auth, {"hj-eeb": 2, "hj-amr": 1})
    visit = _visits(client, auth, task)[0]
    aid, target_id = visit["id"], visit["target_id"]
    eeb_team, amr_team = visit["teams"]["hj-eeb"]["members"], visit["teams"]["hj-amr"]["members"]
    eeb_insp = auth("hj-eeb", "inspector", subject=eeb_team[0])
    amr_insp = auth("hj-amr", "inspector", subject=amr_team[0])
    eeb_rev, amr_rev = auth("hj-eeb", "reviewer", subject="eeb-rev"), auth("hj-amr", "reviewer", subject="amr-rev")
    eeb_plan, amr_plan = auth("hj-eeb", "planner"), auth("hj-amr", "planner")
    target = _ok(client.get(f"/api/v1/targets/{target_id}", headers=eeb_plan))

    # 一次告知: every document of every item of both departments, each listed once.
    r = client.get(f"/api/v1/assignments/{aid}/notices/pre-visit", headers=amr_plan)
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"  # one charset
    html = r.text
    documents = {doc for its in items.values() for i in its for doc in i["documents"]}
    assert documents and all(html.count(f"<td>{doc}</td>") == 1 for doc in documents)
    assert "获嘉县市场监督管理局" in html and target["name"] in html and "@page" in html
    assert client.get(f"/api/v1/assignments/{aid}/notices/pre-visit",
                      headers=auth("hj-em", "planner")).status_code == 403
    r = client.post(f"/api/v1/assignments/{aid}/notices/pre-visit", json={"issued_on": "2024-09-02"}, headers=amr_plan)
    assert r.status_code == 403  # the lead department issues it
    issued = _ok(client.post(f"/api/v1/assignments/{aid}/notices/pre-visit",
                             json={"issued_on": "2024-09-02", "visit_from": "2024-09-16", "visit_to": "2024-09-18"},
                             headers=eeb_plan))
    again = client.get(f"/api/v1/assignments/{aid}/notices/pre-visit", headers=amr_plan)
    assert again.headers["x-notice-sha256"] == issued["sha256"] and set(issued["documents"]) == documents
    _ok(client.post(f"/api/v1/assignments/{aid}/notices/pre-visit/sent",
                    json={"sent_on": "2024-09-03", "method": "electronic", "recipient": "企业环保负责人"}, headers=eeb_plan))

    # 资料互通: a document one department shares is visible to the other.
    ref = _ok(_upload(client, amr_plan), 201)
    assert ref["size"] == len(PNG) and len(ref["sha256"]) == 64
    _ok(client.post(f"/api/v1/assignments/{aid}/documents", json={"documents": [ref], "note": "营业执照副本"},
                    headers=amr_plan))
    shared = _ok(client.get(f"/api/v1/assignments/{aid}/notices", headers=eeb_insp))["shared"]
    assert shared[0]["department"] == "hj-amr" and shared[0]["documents"] == [ref]
    assert client.get(f"/api/v1/evidence/{ref['sha256']}", headers=eeb_insp).content == PNG
    bad = _upload(client, eeb_insp, b"MZ\x90\x00", "x.exe", "application/x-msdownload")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "file.media_type"
    store = demo.evidence.store
    demo.evidence.store = EvidenceStore(store.root, EvidencePolicy(max_bytes=32))
    big = _upload(client, eeb_insp)
    assert big.status_code == 422 and big.json()["errors"][0]["field"] == "file.size"
    demo.evidence.store = store
    assert client.get("/api/v1/evidence/" + "0" * 64, headers=eeb_insp).status_code == 404

    # 谁检查、谁录入: the department's team enters its own findings; nobody else.
    eeb_items = [i["id"] for i in items["hj-eeb"]]
    eeb_findings: dict[str, dict[str, Any]] = {
        eeb_items[0]: {"result": "corrected", "description": f"废气处理设施未正常运行，{SECRET}",
                       "evidence": [ref], "confidential": ["description"],
                       "measures": [{"kind": "order_correction", "deadline": "2024-10-18"}]},
        eeb_items[1]: {"result": "no_problem"},
    }
    body: dict[str, Any] = {"inspected_on": "2024-09-18", "methods": ["on_site", "online_monitoring"],
                            "findings": eeb_findings}
    url = f"/api/v1/assignments/{aid}/inspections"
    for intruder in (amr_insp, eeb_rev, eeb_plan, auth("hj-eeb", "inspector", subject="not-on-the-team")):
        r = client.post(f"{url}/hj-eeb/findings", json=body, headers=intruder)
        assert r.status_code == 403, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    assert _ok(client.get(url, headers=eeb_plan))["inspections"]["hj-eeb"]["state"] == "not_entered"
    unknown: dict[str, Any] = {**ref, "sha256": "f" * 64}
    r = client.post(f"{url}/hj-eeb/findings", headers=eeb_insp, json={
        **body, "findings": {eeb_items[0]: {**eeb_findings[eeb_items[0]], "evidence": [unknown]}}})
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "unknown_evidence"
    done = _ok(client.post(f"{url}/hj-eeb/findings", json=body, headers=eeb_insp))
    eeb_id = done["id"]
    # The answer shows the state after the write (outside tester: "not_entered" right after recording), as reads do.
    assert done["state"] == "entered"
    assert _ok(client.get(f"/api/v1/inspections/{eeb_id}", headers=eeb_insp))["state"] == "entered"
    listed = _ok(client.get(f"/api/v1/inspections?state=entered&min_position={done['position']}", headers=eeb_plan))
    assert [i["id"] for i in listed["items"]] == [eeb_id]
    assert _ok(client.get(f"/api/v1/assignments/{aid}", headers=eeb_plan))["state"] == "in_progress"
    r = client.post(f"{url}/hj-eeb/findings", json={**body, "findings": {eeb_items[0]: {"result": "corrected"}}},
                    headers=eeb_insp)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == f"findings.{eeb_items[0]}.description"
    amr_item = items["hj-amr"][0]["id"]
    amr_done = _ok(client.post(f"{url}/hj-amr/findings", headers=amr_insp, json={
        "inspected_on": "2024-09-18", "methods": ["on_site"], "findings": {amr_item: {"result": "no_problem"}}}))

    # Review: an inspector may not approve; a reviewer returns with a reason, then approves.
    _ok(client.post(f"/api/v1/inspections/{eeb_id}/submit", headers=eeb_insp))
    assert client.post(f"/api/v1/inspections/{eeb_id}/approve", json={"approved_on": "2024-09-20"},
                       headers=eeb_insp).status_code == 403
    assert client.post(f"/api/v1/inspections/{eeb_id}/approve", json={"approved_on": "2024-09-20"},
                       headers=amr_rev).status_code == 403
    assert client.post(f"/api/v1/inspections/{eeb_id}/publish", json={}, headers=eeb_rev).status_code == 422
    r = client.post(f"/api/v1/inspections/{eeb_id}/return", json={"reason": ""}, headers=eeb_rev)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"
    _ok(client.post(f"/api/v1/inspections/{eeb_id}/return", json={"reason": "请补充整改期限依据"}, headers=eeb_rev))
    view = _ok(client.get(f"/api/v1/inspections/{eeb_id}", headers=eeb_insp))
    rev_account = account_id(account_username("hj-eeb", ["reviewer"], "eeb-rev"))  # who acts: the account
    assert view["state"] == "returned" and view["history"][-1] == {"action": "returned", "by": rev_account,
                                                                    "reason": "请补充整改期限依据"}
    _ok(client.post(f"{url}/hj-eeb/findings", json=body, headers=eeb_insp))
    _ok(client.post(f"/api/v1/inspections/{eeb_id}/submit", headers=eeb_insp))
    # The deadline: 20 working days after 2024-09-20, across National Day and its make-up workdays.
    approved = _ok(client.post(f"/api/v1/inspections/{eeb_id}/approve", json={"approved_on": "2024-09-20"},
                               headers=eeb_rev))
    assert approved["deadline"]["date"] == "2024-10-23" and approved["deadline"]["provisional"] is False

    # 一表告知 only once every department approved.
    r = client.get(f"/api/v1/assignments/{aid}/notices/result", headers=eeb_plan)
    assert r.status_code == 422 and "hj-amr" in r.text
    _ok(client.post(f"/api/v1/inspections/{amr_done['id']}/submit", headers=amr_insp))
    _ok(client.post(f"/api/v1/inspections/{amr_done['id']}/approve", json={"approved_on": "2024-09-20"},
                    headers=amr_rev))
    result = client.get(f"/api/v1/assignments/{aid}/notices/result", headers=amr_plan)
    assert result.status_code == 200 and "发现问题已责令改正" in result.text and "获嘉县市场监督管理局" in result.text
    assert SECRET not in result.text and "责令改正" in result.text and "保密内容" in result.text  # a partner's copy
    # The enterprise's copy (read by the lead, which issues it) tells it what to correct, confidential or not.
    own = client.get(f"/api/v1/assignments/{aid}/notices/result", headers=eeb_plan)
    assert SECRET in own.text and "不予公示" in own.text and "发现问题待后续处理" not in own.text
    _ok(client.post(f"/api/v1/assignments/{aid}/notices/result", json={"issued_on": "2024-09-23"}, headers=eeb_plan))
    _ok(client.post(f"/api/v1/assignments/{aid}/notices/result/delivered",
                    json={"delivered_on": "2024-09-24", "method": "in_person", "recipient": "法定代表人"},
                    headers=eeb_plan))
    notices = _ok(client.get(f"/api/v1/assignments/{aid}/notices", headers=amr_insp))
    assert notices["result"]["delivered"][0]["method"] == "in_person"

    # Unpublished results are not public; published ones are, without confidential text.
    assert _ok(client.get("/api/v1/public/results", params={"q": target["name"]}))["total"] == 0
    assert client.post(f"/api/v1/inspections/{eeb_id}/publish", json={"published_on": "2024-10-08"},
                       headers=eeb_insp).status_code == 403
    published = _ok(client.post(f"/api/v1/inspections/{eeb_id}/publish", json={"published_on": "2024-10-08"},
                                headers=eeb_rev))
    assert published["published_late"] is False
    found = _ok(client.get("/api/v1/public/results", params={"q": target["name"],
                                                              "min_position": published["position"]}))
    assert found["total"] == 1 and SECRET not in json.dumps(found, ensure_ascii=False)
    # The anonymous answer of the same search (kept since before the publication, with total 0) is read again:
    # the read models moved. Its ETag answers If-None-Match with 304 until they move again.
    again = client.get("/api/v1/public/results", params={"q": target["name"]})
    assert _ok(again) == found and again.headers["cache-control"] == "no-cache"
    tag = again.headers["etag"]
    unchanged = client.get("/api/v1/public/results", params={"q": target["name"]}, headers={"If-None-Match": tag})
    assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged.headers["etag"] == tag
    hit = found["items"][0]
    assert hit["credit_code"] == target["credit_code"] and hit["department"] == "hj-eeb"
    assert hit["authority"] == "新乡市生态环境局获嘉分局" and hit["task_number"] == f"hj-eeb-{task['number']}"
    assert [f["result_wording"] for f in hit["findings"]] == ["发现问题已责令改正", "未发现问题"]
    assert "description" not in hit["findings"][0] and "evidence" not in hit["findings"][0]
    assert hit["findings"][0]["item_name"] == items["hj-eeb"][0]["name"]
    assert [m["label"] for m in hit["findings"][0]["measures"]] == ["责令改正"]  # Chinese, not order_correction
    by_code = _ok(client.get("/api/v1/public/results", params={"q": target["credit_code"][:12]}))
    assert [i["id"] for i in by_code["items"]] == [eeb_id]
    # The page's filters (department, year, result) in the JSON search too; any other parameter is a 400.
    code = target["credit_code"][:12]
    assert [i["id"] for i in _ok(client.get("/api/v1/public/results", params={
        "q": code, "department": "hj-eeb", "year": 2024}))["items"]] == [eeb_id]
    assert [i["id"] for i in _ok(client.get("/api/v1/public/results", params={"q": code, "result": "corrected"}))["items"]] == [eeb_id]
    for other in ({"year": 2023}, {"department": "hj-amr"}, {"result": "closed", "department": "hj-eeb"}):
        assert eeb_id not in [i["id"] for i in _ok(client.get("/api/v1/public/results", params={"q": code, **other}))["items"]], other
    for bad, name in (({"year": "abc"}, "year"), ({"year": 99999999999999999999}, "year"), ({"result": "x"}, "result"),
                      ({"department": "HJ EEB"}, "department"), ({"yaer": 2024}, "yaer")):
        r = client.get("/api/v1/public/results", params={"q": code, **bad})
        assert r.status_code == 400 and name in r.text, (bad, r.text)
    # The enterprise's name is the directory's as it is now: renamed, it is found (and shown) under the new name.
    renamed = _ok(client.patch(f"/api/v1/targets/{target_id}", json={"name": "获嘉县改名后企业有限公司"},
                               headers=eeb_plan))
    after = _ok(client.get("/api/v1/public/results", params={"q": "改名后企业", "min_position": renamed["position"]}))
    assert [i["id"] for i in after["items"]] == [eeb_id]
    assert after["items"][0]["target_name"] == "获嘉县改名后企业有限公司"
    assert _ok(client.get("/api/v1/public/results", params={"q": target["name"]}))["total"] == 0
    stale = client.get("/api/v1/public/results", params={"q": target["name"]}, headers={"If-None-Match": tag})
    assert stale.status_code == 200 and stale.headers["etag"] != tag
    # The visit's other department sees the findings redacted; the department's reviewer and auditors in full.
    assert SECRET not in json.dumps(_ok(client.get(f"/api/v1/inspections/{eeb_id}", headers=amr_rev)),
                                    ensure_ascii=False)
    assert SECRET in json.dumps(_ok(client.get(f"/api/v1/inspections/{eeb_id}", headers=eeb_rev)), ensure_ascii=False)
    assert SECRET in json.dumps(_ok(client.get(f"/api/v1/inspections/{eeb_id}", headers=auth("hj-audit", "auditor"))),
                                ensure_ascii=False)
    assert client.get(f"/api/v1/inspections/{eeb_id}", headers=auth("hj-em", "reviewer")).status_code == 403

    # Exports for the publicity system: approved results, no confidential text.
    exported = client.get("/api/v1/publicity/export", params={"format": "json"}, headers=eeb_rev)
    records = _ok(exported)
    assert SECRET.encode() not in exported.content
    assert records[0]["uniscid"] == target["credit_code"] and records[0]["raninsTaskId"] == f"hj-eeb-{task['number']}"
    # An ad hoc task has no plan entry: a documented marker, attributable to the department.
    assert records[0]["raninsPlanId"] == "hj-eeb-2024-计划外"
    assert records[0]["raninsPlaneName"] == "新乡市生态环境局获嘉分局2024年度计划外抽查"
    # The partner's result in the joint task carries its own department's plan, not the lead's.
    amr_plan_made = _ok(client.post("/api/v1/plans", json={"year": 2024}, headers=amr_plan), 201)
    amr_records = _ok(client.get("/api/v1/publicity/export", params={"format": "json",
                                                                      "min_position": amr_plan_made["position"]},
                                 headers=amr_rev))
    assert [(r["raninsPlanId"], r["raninsTaskId"], r["insAuth"]) for r in amr_records] == [
        ("hj-amr-2024", f"hj-eeb-{task['number']}", "获嘉县市场监督管理局")]
    assert amr_records[0]["raninsPlaneName"] == _ok(client.get(f"/api/v1/plans/{amr_plan_made['id']}",
                                                               headers=amr_plan))["name"]
    # The default plan name says whose plan it is.
    assert amr_records[0]["raninsPlaneName"] == "获嘉县市场监督管理局2024年“双随机、一公开”监管随机抽查工作计划"
    assert records[0]["insAuth"] == "新乡市生态环境局获嘉分局" and records[0]["insDate"] == "2024-09-18"
    assert records[0]["raninsTypeName"] == "定向"
    assert [d["raninsCheckResName"] for d in records[0]["details"]] == ["发现问题已责令改正", "未发现问题"]
    sheet = client.get("/api/v1/publicity/export", params={"format": "csv"}, headers=eeb_rev)
    assert sheet.status_code == 200 and SECRET.encode() not in sheet.content
    assert sheet.headers["content-type"] == "text/csv; charset=utf-8"  # one charset
    rows = list(csv.reader(io.StringIO(sheet.content.decode("utf-8-sig"))))
    assert rows[0][0] == "抽查计划编号" and len(rows) == 3 and rows[1][7] == target["credit_code"]
    xlsx = client.get("/api/v1/publicity/export", params={"format": "xlsx"}, headers=eeb_rev)
    assert xlsx.status_code == 200
    cells = [c for row in load_workbook(io.BytesIO(xlsx.content)).active.iter_rows(values_only=True) for c in row]
    assert target["credit_code"] in cells and not any(SECRET in str(c) for c in cells)
    assert client.get("/api/v1/publicity/export", params={"format": "json"}, headers=eeb_insp).status_code == 403

    # Push states: pending -> pushed -> failed -> pushed -> confirmed.
    push = f"/api/v1/inspections/{eeb_id}/push"
    assert client.post(push, json={"state": "confirmed"}, headers=eeb_rev).status_code == 422
    _ok(client.post(push, json={"state": "pushed", "on": "2024-10-09", "reference": "GS-1"}, headers=eeb_rev))
    r = client.post(push, json={"state": "failed", "on": "2024-10-09"}, headers=eeb_rev)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"
    _ok(client.post(push, json={"state": "failed", "on": "2024-10-09", "reason": "接口超时"}, headers=eeb_rev))
    _ok(client.post(push, json={"state": "pushed", "on": "2024-10-10", "reference": "GS-2"}, headers=eeb_rev))
    last = _ok(client.post(push, json={"state": "confirmed", "on": "2024-10-11"}, headers=eeb_rev))
    assert last["push_state"] == "confirmed"
    listing = _ok(client.get("/api/v1/inspections", params={"push_state": "confirmed",
                                                            "min_position": last["position"]}, headers=eeb_rev))
    assert [i["id"] for i in listing["items"]] == [eeb_id]
    assert client.get("/api/v1/inspections", params={"department": "hj-eeb"}, headers=amr_rev).status_code == 403

    # The departments' KPIs and inboxes follow (formulas in the answer).
    at = {"year": 2024, "quarter": 3, "min_position": last["position"]}
    eeb_kpis = _ok(client.get("/api/v1/kpis", params=at, headers=eeb_plan))
    assert eeb_kpis["publication"]["rate"] == 1.0 and eeb_kpis["timeliness"]["rate"] == 1.0
    assert eeb_kpis["violation_discovery"] == {**eeb_kpis["violation_discovery"], "findings": 2, "with_problem": 1}
    assert eeb_kpis["off_site_share"]["rate"] == 1.0 and eeb_kpis["tasks"]["joint"] == 1
    amr_kpis = _ok(client.get("/api/v1/kpis", params=at, headers=amr_plan))
    assert amr_kpis["publication"] == {**amr_kpis["publication"], "approved": 1, "published": 0, "rate": 0.0}
    assert amr_kpis["off_site_share"]["rate"] == 0.0 and amr_kpis["publication"]["overdue_now"] == 1
    board = _ok(client.get("/api/v1/inbox", params={"min_position": last["position"]}, headers=amr_rev))
    assert [i["id"] for i in board["publication_deadlines"]] == [amr_done["id"]]
    assert board["publication_deadlines"][0]["overdue"] is True and board["awaiting_review"] == []

    demo.runner.catch_up()
    assert_rebuild_equals_live(demo, "execution")


def _one_department(client: Any, auth: Any, period: str = "2024Q3") -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    task, items = _task(client, auth, {"hj-eeb": 1}, period=period)
    return task, _visits(client, auth, task), [i["id"] for i in items["hj-eeb"]]


def _enter(client: Any, auth: Any, visit: dict[str, Any], item: str, result: str = "follow_up_pending",
           day: str = "2024-09-10") -> str:
    member = visit["teams"]["hj-eeb"]["members"][0]
    finding: dict[str, Any] = {"result": result}
    if result != "no_problem":
        finding["description"] = "排污口设置不规范"
    done = _ok(client.post(f"/api/v1/assignments/{visit['id']}/inspections/hj-eeb/findings",
                           json={"inspected_on": day, "methods": ["on_site"], "findings": {item: finding}},
                           headers=auth("hj-eeb", "inspector", subject=member)))
    return str(done["id"])


def _approve(client: Any, auth: Any, visit: dict[str, Any], iid: str, on: str) -> dict[str, Any]:
    member = visit["teams"]["hj-eeb"]["members"][0]
    _ok(client.post(f"/api/v1/inspections/{iid}/submit", headers=auth("hj-eeb", "inspector", subject=member)))
    return _ok(client.post(f"/api/v1/inspections/{iid}/approve", json={"approved_on": on},
                           headers=auth("hj-eeb", "reviewer", subject="eeb-rev")))


def test_a_provisional_deadline_is_recomputed_when_an_admin_loads_the_schedule(demo, client, auth) -> None:
    last = max(_ok(client.get("/api/v1/calendar", headers=auth("hj-eeb", "reviewer")))["covered_years"])
    following = last + 1
    demo.clock.today = lambda: dt.date(last, 12, 28)
    _, visits, items = _one_department(client, auth)
    iid = _enter(client, auth, visits[0], items[0], day=f"{last}-12-20")
    approved = _approve(client, auth, visits[0], iid, f"{last}-12-21")
    deadline = approved["deadline"]
    assert deadline["provisional"] is True and deadline["uncovered_years"] == [following]
    weekdays = _ok(client.get("/api/v1/calendar/deadline", params={"start": f"{last}-12-21"},
                              headers=auth("hj-eeb", "reviewer")))
    assert weekdays == deadline
    # Overdue is computed when asked: the day after the deadline, approved and unpublished.
    after = dt.date.fromisoformat(deadline["date"]) + dt.timedelta(days=1)
    late = _ok(client.get("/api/v1/inspections", params={"overdue": True, "as_of": after.isoformat(),
                                                         "min_position": approved["position"]},
                          headers=auth("hj-eeb", "reviewer")))
    assert [i["id"] for i in late["items"]] == [iid] and late["items"][0]["provisional"] is True
    assert _ok(client.get("/api/v1/inspections", params={"overdue": True, "as_of": deadline["date"]},
                          headers=auth("hj-eeb", "reviewer")))["total"] == 0

    # The schedule of the following year: New Year on Friday 1 January and Monday 4 January off.
    schedule = {"year": following, "holidays": [f"{following}-01-01", f"{following}-01-04"], "workdays": [],
                "source": "国务院办公厅通知（测试）"}
    r = client.post("/api/v1/calendar/schedules", json=schedule, headers=auth("hj-eeb", "planner"))
    assert r.status_code == 403
    loaded = _ok(client.post("/api/v1/calendar/schedules", json=schedule, headers=auth("system", "admin")))
    assert [x["id"] for x in loaded["recomputed"]] == [iid]
    new = loaded["recomputed"][0]["deadline"]
    assert new["provisional"] is False
    expected = dt.date.fromisoformat(deadline["date"])
    holidays_counted = sum(1 for h in schedule["holidays"] if dt.date.fromisoformat(h) <= expected)
    while holidays_counted:  # each holiday counted as a weekday pushes the deadline one working day on
        expected += dt.timedelta(days=1)
        if expected.weekday() < 5 and expected.isoformat() not in schedule["holidays"]:
            holidays_counted -= 1
    assert new["date"] == expected.isoformat()
    view = _ok(client.get(f"/api/v1/inspections/{iid}", headers=auth("hj-eeb", "reviewer")))
    assert view["deadline"] == new
    calendar = _ok(client.get("/api/v1/calendar", headers=auth("hj-eeb", "reviewer")))
    assert following in calendar["covered_years"] and calendar["loaded"][0]["source"] == schedule["source"]

    # A CSV schedule (date,kind) loads the same way; a bad row is named.
    bad = client.post("/api/v1/calendar/schedules/import", headers=auth("system", "admin"),
                      files={"file": ("2030.csv", "date,kind\n2030-01-01,休\n2030-02-02,maybe\n", "text/csv")})
    assert bad.status_code == 422 and bad.json()["errors"][0]["row"] == 3
    ok = _ok(client.post("/api/v1/calendar/schedules/import", headers=auth("system", "admin"),
                         files={"file": ("2030.csv", "date,kind\n2030-01-01,休\n2030-02-02,班\n", "text/csv")}))
    assert ok["year"] == 2030 and ok["recomputed"] == []
    demo.runner.catch_up()
    assert_rebuild_equals_live(demo, "execution")


def test_referrals_to_a_department_and_to_judicial_organs_record_every_step(demo, client, auth) -> None:
    _, visits, items = _one_department(client, auth)
    iid = _enter(client, auth, visits[0], items[0])
    eeb, amr, em = auth("hj-eeb", "planner"), auth("hj-amr", "planner"), auth("hj-em", "planner")
    base = {"inspection_id": iid, "item": items[0], "reason": "涉及特种设备安全", "transferred_on": "2024-09-11"}
    r = client.post("/api/v1/referrals", json={**base, "kind": "department", "to": "hj-amr"}, headers=amr)
    assert r.status_code == 403  # only the inspecting department refers its findings
    to_amr = _ok(client.post("/api/v1/referrals", headers=eeb, json={
        **base, "kind": "department", "to": "hj-amr", "respond_by": "2024-09-20", "outcome_by": "2024-10-31"}), 201)
    assert client.post("/api/v1/referrals", json={**base, "kind": "department", "to": "hj-amr"},
                       headers=eeb).status_code == 409
    incoming = _ok(client.get("/api/v1/referrals", params={"direction": "incoming",
                                                            "min_position": to_amr["position"]}, headers=amr))
    assert [x["id"] for x in incoming["items"]] == [to_amr["id"]]
    target = _ok(client.get(f"/api/v1/targets/{visits[0]['target_id']}", headers=eeb))
    item = _ok(client.get(f"/api/v1/items/{items[0]}", headers=eeb))
    assert incoming["items"][0] == {**incoming["items"][0], "target_name": target["name"],
                                    "credit_code": target["credit_code"], "item_name": item["name"],
                                    "from_department_name": "新乡市生态环境局获嘉分局", "to_name": "获嘉县市场监督管理局"}
    # The receiving department opens the referred finding and reads names, not only ids.
    received = _ok(client.get(f"/api/v1/referrals/{to_amr['id']}", headers=amr))
    assert received["finding"]["description"] == "排污口设置不规范" and received["finding"]["item"] == items[0]
    assert received["finding"]["inspected_on"] == "2024-09-10"
    assert received["names"]["targets"][target["id"]]["credit_code"] == target["credit_code"]
    assert received["names"]["items"][items[0]]["name"] == item["name"]
    assert received["names"]["departments"] == {"hj-eeb": "新乡市生态环境局获嘉分局", "hj-amr": "获嘉县市场监督管理局"}
    assert client.get(f"/api/v1/referrals/{to_amr['id']}", headers=em).status_code == 403
    # Nothing to transfer: a "no problem found" finding is not referred.
    clean = _enter(client, auth, visits[1], items[0], result="no_problem")
    r = client.post("/api/v1/referrals", headers=eeb, json={**base, "inspection_id": clean, "kind": "department",
                                                             "to": "hj-amr"})
    assert r.status_code == 422 and r.json()["errors"][0] == {**r.json()["errors"][0], "field": "item",
                                                              "rule": "nothing_to_refer"}
    assert client.post(f"/api/v1/referrals/{to_amr['id']}/accept", json={"on": "2024-09-12"},
                       headers=eeb).status_code == 403  # the receiving department decides
    _ok(client.post(f"/api/v1/referrals/{to_amr['id']}/receipt", json={"on": "2024-09-12", "reference": "HZ-01"},
                    headers=amr))
    _ok(client.post(f"/api/v1/referrals/{to_amr['id']}/accept", json={"on": "2024-09-13"}, headers=amr))
    _ok(client.post(f"/api/v1/referrals/{to_amr['id']}/deadlines",
                    json={"deadline": "outcome_by", "new": "2024-11-15", "reason": "需检测"}, headers=eeb))
    done = _ok(client.post(f"/api/v1/referrals/{to_amr['id']}/outcome",
                           json={"on": "2024-10-20", "text": "已立案查处"}, headers=amr))
    view = _ok(client.get(f"/api/v1/referrals/{to_amr['id']}", headers=eeb))
    assert view["state"] == "concluded" and view["outcome"]["text"] == "已立案查处" and done["state"] == "concluded"
    assert view["receipt"]["reference"] == "HZ-01" and view["extensions"][0]["new"] == "2024-11-15"

    to_em = _ok(client.post("/api/v1/referrals", json={**base, "kind": "department", "to": "hj-em"}, headers=eeb), 201)
    r = client.post(f"/api/v1/referrals/{to_em['id']}/reject", json={"on": "2024-09-12", "reason": ""}, headers=em)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"
    _ok(client.post(f"/api/v1/referrals/{to_em['id']}/reject", json={"on": "2024-09-12", "reason": "不属本部门职责"},
                    headers=em))
    assert _ok(client.get(f"/api/v1/referrals/{to_em['id']}", headers=em))["decision"]["reason"] == "不属本部门职责"

    # Judicial referral: to public security, with a copy to the procuratorate (required).
    judicial = {**base, "kind": "judicial", "to": "获嘉县公安局", "reason": "涉嫌污染环境罪"}
    r = client.post("/api/v1/referrals", json=judicial, headers=eeb)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "copy_to"
    j = _ok(client.post("/api/v1/referrals", json={**judicial, "copy_to": "获嘉县人民检察院"}, headers=eeb), 201)
    _ok(client.post(f"/api/v1/referrals/{j['id']}/receipt", json={"on": "2024-09-12"}, headers=eeb))
    view = _ok(client.get(f"/api/v1/referrals/{j['id']}", headers=auth("hj-audit", "auditor")))
    assert view["copy_to"] == "获嘉县人民检察院" and view["state"] == "received"
    out = _ok(client.get("/api/v1/referrals", params={"direction": "outgoing", "min_position": j["position"]},
                         headers=eeb))
    assert out["total"] == 3
    # Closure: the concluded and the rejected referral of the three made in Q3.
    closure = _ok(client.get("/api/v1/kpis", params={"year": 2024, "quarter": 3, "min_position": j["position"]},
                             headers=eeb))["referral_closure"]
    assert closure == {**closure, "referrals": 3, "closed": 2, "rate": round(2 / 3, 4)}
    board = _ok(client.get("/api/v1/inbox", params={"min_position": j["position"]}, headers=amr))
    assert [x["id"] for x in board["referrals_received"]] == [to_amr["id"]] and board["referrals_sent"] == []
    demo.runner.catch_up()
    assert_rebuild_equals_live(demo, "execution")


def test_a_clue_raises_the_risk_and_opens_a_case_triggered_task(demo, client, auth) -> None:
    eeb = auth("hj-eeb", "planner")
    target = next(t for t in _ok(client.get("/api/v1/targets", params={"risk_class": "B", "limit": 5},
                                            headers=eeb))["items"])
    item = _items(client, eeb, "hj-eeb")[0]["id"]
    clue = {"source": "monitoring_alert", "department": "hj-eeb", "target_id": target["id"],
            "received_on": "2024-08-01", "summary": "在线监测COD浓度连续超标", "method": "online_monitoring",
            "items": [item], "period": "2024Q3"}
    r = client.post("/api/v1/clues", json={**clue, "method": ""}, headers=eeb)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "method"
    assert client.post("/api/v1/clues", json=clue, headers=auth("hj-eeb", "inspector")).status_code == 403
    done = _ok(client.post("/api/v1/clues", json=clue, headers=eeb), 201)
    assert done["risk"] == {"previous": "B", "risk_class": "C", "position": done["risk"]["position"]}
    assert _ok(client.get(f"/api/v1/targets/{target['id']}", headers=eeb))["risk_class"] == "C"
    history = _ok(client.get(f"/api/v1/targets/{target['id']}/history", headers=auth("hj-audit", "auditor")))
    last = history["events"][-1]
    assert last["type"] == "risk_class_changed" and last["meta"]["causation_id"] == done["clue_id"]
    assert last["meta"]["command"] == "record_clue" and last["position"] <= done["position"]  # one transaction
    task = _ok(client.get(f"/api/v1/tasks/{done['task']['id']}", headers=eeb))
    assert task["origin"] == "case" and task["is_random"] is False and task["drawn"] == 1
    assert "在线监测COD浓度连续超标" in task["reason"]
    # Not 双随机: the name says 案件线索核查, never 随机抽查, and the export lists the result as non-random, planless.
    assert task["name"] == "新乡市获嘉县生态环境局获嘉分局2024年第三季度案件线索核查" == done["task"]["name"]
    assert "随机" not in task["name"]
    _ok(client.post(f"/api/v1/tasks/{task['id']}/teams/hj-eeb", json={}, headers=eeb))
    visit = _visits(client, auth, task)[0]
    # Dates are cross-checked: not before the clue (2024-08-01) of the case task, although inside its quarter.
    member = visit["teams"]["hj-eeb"]["members"][0]
    r = client.post(f"/api/v1/assignments/{visit['id']}/inspections/hj-eeb/findings",
                    json={"inspected_on": "2024-07-15", "methods": ["on_site"],
                          "findings": {item: {"result": "no_problem"}}},
                    headers=auth("hj-eeb", "inspector", subject=member))
    assert r.status_code == 422 and r.json()["errors"][0] == {**r.json()["errors"][0], "field": "inspected_on",
                                                              "rule": "before_task"}
    assert "2024-08-01" in r.json()["errors"][0]["message"]
    iid = _enter(client, auth, visit, item, result="no_problem", day="2024-08-05")
    _approve(client, auth, visit, iid, "2024-08-06")
    demo.runner.catch_up()
    rev = auth("hj-eeb", "reviewer", subject="eeb-rev")
    records = [r for r in _ok(client.get("/api/v1/publicity/export", params={"format": "json"}, headers=rev))
               if r["raninsTaskId"] == f"hj-eeb-{task['number']}"]
    assert len(records) == 1 and records[0]["raninsTypeName"] == "非随机（案件线索核查）"
    assert records[0]["raninsPlanId"] == "" and records[0]["raninsPlaneName"] == ""
    assert records[0]["raninsTaskName"] == task["name"]
    rows = list(csv.reader(io.StringIO(client.get("/api/v1/publicity/export", params={"format": "csv"},
                                                  headers=rev).content.decode("utf-8-sig"))))
    assert [r[4] for r in rows[1:] if r[2] == f"hj-eeb-{task['number']}"] == ["非随机（案件线索核查）"]
    assert _ok(client.get(f"/api/v1/assignments/{visit['id']}", headers=eeb))["state"] == "in_progress"
    published = _ok(client.post(f"/api/v1/inspections/{iid}/publish", json={"published_on": "2024-08-07"},
                                headers=rev))
    assert _ok(client.get(f"/api/v1/assignments/{visit['id']}", headers=eeb))["state"] == "published"
    found = _ok(client.get("/api/v1/public/results", params={"q": target["name"],
                                                              "min_position": published["position"]}))
    assert [(i["type"], i["plan_number"]) for i in found["items"]] == [("非随机（案件线索核查）", "")]


def test_a_follow_up_round_draws_ten_percent_verifiably_and_keeps_opinions_confidential(demo, client, auth) -> None:
    _, visits, items = _one_department(client, auth, period="2024Q2")
    assert len(visits) >= 11
    for v in visits[:11]:
        _enter(client, auth, v, items[0], result="no_problem", day="2024-05-10")
    eeb = auth("hj-eeb", "planner")
    assert client.post("/api/v1/follow-ups", json={"period": "2024Q2"},
                       headers=auth("hj-eeb", "inspector")).status_code == 403
    planned = _ok(client.post("/api/v1/follow-ups", json={"period": "2024Q2", "entropy_source": FUCAI_150},
                              headers=eeb), 201)
    assert planned["pool_size"] == 11 and planned["quota"] == 2  # 10% of 11, rounded up
    drawn = _ok(client.post(f"/api/v1/follow-ups/{planned['id']}/draw",
                            json={"external_entropy": "159", "entropy_source": FUCAI_150}, headers=eeb))
    assert len(drawn["selected"]) == 2
    assert _ok(client.get(f"/api/v1/follow-ups/{planned['id']}/verification", headers=eeb))["match"] is True
    target = drawn["selected"][0]
    url = f"/api/v1/follow-ups/{planned['id']}"
    # Independence: who inspected the firm does not record its follow-up visit.
    inspected_by = next(v for v in visits if v["target_id"] == target)["teams"]["hj-eeb"]["members"]
    visit = {"target_id": target, "method": "phone", "visited_on": "2024-06-20", "opinions": "检查人员要求吃请",
             "problems": "执法人员作风问题"}
    r = client.post(f"{url}/visits", headers=auth("hj-eeb", "inspector", subject=inspected_by[0]), json=visit)
    assert r.status_code == 403 and "回访" in r.text
    staff_id = _ok(client.get(f"/api/v1/inspectors/{inspected_by[0]}", headers=eeb))["staff_id"]
    r = client.post(f"{url}/visits", headers=auth("hj-eeb", "inspector", subject=staff_id), json=visit)
    assert staff_id and r.status_code == 403  # the same person under a staff-id token
    _ok(client.post(f"{url}/visits", headers=auth("hj-eeb", "inspector", subject="eeb-visitor"), json=visit))
    _ok(client.post(f"{url}/escalations", json={"target_id": target, "on": "2024-06-21",
                                                 "authority": "县纪委监委派驻纪检组", "reason": "作风问题"}, headers=eeb))
    _ok(client.post(f"{url}/escalation-outcomes", json={"target_id": target, "on": "2024-07-15",
                                                        "outcome": "已谈话提醒"}, headers=eeb))
    fed = _ok(client.post(f"{url}/feedback", json={"target_id": target, "on": "2024-07-16", "feedback": "已处理并反馈"},
                          headers=eeb))
    other = drawn["selected"][1] if drawn["selected"][1] != target else drawn["selected"][0]
    not_drawn = next(v["target_id"] for v in visits[:11] if v["target_id"] not in drawn["selected"])
    r = client.post(f"{url}/visits", json={"target_id": not_drawn, "method": "phone"}, headers=eeb)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "target_id"
    assert other
    # Opinions: reviewers, auditors and who recorded them; escalations: never an inspector of the firm.
    firms_inspector = auth("hj-eeb", "inspector", subject=inspected_by[0])
    view = _ok(client.get(url, headers=firms_inspector))  # does not even learn that the firm was called back
    assert target not in view["visits"] and target not in view["selected"] and view["draw"] is None
    for reader, visible, escalations in (
            (auth("hj-eeb", "inspector", subject="eeb-visitor"), True, False),
            (auth("hj-eeb", "inspector", subject="eeb-colleague"), False, False), (eeb, False, True),
            (auth("hj-eeb", "reviewer", subject="eeb-rev"), True, True),
            (auth("hj-eeb", "reviewer", subject=inspected_by[0]), True, False),
            (auth("hj-audit", "auditor"), True, True)):
        view = _ok(client.get(url, headers=reader))
        assert (view["visits"][target]["visits"][0]["opinions"] == "检查人员要求吃请") is visible
        if escalations:
            assert view["visits"][target]["escalations"][0]["outcome"]["text"] == "已谈话提醒"
        else:
            assert view["visits"][target]["escalations"] is None and "作风问题" not in json.dumps(
                view["visits"][target]["escalations"], ensure_ascii=False)
    # The planner who records opinions reads them back.
    fed = _ok(client.post(f"{url}/visits", headers=eeb, json={**visit, "target_id": other, "opinions": "服务态度好"}))
    assert _ok(client.get(url, headers=eeb))["visits"][other]["visits"][0]["opinions"] == "服务态度好"
    assert client.get(url, headers=auth("hj-amr", "reviewer")).status_code == 403
    listing = _ok(client.get("/api/v1/follow-ups", params={"min_position": drawn["position"]}, headers=eeb))
    assert listing["items"][0]["drawn"] is True and listing["items"][0]["quota"] == 2
    coverage = _ok(client.get("/api/v1/kpis", params={"year": 2024, "quarter": 2, "min_position": fed["position"]},
                              headers=eeb))["follow_up_coverage"]
    assert coverage["visits"] == 2 and coverage["targets_inspected"] == 11 and coverage["rate"] == round(2 / 11, 4)
    demo.runner.catch_up()
    assert_rebuild_equals_live(demo, "execution")


def test_a_recused_inspector_leaves_the_inspection_team_too(demo, client, auth) -> None:
    _, visits, items = _one_department(client, auth)
    visit = visits[0]
    eeb = auth("hj-eeb", "planner")
    opened = _ok(client.post(f"/api/v1/assignments/{visit['id']}/inspections/hj-eeb", headers=eeb))
    leaving = visit["teams"]["hj-eeb"]["members"][0]
    assert leaving in opened["team"]
    recused = _ok(client.post(f"/api/v1/assignments/{visit['id']}/recusals",
                              json={"inspector_id": leaving, "reason": "与企业负责人系近亲属"},
                              headers=auth("hj-eeb", "inspector", subject=leaving)))
    body = {"inspected_on": "2024-09-10", "methods": ["on_site"], "findings": {items[0]: {"result": "no_problem"}}}
    url = f"/api/v1/assignments/{visit['id']}/inspections/hj-eeb/findings"
    assert client.post(url, json=body, headers=auth("hj-eeb", "inspector", subject=leaving)).status_code == 403
    _ok(client.post(url, json=body, headers=auth("hj-eeb", "inspector", subject=recused["new"])))
    view = _ok(client.get(f"/api/v1/inspections/{opened['id']}", headers=eeb))
    assert leaving not in view["team"] and recused["new"] in view["team"]
    events = _ok(client.get(f"/api/v1/audit/aggregates/{opened['id']}", headers=auth("hj-audit", "auditor")))["events"]
    assert [e["type"] for e in events] == ["opened", "team_changed", "findings_recorded"]
    # A reviewer on the team may not review its findings (no self-review).
    member = view["team"][0]
    _ok(client.post(f"/api/v1/inspections/{opened['id']}/submit", headers=auth("hj-eeb", "inspector", subject=member)))
    r = client.post(f"/api/v1/inspections/{opened['id']}/approve", json={},
                    headers=auth("hj-eeb", "reviewer", "inspector", subject=member))
    assert r.status_code == 403 and "own findings" in r.text


def test_a_plan_entry_carried_out_and_published_stays_in_the_plan(demo, client, auth) -> None:
    eeb = auth("hj-eeb", "planner")
    item = _items(client, eeb, "hj-eeb")[0]["id"]
    plan = _ok(client.post("/api/v1/plans", json={"year": 2024}, headers=eeb), 201)
    entry = {"items": [item], "category": "key", "period": "2024Q3", "scope": {"county": "获嘉县",
             "supervision_classes": ["key"]}, "rules": [{"supervision_class": "key", "full": True}]}
    used = _ok(client.post(f"/api/v1/plans/{plan['id']}/entries", json={**entry, "name": "三季度重点检查"},
                           headers=eeb), 201)
    spare = _ok(client.post(f"/api/v1/plans/{plan['id']}/entries", json={**entry, "name": "备用"}, headers=eeb), 201)
    task = _ok(client.post("/api/v1/tasks", json={"plan_entry": used["number"]}, headers=eeb), 201)
    for step in ("commitment", "freeze", "draw"):
        _ok(client.post(f"/api/v1/tasks/{task['id']}/{step}", json={} if step != "commitment" else None, headers=eeb))
    _ok(client.post(f"/api/v1/tasks/{task['id']}/teams/hj-eeb", json={}, headers=eeb))
    visit = _visits(client, auth, task)[0]
    member = visit["teams"]["hj-eeb"]["members"][0]
    early = client.post(f"/api/v1/assignments/{visit['id']}/inspections/hj-eeb/findings",
                        json={"inspected_on": "2024-06-28", "methods": ["on_site"],
                              "findings": {item: {"result": "no_problem"}}},
                        headers=auth("hj-eeb", "inspector", subject=member))
    assert early.status_code == 422 and early.json()["errors"][0]["rule"] == "before_task"  # before 2024Q3
    iid = _enter(client, auth, visit, item, result="no_problem", day="2024-09-10")
    _approve(client, auth, visit, iid, "2024-09-11")
    removal = f"/api/v1/plans/{plan['id']}/entries/{used['number']}/removal"
    # Drawn and approved, not yet published: a correction is still possible ...
    before = _ok(client.get(f"/api/v1/plans/{plan['id']}", headers=eeb))["version"]
    _ok(client.post(f"/api/v1/inspections/{iid}/publish", json={"published_on": "2024-09-12"},
                    headers=auth("hj-eeb", "reviewer", subject="eeb-rev")))
    # ... once published, the entry stays: 409 naming the rule, nothing changed.
    r = client.post(removal, json={"reason": "录入错误"}, headers=eeb)
    assert r.status_code == 409 and "entry_carried_out" in r.text and task["number"] in r.text, r.text
    after = _ok(client.get(f"/api/v1/plans/{plan['id']}", headers=eeb))
    assert after["version"] == before and used["number"] in {e["number"] for e in after["entries"]}
    # PATCH of the scope to null clears it (no conditions: the whole county).
    _ok(client.patch(f"/api/v1/plans/{plan['id']}/entries/{spare['number']}", json={"scope": None}, headers=eeb))
    cleared = _ok(client.get(f"/api/v1/plans/{plan['id']}", headers=eeb))["entries"]
    scope = next(e for e in cleared if e["number"] == spare["number"])["scope"]
    assert scope["supervision_classes"] == [] and scope["county"] == "" and not any(scope.values())
    _ok(client.post(f"/api/v1/plans/{plan['id']}/entries/{spare['number']}/removal", json={"reason": "合并"},
                    headers=eeb))
