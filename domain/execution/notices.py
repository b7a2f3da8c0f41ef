"""Printable notices to the inspected enterprise: HTML strings (Chinese, A4 print CSS, every value escaped).

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
import html
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.execution.inspection import redact_finding
from domain.execution.vocabulary import MEASURE_LABELS

__all__ = [
    "NoticeDepartment",
    "NoticeItem",
    "ResultNoticeDepartment",
    "documents_to_prepare",
    "html_sha256",
    "render_pre_visit_notice",
    "render_result_notice",
]

_SPACE = re.compile(r"\s+")

NOT_PUBLIC_NOTE = "（涉及商业秘密，不予公示）"
"""Next to a confidential field on the enterprise's copy: told to the enterprise, kept from the public."""
WITHHELD_NOTE = "（保密内容，已另行告知被检查单位）"
"""In place of another department's confidential field on a partner department's copy."""

_CSS = """
@page { size: A4; margin: 20mm 18mm; }
* { box-sizing: border-box; }
body { font-family: "SimSun", "Songti SC", "Noto Serif CJK SC", serif; font-size: 12pt; line-height: 1.7;
       color: #000; margin: 0 auto; max-width: 180mm; }
h1 { font-family: "SimHei", "Heiti SC", "Noto Sans CJK SC", sans-serif; font-size: 18pt; text-align: center;
     margin: 0 0 6mm; letter-spacing: 0.1em; }
h2 { font-size: 13pt; margin: 5mm 0 2mm; }
p { margin: 0 0 2mm; text-indent: 2em; }
p.salutation, p.signature, p.meta { text-indent: 0; }
p.signature { text-align: right; margin-top: 10mm; }
table { width: 100%; border-collapse: collapse; margin: 2mm 0 4mm; }
th, td { border: 1px solid #000; padding: 1.5mm 2mm; vertical-align: top; text-align: left; }
th { background: #eee; }
thead { display: table-header-group; }
tr { page-break-inside: avoid; break-inside: avoid; }
.num { width: 10mm; text-align: center; }
@media print { body { max-width: none; } th { background: none; } .no-print { display: none; } }
"""


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


@dataclass(frozen=True)
class ResultNoticeDepartment:
    """A department's part of the result notice: its item names and its findings (full or redacted)."""

    code: str
    name: str
    item_names: Mapping[str, str]
    findings: Sequence[Mapping[str, Any]]
    inspected_on: str = ""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


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


def _date_cn(value: dt.date | str) -> str:
    d = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
    return f"{d.year}年{d.month}月{d.day}日"


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )


def html_sha256(document: str) -> str:
    """The SHA-256 of a rendered notice (UTF-8), recorded when it is issued."""
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def render_pre_visit_notice(
    *,
    target_name: str,
    departments: Sequence[NoticeDepartment],
    visit_from: dt.date | str,
    visit_to: dt.date | str,
    issued_on: dt.date | str,
    lead_department: str,
    contact: str = "",
    notice_no: str = "",
) -> str:
    """一次告知书: what the enterprise prepares for the (joint) visit, every document once."""
    joint = len(departments) > 1
    names = "、".join(d.name for d in departments)
    title = "联合抽查检查一次告知书" if joint else "抽查检查一次告知书"
    docs = documents_to_prepare(departments)
    parts = [f"<h1>{_e(title)}</h1>\n"]
    if notice_no:
        parts.append(f'<p class="meta">编号：{_e(notice_no)}</p>\n')
    parts.append(f'<p class="salutation">{_e(target_name)}：</p>\n')
    parts.append(
        f"<p>根据“双随机、一公开”监管工作安排，{_e(names)}将于{_e(_date_cn(visit_from))}至"
        f"{_e(_date_cn(visit_to))}期间对你单位开展{'部门联合' if joint else ''}随机抽查检查，"
        "一次检查覆盖以下全部事项。"
        "为减少对你单位正常生产经营活动的影响，现将需要准备的资料一次告知如下，请提前准备，检查时提供。</p>\n"
    )
    parts.append("<h2>一、需准备的资料</h2>\n")
    if docs:
        rows = "".join(
            f'<tr><td class="num">{n}</td><td>{_e(doc)}</td><td>{_e("、".join(depts))}</td></tr>\n'
            for n, (doc, depts) in enumerate(docs, start=1)
        )
        parts.append(
            '<table>\n<thead><tr><th class="num">序号</th><th>资料名称</th><th>需要的部门</th></tr></thead>\n'
            f"<tbody>\n{rows}</tbody>\n</table>\n"
        )
    else:
        parts.append("<p>本次检查无需另行准备资料。</p>\n")
    parts.append("<h2>二、检查部门及事项</h2>\n")
    rows = ""
    for d in departments:
        items = "<br>".join(f"{n}. {_e(i.name)}" for n, i in enumerate(d.items, start=1))
        rows += f"<tr><td>{_e(d.name)}</td><td>{items}</td></tr>\n"
    parts.append(
        "<table>\n<thead><tr><th>检查部门</th><th>检查事项</th></tr></thead>\n"
        f"<tbody>\n{rows}</tbody>\n</table>\n"
    )
    parts.append(
        "<p>检查人员将出示执法证件。你单位对检查人员有回避申请的，请在检查前提出。"
        "检查中涉及的商业秘密和技术秘密，检查部门依法予以保密。</p>\n"
    )
    if contact:
        parts.append(f'<p class="meta">联系人及电话：{_e(contact)}</p>\n')
    parts.append(f'<p class="signature">{_e(lead_department)}<br>{_e(_date_cn(issued_on))}</p>\n')
    return _page(title, "".join(parts))


