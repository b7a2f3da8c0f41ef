"""Excel (XLSX) and CSV files people download: a printable document's tables as a sheet, a directory export that
streams (openpyxl's write-only workbook, rows read by keyset pages, the file spooled to disk past 8 MiB), boards as
label/value rows, and the import templates per kind, from one source (``services.infra.imports``)."""

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from domain.directory import KINDS
from domain.documents import Document, Fields, Heading, Signatures, Table, Text
from services.infra.cells import FORMULA_STARTS
from services.infra.imports import label, template_bytes

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv"  # litestar adds the charset (utf-8) once
SPOOL = 8 * 2**20  # an export is kept in memory up to this size, then on disk
CHUNK = 64 * 1024
_BAD_TITLE = str.maketrans(dict.fromkeys("[]:*?/\\", " "))
KIND_FILES = {"target": "targets", "inspector": "inspectors", "item": "items", "expert": "experts"}
"""Kinds with an import template, by the plural their files and endpoints use."""


def _title(text: str) -> str:
    return text.translate(_BAD_TITLE)[:31] or "Sheet"


def _save(wb: Workbook) -> IO[bytes]:
    out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL)  # noqa: SIM115 (handed to the response)
    wb.save(out)
    out.seek(0)
    return out


def chunks(file: IO[bytes]) -> Iterator[bytes]:
    """A saved workbook, read back in 64 KiB pieces (then closed)."""
    try:
        while piece := file.read(CHUNK):
            yield piece
    finally:
        file.close()


def _header(ws: Any, values: Sequence[str]) -> None:
    bold = Font(bold=True)
    row = []
    for v in values:
        cell = WriteOnlyCell(ws, value=v)
        cell.font = bold
        row.append(cell)
    ws.append(row)


# The two characters of the text rule's range that XML 1.0 cannot carry (noncharacters): openpyxl writes them as
# they are and the file no longer opens; they are written as U+FFFD, the replacement character.
_NOT_XML = str.maketrans({"\ufffe": "\ufffd", "\uffff": "\ufffd"})


def _text(ws: Any, value: Any) -> Any:
    """A value as its cell: text that a spreadsheet could take for a formula (``=HYPERLINK(...)`` in an
    enterprise's name) is written as a text cell, so it opens as the very text and imports back unchanged
    (OWASP's CSV-injection guidance, for XLSX: openpyxl would otherwise write any ``=...`` as a formula).
    U+FFFE and U+FFFF, which XML cannot hold, become U+FFFD (``_NOT_XML``)."""
    if not isinstance(value, str):
        return value
    value = value.translate(_NOT_XML)
    if value.startswith(FORMULA_STARTS):
        cell = WriteOnlyCell(ws, value=value)
        cell.data_type = "s"
        return cell
    return value


def _append(ws: Any, values: Iterable[Any]) -> None:
    ws.append([_text(ws, v) for v in values])


