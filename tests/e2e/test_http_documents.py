"""Printable documents over HTTP on the demo's year (``dualrandom demo --with-plan``): every document as HTML and
as PDF (its text read back with pypdf) names the enterprise, the people and the dates; each answers only to whoever
may read what it prints; the notices' window is honest and their PDF is the issued notice."""

import io
import re
from typing import Any

import pypdf
import pytest

from services.cli.demo import DEMO_YEAR_PATHS, load_demo_plan, load_demo_year

NO_SPACE = re.compile(r"\s+")


def _text(pdf: bytes) -> str:
    """A PDF's text without whitespace (table cells wrap long values over lines)."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return NO_SPACE.sub("", "".join(page.extract_text() for page in reader.pages))


def _html_text(html: str) -> str:
    return NO_SPACE.sub("", re.sub(r"<[^>]+>", "", html))


@pytest.fixture
def year(demo) -> dict[str, str]:
    """The demo county carried through 2024: the ids the documents are read under."""
    load_demo_plan(demo)
    return load_demo_year(demo)


def _ok(r: Any, media: str) -> Any:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].split(";")[0] == media
    return r


def _both(client: Any, path: str, h: dict[str, str]) -> tuple[str, str]:
    """The document's text as HTML and as PDF (without whitespace)."""
    html = _ok(client.get(path, headers=h), "text/html").text
    pdf = _ok(client.get(path, params={"format": "pdf"}, headers=h), "application/pdf").content
    assert pdf.startswith(b"%PDF-")
    return _html_text(html), _text(pdf)


def _person(client: Any, h: dict[str, str], inspector_id: str) -> tuple[str, str]:
    """An inspector's name and certificate number, read by their own department's planner."""
    entry = client.get(f"/api/v1/inspectors/{inspector_id}", headers=h).json()
    return entry["name"], entry["certificate_no"]


def test_every_document_of_the_year_prints_as_html_and_pdf_with_names_codes_and_dates(year, client, auth) -> None:
    eeb, amr = auth("hj-eeb", "planner"), auth("hj-amr", "planner")
    paths = {title: path.format(**year) for title, path in DEMO_YEAR_PATHS}
    target = client.get(f"/api/v1/targets/{year['target']}", headers=eeb).json()
    name, code, address = target["name"], target["credit_code"], target["address"]
    visit = client.get(f"/api/v1/assignments/{year['visit']}", headers=eeb).json()
    people = {d: [_person(client, auth(d, "planner"), m) for m in visit["teams"][d]["members"]]
              for d in ("hj-eeb", "hj-amr")}
    every_inspector = [s for d in people.values() for p in d for s in p]

    expected: dict[str, list[str]] = {
        "年度抽查工作计划": ["新乡市生态环境局获嘉分局2024年“双随机、一公开”监管随机抽查工作计划", "2024001", "2024004",
                      "水污染防治监督检查", "多项合一", "同2024001", "重点监管对象抽查比例不低于25%",
                      "一般监管对象抽查比例不低于5%或不少于人均6家次", "第一季度", "第四季度"],
        "抽取结果及派发单": [name, code, address, "hj-eeb-2024-001", "获嘉县市场监督管理局", "2024年3月12日",
                      *every_inspector, "监督人（签名）"],
        "一次告知书": ["联合抽查检查一次告知书", "文号：hj-eeb-2024-001-01", name, code, address,
                  "2024年3月11日至2024年3月15日", "联系人：李明", "0373-4551201", "新乡市生态环境局获嘉分局（牵头部门）",
                  "获嘉县市场监督管理局", "排污许可证", *every_inspector],
        "检查记录（生态环境）": ["“双随机、一公开”抽查检查记录", name, code, address, "2024年3月12日", "现场检查",
                       "废水总排口在线监测设备未按规定校准", "责令改正（限2024年4月12日前）", "被检查单位负责人（签名）",
                       *[s for p in people["hj-eeb"] for s in p]],
        "一表告知（结果告知书）": ["抽查检查结果告知书（一表告知）", "文号：hj-eeb-2024-001-01", name, code, address,
                         "2024年3月12日", "发现问题已责令改正", "获嘉县市场监督管理局", "0373-4551201", "2024年3月22日",
                         *every_inspector],
        "移送函": ["案件移送函", "获嘉县应急管理局：", name, code, address, "固体废物污染防治监督检查",
                "危险废物贮存库未设置防渗漏设施", "2024年4月9日", "获应急收〔2024〕7号", "2024年3月26日"],
        "涉嫌犯罪案件移送书": ["涉嫌犯罪案件移送书", "获嘉县公安局：", name, code, "抄送：获嘉县人民检察院",
                      "行政执法机关移送涉嫌犯罪案件的规定", "危险废物贮存库未设置防渗漏设施"],
        "案件线索核查的检查记录": ["案件线索核查检查记录", "案件线索核查（非随机）", "2024年5月8日", "废水处理设施停运"],
        "执法回访记录": ["执法回访记录", "新乡市生态环境局获嘉分局", "2024年第一季度", "电话回访", "2024年6月14日", name],
    }
    assert sorted(expected) == sorted(paths)
    for title, path in paths.items():
        html, pdf = _both(client, path, eeb)
        for text in expected[title]:
            wanted = NO_SPACE.sub("", text)
            assert wanted in html, f"{title} (HTML) lacks {text!r}"
            assert wanted in pdf, f"{title} (PDF) lacks {text!r}"
        assert year["target"] not in html  # names, not ids
    # The receiving department reads the letter it received; the partner department reads the joint visit's papers.
    assert "案件移送函" in _both(client, paths["移送函"], auth("hj-em", "planner"))[1]
    assert name in _both(client, paths["一表告知（结果告知书）"], amr)[1]
    # Accept: application/pdf asks for the PDF as well.
    r = client.get(paths["一次告知书"], headers={**eeb, "Accept": "application/pdf"})
    assert _ok(r, "application/pdf").content.startswith(b"%PDF-") and "filename*=UTF-8''" in r.headers[
        "content-disposition"]


