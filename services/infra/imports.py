"""Directory files (CSV or XLSX) to rows for ``DualRandom.import_entries``.

A file has one header row (row 1) and one entry per following row. Headers are the English field names of
the kind's ``SPEC`` or their Chinese labels (``统一社会信用代码``, ``企业名称``, ...); a trailing ``*`` or
``（必填）`` (as in the templates) is ignored. Cell values are text; for enumerations the usual Chinese
values are accepted too (``重点`` -> ``key``, ``注销`` -> ``deregistered``, ``现场检查`` -> ``on_site``, ...).

Rules:
- Empty cells are left out of the row's dict: an absent value leaves a stored one alone, and a required field
  left empty is reported missing by validation. Fully empty rows are skipped.
- Row numbers are spreadsheet row numbers: the header is row 1, the first entry row 2.
- A repeated header refuses the whole file (``InvalidInputError``, row 1). A header that is not one of the
  kind's (a county file's own columns: 备注, 联系人, ...) is ignored: its values are not read and the answer
  lists it (``FileRows.report()``: ``ignored_columns``); the other columns import as usual.
- The file is refused (row 1) when a required field has no column (``required_column``, each named: a file of
  another kind imports nothing rather than nothing silently) and when a header holds a control character
  (``control_character``, named by its column letter, not echoed); a file without rows below the header is
  refused (``no_rows``), and so is a binary file (``format``: a PDF, an image, an archive, NUL bytes).
- Codes are normalised: department codes in lower case (``HJ-EEB``), credit codes in upper case (the domain's
  fields fold them); tags in the vocabulary's spelling (``normalise_tag``: ``offsite_monitored``, ``非现场监管``
  -> ``off_site_monitored``); a tag outside the vocabulary is kept as written and reported (``new_tags``).
- CSV: UTF-8 (with or without BOM), UTF-16 with BOM, else GB18030 (what Excel on a Chinese Windows writes);
  comma separated, or tab separated when the header has tabs and no commas.
- XLSX: the first sheet, read-only, cached formula values. Whole numbers become their integer text, dates
  ISO ``YYYY-MM-DD`` (date-times with a time keep it), booleans ``true``/``false``.

Parsing only shapes the rows; every field rule is checked by ``import_entries`` (all rows, all problems).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import decimal
import io
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from domain.directory import KINDS
from domain.errors import FieldProblem, InvalidInputError
from domain.text import CONTROL_RULE, control_character, control_message, normalise_newlines

SUPPORTED = (".csv", ".xlsx")

# -- headers ---------------------------------------------------------------------------------------------
# Per kind, per field: the Chinese labels accepted as headers. The first one is the template's header.
LABELS: dict[str, dict[str, tuple[str, ...]]] = {
    "department": {
        "code": ("部门代码", "代码", "编码"),
        "name": ("部门名称", "名称"),
        "city": ("市", "所属市", "地市"),
        "county": ("县区", "县（区）", "区县", "县"),
        "kind": ("部门类型", "类型"),
    },
    "target": {
        "credit_code": ("统一社会信用代码", "信用代码", "社会信用代码"),
        "name": ("企业名称", "名称", "单位名称", "检查对象名称", "对象名称"),
        "address": ("地址", "住所", "经营地址", "生产经营地址", "住所（经营场所）"),
        "county": ("县区", "县（区）", "区县", "所属县区", "行政区划"),
        "town": ("乡镇", "乡镇（街道）", "乡镇街道", "所属乡镇", "街道", "所在乡镇"),
        "industry": ("行业", "所属行业", "行业类别"),
        "supervision_class": ("监管类别", "监管对象类别", "监管类型", "对象类别"),
        "risk_class": ("信用风险等级", "信用风险分类", "风险等级", "信用风险类别"),
        "tags": ("标签", "分类标签", "标注"),
        "status": ("状态", "经营状态", "登记状态"),
    },
    "inspector": {
        "department": ("部门代码", "部门"),
        "staff_id": ("执法人员编号", "工号", "人员编号", "编号"),
        "name": ("姓名",),
        "certificate_no": ("执法证号", "执法证编号", "证件号"),
        "certificate_expiry": ("执法证有效期", "执法证有效期至", "有效期", "有效期至"),
        "specialties": ("专长", "专业", "执法专长", "业务专长"),
        "region": ("区域", "负责区域", "片区"),
        "active": ("在岗", "在岗状态", "是否在岗"),
        "conflicts": ("回避对象", "回避"),
    },
    "item": {
        "department": ("部门代码", "部门"),
        "code": ("事项编码", "事项编号", "编码"),
        "name": ("事项名称", "抽查事项", "名称"),
        "category": ("事项类别", "类别"),
        "legal_basis": ("法律依据", "检查依据", "依据"),
        "methods": ("检查方式", "抽查方式"),
        "documents": ("需准备资料", "需企业准备资料", "资料清单"),
        "needs_expert": ("需要专家", "是否需要专家"),
        "specialty": ("所需专长", "专长要求"),
        "expert_field": ("专家领域", "所需专家领域"),
        "applies_to_industries": ("适用行业", "适用行业类别"),
        "applies_to_tags": ("适用标签", "适用对象标签"),
        "applies_to_classes": ("适用监管类别", "适用对象类别"),
    },
    "expert": {
        "department": ("部门代码", "部门"),
        "code": ("专家编号", "编号", "编码"),
        "name": ("姓名",),
        "field": ("专业领域", "领域", "专业"),
        "organisation": ("工作单位", "单位", "所在单位"),
        "conflicts": ("回避对象", "回避"),
    },
}

# -- values ----------------------------------------------------------------------------------------------
_SUPERVISION = {
    "重点": "key", "重点监管": "key", "重点监管对象": "key",
    "一般": "general", "一般监管": "general", "一般监管对象": "general",
    "特殊": "special", "特殊监管": "special", "特殊监管对象": "special",
}
_CATEGORY = {"一般检查事项": "general", "一般": "general", "重点检查事项": "key", "重点": "key"}
_STATUS = {
    "正常": "active", "在营": "active", "存续": "active", "在业": "active", "开业": "active", "营业": "active",
    "关闭": "closed", "停业": "closed", "已关闭": "closed", "关停": "closed", "已关闭停业": "closed",
    "注销": "deregistered", "吊销": "deregistered", "撤销": "deregistered", "已注销": "deregistered",
    "已吊销": "deregistered",
}
_RISK = {f"{c}{suffix}": c for c in "ABCD" for suffix in ("", "类", "级")} | {
    f"{c.lower()}": c for c in "ABCD"
}
_METHODS = {
    "现场检查": "on_site", "现场": "on_site",
    "书面检查": "documentary", "书面审查": "documentary", "资料检查": "documentary",
    "检验检测": "testing", "抽样检测": "testing", "监测": "testing",
    "在线监控": "online_monitoring", "在线监测": "online_monitoring",
    "视频监控": "video", "视频": "video",
    "无人机": "drone", "无人机巡查": "drone",
    "遥感": "remote_sensing", "卫星遥感": "remote_sensing",
    "用电监控": "power_use_monitoring", "用电监测": "power_use_monitoring",
    "大数据分析": "big_data", "大数据": "big_data",
    "委托专业机构": "entrusted_body", "委托第三方": "entrusted_body",
}
_TAGS = {
    "正面清单": "positive_list", "执法正面清单": "positive_list",
    "非现场监管": "off_site_monitored", "非现场执法": "off_site_monitored", "在线监控": "off_site_monitored",
    "重点排污单位": "key_pollutant_discharger",
    "危险废物": "hazardous_waste", "危废": "hazardous_waste",
    "医疗废物": "medical_waste",
    "辐射": "radiation", "核技术利用": "radiation",
    "危险化学品": "hazardous_chemicals", "危化品": "hazardous_chemicals",
    "涉VOCs": "vocs", "涉挥发性有机物": "vocs",
}
KNOWN_TAGS = tuple(dict.fromkeys(_TAGS.values()))
"""The tag vocabulary of the target directory (codes; each with its Chinese names in ``_TAGS``)."""

_TAG_SPELLINGS = {
    "offsite_monitored": "off_site_monitored", "offsite": "off_site_monitored", "off_site": "off_site_monitored",
    "positive": "positive_list", "whitelist": "positive_list",
    "key_polluter": "key_pollutant_discharger", "key_discharger": "key_pollutant_discharger",
    "hazwaste": "hazardous_waste", "hw": "hazardous_waste",
    "medicalwaste": "medical_waste", "hazchem": "hazardous_chemicals", "voc": "vocs",
}
"""Spellings seen in county files that mean a known tag (after case folding, ``-`` and spaces read as ``_``)."""

_TAG_CANON = re.compile(r"[\s\-－]+")


def normalise_tag(text: str) -> tuple[str, bool]:
    """``(tag, known)``: a Chinese name or a spelling of a known tag as its code (``Off-Site Monitored``,
    ``offsite_monitored`` and ``非现场监管`` are all ``off_site_monitored``); any other text as given, not known."""
    text = text.strip()
    if text in _TAGS:
        return _TAGS[text], True
    key = _TAG_CANON.sub("_", text.lower()).strip("_")
    if key in _TAG_SPELLINGS:
        return _TAG_SPELLINGS[key], True
    if key in KNOWN_TAGS:
        return key, True
    squashed = key.replace("_", "")
    for tag in KNOWN_TAGS:
        if tag.replace("_", "") == squashed:
            return tag, True
    return text, False
_ACTIVE = {"在岗": "true", "离岗": "false", "不在岗": "false", "停用": "false"}
_DEPARTMENT_KIND = {
    "生态环境": "ecology", "市场监管": "market", "市场监督管理": "market", "应急管理": "emergency",
    "自然资源": "natural_resources", "住房和城乡建设": "housing", "住建": "housing", "水利": "water",
    "税务": "tax", "其他": "other",
}

# (kind or "*", field) -> value map; list fields map each entry.
VALUES: dict[tuple[str, str], dict[str, str]] = {
    ("target", "supervision_class"): _SUPERVISION,
    ("target", "risk_class"): _RISK,
    ("target", "status"): _STATUS,
    ("target", "tags"): _TAGS,
    ("item", "category"): _CATEGORY,
    ("item", "methods"): _METHODS,
    ("item", "applies_to_classes"): _SUPERVISION,
    ("inspector", "active"): _ACTIVE,
    ("department", "kind"): _DEPARTMENT_KIND,
}

# Template: the allowed Chinese values offered as a drop-down (the English values are accepted too).
_CHOICE_HINTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("target", "supervision_class"): ("重点", "一般", "特殊"),
    ("target", "risk_class"): ("A", "B", "C", "D"),
    ("target", "status"): ("正常", "关闭", "注销"),
    ("item", "category"): ("一般检查事项", "重点检查事项"),
    ("item", "needs_expert"): ("是", "否"),
    ("inspector", "active"): ("是", "否"),
}

_LIST_SPLIT = re.compile(r"[;；,，、|\n]")  # as domain.fields splits list text
_SUFFIX = re.compile(r"(\*|＊|[（(]\s*必填\s*[）)]|[（(]\s*选填\s*[）)])+$")
_SPACE = re.compile(r"\s+")

MAX_REPORTED_PROBLEMS = 1000  # problems listed in one answer: a hostile file cannot make it grow without end


def _header_key(text: str) -> str:
    """Normalise a header for lookup: no BOM, no spaces, no required-marker, full-width brackets unified."""
    text = text.replace("\ufeff", "").strip()
    text = _SUFFIX.sub("", text).strip()
    text = _SPACE.sub("", text)
    return text.replace("(", "（").replace(")", "）").lower()


def header_map(kind: str) -> dict[str, str]:
    """Normalised header -> field name, for every header accepted for ``kind``."""
    spec = _spec(kind)
    out: dict[str, str] = {}
    for name in spec.fields:
        out[_header_key(name)] = name
        for label in LABELS.get(kind, {}).get(name, ()):
            out.setdefault(_header_key(label), name)
    return out


def label(kind: str, field: str) -> str:
    """The Chinese header of a field (the field name when it has none)."""
    return LABELS.get(kind, {}).get(field, (field,))[0]


# -- public API ------------------------------------------------------------------------------------------
def parse_file(kind: str, content: bytes | IO[bytes], filename: str, *, complete: bool = True
               ) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a CSV or XLSX file as ``(row number, {field: value})`` for ``import_entries(kind, ...)``: the
    whole file as a list (``iter_file`` gives the same rows one at a time, in constant memory).

    ``filename`` gives the format by its extension (``.csv``/``.xlsx``); a bare ``csv``/``xlsx`` works too,
    and a name without extension is recognised by content. Raises ``InvalidInputError`` for an unsupported
    format, an unreadable file, or unknown/repeated headers (row 1); ``complete`` (an import's file) also for a
    required field without a column and a file without rows (``complete=False``: any columns, maybe no rows).
    """
    return list(iter_file(kind, content, filename, complete=complete))


