"""Printable notices to the inspected enterprise as ``domain.documents.Document`` (HTML here, PDF in
``services.documents``): Chinese, A4, every value escaped. Both carry the 文号, the enterprise's credit code and
address, every participating department with its inspectors' names and certificate numbers, and the contact.

- Pre-visit notice (一次告知书): the documents required by all items of all participating departments, each
  listed once (with the departments that need it), the items per department, and the visit window.
- Result notice (一表告知): every department's result per item for the visit on one form. The form is addressed
  to the inspected enterprise, so it tells the enterprise everything about its own findings, confidential
  description and measures included: confidential means "not public" (kept off the publicity system and the
  public search), not "not for the inspected party". Such a field is marked 不予公示 on the form. A copy read by a
  partner department's staff (``reveal``) leaves other departments' confidential fields out (they see them
  redacted in the inspection too); evidence files never reach the form.
Pure functions; recording that a notice was issued, sent or delivered is ``domain.execution.visit``.
"""

import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.documents import Block, Document, Fields, Heading, Table, Text, date_cn, render_html
from domain.execution.inspection import redact_finding
from domain.execution.vocabulary import MEASURE_LABELS

__all__ = [
    "NoticeDepartment",
    "NoticeHeader",
    "NoticeInspector",
    "NoticeItem",
    "ResultNoticeDepartment",
    "documents_to_prepare",
    "html_sha256",
    "pre_visit_document",
    "render_pre_visit_notice",
    "render_result_notice",
    "result_document",
    "visit_window",
]

_SPACE = re.compile(r"\s+")

NOT_PUBLIC_NOTE = "（涉及商业秘密，不予公示）"
"""Next to a confidential field on the enterprise's copy: told to the enterprise, kept from the public."""
WITHHELD_NOTE = "（保密内容，已另行告知被检查单位）"
"""In place of another department's confidential field on a partner department's copy."""


@dataclass(frozen=True)
class NoticeInspector:
    name: str
    certificate_no: str = ""
    leader: bool = False

@dataclass(frozen=True)
class NoticeItem:
    code: str
    name: str
    documents: tuple[str, ...] = ()


@dataclass(frozen=True)
class NoticeDepartment:
    code: str
    name: str
    items: tuple[NoticeItem, ...] = field(default_factory=tuple)
    inspectors: tuple[NoticeInspector, ...] = ()


@dataclass(frozen=True)
class ResultNoticeDepartment:
    """A department's part of the result notice: its item names and its findings (full or redacted)."""

    code: str
    name: str
    item_names: Mapping[str, str]
    findings: Sequence[Mapping[str, Any]]
    inspected_on: str = ""
    inspectors: tuple[NoticeInspector, ...] = ()


@dataclass(frozen=True)
class NoticeHeader:
    """What both notices say about who writes to whom: the 文号, the enterprise's credit code and address, and
    the lead department's contact person and phone."""

    notice_no: str = ""
    credit_code: str = ""
    address: str = ""
    contact: str = ""
    phone: str = ""




def _key(document: str) -> str:
    """Two spellings of one document are one: NFKC (full-width forms), whitespace removed."""
    return _SPACE.sub("", unicodedata.normalize("NFKC", document))


def documents_to_prepare(departments: Iterable[NoticeDepartment]) -> list[tuple[str, list[str]]]:
    """Each required document once, in first-mentioned order, with the names of the departments needing it."""
    out: dict[str, tuple[str, list[str]]] = {}
    for d in departments:
        for item in d.items:
            for doc in item.documents:
                text = _SPACE.sub(" ", doc).strip()
                if not text:
                    continue
                entry = out.setdefault(_key(text), (text, []))
                if d.name not in entry[1]:
                    entry[1].append(d.name)
    return list(out.values())