def test_documents_answer_only_to_whoever_may_read_what_they_print(year, client, auth) -> None:
    paths = {title: path.format(**year) for title, path in DEMO_YEAR_PATHS}
    em, nr = auth("hj-em", "planner"), auth("hj-nr", "planner")
    amr, eeb = auth("hj-amr", "planner"), auth("hj-eeb", "planner")
    # Another department: not the plan's, the task's, the visit's, the referral's or the round's.
    for title in ("年度抽查工作计划", "抽取结果及派发单", "一次告知书", "检查记录（生态环境）", "一表告知（结果告知书）",
                  "涉嫌犯罪案件移送书", "执法回访记录"):
        for fmt in ("html", "pdf"):
            r = client.get(paths[title], params={"format": fmt}, headers=em)
            assert r.status_code == 403, (title, fmt, r.status_code)
    # A partner agency's service account of the department reads no paper of it (it subscribes to events).
    partner = auth("hj-eeb", "partner")
    for title, path in paths.items():
        assert client.get(path, headers=partner).status_code == 403, title
    # A referral letter: the sending and the receiving department only.
    assert client.get(paths["移送函"], headers=nr).status_code == 403
    assert client.get(paths["移送函"], headers=amr).status_code == 403
    # The annual plan is its department's: a partner department of the joint task may not read it.
    assert client.get(paths["年度抽查工作计划"], headers=amr).status_code == 403
    # The drawn list is confidential until the visit: an inspector's sheet holds only the visits they are on.
    visit = client.get(f"/api/v1/assignments/{year['visit']}", headers=eeb).json()
    leader = visit["teams"]["hj-eeb"]["leader"]
    listing = client.get(f"/api/v1/tasks/{year['task']}/draw", headers=eeb).json()
    mine = {v["assignment_id"] for v in listing["visits"]
            if leader in client.get(f"/api/v1/assignments/{v['assignment_id']}", headers=eeb).json()["teams"]
            .get("hj-eeb", {}).get("members", [])}
    others = [v for v in listing["visits"] if v["assignment_id"] not in mine]
    assert others, "the leader is on every visit: the demo's draw changed"
    sheet = _both(client, paths["抽取结果及派发单"], auth("hj-eeb", "inspector", subject=leader))
    for text in sheet:
        assert NO_SPACE.sub("", visit_name(client, eeb, year["target"])) in text
        assert not any(NO_SPACE.sub("", v["target_name"]) in text for v in others)
    # An inspector of another department that is not on the task is refused.
    assert client.get(paths["抽取结果及派发单"], headers=auth("hj-em", "inspector")).status_code == 403
    # A format that is not html or pdf is named.
    r = client.get(paths["一次告知书"], params={"format": "docx"}, headers=eeb)
    assert r.status_code in (400, 422) and "format" in r.text