def iter_file(kind: str, content: bytes | IO[bytes], filename: str, *, complete: bool = True) -> FileRows:
    """The rows of ``parse_file``, read as they are needed: the CSV decoded incrementally, the XLSX sheet parsed
    as a stream, one row in memory at a time. ``content`` is the file's bytes or a seekable binary file (an
    upload's spooled file, an open path): it is read, never copied whole.

    The format, the encoding and the header row are checked at once (``InvalidInputError`` before any row);
    a problem found further down (values in a column without a header, a CSV that stops being readable) is
    raised by the iterator when it gets there, after the rows before it (an import is all or nothing, so
    nothing they made is kept)."""
    _spec(kind)
    source: IO[bytes] = io.BytesIO(content) if isinstance(content, (bytes, bytearray, memoryview)) else content
    source.seek(0)
    fmt = _format(source.read(8), filename)
    source.seek(0)
    table = _xlsx_rows(source) if fmt == ".xlsx" else _csv_rows(source)
    return iter_table(kind, table, complete=complete)


class FileRows(Iterator[tuple[int, dict[str, Any]]]):
    """The rows of a file, with what the import reports besides them once the rows were read (the answer's
    ``ignored_columns`` and ``new_tags``): columns whose header is not one of the kind's (kept out of the
    entries, their values never read; the other columns import as usual) and tags not in the vocabulary
    (``KNOWN_TAGS``), each with the number of rows and the first row naming it."""

    def __init__(self, kind: str, columns: list[str | None], ignored: list[dict[str, str]],
                 it: Iterator[tuple[int, dict[int, Any]]], complete: bool = True) -> None:
        self.ignored_columns = ignored
        self.new_tags: dict[str, dict[str, int]] = {}
        self._rows = _table_rows(kind, columns, it, self, complete)

    def __iter__(self) -> FileRows:
        return self

    def __next__(self) -> tuple[int, dict[str, Any]]:
        return next(self._rows)

    def note_tag(self, tag: str, row: int) -> None:
        seen = self.new_tags.get(tag)
        if seen is None:
            if len(self.new_tags) < MAX_REPORTED_PROBLEMS:
                self.new_tags[tag] = {"rows": 1, "first_row": row}
        else:
            seen["rows"] += 1

    def report(self) -> dict[str, Any]:
        """What the import answer carries besides its counts."""
        return {"ignored_columns": list(self.ignored_columns),
                "new_tags": [{"tag": t, **v} for t, v in sorted(self.new_tags.items(), key=lambda kv: kv[1]["first_row"])]}


