"""File imports on a SQLite file store: round trips, all-or-nothing, idempotence, minimal changes."""

import csv
import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from domain.access import SYSTEM
from domain.credit_code import ALPHABET, check_character
from domain.directory import entry_id
from domain.errors import InvalidInputError
from services.application import CommandContext, DualRandom
from services.infra.imports import parse_file
from tests.support.builders import credit_code

CTX = CommandContext(SYSTEM)


@pytest.fixture
def app(tmp_path: Path):
    application = DualRandom("sqlite:///" + str(tmp_path / "e.db"))
    yield application
    application.close()


def csv_bytes(rows: list[list[str]], encoding: str = "utf-8-sig") -> bytes:
    buf = io.StringIO(newline="")
    csv.writer(buf).writerows(rows)
    return buf.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    wb = Workbook()
    for r in rows:
        wb.active.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def encode(fmt: str, rows: list[list[str]]) -> tuple[bytes, str]:
    return (csv_bytes(rows), "file.csv") if fmt == "csv" else (xlsx_bytes(rows), "file.xlsx")  # type: ignore[arg-type]


def import_file(app: DualRandom, kind: str, fmt: str, rows: list[list[str]]):
    content, name = encode(fmt, rows)
    return app.import_entries(kind, parse_file(kind, content, name), CTX)


def stored(app: DualRandom, kind: str, key: str) -> dict:
    return app.load(kind, entry_id(kind, key)).data


def target_table(codes: list[str]) -> list[list[str]]:
    return [
        ["统一社会信用代码", "企业名称", "地址", "县区", "行业", "监管类别", "信用风险等级", "标签", "状态"],
        [codes[0], "获嘉县恒达化工有限公司", "获嘉县亢村镇工业路8号", "获嘉县", "化工", "重点", "C", "危险废物；off_site_monitored", "正常"],
        [codes[1], "新乡市鑫源纸业有限公司", "获嘉县照镜镇东碑村3组", "获嘉县", "造纸", "一般", "B", "", "在营"],
        [codes[2], "获嘉县华盛食品有限公司", "", "获嘉县", "食品加工", "special", "A", "正面清单", "停业"],
    ]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_round_trip_targets_inspectors_and_items(app: DualRandom, fmt: str) -> None:
    codes = [credit_code() for _ in range(3)]
    result = import_file(app, "target", fmt, target_table(codes))
    assert (result.created, result.updated, result.unchanged) == (3, 0, 0)
    first = stored(app, "target", codes[0])
    assert first == {"credit_code": codes[0], "name": "获嘉县恒达化工有限公司", "address": "获嘉县亢村镇工业路8号",
                     "county": "获嘉县", "industry": "化工", "supervision_class": "key", "risk_class": "C",
                     "tags": ["hazardous_waste", "off_site_monitored"], "status": "active", "town": ""}
    assert stored(app, "target", codes[1])["address"] == "获嘉县照镜镇东碑村3组"
    third = stored(app, "target", codes[2])
    assert (third["address"], third["supervision_class"], third["tags"], third["status"]) == (
        "", "special", ["positive_list"], "closed")

    conflict = str(entry_id("target", codes[0]))
    result = import_file(app, "inspector", fmt, [
        ["部门", "执法人员编号", "姓名", "执法证号", "执法证有效期", "专长", "区域", "在岗", "回避对象"],
        ["hj-eeb", "EEB-01", "张伟", "豫环执410724001", "2028-12-31", "大气、水", "亢村镇", "是", conflict],
        ["hj-eeb", "EEB-02", "李娜", "豫环执410724002", "2023-06-30", "辐射", "", "否", ""],
    ])
    assert result.created == 2
    zhang = stored(app, "inspector", "hj-eeb/EEB-01")
    assert (zhang["certificate_expiry"], zhang["specialties"], zhang["active"], zhang["conflicts"]) == (
        "2028-12-31", ["大气", "水"], True, [conflict])
    assert stored(app, "inspector", "hj-eeb/EEB-02")["active"] is False

    result = import_file(app, "item", fmt, [
        ["部门代码", "事项编码", "事项名称", "事项类别", "法律依据", "检查方式", "需准备资料", "需要专家"],
        ["hj-eeb", "EEB-001", "放射性污染防治监督检查", "一般检查事项", "《中华人民共和国放射性污染防治法》",
         "现场检查、检验检测", "辐射安全许可证、环评批复文件", "是"],
        ["hj-eeb", "EEB-002", "水污染防治监督检查", "一般检查事项", "", "on_site;documentary", "排污许可证", ""],
    ])
    assert result.created == 2
    item = stored(app, "item", "hj-eeb/EEB-001")
    assert (item["category"], item["methods"], item["documents"], item["needs_expert"]) == (
        "general", ["on_site", "testing"], ["辐射安全许可证", "环评批复文件"], True)
    assert stored(app, "item", "hj-eeb/EEB-002")["needs_expert"] is False