def visit_name(client: Any, h: dict[str, str], target_id: str) -> str:
    return str(client.get(f"/api/v1/targets/{target_id}", headers=h).json()["name"])


def test_the_pre_visit_notice_has_an_honest_window_and_its_pdf_is_the_issued_notice(year, client, auth) -> None:
    eeb = auth("hj-eeb", "planner")
    listing = client.get(f"/api/v1/tasks/{year['task']}/draw", headers=eeb).json()
    other = next(v for v in listing["visits"] if v["assignment_id"] != year["visit"])
    path = f"/api/v1/assignments/{other['assignment_id']}/notices/pre-visit"
    # Not issued: the visit's agreed date as one day, never "X至X".
    html, pdf = _both(client, path, eeb)
    for text in (html, pdf):
        assert "将于2024年3月12日对你单位开展部门联合随机抽查检查" in text and "2024年3月12日至" not in text
        assert NO_SPACE.sub("", other["credit_code"]) in text and "hj-eeb-2024-001-02" in text
    # A window that ends before it starts is refused, naming the field and the rule; nothing is issued.
    r = client.post(path, json={"visit_from": "2024-03-12", "visit_to": "2024-03-11"}, headers=eeb)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "visit_to"
    assert "before_visit_from" in r.text
    notices = client.get(f"/api/v1/assignments/{other['assignment_id']}/notices", headers=eeb).json()
    assert notices["pre_visit"] is None
    # The issued notice: HTML bytes with the recorded SHA-256, the PDF carrying the same header and text.
    issued = client.post(path, json={"issued_on": "2024-03-04", "visit_from": "2024-03-12",
                                     "visit_to": "2024-03-13"}, headers=eeb).json()
    r = client.get(path, headers=eeb)
    assert r.headers["x-notice-sha256"] == issued["sha256"]
    p = client.get(path, params={"format": "pdf"}, headers=eeb)
    assert p.headers["x-notice-sha256"] == issued["sha256"]
    assert "2024年3月12日至2024年3月13日" in _text(p.content) and "2024年3月4日" in _text(p.content)


def test_the_contact_on_the_notices_is_the_lead_departments_and_a_bad_phone_is_refused(year, client, auth) -> None:
    admin = auth("hj-admin", "admin")
    dept = client.get("/api/v1/departments", params={"code": "hj-eeb"}, headers=admin).json()["items"][0]
    r = client.patch(f"/api/v1/departments/{dept['id']}", json={"phone": "call me"}, headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "phone"
    r = client.patch(f"/api/v1/departments/{dept['id']}", json={"contact": "王主任", "phone": "0373-4559999"},
                     headers=admin)
    assert r.status_code == 200, r.text
    path = f"/api/v1/assignments/{year['visit']}/notices/result"
    text = _text(_ok(client.get(path, params={"format": "pdf", "min_position": r.json()["position"]},
                                headers=auth("hj-eeb", "planner")), "application/pdf").content)
    assert "联系人：王主任" in text and "0373-4559999" in text and "0373-4551201" not in text


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _rows(content: bytes, sheet: int | str = 0) -> list[tuple[Any, ...]]:
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(content))
    ws = wb.worksheets[sheet] if isinstance(sheet, int) else wb[sheet]
    return list(ws.iter_rows(values_only=True))


