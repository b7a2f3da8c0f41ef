"""Notices to the enterprise (一次告知, 一表告知) and the VisitNotices aggregate that records them."""

import datetime as dt
import html
import uuid
from typing import Any

import pytest
from eventsourcing.application import Application
from hypothesis import given
from hypothesis import strategies as st

from domain.access import Actor
from domain.errors import InvalidInputError, PermissionDeniedError
from domain.execution.inspection import InvalidTransitionError
from domain.execution.notices import (
    NoticeDepartment,
    NoticeItem,
    ResultNoticeDepartment,
    documents_to_prepare,
    html_sha256,
    render_pre_visit_notice,
    render_result_notice,
)
from domain.execution.visit import VisitNotices, visit_notices_id

EEB = NoticeDepartment(
    "hj-eeb",
    "新乡市生态环境局获嘉分局",
    (
        NoticeItem("EEB-001", "水污染防治监督检查", ("排污许可证", "环评批复", "自行监测报告")),
        NoticeItem("EEB-002", "固体废物污染防治监督检查", ("危险废物管理台账", "排污许可证")),
    ),
)
EMB = NoticeDepartment(
    "hj-emb",
    "获嘉县应急管理局",
    (NoticeItem("EMB-001", "危险化学品安全监督检查", ("安全生产许可证", "环评批复 ", "危险废物管理台账")),),
)
LEAD = Actor("eeb-plan", "hj-eeb", ("planner",))
EMB_STAFF = Actor("emb-li", "hj-emb", ("inspector",))
DOC: dict[str, Any] = {"sha256": "ab" * 32, "size": 10, "name": "监测报告.pdf", "media_type": "application/pdf"}


def pre_visit(**over: Any) -> str:
    args: dict[str, Any] = {
        "target_name": "获嘉县示例化工有限公司",
        "departments": [EEB, EMB],
        "visit_from": "2024-09-09",
        "visit_to": "2024-09-13",
        "issued_on": "2024-09-02",
        "lead_department": EEB.name,
        "contact": "王工 0373-4000000",
        **over,
    }
    return render_pre_visit_notice(**args)


def test_each_required_document_is_listed_once_with_the_departments_needing_it() -> None:
    docs = documents_to_prepare([EEB, EMB])
    assert docs == [
        ("排污许可证", [EEB.name]),
        ("环评批复", [EEB.name, EMB.name]),
        ("自行监测报告", [EEB.name]),
        ("危险废物管理台账", [EEB.name, EMB.name]),
        ("安全生产许可证", [EMB.name]),
    ]
    page = pre_visit()
    for doc, _ in docs:
        assert page.count(f"<td>{doc}</td>") == 1
    assert "联合抽查检查一次告知书" in page and "2024年9月9日至2024年9月13日" in page
    assert "获嘉县示例化工有限公司：" in page and "危险化学品安全监督检查" in page


def test_notices_are_printable_html() -> None:
    page = pre_visit()
    assert page.startswith("<!DOCTYPE html>") and '<html lang="zh-CN">' in page and 'charset="utf-8"' in page
    assert (
        "@page { size: A4" in page
        and "@media print" in page
        and "thead { display: table-header-group; }" in page
    )
    single = pre_visit(departments=[EEB])
    assert "抽查检查一次告知书" in single and "联合" not in single.split("<body>")[1].split("</h1>")[0]


def test_every_value_is_escaped() -> None:
    evil = '<script>alert("x")</script>&'
    page = pre_visit(
        target_name=evil, departments=[NoticeDepartment("x", evil, (NoticeItem("a", evil, (evil,)),))]
    )
    assert "<script>" not in page and html.escape(evil) in page


def result_departments(secret: str = "配方：机密") -> list[ResultNoticeDepartment]:
    eeb: list[dict[str, Any]] = [
        {
            "item": "EEB-001",
            "result": "no_problem",
            "result_wording": "未发现问题",
            "description": "",
            "measures": [],
            "evidence": [],
            "confidential": [],
        },
        {
            "item": "EEB-002",
            "result": "corrected",
            "result_wording": "发现问题已责令改正",
            "description": secret,
            "measures": [{"kind": "order_correction", "deadline": "2024-10-15", "note": ""}],
            "evidence": [DOC],
            "confidential": ["description"],
        },
    ]
    emb: list[dict[str, Any]] = [
        {
            "item": "EMB-001",
            "result": "follow_up_pending",
            "result_wording": "发现问题待后续处理",
            "description": "储罐区未设置防泄漏围堰",
            "measures": [{"kind": "case_filed", "deadline": None, "note": ""}],
            "evidence": [],
            "confidential": [],
        }
    ]
    return [
        ResultNoticeDepartment(
            "hj-eeb", EEB.name, {"EEB-001": "水污染防治监督检查", "EEB-002": "固体废物污染防治监督检查"}, eeb
        ),
        ResultNoticeDepartment("hj-emb", EMB.name, {"EMB-001": "危险化学品安全监督检查"}, emb),
    ]


