"""Export files for 国家企业信用信息公示系统（河南）: push JSON, manual-entry XLSX and CSV, on real files."""

import csv
import json
from pathlib import Path

from openpyxl import load_workbook

from domain.access import Actor
from domain.calendar import WorkCalendar
from domain.execution.inspection import Inspection
from domain.execution.publicity import MANUAL_ENTRY_HEADERS, PublicationContext, push_record
from services.infra.publicity_export import write_manual_entry_csv, write_manual_entry_xlsx, write_push_json

SECRET = "商业秘密：配方含量 37%"
INSPECTOR = Actor("eeb-zhang", "hj-eeb", ("inspector",))
REVIEWER = Actor("eeb-wang", "hj-eeb", ("reviewer",))
CONTEXT = PublicationContext(
    plan_number="2024003",
    plan_name="新乡市生态环境局获嘉分局三季度随机抽查",
    task_number="2024003-01",
    task_name="新乡市获嘉县生态环境局获嘉分局2024年第三季度一般检查事项随机抽查",
    directed=False,
    authority="新乡市生态环境局获嘉分局",
    item_names={"EEB-001": "水污染防治监督检查", "EEB-002": "固体废物污染防治监督检查"},
    target_credit_code="91410724MA44XXXX0X",
    target_name="获嘉县示例化工有限公司",
)


def records() -> list[dict]:
    i = Inspection.open("assignment-1", "task-1", "hj-eeb", "target-1", ["EEB-001", "EEB-002"], ["eeb-zhang"])
    i.record(
        INSPECTOR,
        "2024-09-10",
        ["on_site"],
        {
            "EEB-001": {"result": "no_problem"},
            "EEB-002": {"result": "corrected", "description": SECRET, "confidential": ["description"]},
        },
    )
    i.submit(INSPECTOR)
    i.approve(REVIEWER, "2024-09-20", WorkCalendar.official())
    return [push_record(CONTEXT, i)]


def test_the_push_file_is_utf8_json_with_the_publicity_keys(tmp_path: Path) -> None:
    path = write_push_json(records(), tmp_path / "out" / "push.json")
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    assert (
        data[0]["raninsTypeName"] == "不定向"
        and data[0]["details"][1]["raninsCheckResName"] == "发现问题已责令改正"
    )
    assert "获嘉县示例化工有限公司" in text  # Chinese kept as text
    assert SECRET not in text and [p.name for p in path.parent.iterdir()] == ["push.json"]


def test_the_manual_entry_sheet_as_xlsx(tmp_path: Path) -> None:
    path = write_manual_entry_xlsx(records(), tmp_path / "manual.xlsx")
    ws = load_workbook(path).active
    rows = [[c.value for c in r] for r in ws.iter_rows()]
    assert ws.title == "检查结果" and tuple(rows[0]) == MANUAL_ENTRY_HEADERS and len(rows) == 3
    assert rows[1][0] == "2024003" and rows[2][-2:] == ["固体废物污染防治监督检查", "发现问题已责令改正"]
    assert ws.freeze_panes == "A2" and SECRET not in str(rows)


def test_the_manual_entry_sheet_as_csv_opens_in_excel(tmp_path: Path) -> None:
    path = write_manual_entry_csv(records(), tmp_path / "manual.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert tuple(rows[0]) == MANUAL_ENTRY_HEADERS and len(rows) == 3 and rows[1][7] == "91410724MA44XXXX0X"
    assert SECRET not in raw.decode("utf-8-sig")


def test_an_empty_export_still_has_its_header(tmp_path: Path) -> None:
    path = write_manual_entry_csv([], tmp_path / "empty.csv")
    assert path.read_text(encoding="utf-8-sig").splitlines() == [",".join(MANUAL_ENTRY_HEADERS)]
    assert json.loads(write_push_json([], tmp_path / "empty.json").read_text(encoding="utf-8")) == []


INJECTIONS = ['=HYPERLINK("http://evil.example/x","点击查看")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
              "\t=1+1", "\r=1+1"]


def _injected_records(text: str) -> list[dict]:
    """A record whose every free-text field (plan, task, authority, target, item names) carries ``text``."""
    import dataclasses

    context = dataclasses.replace(
        CONTEXT, plan_name=text, task_name=text, authority=text, target_name=text,
        item_names={"EEB-001": text, "EEB-002": text},
    )
    return [push_record(context, _approved())]


def _approved() -> Inspection:
    i = Inspection.open("assignment-1", "task-1", "hj-eeb", "target-1", ["EEB-001", "EEB-002"], ["eeb-zhang"])
    i.record(INSPECTOR, "2024-09-10", ["on_site"],
             {"EEB-001": {"result": "no_problem"}, "EEB-002": {"result": "no_problem"}})
    i.submit(INSPECTOR)
    i.approve(REVIEWER, "2024-09-20", WorkCalendar.official())
    return i


def test_no_exported_cell_can_start_a_formula(tmp_path: Path) -> None:
    for n, text in enumerate(INJECTIONS):
        rs = _injected_records(text)
        with (write_manual_entry_csv(rs, tmp_path / f"{n}.csv")).open(encoding="utf-8-sig", newline="") as f:
            rows = list(csv.reader(f))[1:]
        sheet = load_workbook(write_manual_entry_xlsx(rs, tmp_path / f"{n}.xlsx")).active
        cells = [c for row in sheet.iter_rows(min_row=2) for c in row]
        assert rows and cells
        for value in [v for row in rows for v in row] + [c.value for c in cells]:
            assert not str(value).startswith(("=", "+", "-", "@", "\t", "\r")), (text, value)
        assert all(c.data_type == "s" for c in cells)  # text, never a formula
        # the name is kept, made inert by the apostrophe (XML stores a carriage return as a line feed)
        assert {row[8] for row in rows} == {"'" + text}
        assert sheet.cell(row=2, column=9).value == "'" + text.replace("\r", "\n")
