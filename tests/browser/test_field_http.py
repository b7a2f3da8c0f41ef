"""The inspector and reviewer pages in-process over HTTP, on SQLite and PostgreSQL: the session cookie and its
CSRF header, the findings form with a photo, bad input refused in Chinese with nothing stored, review, publication
and push, and every page's refusal of the wrong role, the wrong department and the wrong person."""

import datetime as dt
import html
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import TestClient

from domain.access import SYSTEM
from domain.errors import FieldProblem
from domain.execution.inspection import inspection_id
from services.api.app import create_app
from services.application import CommandContext
from services.cli.demo import load_demo
from services.runtime import Runtime
from services.web.field import anchor_of, field_label, problems_zh
from tests.browser.conftest import Seeded, draw_visit, seed
from tests.support.accounts import account_token

PASSWORD = "a long field passphrase"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(64) + b"\xff\xd9"
SECRET_FINDING = "排污口旁暗管，涉及工艺参数QX-9"


@dataclass
class Field:
    client: TestClient[Any]
    rt: Runtime
    seeded: Seeded
    task: dict[str, Any]
    visit: dict[str, Any]
    items: list[dict[str, Any]]
    member: str  # an inspector on the visit's team (directory entry id)
    outsider: str  # an hj-eeb inspector not on it

    def bearer(self, department: str, roles: list[str], subject: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {account_token(self.rt, department, roles, subject)}"}

    @property
    def iid(self) -> str:
        return str(inspection_id(self.visit["id"], "hj-eeb"))


def _post(c: TestClient[Any], path: str, data: dict[str, str], headers: dict[str, str] | None = None,
          files: dict[str, tuple[str, bytes, str]] | None = None, **kw: Any) -> Any:
    """A form post as the pages' script sends it: always multipart/form-data (FormData), files or not."""
    parts: list[tuple[str, Any]] = [(k, (None, v)) for k, v in data.items()]
    parts += list((files or {}).items())
    return c.post(path, files=parts, headers=headers or {}, **kw)


def _quarter(day: dt.date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


@pytest.fixture
def field(runtime: Runtime) -> Iterator[Field]:
    runtime.settings = replace(runtime.settings, session_cookie_secure=False)  # the test client speaks plain HTTP
    load_demo(runtime.app, CommandContext(actor=SYSTEM))
    runtime.runner.catch_up()
    with TestClient(create_app(runtime)) as client:
        seeded = seed(client, runtime.settings.secret_key, runtime.engine)
        eeb = {"Authorization": f"Bearer {account_token(runtime, 'hj-eeb', ['planner'])}"}
        # a visit of this quarter: its team draw dates it today
        task, _, visit, items = draw_visit(client, eeb, _quarter(dt.date.today()), "本季度专项检查")
        team = visit["teams"]["hj-eeb"]["members"]
        staff = client.get("/api/v1/inspectors", params={"department": "hj-eeb", "limit": 200}, headers=eeb).json()
        outsider = next(i["id"] for i in staff["items"] if i["id"] not in team)
        yield Field(client, runtime, seeded, task, visit, items, team[0], outsider)


def _login(f: Field, username: str, roles: list[str], inspector: str | None, department: str = "hj-eeb") -> str:
    """A person's account with a password, logged in with POST /api/v1/session: the cookie jar holds the session;
    returns the CSRF token the pages' script sends."""
    f.rt.accounts.create(CommandContext(actor=SYSTEM), {
        "username": username, "display_name": "张检查", "department": department, "roles": roles,
        "inspector": inspector}, PASSWORD)
    r = f.client.post("/api/v1/session", json={"username": username, "password": PASSWORD})
    assert r.status_code == 201, r.text
    return str(r.json()["csrf_token"])


def _form(f: Field, result: str = "corrected", description: str = SECRET_FINDING,
          deadline: str = "") -> dict[str, str]:
    today = dt.date.today().isoformat()
    return {"inspected_on": today, "methods": "on_site", "f0.result": result, "f0.description": description,
            "f0.m0.kind": "order_correction", "f0.m0.deadline": deadline or today, "f0.confidential": "1",
            "f1.result": "no_problem", "action": "save"}


def test_an_inspector_records_findings_with_a_photo_and_submits_with_the_session_cookie(field: Field) -> None:
    f, c = field, field.client
    csrf = _login(f, "zhang-jc", ["inspector"], f.member)
    page = c.get("/staff/visits")
    assert page.status_code == 200, page.text
    today = page.text.split('id="visits-today"', 1)[1].split("</section>", 1)[0]
    target = c.get(f"/api/v1/targets/{f.visit['target_id']}", headers=f.bearer("hj-eeb", ["planner"])).json()
    assert target["name"] in today and f.items[0]["name"] in today and f.task["name"] in today
    assert f.visit["id"] in today and f.visit["target_id"] not in today  # names, not ids
    visit = c.get(f"/staff/visits/{f.visit['id']}")
    assert visit.status_code == 200 and "一次告知" in visit.text and target["address"] in visit.text
    pdf = c.get(f"/api/v1/assignments/{f.visit['id']}/notices/pre-visit", params={"format": "pdf"})
    assert f"/api/v1/assignments/{f.visit['id']}/notices/pre-visit?format=pdf" in visit.text
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")  # the linked notice, with the session
    form = c.get(f"/staff/visits/{f.visit['id']}/findings")
    assert form.status_code == 200 and 'capture="environment"' in form.text and "发现问题已责令改正" in form.text
    head = f.rt.runner.head()
    files = {"f0.photos": ("现场.jpg", JPEG, "image/jpeg")}
    # a cookie without the CSRF header changes nothing
    refused = _post(c, f"/staff/visits/{f.visit['id']}/findings", _form(f), files=files)
    assert refused.status_code == 403 and f.rt.runner.head() == head
    # bad input: the form again, naming the field in Chinese; nothing stored
    bad = _post(c, f"/staff/visits/{f.visit['id']}/findings", {**_form(f, description=""), "f0.m0.deadline": ""},
                 files=files, headers={"X-CSRF-Token": csrf})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("text/html"), bad.text
    assert f"「{f.items[0]['name']}」问题描述</strong>：发现问题时必须填写问题描述" in bad.text
    assert "整改期限</strong>：责令改正必须填写整改期限" in bad.text
    assert 'href="#f0-description">去修改</a>' in bad.text and 'id="f0-description"' in bad.text  # linked
    assert f.rt.runner.head() == head
    assert "现场.jpg" in bad.text  # the photo is kept for the next try: not taken twice
    control = _post(c, f"/staff/visits/{f.visit['id']}/findings", {**_form(f), "f0.description": "暗管\x01排放"},
                    headers={"X-CSRF-Token": csrf})
    assert control.status_code == 400 and f"「{f.items[0]['name']}」问题描述</strong>：不得含控制字符" in control.text
    future = _post(c, f"/staff/visits/{f.visit['id']}/findings", headers={"X-CSRF-Token": csrf},
                   data={**_form(f), "inspected_on": (dt.date.today() + dt.timedelta(days=1)).isoformat()})
    assert future.status_code == 422 and "检查日期</strong>：不得晚于今天" in future.text
    assert f.rt.runner.head() == head
    # saved with the photo kept from the refused try (not uploaded again), then submitted
    kept = html.unescape(re.search(r'name="f0\.keep" value="([^"]+)"', bad.text).group(1))  # type: ignore[union-attr]
    saved = _post(c, f"/staff/visits/{f.visit['id']}/findings", {**_form(f), "f0.keep": kept},
                  headers={"X-CSRF-Token": csrf}, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    shown = c.get(saved.headers["location"])
    assert "发现问题已责令改正" in shown.text and SECRET_FINDING in shown.text and "照片和附件：1 个" in shown.text
    submitted = c.post(f"/staff/visits/{f.visit['id']}/submit", headers={"X-CSRF-Token": csrf})
    assert submitted.status_code == 200 and '<dd id="state">待审核</dd>' in submitted.text
    view = c.get(f"/api/v1/inspections/{f.iid}", headers=f.bearer("hj-eeb", ["reviewer"], "rev-a")).json()
    assert view["state"] == "awaiting_review"
    photo = view["findings"][0]["evidence"][0]
    assert photo["name"] == "现场.jpg" and photo["media_type"] == "image/jpeg"
    assert view["findings"][0]["confidential"] == ["description", "evidence", "measures"]
    # the reviewer sees the photo as an image; a partner never
    image = c.get(f"/staff/evidence/{photo['sha256']}", headers=f.bearer("hj-eeb", ["reviewer"], "rev-a"))
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg" and image.content == JPEG
    partner = c.get(f"/staff/evidence/{photo['sha256']}", headers=f.bearer("hj-eeb", ["partner"], "p-1"))
    assert partner.status_code == 403


def _submitted(f: Field) -> str:
    """The findings saved and submitted through the form; the log position of the submission."""
    member = f.bearer("hj-eeb", ["inspector"], f.member)
    r = _post(f.client, f"/staff/visits/{f.visit['id']}/findings", {**_form(f), "action": "submit"},
              headers=member, follow_redirects=False)
    assert r.status_code == 303, r.text
    return str(r.headers["location"].rsplit("min_position=", 1)[1])


def test_a_reviewer_returns_approves_publishes_and_records_the_push(field: Field) -> None:
    f, c = field, field.client
    position = _submitted(f)
    rev = f.bearer("hj-eeb", ["reviewer"], "rev-a")
    queue = c.get("/staff/review", params={"min_position": position}, headers=rev)
    target = c.get(f"/api/v1/targets/{f.visit['target_id']}", headers=rev).json()
    assert queue.status_code == 200 and target["name"] in queue.text and f"/staff/review/{f.iid}" in queue.text
    detail = c.get(f"/staff/review/{f.iid}", headers=rev)
    assert SECRET_FINDING in detail.text and "/staff/evidence/" not in detail.text  # no photo on this one
    head = f.rt.runner.head()
    empty = _post(c, f"/staff/review/{f.iid}/return", {"reason": " "}, headers=rev)
    assert empty.status_code == 422 and "退回理由</strong>：必须填写" in empty.text and f.rt.runner.head() == head
    control = _post(c, f"/staff/review/{f.iid}/return", {"reason": "退回\x07"}, headers=rev)
    assert control.status_code == 422 and "退回理由</strong>：不得含控制字符" in control.text
    assert f.rt.runner.head() == head
    back = _post(c, f"/staff/review/{f.iid}/return", {"reason": "整改期限过短，请核实"}, headers=rev)
    assert back.status_code == 200 and '<dd id="state">已退回</dd>' in back.text
    member = f.bearer("hj-eeb", ["inspector"], f.member)
    assert "审核退回：整改期限过短，请核实" in c.get(f"/staff/visits/{f.visit['id']}", headers=member).text
    again = c.get(f"/staff/visits/{f.visit['id']}/findings", headers=member).text  # editable again, as recorded
    assert f">{SECRET_FINDING}</textarea>" in again and '<option value="corrected" selected>' in again
    assert c.post(f"/staff/visits/{f.visit['id']}/submit", headers=member).status_code == 200
    later = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    future = _post(c, f"/staff/review/{f.iid}/approve", {"approved_on": later}, headers=rev)
    assert future.status_code == 422 and "批准日期</strong>：不得晚于今天" in future.text
    approved = _post(c, f"/staff/review/{f.iid}/approve", {"approved_on": ""}, headers=rev)
    assert approved.status_code == 200 and '<dd id="state">已批准，待公示</dd>' in approved.text
    published = _post(c, f"/staff/review/{f.iid}/publish", {"published_on": ""}, headers=rev)
    assert published.status_code == 200 and '<dd id="state">已公示</dd>' in published.text
    failed = _post(c, f"/staff/review/{f.iid}/push", {"state": "failed"}, headers=rev)
    assert failed.status_code == 422 and "失败原因</strong>：必须填写" in failed.text
    assert 'href="#push-reason"' in failed.text and f.rt.inspections.inspection_view(SYSTEM, uuid.UUID(f.iid))[
        "push_state"] == "pending"
    pushed = _post(c, f"/staff/review/{f.iid}/push", {"state": "pushed", "channel": "data_push",
                                                         "reference": "HN-2026-0001"}, headers=rev,
                    follow_redirects=False)
    assert pushed.status_code == 303
    position = pushed.headers["location"].rsplit("min_position=", 1)[1]
    listed = c.get("/staff/review", params={"state": "published", "min_position": position}, headers=rev)
    assert target["name"] in listed.text and "推送状态：已推送" in listed.text
    public = c.get("/public/results", params={"q": target["name"]}).text
    assert "发现问题已责令改正" in public and SECRET_FINDING not in public


def test_the_inspector_pages_refuse_the_wrong_role_department_and_person(field: Field) -> None:
    f, c = field, field.client
    visit = f"/staff/visits/{f.visit['id']}"
    member = f.bearer("hj-eeb", ["inspector"], f.member)
    outsider = f.bearer("hj-eeb", ["inspector"], f.outsider)
    cases = [
        (None, "GET", "/staff/visits", 303, ""),
        (f.bearer("hj-eeb", ["planner"]), "GET", "/staff/visits", 403, "此页面仅限执法检查人员使用"),
        (f.bearer("hj-eeb", ["reviewer"], "rev-a"), "GET", visit, 403, "此页面仅限执法检查人员使用"),
        (f.bearer("hj-eeb", ["auditor"], "aud-1"), "GET", f"{visit}/findings", 403, "此页面仅限执法检查人员使用"),
        (outsider, "GET", visit, 403, "不在这次检查的检查组中"),
        (outsider, "GET", f"{visit}/findings", 403, "谁检查、谁录入"),
        (f.bearer("hj-amr", ["inspector"], f.member), "GET", visit, 403, "不在这次检查的检查组中"),
        (member, "GET", "/staff/visits/00000000-0000-0000-0000-000000000000", 404, "没有这次检查"),
        (member, "GET", "/staff/visits/not-a-visit", 404, "没有这次检查"),
    ]
    for headers, method, path, status, text in cases:
        r = c.request(method, path, headers=headers or {}, follow_redirects=False)
        assert r.status_code == status and text in r.text, (path, headers, r.status_code, r.text[:300])
        if status == 303:  # anonymous: to the login page, then back
            assert r.headers["location"].startswith("/login?next=%2Fstaff%2F")
    head = f.rt.runner.head()
    for who in (outsider, f.bearer("hj-amr", ["inspector"], f.member), f.bearer("hj-eeb", ["planner"])):
        for path in (f"{visit}/findings", f"{visit}/submit"):
            r = _post(c, path, {**_form(f), "action": "submit"}, headers=who)
            assert r.status_code == 403, (path, r.status_code, r.text[:300])
    assert f.rt.runner.head() == head  # nothing stored, not even the inspection's opening


def test_the_reviewer_pages_refuse_the_wrong_role_department_and_own_findings(field: Field) -> None:
    f, c = field, field.client
    position = _submitted(f)
    detail = f"/staff/review/{f.iid}"
    own = f.bearer("hj-eeb", ["reviewer"], f.member)  # the team member's reviewer account: the same person
    cases = [
        (None, "GET", "/staff/review", 303, ""),
        (f.bearer("hj-eeb", ["inspector"], f.member), "GET", "/staff/review", 403, "此页面仅限审核人员、系统管理员使用"),
        (f.bearer("hj-eeb", ["planner"]), "GET", detail, 403, "此页面仅限审核人员、系统管理员使用"),
        (f.bearer("hj-eeb", ["auditor"], "aud-1"), "GET", detail, 403, "此页面仅限审核人员、系统管理员使用"),
        (f.bearer("hj-amr", ["reviewer"], "amr-rev"), "GET", detail, 403, "不属于您的部门"),
        (own, "GET", detail, 200, "您是该检查组成员，不能审核本组的检查结果"),
        (own, "GET", f"/staff/review?min_position={position}", 200, "您是检查组成员，不能审核"),
    ]
    for headers, method, path, status, text in cases:
        r = c.request(method, path, headers=headers or {}, follow_redirects=False)
        assert r.status_code == status and text in r.text, (path, headers, r.status_code, r.text[:300])
        if status == 303:  # anonymous: to the login page, then back
            assert r.headers["location"].startswith("/login?next=%2Fstaff%2F")
    head = f.rt.runner.head()
    for who, why in ((own, "不得审核本人参与检查的结果"), (f.bearer("hj-amr", ["reviewer"], "amr-rev"), "不能批准"),
                     (f.bearer("hj-eeb", ["inspector"], f.member), "此页面仅限审核人员")):
        r = _post(c, f"{detail}/approve", {"approved_on": ""}, headers=who)
        assert r.status_code == 403 and why in r.text, (r.status_code, r.text[:300])
    r = _post(c, f"{detail}/return", {"reason": "自己退回自己"}, headers=own)
    assert r.status_code == 403
    assert f.rt.runner.head() == head
    assert c.get("/staff/review", params={"state": "nope"}, headers=own).status_code == 400


ITEM_IDS = st.from_regex(r"[a-z0-9][a-z0-9-]{7,40}", fullmatch=True)
PARTS = st.sampled_from(["result", "description", "measures", "evidence", "confidential", "photos", "files"])
SUBS = st.sampled_from(["", "kind", "deadline", "note", "sha256", "size", "media_type"])
RULES = st.sampled_from(["required", "choice", "format", "not_future", "after_inspection", "max_length", "type",
                         "control_character", "media_type", "max_size", "unknown_evidence", "before_task"])


@given(item=ITEM_IDS, name=st.text(st.characters(categories=["Lo"]), min_size=1, max_size=12), part=PARTS,
       index=st.one_of(st.none(), st.integers(0, 9)), sub=SUBS, rule=RULES)
def test_a_problem_of_any_finding_field_is_named_by_the_item_name_in_chinese(item: str, name: str, part: str,
                                                                             index: int | None, sub: str,
                                                                             rule: str) -> None:
    path = f"findings.{item}.{part}" + (f"[{index}]" if index is not None else "") + (f".{sub}" if sub else "")
    label = field_label(path, {item: name})
    assert label.startswith(f"「{name}」") and item not in label  # the name, never the id
    assert label.isascii() is False and "findings" not in label
    text = problems_zh([FieldProblem(path, rule, "English message 2024-01-01")], {item: name})[0]["text"]
    assert text and "English" not in text and "不符合规则" not in text  # every rule the form can meet is worded
    anchor = anchor_of(path, {item: 3}, {})
    assert anchor == "" or anchor.startswith("f3-")  # a link goes to the item's own block, or nowhere