def visit_window(first: dt.date | str | None, last: dt.date | str | None) -> str:
    """The visit's dates as a person writes them: one day (``2024年9月10日``), a span
    (``2024年9月9日至2024年9月13日``), or 另行通知 when no date is known: never ``1月1日至1月1日``."""
    if not first:
        return "具体检查时间另行通知"
    a = dt.date.fromisoformat(str(first)[:10])
    b = dt.date.fromisoformat(str(last or first)[:10])
    if b <= a:
        return date_cn(a)
    return f"{date_cn(a)}至{date_cn(b)}"


def html_sha256(document: str) -> str:
    """The SHA-256 of a rendered notice (UTF-8), recorded when it is issued."""
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def _people(inspectors: Sequence[NoticeInspector]) -> str:
    return "\n".join(
        f"{i.name}（执法证号：{i.certificate_no or '未登记'}）{'，组长' if i.leader else ''}" for i in inspectors
    ) or "（检查人员尚未抽取）"


def _head(target_name: str, header: NoticeHeader) -> list[Block]:
    out: list[Block] = []
    if header.notice_no:
        out.append(Text(f"文号：{header.notice_no}", "meta"))
    out.append(Fields((("被检查单位", target_name), ("统一社会信用代码", header.credit_code or "（未登记）"),
                       ("地址", header.address or "（未登记）"))))
    return out


def _contact_and_signature(departments: Sequence[str], lead_department: str, header: NoticeHeader,
                           issued_on: dt.date | str) -> list[Block]:
    out: list[Block] = []
    if header.phone:
        out.append(Text(f"联系人：{header.contact or '（未登记）'}　联系电话：{header.phone}", "meta"))
    elif header.contact:
        out.append(Text(f"联系人及电话：{header.contact}", "meta"))
    names = [lead_department, *[d for d in departments if d != lead_department]]
    sign = "\n".join(f"{n}（牵头部门）" if len(names) > 1 and n == lead_department else n for n in names)
    out.append(Text(f"{sign}\n{date_cn(issued_on)}", "signature"))
    return out


def pre_visit_document(
    *,
    target_name: str,
    departments: Sequence[NoticeDepartment],
    visit_from: dt.date | str | None,
    visit_to: dt.date | str | None,
    issued_on: dt.date | str,
    lead_department: str,
    contact: str = "",
    notice_no: str = "",
    header: NoticeHeader | None = None,
) -> Document:
    """一次告知书: what the enterprise prepares for the (joint) visit, every document once, who comes."""
    header = header or NoticeHeader(notice_no=notice_no, contact=contact)
    joint = len(departments) > 1
    names = "、".join(d.name for d in departments)
    title = "联合抽查检查一次告知书" if joint else "抽查检查一次告知书"
    docs = documents_to_prepare(departments)
    kind = f"{'部门联合' if joint else ''}随机抽查检查"
    if visit_from:
        window = visit_window(visit_from, visit_to)
        span = "期间" if "至" in window else ""
        when = f"{names}将于{window}{span}对你单位开展{kind}"
    else:
        when = f"{names}将对你单位开展{kind}（具体检查时间另行通知）"
    blocks: list[Block] = [*_head(target_name, header), Text(f"{target_name}：", "salutation")]
    blocks.append(Text(
        f"根据“双随机、一公开”监管工作安排，{when}，一次检查覆盖以下全部事项。"
        "为减少对你单位正常生产经营活动的影响，现将需要准备的资料一次告知如下，请提前准备，检查时提供。"))
    blocks.append(Heading("一、需准备的资料"))
    if docs:
        blocks.append(Table(("序号", "资料名称", "需要的部门"),
                            tuple((str(n), doc, "、".join(depts)) for n, (doc, depts) in enumerate(docs, start=1)),
                            (1.4, 6, 5), numbered=True))
    else:
        blocks.append(Text("本次检查无需另行准备资料。"))
    blocks.append(Heading("二、检查部门、事项及检查人员"))
    blocks.append(Table(("检查部门", "检查事项", "检查人员"), tuple(
        (d.name, "\n".join(f"{n}. {i.name}" for n, i in enumerate(d.items, start=1)), _people(d.inspectors))
        for d in departments), (3, 5, 4)))
    blocks.append(Text("检查人员将出示执法证件。你单位对检查人员有回避申请的，请在检查前提出。"
                       "检查中涉及的商业秘密和技术秘密，检查部门依法予以保密。"))
    blocks += _contact_and_signature([d.name for d in departments], lead_department, header, issued_on)
    return Document(title, tuple(blocks))


