"""The inspector and reviewer pages in a real Chromium against the served demo: an inspector on a 390x844 phone logs
in (POST /api/v1/session), opens today's visit, records findings with a photo taken as a JPEG in the page and
submits; a reviewer returns nothing of their own, approves, publishes and records the push; the public page then
finds the result without the confidential text. No horizontal scroll on the phone, nothing from another host;
screenshots into docs/screenshots/."""

import base64
import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa

from tests.browser.conftest import SCREENSHOTS, Seeded, draw_visit
from tests.support.accounts import stored_token

PASSWORD = "a long field passphrase"
SECRET = "暗管排放，涉及工艺参数ZK-3"
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 1, "is_mobile": True,
         "has_touch": True, "locale": "zh-CN"}


@dataclass
class Visit:
    id: str
    task: dict[str, Any]
    target_name: str
    items: list[dict[str, Any]]


@pytest.fixture(scope="module")
def visit(server: Seeded) -> Visit:
    """A visit of this quarter (dated today by its team draw) and password accounts for one of its inspectors and
    for a reviewer of the department, made through the HTTP API by an admin."""
    engine = sa.create_engine(server.database)

    def bearer(roles: list[str], subject: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {stored_token(engine, server.key, 'hj-eeb', roles, subject)}"}

    today = dt.date.today()
    with httpx.Client(base_url=server.url, timeout=60) as c:
        planner = bearer(["planner"], "field-planner")
        task, listing, _, items = draw_visit(c, planner, f"{today.year}Q{(today.month - 1) // 3 + 1}", "本季度现场检查")
        # not the enterprise the session's seed published: the public pages' tests count its results
        other = next(v for v in listing["visits"] if v["target_id"] != server.target["id"])
        found = c.get(f"/api/v1/assignments/{other['assignment_id']}", headers=planner).json()
        admin = bearer(["admin"], "field-admin")
        for username, name, roles, inspector in (
                ("field-inspector", "现场检查员", ["inspector"], found["teams"]["hj-eeb"]["members"][0]),
                ("field-reviewer", "审核员", ["reviewer"], None)):
            r = c.post("/api/v1/accounts", headers=admin, json={
                "username": username, "display_name": name, "department": "hj-eeb", "roles": roles,
                "inspector": inspector, "password": PASSWORD})
            assert r.status_code == 201, r.text
        target = c.get(f"/api/v1/targets/{found['target_id']}", headers=admin).json()
    return Visit(found["id"], task, target["name"], items)


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(**PHONE)
    pg = context.new_page()
    pg.requested = []
    pg.on("request", lambda r: pg.requested.append(r.url))
    yield pg
    context.close()


def _login(page: Any, server: Seeded, username: str) -> None:
    r = page.context.request.post(server.url + "/api/v1/session", data={"username": username, "password": PASSWORD})
    assert r.status == 201, r.text()


def _fits(page: Any, width: int = 390) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, (page.url, scroll)


def _hosts(urls: list[str]) -> set[str]:
    return {urlsplit(u).netloc for u in urls if urlsplit(u).scheme in ("http", "https", "ws", "wss")}


def _photo(page: Any) -> bytes:
    """A small JPEG drawn on a canvas in the page: what a phone camera hands to the file input."""
    data = page.evaluate("""() => {
        const c = document.createElement("canvas"); c.width = 64; c.height = 48;
        const g = c.getContext("2d"); g.fillStyle = "#2d6a4f"; g.fillRect(0, 0, 64, 48);
        g.fillStyle = "#ffd166"; g.fillRect(16, 12, 32, 24);
        return c.toDataURL("image/jpeg", 0.9); }""")
    return base64.b64decode(data.split(",", 1)[1])


def _until(page: Any, selector: str, text: str, timeout: float = 20) -> Any:
    """Reload until the read model shows ``text`` in ``selector`` (a condition with a deadline, not a duration)."""
    deadline = time.monotonic() + timeout
    while True:
        found = page.locator(selector).filter(has_text=text)
        if found.count():
            return found.first
        assert time.monotonic() < deadline, f"{text!r} never appeared in {selector} at {page.url}"
        page.reload()


def test_an_inspector_on_a_phone_submits_a_photo_and_a_reviewer_publishes(phone: Any, browser: Any,
                                                                          server: Seeded, visit: Visit) -> None:
    _inspect(phone, server, visit)
    _review(browser, server, visit)


def _inspect(page: Any, server: Seeded, visit: Visit) -> None:
    """The inspector's part, on the phone: today's visit, the notice, the form (refused once), submitted."""
    page.goto(server.url + "/staff/visits")  # not signed in: the login page, then back here
    page.get_by_label("用户名").fill("field-inspector")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/staff/visits")
    today = page.locator("#visits-today")
    today.get_by_text(visit.target_name).first.wait_for()
    assert visit.task["name"] in today.inner_text() and visit.items[0]["name"] in today.inner_text()
    _fits(page)
    page.screenshot(path=str(SCREENSHOTS / "field-visits.png"))  # what the phone shows first
    page.locator(f'a[href="/staff/visits/{visit.id}"]').click()
    page.locator("#notice").wait_for()
    assert "一次告知" in page.locator("#notice").inner_text()
    _fits(page)
    page.screenshot(path=str(SCREENSHOTS / "field-visit.png"), full_page=True)
    page.get_by_role("link", name="录入检查结果").click()
    form = page.locator("form.findings-form")
    form.wait_for()
    assert page.locator("#f0-photos").get_attribute("capture") == "environment"
    # bad input first, refused in Chinese naming the field: submitting with an item left open, then saving a
    # problem found without its description
    page.locator("#f0-result").select_option(label="发现问题已责令改正")
    page.get_by_role("button", name="保存并提交审核").click()
    alert = page.locator("#problems")
    alert.wait_for()
    assert f"「{visit.items[1]['name']}」检查结果：必须填写" in alert.inner_text()
    page.locator("#f0-result").select_option(label="发现问题已责令改正")
    page.get_by_role("button", name="保存", exact=True).click()
    alert.filter(has_text="发现问题时必须填写问题描述").wait_for()
    assert f"「{visit.items[0]['name']}」问题描述" in alert.inner_text()
    # then the whole form, with a photo from the camera
    page.locator("#f0-result").select_option(label="发现问题已责令改正")
    page.locator("#f0-description").fill(SECRET)
    page.locator("#f0-m0-kind").select_option(label="责令改正")
    page.locator("#f0-m0-deadline").fill((dt.date.today() + dt.timedelta(days=30)).isoformat())
    page.locator("#f0-confidential").check()
    page.locator("#f0-photos").set_input_files(files=[{"name": "现场照片.jpg", "mimeType": "image/jpeg",
                                                      "buffer": _photo(page)}])
    page.locator("#f1-result").select_option(label="未发现问题")
    page.screenshot(path=str(SCREENSHOTS / "field-findings.png"), full_page=True)
    # more than DUALRANDOM_MAX_UPLOAD_MB (20) chosen: stopped in the phone, nothing sent
    posts = len([u for u in page.requested if u.endswith("/findings")])
    page.locator("#f0-files").set_input_files(files=[{"name": "录像.mp4", "mimeType": "video/mp4",
                                                     "buffer": bytes(21 * 1024 * 1024)}])
    page.get_by_role("button", name="保存", exact=True).click()
    page.locator("#size-warning").wait_for()
    assert len([u for u in page.requested if u.endswith("/findings")]) == posts
    page.locator("#f0-files").set_input_files(files=[])
    _fits(page)
    page.get_by_role("button", name="保存并提交审核").click()
    page.locator("#state").filter(has_text="待审核").wait_for()
    findings = page.locator("#findings").inner_text()
    assert SECRET in findings and "照片和附件：1 个" in findings and "责令改正（期限" in findings
    assert _hosts(page.requested) == {urlsplit(server.url).netloc}


def _review(browser: Any, server: Seeded, visit: Visit) -> None:
    """The reviewer's part, on a desktop: the queue, the photo, approve, publish, push; then the public page."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.requested = []
    page.on("request", lambda r: page.requested.append(r.url))
    try:
        _login(page, server, "field-reviewer")
        page.goto(server.url + "/staff/review")
        row = _until(page, "li.review-row", visit.target_name)
        assert visit.task["name"] in row.inner_text()
        page.screenshot(path=str(SCREENSHOTS / "review-queue.png"), full_page=True)
        row.get_by_role("link").click()
        page.locator("#state").filter(has_text="待审核").wait_for()
        photo = page.get_by_role("img", name="现场照片 现场照片.jpg")
        photo.wait_for()
        assert photo.evaluate("img => img.complete && img.naturalWidth") == 64  # the JPEG, decoded
        assert SECRET in page.locator("main").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "review.png"), full_page=True)
        page.get_by_role("button", name="批准").click()
        page.locator("#state").filter(has_text="已批准，待公示").wait_for()
        page.get_by_role("button", name="公示").click()
        page.locator("#state").filter(has_text="已公示").wait_for()
        page.get_by_label("推送状态").select_option(label="已推送")
        page.get_by_label("回执编号").fill("HN-2026-0001")
        page.get_by_role("button", name="记录推送状态").click()
        page.locator("#push-state").filter(has_text="已推送").wait_for()
        page.goto(server.url + "/public/results?q=" + visit.target_name)
        result = _until(page, "li.result", visit.task["number"])
        assert "发现问题已责令改正" in result.inner_text()
        assert SECRET not in page.content()
        assert _hosts(page.requested) == {urlsplit(server.url).netloc}
    finally:
        context.close()


def test_the_wrong_role_is_refused_in_chinese_in_the_browser(phone: Any, server: Seeded, visit: Visit) -> None:
    _login(phone, server, "field-reviewer")
    response = phone.goto(server.url + f"/staff/visits/{visit.id}")
    assert response.status == 403 and "此页面仅限执法检查人员使用" in phone.locator("#problems").inner_text()
    _login(phone, server, "field-inspector")
    response = phone.goto(server.url + "/staff/review")
    assert response.status == 403 and "此页面仅限审核人员、系统管理员使用" in phone.locator("#problems").inner_text()
    _fits(phone)
