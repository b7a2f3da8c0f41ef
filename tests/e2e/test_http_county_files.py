"""A county's own spreadsheets import over HTTP: department codes in upper case, 回避对象 as credit codes, a town
(乡镇) column, columns of their own, tag spellings; and credit codes name targets in JSON writes too."""

from typing import Any

from tests.support.builders import a_department, credit_code


def _upload(client: Any, kind: str, text: str, h: dict[str, str]) -> Any:
    return client.post(f"/api/v1/{kind}/import", files={"file": (f"{kind}.csv", text.encode("gb18030"), "text/csv")},
                       headers=h)


def test_a_county_spreadsheet_imports_with_codes_normalised_and_its_own_columns_reported(client, runtime, auth) -> None:
    admin = auth("hj-eeb", "admin")
    assert client.post("/api/v1/departments", json=a_department(), headers=admin).status_code == 201
    planner = auth("hj-eeb", "planner")
    codes = [credit_code(7100 + i) for i in range(3)]
    targets = ("统一社会信用代码,企业名称,县区,乡镇,行业,监管类别,信用风险等级,标签,备注\n"
               f"{codes[0].lower()},获嘉县甲化工有限公司,获嘉县,亢村镇,化工,重点,C,offsite_monitored;危废,老厂\n"
               f"{codes[1]},获嘉县乙纸业有限公司,获嘉县,城关镇,造纸,一般,B,Off-Site Monitored;涉气,\n"
               f"{codes[2]},获嘉县丙食品有限公司,获嘉县,,食品加工,一般,A,涉气,\n")
    r = _upload(client, "targets", targets, planner)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["created"] == 3
    assert body["ignored_columns"] == [{"column": "I", "header": "备注"}]
    assert body["new_tags"] == [{"tag": "涉气", "rows": 2, "first_row": 3}]
    first = client.get("/api/v1/targets", params={"credit_code": codes[0], "min_position": body["position"]},
                       headers=planner).json()["items"][0]
    assert first["credit_code"] == codes[0] and first["town"] == "亢村镇"
    assert first["tags"] == ["off_site_monitored", "hazardous_waste"]

    inspectors = ("部门代码,执法人员编号,姓名,执法证号,执法证有效期,回避对象,联系电话\n"
                  f"HJ-EEB,EEB-71,孙立,豫环执0071,2029-12-31,{codes[0]}、{codes[1].lower()},13800000000\n"
                  "Hj-Eeb,EEB-72,钱进,豫环执0072,2029-12-31,,\n")
    r = _upload(client, "inspectors", inspectors, planner)
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 2 and r.json()["ignored_columns"] == [{"column": "G", "header": "联系电话"}]
    listing = client.get("/api/v1/inspectors", params={"staff_id": "EEB-71", "min_position": r.json()["position"]},
                         headers=planner).json()["items"]
    assert listing[0]["department"] == "hj-eeb"
    ids = {client.get("/api/v1/targets", params={"credit_code": c}, headers=planner).json()["items"][0]["id"]
           for c in codes[:2]}
    assert set(listing[0]["conflicts"]) == ids

    # An unknown credit code is a row error naming the column; nothing of the file is stored.
    unknown = credit_code(7199)
    before = runtime.app.recorder.max_notification_id()
    r = _upload(client, "inspectors", "部门代码,执法人员编号,姓名,执法证号,执法证有效期,回避对象\n"
                f"hj-eeb,EEB-73,周全,豫环执0073,2029-12-31,{codes[2]}\n"
                f"hj-eeb,EEB-74,吴用,豫环执0074,2029-12-31,{unknown}\n", planner)
    assert r.status_code == 422
    assert [(e["row"], e["field"], e["rule"]) for e in r.json()["errors"]] == [(3, "conflicts", "unknown_target")]
    assert unknown in r.json()["errors"][0]["message"]
    assert runtime.app.recorder.max_notification_id() == before
    # Another department's rows stay refused, whatever the case of its code.
    r = _upload(client, "inspectors", "部门代码,执法人员编号,姓名,执法证号,执法证有效期\n"
                "HJ-AMR,AMR-71,郑和,豫市监执0071,2029-12-31\n", planner)
    assert r.status_code == 403