def test_directory_exports_hold_every_entry_the_reader_may_list_and_import_again_unchanged(demo, client, auth) -> None:
    eeb = auth("hj-eeb", "planner")
    listed = client.get("/api/v1/targets", params={"supervision_class": "key", "limit": 500, "count": "exact"},
                        headers=eeb).json()
    r = client.get("/api/v1/targets/export.xlsx", params={"supervision_class": "key"}, headers=eeb)
    rows = _rows(_ok(r, XLSX).content)
    assert rows[0][:3] == ("统一社会信用代码", "企业名称", "地址") and len(rows) - 1 == listed["total"] > 0
    assert {row[0] for row in rows[1:]} == {t["credit_code"] for t in listed["items"]}
    # The export is an import file: importing it changes nothing.
    again = client.post("/api/v1/targets/import", headers=eeb,
                        files={"file": ("targets.xlsx", r.content, XLSX)})
    assert again.status_code == 200, again.text
    assert again.json()["unchanged"] == len(rows) - 1 and again.json()["events"] == 0
    # Inspectors are personal data: a department exports its own, never another's.
    amr_rows = _rows(_ok(client.get("/api/v1/inspectors/export.xlsx", headers=auth("hj-amr", "planner")), XLSX).content)
    assert {row[0] for row in amr_rows[1:]} == {"hj-amr"}
    assert client.get("/api/v1/inspectors/export.xlsx", params={"department": "hj-amr"}, headers=eeb).status_code == 403
    assert client.get("/api/v1/targets/export.xlsx", params={"colour": "red"}, headers=eeb).status_code == 400


def test_boards_plans_and_drawn_lists_export_to_excel_for_their_readers(year, client, auth) -> None:
    eeb = auth("hj-eeb", "planner")
    inbox = _rows(_ok(client.get("/api/v1/inbox/export.xlsx", params={"year": 2024}, headers=eeb), XLSX).content)
    assert ("部门", "hj-eeb") in inbox
    tasks = _rows(client.get("/api/v1/inbox/export.xlsx", headers=eeb).content, "抽查任务")
    assert "新乡市获嘉县生态环境局获嘉分局2024年第一季度部门联合随机抽查" in {row[2] for row in tasks[1:]}
    kpis = _rows(_ok(client.get("/api/v1/kpis/export.xlsx", params={"year": 2024, "quarter": 1}, headers=eeb),
                     XLSX).content)
    labels = {row[0] for row in kpis}
    assert "联合抽查占比／公式" in labels and ("年度", 2024) in kpis
    for path in ("/api/v1/inbox/export.xlsx", "/api/v1/kpis/export.xlsx"):
        r = client.get(path, params={"department": "hj-eeb", "year": 2024}, headers=auth("hj-amr", "planner"))
        assert r.status_code == 403
    sheet = _rows(_ok(client.get(f"/api/v1/tasks/{year['task']}/documents/dispatch-sheet", params={"format": "xlsx"},
                                 headers=eeb), XLSX).content)
    names = {row[1] for row in sheet if row and row[0] == "1"}
    target = client.get(f"/api/v1/targets/{year['target']}", headers=eeb).json()
    assert target["name"] in names
    plan = _rows(client.get(f"/api/v1/plans/{year['plan']}/documents/annual-plan", params={"format": "xlsx"},
                            headers=eeb).content)
    assert [row[0] for row in plan if row and str(row[0]).startswith("2024")] == ["2024001", "2024002", "2024003",
                                                                                "2024004"]
    assert client.get(f"/api/v1/plans/{year['plan']}/documents/annual-plan", params={"format": "xlsx"},
                      headers=auth("hj-amr", "planner")).status_code == 403


CJK = re.compile(r"[\u3400-\u9fff]")


def _headers(content: bytes) -> list[tuple[str, str]]:
    """(sheet, label) of every header of an export: each sheet's bold cells (column headers) and, on a board's
    sheet 概要, the label column."""
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(content))
    out = []
    for ws in wb.worksheets:
        rows = list(ws.iter_rows())
        out += [(ws.title, str(c.value)) for row in rows for c in row if c.value is not None and c.font.bold]
        if ws.title == "概要":
            out += [(ws.title, str(row[0].value)) for row in rows[1:] if row and row[0].value is not None]
    return out