def test_bad_rows_are_all_listed_and_nothing_is_stored(app: DualRandom) -> None:
    good = credit_code()
    broken = credit_code()
    broken = broken[:17] + ALPHABET[(ALPHABET.index(broken[17]) + 1) % len(ALPHABET)]
    app.import_entries("target", [(2, {"credit_code": credit_code(), "name": "先有的公司", "county": "获嘉县",
                                       "supervision_class": "general", "risk_class": "A"})], CTX)
    before = app.recorder.max_notification_id()
    table = [
        ["统一社会信用代码", "企业名称", "县区", "监管类别", "信用风险等级"],
        [good, "获嘉县甲公司", "获嘉县", "一般", "B"],          # 2 fine
        [broken, "获嘉县乙公司", "获嘉县", "一般", "B"],        # 3 check digit
        [credit_code(), "", "获嘉县", "重点", "C"],              # 4 name missing
        [credit_code(), "获嘉县丁公司", "获嘉县", "很重要", "A"],  # 5 bad class
        [good, "获嘉县戊公司", "获嘉县", "一般", "B"],          # 6 repeats row 2
        [credit_code(), "获嘉县己公司", "获嘉县", "一般", "B"],  # 7 fine
    ]
    for fmt in ("csv", "xlsx"):
        with pytest.raises(InvalidInputError) as exc:
            import_file(app, "target", fmt, table)
        found = sorted((p.row, p.field, p.rule) for p in exc.value.problems)
        assert found == [
            (3, "credit_code", "check_digit"),
            (4, "name", "required"),
            (5, "supervision_class", "choice"),
            (6, "credit_code", "duplicate"),
        ]
        assert all(p.message for p in exc.value.problems)
        assert "repeats row 2" in next(p.message for p in exc.value.problems if p.rule == "duplicate")
        assert app.recorder.max_notification_id() == before


def test_reimport_is_a_no_op_and_one_changed_cell_stores_one_event(app: DualRandom) -> None:
    codes = [credit_code() for _ in range(3)]
    table = target_table(codes)
    import_file(app, "target", "csv", table)
    before = app.recorder.max_notification_id()
    assert before is not None
    for fmt in ("csv", "xlsx"):
        again = import_file(app, "target", fmt, table)
        assert (again.created, again.updated, again.unchanged, again.events) == (0, 0, 3, 0)
        assert app.recorder.max_notification_id() == before

    table[2][6] = "D"  # 信用风险等级 of the second enterprise: B -> D
    result = import_file(app, "target", "xlsx", table)
    assert (result.created, result.updated, result.unchanged, result.events) == (0, 1, 2, 1)
    after = app.recorder.max_notification_id()
    assert after == before + 1
    history = app.history("target", entry_id("target", codes[1]), SYSTEM)
    assert [h["type"] for h in history] == ["registered", "risk_class_changed"]
    assert history[-1]["data"] == {"risk_class": "D", "previous": "B"}
    assert history[-1]["position"] == after
    assert stored(app, "target", codes[1])["risk_class"] == "D"


