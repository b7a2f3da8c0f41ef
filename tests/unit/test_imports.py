"""Parsing directory files (CSV/XLSX) into rows for import_entries: no database."""

import contextlib
import csv
import datetime as dt
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from domain.directory import KINDS
from domain.errors import InvalidInputError
from services.infra.imports import (
    LABELS,
    SUPPORTED,
    header_map,
    iter_file,
    label,
    normalise_tag,
    parse_file,
    write_template,
)
from tests.support.builders import credit_code


def csv_bytes(rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    buf = io.StringIO(newline="")
    csv.writer(buf).writerows(rows)
    return buf.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list[object]], extra_sheet: bool = False) -> bytes:
    wb = Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    if extra_sheet:
        wb.create_sheet("其他").append(["不应读取"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def problems_of(exc: pytest.ExceptionInfo[InvalidInputError]) -> list[tuple[int | None, str, str]]:
    return [(p.row, p.field, p.rule) for p in exc.value.problems]


ZH_TARGET_HEADER = ["统一社会信用代码", "企业名称", "地址", "县区", "行业", "监管类别", "信用风险等级", "标签", "状态"]


def test_supported_formats() -> None:
    assert SUPPORTED == (".csv", ".xlsx")


@pytest.mark.parametrize("kind", ["target", "inspector", "item"])
def test_every_field_of_target_inspector_and_item_has_a_chinese_label(kind: str) -> None:
    fields = KINDS[kind].SPEC.fields
    assert set(LABELS[kind]) == set(fields)
    known = header_map(kind)
    for name in fields:
        assert known[name] == name  # the English field name works as a header too
        assert all(ord(c) > 127 for c in label(kind, name)[:1])


def test_english_headers_row_numbers_empty_cells_and_empty_rows() -> None:
    code = credit_code()
    content = csv_bytes([
        ["credit_code", "name", "county", "supervision_class", "risk_class", "tags", "address"],
        [code, "获嘉县示例化工有限公司", "获嘉县", "general", "B", "positive_list;hazardous_waste", ""],
        ["", "", "", "", "", "", ""],
        [credit_code(), "获嘉县另一家公司", "获嘉县", "key", "D", "", "  "],
    ])
    rows = parse_file("target", content, "targets.csv")
    assert [r for r, _ in rows] == [2, 4]
    assert rows[0][1] == {"credit_code": code, "name": "获嘉县示例化工有限公司", "county": "获嘉县",
                          "supervision_class": "general", "risk_class": "B",
                          "tags": ["positive_list", "hazardous_waste"]}
    assert "tags" not in rows[1][1] and "address" not in rows[1][1]


def test_chinese_headers_and_values_are_mapped() -> None:
    code = credit_code()
    content = csv_bytes([
        ZH_TARGET_HEADER,
        [code, "获嘉县甲公司", "获嘉县亢村镇", "获嘉县", "化工", "重点", "C类", "正面清单、危险废物", "在营"],
        [credit_code(), "获嘉县乙公司", "", "获嘉县", "", "一般", "a", "", "关闭"],
        [credit_code(), "获嘉县丙公司", "", "获嘉县", "", "特殊监管对象", "D", "", "吊销"],
    ])
    rows = dict(parse_file("target", content, "名录.csv"))
    assert rows[2] == {"credit_code": code, "name": "获嘉县甲公司", "address": "获嘉县亢村镇", "county": "获嘉县",
                       "industry": "化工", "supervision_class": "key", "risk_class": "C",
                       "tags": ["positive_list", "hazardous_waste"], "status": "active"}
    assert (rows[3]["supervision_class"], rows[3]["risk_class"], rows[3]["status"]) == ("general", "A", "closed")
    assert (rows[4]["supervision_class"], rows[4]["status"]) == ("special", "deregistered")
    for _, data in rows.items():
        KINDS["target"].validate_new(data)


def test_inspector_and_item_chinese_headers() -> None:
    inspectors = csv_bytes([
        ["部门", "工号", "姓名", "执法证号", "执法证有效期", "专长", "区域", "在岗", "回避对象"],
        ["hj-eeb", "EEB-01", "张伟", "豫环执0001", "2028-12-31", "大气；水", "亢村镇", "是", ""],
        ["hj-eeb", "EEB-02", "李娜", "豫环执0002", "2023-01-31", "", "", "离岗", ""],
    ])
    rows = parse_file("inspector", inspectors, "inspectors.csv")
    assert rows[0][1]["specialties"] == "大气；水"  # split by validation
    assert KINDS["inspector"].validate_new(rows[0][1])["specialties"] == ["大气", "水"]
    assert KINDS["inspector"].validate_new(rows[1][1])["active"] is False
    items = csv_bytes([
        ["部门代码", "事项编码", "事项名称", "事项类别", "法律依据", "检查方式", "需准备资料", "需要专家"],
        ["hj-eeb", "EEB-001", "放射性污染防治监督检查", "一般检查事项", "《放射性污染防治法》",
         "现场检查、书面检查、检验检测", "辐射安全许可证；环评批复文件", "是"],
        ["hj-eeb", "EEB-002", "水污染防治监督检查", "重点检查事项", "", "on_site", "", "否"],
    ])
    rows = parse_file("item", items, "items.csv")
    one = KINDS["item"].validate_new(rows[0][1])
    assert one["category"] == "general" and one["needs_expert"] is True
    assert one["methods"] == ["on_site", "documentary", "testing"]
    assert one["documents"] == ["辐射安全许可证", "环评批复文件"]
    assert KINDS["item"].validate_new(rows[1][1])["category"] == "key"


def test_required_markers_and_spaces_in_headers_are_ignored() -> None:
    content = csv_bytes([["统一社会信用代码*", " 企业名称（必填） ", "县 区", "监管类别(必填)", "信用风险等级＊"],
                         [credit_code(), "甲", "获嘉县", "一般", "A"]])
    (_, data), = parse_file("target", content, "t.csv")
    assert set(data) == {"credit_code", "name", "county", "supervision_class", "risk_class"}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "utf-16"])