def document_xlsx(doc: Document) -> bytes:
    """A printable document's content as one sheet: the title, label/value rows, each table with its header row
    (a cell's lines stay lines within the cell)."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(_title(doc.title))
    _append(ws, [doc.title])
    for b in doc.blocks:
        if isinstance(b, Fields):
            for lab, value in b.pairs:
                _append(ws, [lab, value])
        elif isinstance(b, Table):
            _append(ws, [])
            _header(ws, b.headers)
            for row in b.rows:
                _append(ws, list(row))
        elif isinstance(b, (Text, Heading)):
            _append(ws, [b.text])
        elif isinstance(b, Signatures):
            for role, name in b.lines:
                _append(ws, [f"{role}（签名）", name])
    with _save(wb) as f:
        return f.read()


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, (list, tuple)):
        return "；".join(str(v) for v in value)
    return value


def directory_xlsx(kind: str, rows: Iterable[Mapping[str, Any]]) -> IO[bytes]:
    """A directory as an XLSX whose header row is the import's (so an export imports again): one row an entry,
    written as the rows come (write-only: memory stays flat); the saved file is spooled to disk when large."""
    fields = list(KINDS[kind].SPEC.fields)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(_title(KIND_FILES.get(kind, kind)))
    _header(ws, [label(kind, f) for f in fields])  # no id column: the key columns derive it
    for r in rows:
        _append(ws, [_cell(r.get(f)) for f in fields])
    return _save(wb)


BOARD_LABELS = {
    "department": "部门", "year": "年度", "quarter": "季度", "tasks": "抽查任务", "inspectors": "检查人员",
    "awaiting_review": "待审核", "referrals_received": "收到的移送", "referrals_sent": "发出的移送",
    "publication_deadlines": "公示期限", "id": "系统编号", "number": "编号", "name": "名称", "lead": "牵头部门",
    "role": "角色", "departments": "参与部门", "period": "抽查时间", "origin": "来源", "is_joint": "联合抽查",
    "state": "状态", "teams_drawn": "已抽检查组", "inspector_id": "检查人员ID", "visits": "检查",
    "assignment_id": "检查ID", "target_id": "检查对象ID", "task_id": "任务ID", "visit_date": "检查日期",
    "kind": "类型", "to": "接收方", "from_department": "移送部门", "transferred_on": "移送日期",
    "respond_by": "回复期限", "outcome_by": "结果反馈期限", "overdue": "已逾期", "item": "事项",
    "inspection_id": "检查记录ID", "copy_to": "抄送", "formula": "公式", "goal": "目标", "rate": "比率",
    "value": "值", "meets_goal": "达标", "coverage": "覆盖率", "joint_share": "联合抽查占比",
    "publication": "公示率", "timeliness": "公示及时率", "violation_discovery": "问题发现率",
    "off_site_share": "非现场检查占比", "follow_up_coverage": "回访覆盖率", "referral_closure": "移送办结率",
    "visits_per_inspector": "人均检查家次", "own": "本部门任务", "joint": "联合任务", "case_triggered": "案件线索核查",
    "approved": "已审核", "published": "已公示", "overdue_now": "当前逾期", "on_time": "按期公示",
    "findings": "检查结果数", "with_problem": "发现问题数", "off_site": "非现场", "targets_inspected": "已检查对象",
    "referrals": "移送数", "closed": "已办结", "by_class": "按监管类别", "key": "重点监管对象",
    "general": "一般监管对象", "special": "特殊监管对象", "drawn": "已抽取", "quota": "应抽数",
    "directory_size": "名录数", "baseline_minimum": "基准下限", "against_quota": "对应抽数",
    "against_baseline_minimum": "对基准下限", "meets_baseline_minimum": "达到基准下限",
    "certificate_no": "执法证号", "target_name": "检查对象名称", "credit_code": "统一社会信用代码", "address": "地址",
    "item_name": "事项名称", "from_department_name": "移送部门名称", "to_name": "接收方名称", "version": "版本",
    "position": "日志位置", "declared_overlaps": "声明的重叠抽取", "follow_ups": "回访轮次", "inspections": "检查记录数",
    "department_name": "部门名称", "task_name": "任务名称", "lead_name": "牵头部门名称",
}
"""Chinese column and row labels of the boards' keys (a key without one keeps its name: tests/e2e/
test_http_documents.py checks that no header of an export is left in ASCII)."""
LABEL_JOINER = "／"
"""Between the labels of a nested key's parts (``联合抽查占比／公式``): a header never shows the key's dots."""


def _label(key: str) -> str:
    return LABEL_JOINER.join(BOARD_LABELS.get(part, part) for part in key.split("."))


def _column_labels(keys: Sequence[str]) -> list[str]:
    """A sheet's column labels: an inner record's column (``visits.target_name``) by its own label (检查对象名称)
    unless another column of the sheet has that label, then by its path (``检查／状态``)."""
    short = [_label(k.rsplit(".", 1)[-1]) for k in keys]
    return [s if short.count(s) == 1 else _label(k) for k, s in zip(keys, short, strict=True)]


def _records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _rows(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Records flattened; a record holding a list of records becomes one row per inner record (its own scalar
    fields repeated), so an inspector's visits are rows, not a cell of text."""
    out: list[dict[str, Any]] = []
    for r in records:
        inner = [k for k, v in r.items() if _records(v)]
        head = _flat({k: v for k, v in r.items() if k not in inner})
        if not inner:
            out.append(head)
            continue
        for k in inner:
            out += [{**head, **{f"{k}.{ik}": iv for ik, iv in row.items()}} for row in _rows(r[k])]
    return out


def board_xlsx(title: str, sections: Mapping[str, Any]) -> bytes:
    """A board (inbox, KPIs): a first sheet 概要 of its scalar and nested values as label/value rows, and one
    sheet per list of records (columns labelled in Chinese where the key has a label)."""
    wb = Workbook(write_only=True)
    summary = wb.create_sheet("概要")
    _append(summary, [title])
    for name, value in sections.items():
        if isinstance(value, list) and (not value or _records(value)):
            rows = _rows(value)
            ws = wb.create_sheet(_title(_label(name)))
            keys = list(dict.fromkeys(k for row in rows for k in row))
            _header(ws, _column_labels(keys) or [_label(name)])
            for row in rows:
                _append(ws, [_plain(row.get(k)) for k in keys])
            _append(summary, [_label(name), f"{len(value)}条（见工作表“{_title(_label(name))}”）"])
        elif isinstance(value, Mapping):
            for k, v in _flat(value, name + ".").items():
                _append(summary, [_label(k), _plain(v)])
        else:
            _append(summary, [_label(name), _plain(value)])
    with _save(wb) as f:
        return f.read()


def _flat(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in value.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return _cell(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value):
        return _cell(list(value))
    return str(value)


def template_csv(kind: str) -> bytes:
    """The CSV import template of ``kind``: the header row of Chinese labels (UTF-8 with BOM, for Excel), the
    columns and order of the XLSX template and of the example files in docs/templates/."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([label(kind, f) for f in KINDS[kind].SPEC.fields])
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


def template(kind: str, fmt: str) -> bytes:
    """The import template of ``kind`` (``target``, ``inspector``, ``item``, ``expert``) as ``xlsx`` or ``csv``."""
    return template_bytes(kind) if fmt == "xlsx" else template_csv(kind)