def test_json_writes_name_conflicting_targets_by_credit_code(client, runtime, auth) -> None:
    admin = auth("hj-eeb", "admin")
    assert client.post("/api/v1/departments", json=a_department(), headers=admin).status_code == 201
    planner = auth("hj-eeb", "planner")
    code = credit_code(7200)
    target = client.post("/api/v1/targets", headers=planner, json={
        "credit_code": code, "name": "获嘉县丁建材有限公司", "county": "获嘉县", "supervision_class": "general",
        "risk_class": "B"}).json()
    r = client.post("/api/v1/inspectors", headers=planner, json={
        "department": "HJ-EEB", "staff_id": "EEB-81", "name": "冯敏", "certificate_no": "豫环执0081",
        "certificate_expiry": "2029-12-31", "conflicts": [code.lower()]})
    assert r.status_code == 201, r.text
    entry = client.get(f"/api/v1/inspectors/{r.json()['id']}", headers=planner).json()
    assert entry["department"] == "hj-eeb" and entry["conflicts"] == [target["id"]]
    bad = client.patch(f"/api/v1/inspectors/{r.json()['id']}", headers={**planner, "If-Match": f'"{entry["version"]}"'},
                       json={"conflicts": [credit_code(7201)]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["rule"] == "unknown_target"
    assert client.get(f"/api/v1/inspectors/{r.json()['id']}", headers=planner).json()["version"] == entry["version"]


def test_patch_null_clears_an_optional_field_and_is_refused_for_a_required_one(client, runtime, auth) -> None:
    admin = auth("hj-eeb", "admin")
    assert client.post("/api/v1/departments", json=a_department(), headers=admin).status_code == 201
    planner = auth("hj-eeb", "planner")
    target = client.post("/api/v1/targets", headers=planner, json={
        "credit_code": credit_code(7300), "name": "获嘉县戊建材有限公司", "county": "获嘉县", "town": "城关镇",
        "address": "获嘉县城关镇某路1号", "supervision_class": "general", "risk_class": "B", "tags": ["radiation"]}).json()
    r = client.patch(f"/api/v1/targets/{target['id']}", headers=planner,
                     json={"address": None, "town": None, "tags": None})
    assert r.status_code == 200, r.text
    entry = client.get(f"/api/v1/targets/{target['id']}", headers=planner).json()
    assert (entry["address"], entry["town"], entry["tags"]) == ("", "", [])
    r = client.patch(f"/api/v1/targets/{target['id']}", headers=planner, json={"name": None})
    assert r.status_code in (400, 422) and r.json()["errors"][0]["field"] == "name"
    assert client.get(f"/api/v1/targets/{target['id']}", headers=planner).json()["name"] == "获嘉县戊建材有限公司"


def test_a_clue_names_its_target_by_credit_code(demo, client, auth) -> None:
    eeb = auth("hj-eeb", "planner")
    target = client.get("/api/v1/targets", params={"risk_class": "B", "limit": 1}, headers=eeb).json()["items"][0]
    item = next(i for i in client.get("/api/v1/items", params={"department": "hj-eeb", "limit": 100},
                                      headers=eeb).json()["items"] if not i["needs_expert"])
    clue = {"source": "monitoring_alert", "department": "hj-eeb", "target_id": target["credit_code"].lower(),
            "received_on": "2024-08-01", "summary": "在线监测COD浓度连续超标", "method": "online_monitoring",
            "items": [item["id"]], "period": "2024Q3"}
    r = client.post("/api/v1/clues", json=clue, headers=eeb)
    assert r.status_code == 201, r.text
    assert r.json()["target_id"] == target["id"]
    unknown = client.post("/api/v1/clues", json={**clue, "target_id": credit_code(7400)}, headers=eeb)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "target_id"