def render_pre_visit_notice(**kwargs: Any) -> str:
    """``pre_visit_document`` as HTML."""
    return render_html(pre_visit_document(**kwargs))


def measures_text(measures: Any) -> str:
    """A finding's measures as printed documents word them: ``责令改正（限2024年10月18日前）：说明``, one a line."""
    out = []
    for m in measures or ():
        label = MEASURE_LABELS.get(m.get("kind", ""), str(m.get("kind", "")))
        if m.get("deadline"):
            label += f"（限{date_cn(m['deadline'])}前）"
        if m.get("note"):
            label += f"：{m['note']}"
        out.append(label)
    return "\n".join(out)


def result_document(
    *,
    target_name: str,
    departments: Sequence[ResultNoticeDepartment],
    visit_date: dt.date | str,
    issued_on: dt.date | str,
    lead_department: str,
    notice_no: str = "",
    reveal: Collection[str] | None = None,
    header: NoticeHeader | None = None,
    visit_last: dt.date | str | None = None,
) -> Document:
    """一表告知: all departments' results per item on one form, as sent to the enterprise: its findings in full,
    confidential fields marked 不予公示; evidence left out. ``reveal``: the departments whose confidential fields
    this copy shows (None: all, the enterprise's copy); the others' are replaced by a 保密 note."""
    header = header or NoticeHeader(notice_no=notice_no)
    title = "抽查检查结果告知书（一表告知）"
    names = "、".join(d.name for d in departments)
    blocks: list[Block] = [*_head(target_name, header), Text(f"{target_name}：", "salutation")]
    blocks.append(Text(f"{visit_window(visit_date, visit_last)}，{names}依法对你单位开展了"
                       "“双随机、一公开”抽查检查。现将各部门检查结果一并告知如下："))
    rows: list[tuple[str, ...]] = []
    for d in departments:
        shown = reveal is None or d.code in reveal
        for f in d.findings:
            secret = set(f.get("confidential", ()))
            public = redact_finding(f)
            cells = []
            for key, text in (("description", f.get("description") or ""), ("measures", measures_text(f.get("measures")))):
                if key not in secret:
                    cells.append(text)
                elif shown:
                    cells.append(f"{text}\n{NOT_PUBLIC_NOTE}" if text else "")
                else:
                    cells.append(WITHHELD_NOTE if text else "")
            rows.append((str(len(rows) + 1), d.name, d.item_names.get(public["item"], public["item"]),
                         public["result_wording"], cells[0], cells[1]))
    blocks.append(Table(("序号", "检查部门", "检查事项", "检查结果", "发现的问题", "处置措施"), tuple(rows),
                        (1.4, 3, 4, 3, 5, 4), numbered=True))
    blocks.append(Table(("检查部门", "检查日期", "检查人员"), tuple(
        (d.name, date_cn(d.inspected_on), _people(d.inspectors)) for d in departments), (3, 2, 5)))
    blocks.append(Text("对责令改正的事项，请你单位在规定期限内改正并将改正情况报告相关部门。检查结果将通过"
                       "国家企业信用信息公示系统（河南）向社会公示。你单位对检查结果有异议的，"
                       "可向作出检查结果的部门提出。"))
    blocks += _contact_and_signature([d.name for d in departments], lead_department, header, issued_on)
    return Document(title, tuple(blocks))


def render_result_notice(**kwargs: Any) -> str:
    """``result_document`` as HTML."""
    return render_html(result_document(**kwargs))