def _measures_text(measures: Any) -> str:
    if not measures:
        return ""
    out = []
    for m in measures:
        label = MEASURE_LABELS.get(m.get("kind", ""), str(m.get("kind", "")))
        if m.get("deadline"):
            label += f"（限{_date_cn(m['deadline'])}前）"
        if m.get("note"):
            label += f"：{m['note']}"
        out.append(_e(label))
    return "<br>".join(out)


def render_result_notice(
    *,
    target_name: str,
    departments: Sequence[ResultNoticeDepartment],
    visit_date: dt.date | str,
    issued_on: dt.date | str,
    lead_department: str,
    notice_no: str = "",
    reveal: Collection[str] | None = None,
) -> str:
    """一表告知: all departments' results per item on one form, as sent to the enterprise: its findings in full,
    confidential fields marked 不予公示; evidence left out. ``reveal``: the departments whose confidential fields
    this copy shows (None: all, the enterprise's copy); the others' are replaced by a 保密 note."""
    title = "抽查检查结果告知书（一表告知）"
    parts = [f"<h1>{_e(title)}</h1>\n"]
    if notice_no:
        parts.append(f'<p class="meta">编号：{_e(notice_no)}</p>\n')
    parts.append(f'<p class="salutation">{_e(target_name)}：</p>\n')
    parts.append(
        f"<p>{_e(_date_cn(visit_date))}，{_e('、'.join(d.name for d in departments))}依法对你单位开展了"
        "“双随机、一公开”抽查检查。现将各部门检查结果一并告知如下：</p>\n"
    )
    rows = ""
    n = 0
    for d in departments:
        shown = reveal is None or d.code in reveal
        for f in d.findings:
            secret = set(f.get("confidential", ()))
            public = redact_finding(f)
            n += 1
            cells = []
            for key, text in (("description", _e(f.get("description") or "")),
                              ("measures", _measures_text(f.get("measures")))):
                if key not in secret:
                    cells.append(text)
                elif shown:
                    cells.append(f"{text}<br>{_e(NOT_PUBLIC_NOTE)}" if text else "")
                else:
                    cells.append(_e(WITHHELD_NOTE) if text else "")
            rows += (
                f'<tr><td class="num">{n}</td><td>{_e(d.name)}</td>'
                f"<td>{_e(d.item_names.get(public['item'], public['item']))}</td>"
                f"<td>{_e(public['result_wording'])}</td>"
                f"<td>{cells[0]}</td><td>{cells[1]}</td></tr>\n"
            )
    parts.append(
        '<table>\n<thead><tr><th class="num">序号</th><th>检查部门</th><th>检查事项</th><th>检查结果</th>'
        f"<th>发现的问题</th><th>处置措施</th></tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n"
    )
    parts.append(
        "<p>对责令改正的事项，请你单位在规定期限内改正并将改正情况报告相关部门。检查结果将通过"
        "国家企业信用信息公示系统（河南）向社会公示。你单位对检查结果有异议的，"
        "可向作出检查结果的部门提出。</p>\n"
    )
    parts.append(f'<p class="signature">{_e(lead_department)}<br>{_e(_date_cn(issued_on))}</p>\n')
    return _page(title, "".join(parts))