def test_the_result_notice_holds_every_departments_results_and_no_confidential_field() -> None:
    page = render_result_notice(
        target_name="获嘉县示例化工有限公司",
        departments=result_departments(),
        visit_date="2024-09-10",
        issued_on="2024-10-08",
        lead_department=EEB.name,
    )
    assert "一表告知" in page and page.count('<tr><td class="num">') == 3
    for text in (
        "未发现问题",
        "发现问题已责令改正",
        "发现问题待后续处理",
        "储罐区未设置防泄漏围堰",
        "责令改正（限2024年10月15日前）",
        "立案查处",
        "获嘉县应急管理局",
        "固体废物污染防治监督检查",
    ):
        assert text in page
    # Confidential means "not public", not "not for the inspected party": the enterprise is told what to correct.
    assert "配方：机密（涉及商业秘密，不予公示）" in page.replace("<br>", "") and DOC["sha256"] not in page


text = st.text(alphabet=st.characters(codec="utf-8", blacklist_categories=["Cs"]), min_size=3, max_size=40).filter(
    lambda s: s.strip() == s and len(s.strip()) >= 3
)


@given(secret=text.map(lambda s: "§" + s + "§"))
def test_confidential_text_reaches_the_enterprise_but_not_a_partner_departments_copy(secret: str) -> None:
    def page(reveal: set[str] | None) -> str:
        return render_result_notice(
            target_name="T",
            departments=result_departments(secret),
            visit_date="2024-09-10",
            issued_on="2024-10-08",
            lead_department="L",
            reveal=reveal,
        )

    for reveal in (None, {"hj-eeb"}):
        # a line break in the description is printed as one (<br>)
        assert html.escape(secret).replace("\n", "<br>") in page(reveal) and "不予公示" in page(reveal)
    partner = page({"hj-emb"})
    assert secret not in partner and html.escape(secret) not in partner and "保密内容" in partner
    assert "储罐区未设置防泄漏围堰" in partner  # the partner's own, not confidential, stays


# -- the VisitNotices aggregate ----------------------------------------------------------------------------
def notices() -> VisitNotices:
    return VisitNotices.open("assignment-1", "target-1", "hj-eeb", ["hj-eeb", "hj-emb"])


def test_issuing_sending_sharing_and_delivering_are_events() -> None:
    v = notices()
    assert v.id == visit_notices_id("assignment-1")
    page = pre_visit()
    docs = [d for d, _ in documents_to_prepare([EEB, EMB])]
    v.issue_pre_visit_notice(LEAD, "2024-09-02", "2024-09-09", "2024-09-13", docs, html_sha256(page))
    v.record_pre_visit_notice_sent(LEAD, dt.date(2024, 9, 2), "electronic", "企业环保负责人", "平台消息")
    v.share_documents(EMB_STAFF, [DOC], "企业上年度应急预案备案材料")
    with pytest.raises(InvalidTransitionError) as err:
        v.issue_result_notice(
            LEAD, "2024-10-08", "cd" * 32, {"hj-eeb": "approved", "hj-emb": "awaiting_review"}
        )
    assert "hj-emb" in err.value.problems[0].message
    v.issue_result_notice(LEAD, "2024-10-08", "cd" * 32, {"hj-eeb": "published", "hj-emb": "approved"})
    v.record_result_notice_delivered(LEAD, "2024-10-09", "in_person", "张经理", "当场签收")
    assert v.pre_visit and v.pre_visit["sent"][0]["method"] == "electronic"
    assert v.result and v.result["delivered"][0]["recipient"] == "张经理"
    app: Application[uuid.UUID] = Application()
    app.save(v)
    assert [type(e).__name__ for e in app.events.get(v.id)] == [
        "Opened",
        "PreVisitNoticeIssued",
        "PreVisitNoticeSent",
        "DocumentsShared",
        "ResultNoticeIssued",
        "ResultNoticeDelivered",
    ]
    assert app.repository.get(v.id).__dict__ == v.__dict__


def test_notices_are_the_lead_departments_and_sharing_is_for_participants() -> None:
    v = notices()
    with pytest.raises(PermissionDeniedError):
        v.issue_pre_visit_notice(EMB_STAFF, "2024-09-02", "2024-09-09", "2024-09-13", [], "ab" * 32)
    with pytest.raises(PermissionDeniedError):
        v.share_documents(Actor("amr", "hj-amr", ("inspector",)), [DOC])
    with pytest.raises(PermissionDeniedError):
        v.share_documents(Actor("audit", "hj-eeb", ("auditor",)), [DOC])
    with pytest.raises(InvalidTransitionError):
        v.record_pre_visit_notice_sent(LEAD, "2024-09-02", "post")
    with pytest.raises(InvalidInputError) as err:
        v.issue_pre_visit_notice(LEAD, "2024-09-02", "2024-09-13", "2024-09-09", [], "nothex")
    assert {p.field for p in err.value.problems} == {"visit_to", "sha256"}
    with pytest.raises(InvalidInputError):
        VisitNotices.open("a", "t", "hj-amr", ["hj-eeb"])
