"""The public pages in a real Chromium: search by name and by credit code, nothing confidential, a filter, the
draw page, a 390-pixel phone without horizontal scroll, no request to another host, the CSP header; screenshots
of the main pages into docs/screenshots/."""

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.browser.conftest import SCREENSHOTS, SECRET, Seeded


@pytest.fixture
def page(browser: Any, server: Seeded) -> Any:
    """A fresh page that records every request it makes."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    pg = context.new_page()
    pg.requested = []
    pg.on("request", lambda r: pg.requested.append(r.url))
    yield pg
    context.close()


def _hosts(urls: list[str]) -> set[str]:
    return {urlsplit(u).netloc for u in urls if urlsplit(u).scheme in ("http", "https", "ws", "wss")}


def test_the_public_page_finds_a_result_by_name_without_confidential_text(page: Any, server: Seeded) -> None:
    response = page.goto(server.url + "/")
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    page.screenshot(path=str(SCREENSHOTS / "home.png"))
    page.get_by_role("link", name="抽查结果公示").first.click()
    page.get_by_label("企业名称或统一社会信用代码").fill(server.target["name"])
    page.get_by_role("button", name="查询").click()
    page.locator("#count").filter(has_text="共 1 条").wait_for()
    result = page.locator("li.result")
    assert result.count() == 1
    text = result.inner_text()
    assert server.target["credit_code"] in text and server.task["number"] in text
    assert "发现问题已责令改正" in text and "未发现问题" in text
    html = page.content()
    assert SECRET not in html and "废气处理设施未正常运行" not in html
    page.screenshot(path=str(SCREENSHOTS / "results.png"), full_page=True)
    assert _hosts(page.requested) == {urlsplit(server.url).netloc}


def test_the_public_page_finds_a_result_by_credit_code_and_filters(page: Any, server: Seeded) -> None:
    page.goto(server.url + "/public/results")
    page.get_by_label("企业名称或统一社会信用代码").fill(server.target["credit_code"][:12])
    page.get_by_role("button", name="查询").click()
    page.locator("#count").filter(has_text="共 1 条").wait_for()
    assert server.target["name"] in page.locator("li.result").inner_text()
    # a filter that matches (the year of the inspection) and one that does not (another result)
    page.get_by_label("检查年度").select_option("2024")
    page.get_by_role("button", name="查询").click()
    page.locator("#count").filter(has_text="共 1 条").wait_for()
    page.get_by_label("检查结果").select_option(label="已关闭停业或正在组织清算")
    page.get_by_role("button", name="查询").click()
    page.locator("#count").filter(has_text="共 0 条").wait_for()
    assert page.locator("li.result").count() == 0
    page.get_by_label("检查结果").select_option(label="发现问题已责令改正")
    page.get_by_role("button", name="查询").click()
    page.locator("#count").filter(has_text="共 1 条").wait_for()
    page.get_by_label("实施部门").select_option("hj-amr")
    page.get_by_role("button", name="查询").click()
    page.locator("#count").filter(has_text="共 0 条").wait_for()
    assert _hosts(page.requested) == {urlsplit(server.url).netloc}


def test_the_draw_page_shows_the_commitment_and_the_verification_but_not_who(page: Any, server: Seeded) -> None:
    page.goto(server.url + "/public/results?q=" + server.target["credit_code"])
    page.get_by_role("link", name="抽取过程").first.click()
    page.locator("#verification").wait_for()
    assert page.locator("#commitment").inner_text() == server.commitment
    assert page.locator("#verification").inner_text().startswith("一致")
    html = page.content()
    assert server.target["id"] not in html and server.target["name"] not in html
    assert server.target["credit_code"] not in html and SECRET not in html
    page.screenshot(path=str(SCREENSHOTS / "draw.png"), full_page=True)
    page.get_by_role("link", name="如何验证一次抽取").first.click()
    page.locator("pre.doc").wait_for()
    assert _hosts(page.requested) == {urlsplit(server.url).netloc}


def test_a_390_pixel_phone_renders_without_horizontal_scroll(browser: Any, server: Seeded) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1, is_mobile=True,
                                  has_touch=True, locale="zh-CN")
    pg = context.new_page()
    try:
        for path in ("/", "/public/results?q=" + server.target["credit_code"],
                     f"/public/tasks/{server.task['id']}/draw"):
            pg.goto(server.url + path)
            pg.locator("main").wait_for()
            width = pg.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, (path, width)
        pg.goto(server.url + "/public/results?q=" + server.target["credit_code"])
        pg.locator("li.result").wait_for()
        pg.screenshot(path=str(SCREENSHOTS / "results-phone.png"), full_page=True)
    finally:
        context.close()


def test_the_api_docs_load_from_this_server_only(page: Any, server: Seeded) -> None:
    raw = httpx.get(server.url + "/schema/swagger").text
    assert "http://" not in raw and "https://" not in raw and "//" not in raw.replace("<!DOCTYPE", "")
    response = page.goto(server.url + "/schema/swagger")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page.get_by_role("button", name="Authorize").wait_for()
    page.get_by_role("button", name="Authorize").click()
    page.get_by_text("BearerToken").first.wait_for()
    page.keyboard.press("Escape")
    assert _hosts(page.requested) == {urlsplit(server.url).netloc}


def test_bad_filters_are_refused_in_chinese_naming_the_field(server: Seeded) -> None:
    for params, field in (({"year": "24"}, "year"), ({"result": "nope"}, "result"),
                          ({"department": "x"}, "department"), ({"page": "0"}, "page"),
                          ({"q": "x" * 101}, "q")):
        r = httpx.get(server.url + "/public/results", params=params)
        assert r.status_code == 400 and f"<code>{field}</code>" in r.text, (params, r.status_code)
        assert r.headers["content-type"].startswith("text/html")
    assert httpx.get(server.url + "/public/tasks/00000000-0000-0000-0000-000000000000/draw").status_code == 404