def test_an_absent_column_or_empty_cell_leaves_the_stored_value_alone(app: DualRandom) -> None:
    codes = [credit_code() for _ in range(3)]
    import_file(app, "target", "csv", target_table(codes))
    before = app.recorder.max_notification_id()
    # required columns stay required; optional ones (地址, 标签, 状态, 行业) may be absent or empty
    result = import_file(app, "target", "csv", [["统一社会信用代码", "企业名称", "地址", "县区", "监管类别", "信用风险等级"],
                                                [codes[0], "获嘉县恒达化工有限公司", "", "获嘉县", "重点", "C"]])
    assert result.events == 0 and app.recorder.max_notification_id() == before
    assert stored(app, "target", codes[0])["address"] == "获嘉县亢村镇工业路8号"


def test_one_changed_tag_and_status_record_their_own_events(app: DualRandom) -> None:
    codes = [credit_code() for _ in range(3)]
    table = target_table(codes)
    import_file(app, "target", "csv", table)
    table[1][7] = "危险废物"  # drops off_site_monitored
    table[3][8] = "注销"      # closed -> deregistered
    result = import_file(app, "target", "csv", table)
    assert result.events == 2
    assert [h["type"] for h in app.history("target", entry_id("target", codes[0]), SYSTEM)][-1] == "untagged"
    assert [h["type"] for h in app.history("target", entry_id("target", codes[2]), SYSTEM)][-1] == "deregistered"


# -- property: import then re-import of any valid file stores nothing the second time ----------------------
_BODY = st.text(alphabet=ALPHABET, min_size=9, max_size=9)
_NAME_CHARS = st.sampled_from(list("获嘉县新乡市河南恒达鑫源华盛化工纸业食品建材有限公司（）ABCxyz0123 -·"))
_TAG = st.text(alphabet=st.sampled_from(list("abcdefgh_重点危废正面")), min_size=1, max_size=12)


@st.composite
def target_rows(draw: st.DrawFn) -> list[dict[str, object]]:
    bodies = draw(st.lists(_BODY, min_size=1, max_size=12, unique=True))
    rows = []
    for body in bodies:
        first17 = "91410724" + body
        name = draw(st.text(_NAME_CHARS, min_size=1, max_size=60).map(str.strip).filter(bool))
        row: dict[str, object] = {
            "credit_code": first17 + check_character(first17),
            "name": name,
            "county": "获嘉县",
            "supervision_class": draw(st.sampled_from(["key", "general", "special", "重点", "一般", "特殊"])),
            "risk_class": draw(st.sampled_from(list("ABCD"))),
        }
        if draw(st.booleans()):
            row["address"] = draw(st.text(_NAME_CHARS, max_size=80))
        if draw(st.booleans()):
            row["industry"] = draw(st.sampled_from(["化工", "造纸", "建材", "纺织", "食品加工"]))
        if draw(st.booleans()):
            row["tags"] = "；".join(draw(st.lists(_TAG, max_size=4)))
        if draw(st.booleans()):
            row["status"] = draw(st.sampled_from(["active", "closed", "deregistered", "正常", "停业", "吊销"]))
        rows.append(row)
    return rows


COLUMNS = ["credit_code", "name", "address", "county", "industry", "supervision_class", "risk_class", "tags", "status"]


@settings(max_examples=25)
@given(rows=target_rows(), fmt=st.sampled_from(["csv", "xlsx"]))
def test_property_reimport_of_any_valid_target_file_is_a_no_op(rows: list[dict[str, object]], fmt: str) -> None:
    table = [COLUMNS] + [[str(r.get(c, "")) for c in COLUMNS] for r in rows]
    content, name = encode(fmt, table)
    with tempfile.TemporaryDirectory() as tmp:
        app = DualRandom("sqlite:///" + str(Path(tmp) / "e.db"))
        try:
            first = app.import_entries("target", parse_file("target", content, name), CTX)
            assert first.created == len(rows)
            position = app.recorder.max_notification_id()
            second = app.import_entries("target", parse_file("target", content, name), CTX)
            assert (second.created, second.updated, second.unchanged, second.events) == (0, 0, len(rows), 0)
            assert second.position is None
            assert app.recorder.max_notification_id() == position
        finally:
            app.close()