def test_csv_encodings(encoding: str) -> None:
    content = csv_bytes([ZH_TARGET_HEADER[:5], [credit_code(), "获嘉县亢村镇某某纸业有限公司", "亢村镇", "获嘉县", "造纸"]],
                        encoding)
    (row, data), = parse_file("target", content, "t.csv", complete=False)
    assert row == 2 and data["name"] == "获嘉县亢村镇某某纸业有限公司" and data["industry"] == "造纸"


def test_tab_separated_csv() -> None:
    content = "统一社会信用代码\t企业名称\n91410724000000001X\t甲公司\n".encode()
    assert parse_file("target", content, "t.csv", complete=False) == [(2, {"credit_code": "91410724000000001X", "name": "甲公司"})]


def test_unknown_headers_are_ignored_and_reported_and_the_other_columns_import() -> None:
    content = csv_bytes([["统一社会信用代码", "法人代表", "企业名称", "注册资本"], ["x", "y", "z", "w"]])
    rows = iter_file("target", content, "t.csv", complete=False)
    assert list(rows) == [(2, {"credit_code": "x", "name": "z"})]
    assert rows.report()["ignored_columns"] == [{"column": "B", "header": "法人代表"},
                                                {"column": "D", "header": "注册资本"}]


@pytest.mark.parametrize("written", ["offsite_monitored", "Off-Site Monitored", "OFF_SITE_MONITORED", "非现场监管",
                                     "off site monitored"])
def test_tag_spellings_of_a_known_tag_are_its_code(written: str) -> None:
    assert normalise_tag(written) == ("off_site_monitored", True)


def test_a_tag_outside_the_vocabulary_is_kept_as_written_and_reported_with_its_rows() -> None:
    content = csv_bytes([["企业名称", "标签", "乡镇"], ["a", "涉气;危废", "城关镇"], ["b", "涉气", ""], ["c", "", ""]])
    rows = iter_file("target", content, "t.csv", complete=False)
    assert list(rows) == [(2, {"name": "a", "tags": ["涉气", "hazardous_waste"], "town": "城关镇"}),
                          (3, {"name": "b", "tags": ["涉气"]}), (4, {"name": "c"})]
    assert rows.report() == {"ignored_columns": [], "new_tags": [{"tag": "涉气", "rows": 2, "first_row": 2}]}