def rows_from_table(
    kind: str, table: Iterable[Sequence[Any] | tuple[int, dict[int, Any]]], *, complete: bool = True
) -> list[tuple[int, dict[str, Any]]]:
    """The same as ``parse_file`` for an already-read table (first row: headers). A row is a sequence of cells,
    or (its row number, {0-based column: value}) as the sparse XLSX reader gives them."""
    return list(iter_table(kind, table, complete=complete))


def iter_table(
    kind: str, table: Iterable[Sequence[Any] | tuple[int, dict[int, Any]]], *, complete: bool = True
) -> FileRows:
    """``rows_from_table`` one row at a time: the header is read and checked at once, the rows as they are
    asked for."""
    it = iter(_numbered(table))
    first = next(it, None)
    header = None if first is None else _dense(first[1])
    if header is not None and all(_cell(v) is None for v in header):
        raise InvalidInputError([FieldProblem("file", "empty", "the first row must hold the column headers", 1)])
    if header is None:
        raise InvalidInputError([FieldProblem("file", "empty", "the file has no header row and no rows", 1)])
    columns, ignored = _columns(kind, header)
    if complete:
        _required_columns(kind, columns)
    return FileRows(kind, columns, ignored, it, complete)


_IGNORED = "?"  # the column of a header that is not the kind's: its values are left out


