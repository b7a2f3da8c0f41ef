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