def test_no_header_of_any_export_is_left_in_ascii_or_dotted(year, client, auth) -> None:
    eeb, em = auth("hj-eeb", "planner"), auth("hj-em", "planner")
    exports: list[tuple[str, dict[str, str], dict[str, Any]]] = [(path, eeb, {}) for path in (
        "/api/v1/inbox/export.xlsx", "/api/v1/targets/export.xlsx", "/api/v1/inspectors/export.xlsx",
        "/api/v1/items/export.xlsx", "/api/v1/experts/export.xlsx")]
    exports += [("/api/v1/inbox/export.xlsx", em, {}),  # the referral it received
                ("/api/v1/kpis/export.xlsx", eeb, {"year": 2024}),
                ("/api/v1/kpis/export.xlsx", eeb, {"year": 2024, "quarter": 1})]
    exports += [(path.format(**year), eeb, {"format": "xlsx"}) for _, path in DEMO_YEAR_PATHS]
    seen = set()
    for path, h, params in exports:
        headers = _headers(_ok(client.get(path, params=params, headers=h), XLSX).content)
        assert headers or params.get("format"), path  # a letter has no table: no header row
        for sheet, text in headers:
            assert CJK.search(text) and "." not in text, f"{path} sheet {sheet}: header {text!r}"
            seen.add(text)
    # The inspectors' sheet of the inbox: one row per visit, every column in Chinese.
    assert {"执法证号", "检查ID", "检查对象名称", "统一社会信用代码", "地址"} <= seen