def _table_rows(
    kind: str, columns: list[str | None], it: Iterator[tuple[int, dict[int, Any]]], report: FileRows | None = None,
    complete: bool = True,
) -> Iterator[tuple[int, dict[str, Any]]]:
    spec = _spec(kind)
    unnamed: list[FieldProblem] = []
    tags = kind in ("target", "item")
    some = False
    for rownum, raw in it:
        data: dict[str, Any] = {}
        for idx, value in raw.items():
            name = columns[idx] if idx < len(columns) else None
            if name == _IGNORED:
                continue
            text = _cell(value)
            if text is None:
                continue
            if name is None:
                if len(unnamed) < MAX_REPORTED_PROBLEMS:
                    unnamed.append(
                        FieldProblem(_column_letter(idx), "unknown_column", "has values but no header", rownum)
                    )
                continue
            if tags and name in ("tags", "applies_to_tags"):
                data[name] = _tags(text, rownum, report)
            else:
                data[name] = _map_value(kind, name, text, spec.fields[name].kind == "list")
        if data:
            some = True
            yield rownum, data
    if unnamed:
        raise InvalidInputError(unnamed, "values in columns without a header; nothing was imported")
    if complete and not some:
        raise InvalidInputError([FieldProblem("file", "no_rows", "the file has no rows below its header row", 2)])