def test_a_repeated_column_is_refused() -> None:
    content = csv_bytes([["企业名称", "名称"], ["a", "b"]])
    with pytest.raises(InvalidInputError) as exc:
        parse_file("target", content, "t.csv")
    assert problems_of(exc) == [(1, "名称", "duplicate_column")]


def test_values_under_no_header_are_refused() -> None:
    content = csv_bytes([["企业名称", ""], ["a", ""], ["b", "stray"]])
    with pytest.raises(InvalidInputError) as exc:
        parse_file("target", content, "t.csv", complete=False)
    assert problems_of(exc) == [(3, "column B", "unknown_column")]


@pytest.mark.parametrize("filename", ["targets.xls", "targets.txt", "targets.json", "targets.ods"])
def test_unsupported_formats(filename: str) -> None:
    with pytest.raises(InvalidInputError) as exc:
        parse_file("target", b"whatever", filename)
    assert [(p.field, p.rule) for p in exc.value.problems] == [("file", "format")]


def test_a_broken_xlsx_is_a_format_problem() -> None:
    with pytest.raises(InvalidInputError) as exc:
        parse_file("target", b"PK\x03\x04 not really a zip", "t.xlsx")
    assert [(p.field, p.rule) for p in exc.value.problems] == [("file", "format")]


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(InvalidInputError) as exc:
        parse_file("target", b"", "t.csv")
    assert [(p.field, p.rule) for p in exc.value.problems] == [("file", "empty")]


def test_format_from_a_bare_name_or_content() -> None:
    content = csv_bytes([["企业名称"], ["甲"]])
    assert parse_file("target", content, "csv", complete=False) == [(2, {"name": "甲"})]
    assert parse_file("target", content, "upload", complete=False) == [(2, {"name": "甲"})]
    assert parse_file("target", xlsx_bytes([["企业名称"], ["乙"]]), "upload", complete=False) == [(2, {"name": "乙"})]


def test_xlsx_cell_types_become_text_and_only_the_first_sheet_is_read() -> None:
    content = xlsx_bytes([
        ["部门", "工号", "姓名", "执法证号", "执法证有效期", "在岗"],
        ["hj-eeb", 1024, "张伟", 41072400012.0, dt.datetime(2028, 12, 31), True],
        [None, None, None, None, None, None],
        ["hj-eeb", "EEB-2", "李娜", "豫环执2", dt.date(2023, 1, 31), "否"],
        ["hj-eeb", 3.5, "王五", "豫环执3", "2029-06-30", None],
    ], extra_sheet=True)
    rows = parse_file("inspector", content, "人员.XLSX")
    assert [r for r, _ in rows] == [2, 4, 5]
    assert rows[0][1] == {"department": "hj-eeb", "staff_id": "1024", "name": "张伟", "certificate_no": "41072400012",
                          "certificate_expiry": "2028-12-31", "active": "true"}
    assert rows[1][1]["certificate_expiry"] == "2023-01-31"
    assert rows[2][1]["staff_id"] == "3.5" and "active" not in rows[2][1]
    assert KINDS["inspector"].validate_new(rows[0][1])["active"] is True


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_template_headers_are_recognised(kind: str, tmp_path: Path) -> None:
    path = write_template(kind, tmp_path / f"{kind}.xlsx")
    wb = load_workbook(path, read_only=True)
    header = list(next(wb.worksheets[0].iter_rows(values_only=True)))
    wb.close()
    spec = KINDS[kind].SPEC
    assert header == [label(kind, f.name) + ("*" if f.required else "") for f in spec.fields.values()]
    assert parse_file(kind, path.read_bytes(), path.name, complete=False) == []
    # a filled-in template parses to the field names
    wb = load_workbook(path)
    wb.worksheets[0].append(["x"] * len(header))
    buf = io.BytesIO()
    wb.save(buf)
    (row, data), = parse_file(kind, buf.getvalue(), "filled.xlsx")
    assert row == 2 and set(data) == set(spec.fields)