def test_import_templates_download_per_kind(client, auth) -> None:
    from services.documents.sheets import template

    h = auth("hj-eeb", "planner")
    r = client.get("/api/v1/imports/templates/targets.csv", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.content == template("target", "csv")
    x = client.get("/api/v1/imports/templates/inspectors.xlsx", headers=h)
    assert _rows(_ok(x, XLSX).content)[0][:3] == ("部门代码*", "执法人员编号*", "姓名*")
    bad = client.get("/api/v1/imports/templates/plans.xlsx", headers=h)
    assert bad.status_code == 422 and "targets.xlsx" in bad.text
    assert client.get("/api/v1/imports/templates/targets.csv").status_code == 401


def test_an_inspection_record_withholds_confidential_fields_from_whoever_may_not_read_them(year, client, auth) -> None:
    eeb = auth("hj-eeb", "planner")
    listing = client.get(f"/api/v1/tasks/{year['task']}/draw", headers=eeb).json()
    other = next(v for v in listing["visits"] if v["assignment_id"] != year["visit"])
    visit = client.get(f"/api/v1/assignments/{other['assignment_id']}", headers=eeb).json()
    item = visit["items"]["hj-eeb"][0]
    leader = auth("hj-eeb", "inspector", subject=visit["teams"]["hj-eeb"]["leader"])
    secret = "涉密工艺参数X-17超限"
    r = client.post(f"/api/v1/assignments/{other['assignment_id']}/inspections/hj-eeb/findings", headers=leader, json={
        "inspected_on": "2024-03-12", "methods": ["on_site"], "findings": {item: {
            "result": "follow_up_pending", "description": secret, "confidential": ["description"]}}})
    assert r.status_code == 200, r.text
    path = f"/api/v1/inspections/{r.json()['id']}/documents/record"
    params = {"min_position": r.json()["position"]}
    # The team (and the department's reviewers, auditors) read it; the department's planner and the partner
    # department do not, on paper as on screen.
    for h in (leader, auth("hj-eeb", "reviewer", subject="eeb-rev")):
        for text in _both_at(client, path, h, params):
            assert secret in text
    for h in (eeb, auth("hj-amr", "planner")):
        for text in _both_at(client, path, h, params):
            assert secret not in text and "（保密内容，无权查看）" in text and other["target_name"] in text


def _both_at(client: Any, path: str, h: dict[str, str], params: dict[str, Any]) -> tuple[str, str]:
    html = _ok(client.get(path, params=params, headers=h), "text/html").text
    pdf = _ok(client.get(path, params={**params, "format": "pdf"}, headers=h), "application/pdf").content
    return _html_text(html), _text(pdf)


def test_the_follow_up_record_names_who_visited_never_an_id(year, demo, client, auth) -> None:
    import uuid

    from domain.access import Actor
    from services.application import CommandContext

    eeb = auth("hj-eeb", "planner")
    path = f"/api/v1/follow-ups/{year['round']}/documents/record"
    rnd = client.get(f"/api/v1/follow-ups/{year['round']}", headers=eeb).json()
    target = rnd["selected"][0]
    demo_visitor = rnd["visits"][target]["visits"][0]["by"]  # the demo's: an inspector who did not inspect it
    entry = client.get(f"/api/v1/inspectors/{demo_visitor}", headers=eeb).json()
    # An inspector's account linked by staff id (its display name here: the staff id), an account whose link
    # names no entry (display name 王芳), and an actor that is no account at all (the CLI's demo planner).
    linked = auth("hj-eeb", "inspector", subject=entry["staff_id"])
    unlinked = auth("hj-eeb", "reviewer", subject="王芳")
    for h in (linked, unlinked):
        r = client.post(f"/api/v1/follow-ups/{year['round']}/visits", headers=h, json={
            "target_id": target, "method": "phone", "visited_on": "2024-06-20", "opinions": "无意见"})
        assert r.status_code == 200, r.text
    demo.follow_ups.follow_up_step(CommandContext(Actor("demo-planner-eeb", "hj-eeb", ("planner",))),
                                   uuid.UUID(year["round"]), "visit",
                                   {"target_id": target, "method": "letter", "visited_on": "2024-06-21"})
    for text in _both(client, path, eeb):
        assert NO_SPACE.sub("", entry["name"]) in text and "王芳" in text and "（未登记姓名）" in text
        for ident in (demo_visitor, entry["staff_id"], "demo-planner-eeb"):
            assert ident not in text, ident


def test_confidential_is_a_list_of_field_names_and_anything_else_is_a_422_naming_field_and_rule(
        year, client, auth) -> None:
    eeb = auth("hj-eeb", "planner")
    listing = client.get(f"/api/v1/tasks/{year['task']}/draw", headers=eeb).json()
    other = next(v for v in listing["visits"] if v["assignment_id"] != year["visit"])
    visit = client.get(f"/api/v1/assignments/{other['assignment_id']}", headers=eeb).json()
    item = visit["items"]["hj-eeb"][0]
    leader = auth("hj-eeb", "inspector", subject=visit["teams"]["hj-eeb"]["leader"])
    path = f"/api/v1/assignments/{other['assignment_id']}/inspections/hj-eeb/findings"

    def enter(confidential: Any) -> Any:
        return client.post(path, headers=leader, json={"inspected_on": "2024-03-12", "methods": ["on_site"],
                                                       "findings": {item: {
            "result": "corrected", "description": "废气收集罩破损", "confidential": confidential,
            "measures": [{"kind": "order_correction", "deadline": "2024-04-12"}]}}})

    for given, rule, named in ((True, "type", "true"), ("description", "type", '"description"'),
                               ({"description": True}, "type", "description"),
                               (["secret", "measures"], "choice", '"secret"')):
        r = enter(given)
        assert r.status_code == 422, (given, r.text)
        (problem,) = r.json()["errors"]
        assert problem["field"] == f"findings.{item}.confidential" and problem["rule"] == rule, problem
        assert named in problem["message"] and '["description", "measures"]' in problem["message"], problem
    inspections = client.get(f"/api/v1/assignments/{other['assignment_id']}/inspections", headers=eeb).json()
    assert "废气收集罩破损" not in str(inspections)  # nothing was stored
    r = enter(["description", "measures"])
    assert r.status_code == 200, r.text
    stored = client.get(f"/api/v1/inspections/{r.json()['id']}", headers=leader,
                        params={"min_position": r.json()["position"]}).json()
    assert stored["findings"][0]["confidential"] == ["description", "measures"]