def write_template(kind: str, path: str | Path) -> Path:
    """Write an XLSX template for ``kind``: Chinese headers (``*`` marks required), an example-free sheet
    with text-formatted code columns and drop-downs for enumerations, and a sheet ``说明`` explaining each
    column. Returns the path."""
    path = Path(path)
    path.write_bytes(template_bytes(kind))
    return path


def template_bytes(kind: str) -> bytes:
    """The XLSX template of ``write_template`` as bytes (for an HTTP download)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    spec = _spec(kind)
    wb = Workbook()
    ws = wb.active
    ws.title = _SHEET_TITLES.get(kind, kind)
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    text_rows = 1000
    for col, f in enumerate(spec.fields.values(), start=1):
        cell = ws.cell(row=1, column=col, value=label(kind, f.name) + ("*" if f.required else ""))
        cell.font = bold
        cell.fill = fill
        cell.alignment = Alignment(horizontal="center")
        letter = get_column_letter(col)
        ws.column_dimensions[letter].width = max(12, 2 * len(label(kind, f.name)) + 6)
        if f.kind == "str" and (f.identity or f.name in {"certificate_no", "credit_code"}):
            # codes stay text (column style): Excel must not turn 18 digits into 9.14107E+17
            ws.column_dimensions[letter].number_format = "@"
        hints = _CHOICE_HINTS.get((kind, f.name))
        if hints is None and f.kind == "bool":
            hints = ("是", "否")
        if hints:
            dv = DataValidation(type="list", formula1='"' + ",".join(hints) + '"', allow_blank=True)
            dv.error = "请选择下拉列表中的值"
            ws.add_data_validation(dv)
            dv.add(f"{letter}2:{letter}{text_rows + 1}")
    ws.freeze_panes = "A2"

    notes = wb.create_sheet("说明")
    notes.append(["列名", "字段", "必填", "说明"])
    for c in notes[1]:
        c.font = bold
    for f in spec.fields.values():
        notes.append([label(kind, f.name), f.name, "是" if f.required else "否", _describe(kind, f)])
    notes.append([])
    notes.append(["", "", "", "第1行为表头，第2行起每行一条记录；空单元格表示不修改已有值；多个值用；或、分隔。"])
    notes.append(["", "", "", "导入为全部或全不：任一行有误则不保存任何数据，并列出每个错误的行号、列和原因。"])
    for letter, width in zip("ABCD", (18, 20, 6, 70), strict=True):
        notes.column_dimensions[letter].width = width

    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# -- internals -------------------------------------------------------------------------------------------
_SHEET_TITLES = {
    "target": "检查对象名录库", "inspector": "执法检查人员名录库", "item": "随机抽查事项清单",
    "expert": "专家库", "department": "部门",
}


def _spec(kind: str):
    cls = KINDS.get(kind)
    if cls is None:
        raise InvalidInputError(
            [FieldProblem("kind", "choice", f"{kind!r} is not one of: {', '.join(KINDS)}")]
        )
    return cls.SPEC


_BINARY = {b"%PDF-": "a PDF document", b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image",
           b"GIF8": "a GIF image", b"\x1f\x8b": "a gzip archive", b"\x7fELF": "a program",
           b"Rar!": "a RAR archive", b"7z\xbc\xaf": "a 7-Zip archive"}


def _format(content: bytes, filename: str) -> str:
    """The format by the name, else by the first bytes (``content``: the file's first 8 bytes are enough); a
    file whose first bytes are those of a known binary format (PDF, images, archives) is refused whatever its name."""
    for magic, what in _BINARY.items():
        if content.startswith(magic):
            raise InvalidInputError([FieldProblem("file", "format", f"is {what}, not a CSV or XLSX file")])
    name = (filename or "").strip().lower()
    ext = Path(name).suffix if "." in name else (f".{name}" if f".{name}" in SUPPORTED else "")
    is_zip = content[:4] == b"PK\x03\x04"
    if not ext:
        if is_zip:
            return ".xlsx"
        if content[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
            ext = ".xls"
        else:
            return ".csv"
    if ext not in SUPPORTED:
        hint = " (save an .xls workbook as .xlsx)" if ext in {".xls", ".et", ".ods", ".numbers"} else ""
        raise InvalidInputError(
            [FieldProblem("file", "format", f"{ext} files are not supported; use one of {', '.join(SUPPORTED)}{hint}")]
        )
    if ext == ".csv" and is_zip:
        raise InvalidInputError([FieldProblem("file", "format", "the .csv file is a workbook; name it .xlsx")])
    return ext


_DECODE_BLOCK = 1 << 20  # bytes read at a time, to find the encoding and then to decode


def _encoding(source: IO[bytes]) -> str:
    """The CSV's encoding: UTF-16 when it has that BOM and decodes, else UTF-8 (BOM or not), else GB18030; each
    candidate is checked by decoding the whole file a block at a time (constant memory), as ``bytes.decode``
    would have."""
    source.seek(0)
    head = source.read(2)
    candidates = (["utf-16"] if head in (b"\xff\xfe", b"\xfe\xff") else []) + ["utf-8-sig", "gb18030"]
    for encoding in candidates:
        source.seek(0)
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            while block := source.read(_DECODE_BLOCK):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        source.seek(0)
        return encoding
    source.seek(0)
    if b"\x00" in source.read(_DECODE_BLOCK):  # no text file has NUL bytes outside UTF-16
        raise InvalidInputError([FieldProblem("file", "format", "is binary, not a CSV or XLSX file")])
    raise InvalidInputError([FieldProblem("file", "encoding", "the CSV file is neither UTF-8 nor GB18030 text")])


def _csv_rows(source: IO[bytes]) -> Iterator[list[str]]:
    """The CSV's rows as lists of cells, decoded and split as they are read (the encoding is found first)."""
    encoding = _encoding(source)
    text = io.TextIOWrapper(source, encoding=encoding, newline="")
    try:
        first = text.readline()
        probe = first.split("\n", 1)[0]
        delimiter = "\t" if "\t" in probe and "," not in probe else ","
        try:
            yield from csv.reader(itertools.chain([first], text), delimiter=delimiter)
        except csv.Error as exc:
            raise InvalidInputError([FieldProblem("file", "format", f"not a readable CSV file: {exc}")]) from None
    finally:
        with contextlib.suppress(ValueError):  # already closed (a generator let go unfinished)
            text.detach()  # the caller's file stays open (closing the wrapper would close it)


def _numbered(table: Iterable[Any]) -> Iterator[tuple[int, dict[int, Any]]]:
    """(row number, {column: value}) for every row: sparse rows as they are, sequences numbered from 1."""
    for n, row in enumerate(table, start=1):
        if type(row) is tuple and len(row) == 2 and isinstance(row[1], dict):
            yield row
        else:
            yield n, {i: v for i, v in enumerate(row) if v != ""}  # a row of 10,000 commas: no 10,000 entries


def _dense(cells: dict[int, Any]) -> list[Any]:
    out: list[Any] = [None] * (max(cells) + 1 if cells else 0)
    for idx, value in cells.items():
        out[idx] = value
    return out


MAX_XLSX_PART_BYTES = 16 * 2**20  # a workbook part read whole (shared strings, styles, ...), uncompressed
MAX_XLSX_CELL_CHARS = 32_767  # Excel's limit for one cell


def _check_xlsx_parts(source: IO[bytes]) -> None:
    """Refuse, before reading them, the parts openpyxl reads whole whose uncompressed size passes the ceiling:
    a 20 MB upload can hold gigabytes of compressed ``sharedStrings.xml``. Only the worksheets are streamed, so
    only they may be larger. ``zipfile`` never inflates a part beyond the size its directory declares."""
    import zipfile

    try:
        with zipfile.ZipFile(source) as archive:
            for info in archive.infolist():
                name = info.filename.lower()
                if name.startswith("xl/worksheets/") or info.file_size <= MAX_XLSX_PART_BYTES:
                    continue
                raise InvalidInputError([FieldProblem(
                    "file", "size", f"the workbook part {info.filename[:100]} holds {info.file_size} bytes "
                    f"uncompressed; at most {MAX_XLSX_PART_BYTES} are read (import a larger directory as CSV)")])
    except zipfile.BadZipFile:
        raise InvalidInputError([FieldProblem("file", "format", "not a readable .xlsx workbook (BadZipFile)")]) \
            from None
    finally:
        source.seek(0)


def _xlsx_rows(source: IO[bytes]) -> Iterator[tuple[int, dict[int, Any]]]:
    """The first sheet's rows as (row number, {0-based column: value}), read as they come: only the cells the
    file holds, so a cell far to the right (column XFD) or far down costs one entry, not a padded row."""
    from openpyxl import load_workbook
    from openpyxl.worksheet._reader import WorkSheetParser

    _check_xlsx_parts(source)
    try:
        wb = load_workbook(source, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - zip, XML or openpyxl errors: not a workbook we can read
        raise InvalidInputError(
            [FieldProblem("file", "format", f"not a readable .xlsx workbook ({type(exc).__name__})")]
        ) from None
    try:
        if not wb.worksheets:
            return
        ws = wb.worksheets[0]
        longest = max(map(len, ws._shared_strings), default=0)
        if longest > MAX_XLSX_CELL_CHARS:
            raise InvalidInputError([FieldProblem(
                "file", "size", f"a shared string of the workbook has {longest} characters; a cell holds at most "
                f"{MAX_XLSX_CELL_CHARS} (Excel's own limit)")])
        # the read-only sheet's own row reader pads every row to its last cell: its parser gives the cells alone
        # (a stored dimension is not trusted either: it could cut rows off)
        with ws._get_source() as src:
            parser = WorkSheetParser(src, ws._shared_strings, data_only=True, epoch=wb.epoch,
                                     date_formats=wb._date_formats,
                                     timedelta_formats=wb._timedelta_formats)
            for number, cells in parser.parse():
                row = {c["column"] - 1: c["value"] for c in cells if c["value"] is not None}
                for value in row.values():
                    if isinstance(value, str) and len(value) > MAX_XLSX_CELL_CHARS:
                        raise InvalidInputError([FieldProblem(
                            "file", "size", f"row {number} has a cell of {len(value)} characters; a cell holds at "
                            f"most {MAX_XLSX_CELL_CHARS} (Excel's own limit)")])
                if row:
                    yield number, row
    except InvalidInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - XML errors inside the sheet: not a workbook we can read
        raise InvalidInputError(
            [FieldProblem("file", "format", f"not a readable .xlsx workbook ({type(exc).__name__})")]
        ) from None
    finally:
        wb.close()


def _tags(text: str, row: int, report: FileRows | None) -> list[str]:
    """A tag cell: each tag in the vocabulary's spelling; one not in it is kept as written and reported."""
    out: list[str] = []
    for part in _LIST_SPLIT.split(text):
        if not part.strip():
            continue
        tag, known = normalise_tag(part)
        if not known and report is not None:
            report.note_tag(tag, row)
        out.append(tag)
    return out


def _columns(kind: str, header: Sequence[Any]) -> tuple[list[str | None], list[dict[str, str]]]:
    """The field of each column (``_IGNORED`` for a header that is not the kind's), and those ignored columns
    (``{"column": letter, "header": text}``) for the answer. A repeated header refuses the file."""
    known = header_map(kind)
    columns: list[str | None] = []
    ignored: list[dict[str, str]] = []
    problems: list[FieldProblem] = []
    first_at: dict[str, str] = {}
    for idx, raw in enumerate(header):
        text = _cell(raw)
        if text is None:
            columns.append(None)
            continue
        code = control_character(normalise_newlines(text))
        if code is not None:  # named by its position: the header itself is not echoed back
            problems.append(FieldProblem(_column_letter(idx), CONTROL_RULE, f"the header {control_message(code)}", 1))
            columns.append(_IGNORED)
            continue
        name = known.get(_header_key(text))
        if name is None:
            if len(ignored) < MAX_REPORTED_PROBLEMS:
                ignored.append({"column": _column_letter(idx).removeprefix("column "), "header": text[:100]})
            columns.append(_IGNORED)
            continue
        if name in first_at:
            problems.append(FieldProblem(text, "duplicate_column", f"repeats column {first_at[name]!r} ({name})", 1))
        else:
            first_at[name] = text
        columns.append(name)
    if problems:
        raise InvalidInputError(problems, f"{len(problems)} bad column headers; nothing was imported")
    return columns, ignored


def _required_columns(kind: str, columns: list[str | None]) -> None:
    """A file is a full list: every required field has its column (a file of another kind has none of them)."""
    missing = [FieldProblem(name, "required_column", f"the file has no column {label(kind, name)} ({name})", 1)
               for name, f in _spec(kind).fields.items() if f.required and name not in columns]
    if missing:
        raise InvalidInputError(missing, f"{len(missing)} required columns missing; nothing was imported")


def _cell(value: Any) -> str | None:
    """A cell as text; None for an empty one."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, decimal.Decimal):
        return str(int(value)) if value == value.to_integral_value() else str(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    text = str(value).replace("\ufeff", "").strip()
    return text or None


def _map_value(kind: str, field: str, text: str, is_list: bool) -> Any:
    mapping = VALUES.get((kind, field))
    if mapping is None:
        return text
    if not is_list:
        return mapping.get(text, mapping.get(_SPACE.sub("", text), text))
    parts = [p.strip() for p in _LIST_SPLIT.split(text)]
    return [mapping.get(p, p) for p in parts if p]


def _column_letter(idx: int) -> str:
    from openpyxl.utils import get_column_letter

    return f"column {get_column_letter(idx + 1)}"


def _describe(kind: str, f: Any) -> str:
    parts: list[str] = []
    if f.kind == "date":
        parts.append("日期，格式 YYYY-MM-DD")
    elif f.kind == "bool":
        parts.append("是/否")
    elif f.kind == "list":
        parts.append("可填多个，用；或、分隔")
    hints = _CHOICE_HINTS.get((kind, f.name))
    if f.choices:
        mapping = VALUES.get((kind, f.name), {})
        shown = []
        for choice in f.choices:
            zh = [k for k, v in mapping.items() if v == choice and k.upper() != choice.upper()]
            shown.append(f"{choice}（{zh[0]}）" if zh else choice)
        parts.append("取值：" + "、".join(shown))
    elif hints:
        parts.append("取值：" + "、".join(hints))
    if (kind, f.name) in {("target", "tags"), ("item", "applies_to_tags")}:
        parts.append("如 正面清单、非现场监管、重点排污单位、危险废物、医疗废物、辐射、危险化学品、涉VOCs；"
                     "其他标签照原样保存并在导入结果中列出")
    if f.name == "credit_code":
        parts.append("18位，按 GB 32100-2015 校验；请将本列设为文本格式")
    if f.name == "conflicts":
        parts.append("需回避的检查对象的统一社会信用代码（或检查对象编号 UUID）；须已在检查对象名录库中")
    if f.name == "department":
        parts.append("部门代码，不区分大小写（HJ-EEB 即 hj-eeb）")
    if f.identity:
        parts.append("标识记录，导入后不可修改")
    return "；".join(parts)
