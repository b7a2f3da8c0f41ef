"""A printable document in the real Chromium: its style block (A4 print CSS) is allowed by the server's CSP
(by hash), so the page prints ruled tables and a centred title; no CSP violation is reported."""

from typing import Any

import sqlalchemy as sa

from tests.browser.conftest import SCREENSHOTS, Seeded
from tests.support.accounts import stored_token


def test_a_printed_inspection_record_is_styled_under_the_servers_csp(server: Seeded, browser: Any) -> None:
    token = stored_token(sa.create_engine(server.database), server.key, "hj-eeb", ["planner"], None)
    context = browser.new_context(extra_http_headers={"Authorization": f"Bearer {token}"})
    try:
        page = context.new_page()
        violations: list[str] = []
        page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        response = page.goto(f"{server.url}/api/v1/inspections/{server.inspection_id}/documents/record")
        assert response is not None and response.status == 200
        assert "style-src 'self' 'sha256-" in response.headers["content-security-policy"]
        page.get_by_role("heading", name="“双随机、一公开”抽查检查记录").wait_for()
        assert page.locator("h1").evaluate("e => getComputedStyle(e).textAlign") == "center"
        assert page.locator("th").first.evaluate("e => getComputedStyle(e).borderTopStyle") == "solid"
        assert page.get_by_text(server.target["name"]).first.is_visible()
        assert violations == []
        page.screenshot(path=str(SCREENSHOTS / "inspection-record.png"), full_page=True)
    finally:
        context.close()