def test_unknown_kind() -> None:
    with pytest.raises(InvalidInputError) as exc:
        parse_file("plan", b"a\n", "x.csv")
    assert exc.value.problems[0].field == "kind"


def _far_right_workbook(rows: int, far: bool) -> bytes:
    """A target file with ``rows`` valid rows; with ``far``, each also holds a value in the last column (XFD)."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet()
    ws.append(["credit_code", "name", "county", "supervision_class", "risk_class"])
    for i in range(rows):
        ws.append([credit_code(), f"获嘉县远列{i}有限公司", "获嘉县", "general", "B"]
                  + ([*([None] * (16384 - 6)), "x"] if far else []))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _peak_bytes(call: Callable[[], object]) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        with contextlib.suppress(InvalidInputError):
            call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_cells_far_to_the_right_cost_no_padded_rows() -> None:
    """Each row with a cell in column XFD was padded to 16,384 values (a 44 KB file took ~1 GB): now the reader
    keeps the cells the file holds, so the peak is about that of the same file without them."""
    far, plain = _far_right_workbook(1000, True), _far_right_workbook(1000, False)
    with pytest.raises(InvalidInputError) as err:
        parse_file("target", far, "far.xlsx")
    assert problems_of(err)[0] == (2, "column XFD", "unknown_column")
    assert len(err.value.problems) == 1000  # one per row, at most MAX_REPORTED_PROBLEMS
    padded = 1000 * 16384 * 8  # what the padded rows alone would hold (pointers)
    assert _peak_bytes(lambda: parse_file("target", far, "far.xlsx")) < padded / 8
    assert _peak_bytes(lambda: parse_file("target", far, "far.xlsx")) < 3 * _peak_bytes(
        lambda: parse_file("target", plain, "plain.xlsx"))


def test_a_row_far_down_is_numbered_as_in_the_sheet() -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(["credit_code", "name", "county", "supervision_class", "risk_class"])
    code = credit_code()
    for col, value in enumerate([code, "获嘉县远行有限公司", "获嘉县", "key", "C"], start=1):
        ws.cell(row=100_000, column=col, value=value)
    buf = io.BytesIO()
    wb.save(buf)
    assert [(n, d["credit_code"]) for n, d in parse_file("target", buf.getvalue(), "down.xlsx")] == [(100_000, code)]


def _rows_csv(rows: int) -> bytes:
    lines = ["credit_code,name,county,supervision_class,risk_class"]
    lines += [f"{credit_code()},获嘉县流式{i}有限公司,获嘉县,general,B" for i in range(rows)]
    return "\n".join(lines).encode("utf-8")


def _consume(content: bytes, name: str) -> int:
    from services.infra.imports import iter_file

    return sum(1 for _ in iter_file("target", io.BytesIO(content), name))


def test_a_csv_is_read_as_a_stream_in_constant_memory() -> None:
    """Reading the rows one at a time holds a bounded window (the 1 MiB decoding block and one row), not the
    file: 4 times the rows, about the same peak, under 8 MiB (the file's own bytes are the caller's)."""
    small, large = _rows_csv(20_000), _rows_csv(80_000)
    assert _consume(large, "t.csv") == 80_000
    peaks = [_peak_bytes(lambda c=c: _consume(c, "t.csv")) for c in (small, large)]  # type: ignore[misc]
    assert peaks[1] < 8 * 2**20, peaks
    assert peaks[1] < 1.3 * peaks[0], peaks


def test_an_xlsx_with_far_right_cells_is_read_as_a_stream() -> None:
    """Rows with a cell in column XFD, read one at a time: the peak stays small. What grows is the workbook's
    shared-strings table (the file's unique texts, which the format keeps apart from its rows and openpyxl
    reads whole): about 300 bytes a row here, against 128 KiB a row for a padded row."""
    small, large = _far_right_workbook(500, True), _far_right_workbook(2000, True)
    peaks = [_peak_bytes(lambda c=c: _consume(c, "far.xlsx")) for c in (small, large)]  # type: ignore[misc]
    assert peaks[1] < 8 * 2**20, peaks
    assert (peaks[1] - peaks[0]) / 1500 < 600, peaks
