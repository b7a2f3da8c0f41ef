"""Publication: push records (publicity system keys), manual-entry rows, the public record; vocabularies."""

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.access import Actor
from domain.calendar import WorkCalendar
from domain.errors import InvalidInputError
from domain.execution.inspection import Inspection, InvalidTransitionError
from domain.execution.publicity import (
    MANUAL_ENTRY_HEADERS,
    PublicationContext,
    export_identifiers,
    manual_entry_rows,
    public_result,
    push_record,
)
from domain.execution.vocabulary import (
    DEFAULT_VOCABULARY,
    FOLLOW_UP_VISIT_METHOD_LABELS,
    INSPECTION_METHOD_LABELS,
    MEASURE_LABELS,
    OFF_SITE_METHODS,
    Measure,
    ResultVocabulary,
    is_off_site,
)
from domain.values import InspectionMethod

CAL = WorkCalendar.official()
INSPECTOR = Actor("eeb-zhang", "hj-eeb", ("inspector",))
REVIEWER = Actor("eeb-wang", "hj-eeb", ("reviewer",))
CONTEXT = PublicationContext(
    plan_number="2024003",
    plan_name="新乡市生态环境局获嘉分局三季度随机抽查",
    task_number="2024003-01",
    task_name="新乡市获嘉县生态环境局获嘉分局2024年第三季度一般检查事项随机抽查",
    directed=True,
    authority="新乡市生态环境局获嘉分局",
    item_names={"EEB-001": "水污染防治监督检查", "EEB-002": "固体废物污染防治监督检查"},
    target_credit_code="91410724MA44XXXX0X",
    target_name="获嘉县示例化工有限公司",
)


def an_approved(
    secret: str = "工艺参数：机密", confidential: tuple[str, ...] = ("description", "measures")
) -> Inspection:
    i = Inspection.open("assignment-1", "task-1", "hj-eeb", "target-1", ["EEB-001", "EEB-002"], ["eeb-zhang"])
    i.record(
        INSPECTOR,
        "2024-09-10",
        ["on_site"],
        {
            "EEB-001": {"result": "no_problem"},
            "EEB-002": {
                "result": "corrected",
                "description": secret,
                "measures": [{"kind": "other", "note": secret}],
                "evidence": [
                    {"sha256": "ab" * 32, "size": 5, "name": "x.pdf", "media_type": "application/pdf"}
                ],
                "confidential": list(confidential),
            },
        },
    )
    i.submit(INSPECTOR)
    i.approve(REVIEWER, "2024-09-20", CAL)
    return i


def test_the_push_record_has_the_publicity_systems_keys() -> None:
    record = push_record(CONTEXT, an_approved())
    assert record == {
        "raninsPlanId": "2024003",
        "raninsPlaneName": "新乡市生态环境局获嘉分局三季度随机抽查",
        "raninsTaskId": "2024003-01",
        "raninsTaskName": "新乡市获嘉县生态环境局获嘉分局2024年第三季度一般检查事项随机抽查",
        "raninsTypeName": "定向",
        "insAuth": "新乡市生态环境局获嘉分局",
        "insDate": "2024-09-10",
        "uniscid": "91410724MA44XXXX0X",
        "entName": "获嘉县示例化工有限公司",
        "details": [
            {"raninsItemName": "水污染防治监督检查", "raninsCheckResName": "未发现问题"},
            {"raninsItemName": "固体废物污染防治监督检查", "raninsCheckResName": "发现问题已责令改正"},
        ],
    }
    rows = manual_entry_rows([record])
    assert len(rows) == 2 and len(rows[0]) == len(MANUAL_ENTRY_HEADERS)
    assert rows[1][-2:] == ["固体废物污染防治监督检查", "发现问题已责令改正"]


def test_a_case_triggered_result_is_listed_as_non_random_without_a_plan() -> None:
    case = dataclasses.replace(CONTEXT, random=False, directed=False)
    record = push_record(case, an_approved())
    assert record["raninsTypeName"] == "非随机（案件线索核查）" not in ("定向", "不定向")
    assert record["raninsPlanId"] == "" and record["raninsPlaneName"] == ""
    assert manual_entry_rows([record])[0][:5] == ["", "", "2024003-01", CONTEXT.task_name, "非随机（案件线索核查）"]
    public = public_result(case, an_approved())
    assert public["type"] == "非随机（案件线索核查）" and public["plan_number"] == public["plan_name"] == ""


def test_only_approved_results_become_records() -> None:
    i = Inspection.open("a", "t", "hj-eeb", "g", ["EEB-001"], ["eeb-zhang"])
    with pytest.raises(InvalidTransitionError) as err:
        push_record(CONTEXT, i)
    assert err.value.problems[0].rule == "not_approved"
    with pytest.raises(InvalidTransitionError):
        public_result(CONTEXT, i)


def test_the_public_record_keeps_public_fields_and_drops_confidential_ones_and_evidence() -> None:
    open_ = public_result(CONTEXT, an_approved("未封闭贮存", confidential=()), "hj-eeb")
    assert open_["findings"][1]["description"] == "未封闭贮存" and "evidence" not in open_["findings"][1]
    closed = public_result(CONTEXT, an_approved(), "hj-eeb")
    assert "机密" not in json.dumps(closed, ensure_ascii=False)
    assert closed["findings"][1]["item_name"] == "固体废物污染防治监督检查"


secrets = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60).map(
    lambda s: f"§{s.strip() or 'x'}§"
)


@given(secrets, st.sets(st.sampled_from(["description", "measures", "evidence"]), min_size=2))
def test_confidential_text_never_appears_in_anything_public(secret: str, marked: set[str]) -> None:
    marked |= {"description", "measures"}
    i = an_approved(secret, tuple(marked))
    record = push_record(CONTEXT, i)
    public = public_result(CONTEXT, i)
    for blob in (
        json.dumps(record, ensure_ascii=False),
        json.dumps(public, ensure_ascii=False),
        json.dumps(manual_entry_rows([record]), ensure_ascii=False),
        str(i.public_findings()),
    ):
        assert secret not in blob and "ab" * 32 not in blob


def test_the_default_result_codes_are_the_publicity_systems_wording() -> None:
    wording = [c.wording for c in DEFAULT_VOCABULARY.codes]
    assert wording[:3] == ["未发现问题", "发现问题已责令改正", "发现问题待后续处理"]
    assert "不配合检查情节严重" in wording and "通过登记的住所无法联系" in wording and len(wording) == 10
    assert DEFAULT_VOCABULARY.wording("unreachable") == "通过登记的住所无法联系"
    assert (
        not DEFAULT_VOCABULARY.get("no_problem").problem_found
        and DEFAULT_VOCABULARY.get("corrected").problem_found
    )


def test_a_configured_vocabulary_is_validated() -> None:
    with pytest.raises(InvalidInputError) as err:
        ResultVocabulary(
            [
                {"code": "OK!", "wording": ""},
                {"code": "a", "wording": "甲"},
                {"code": "a", "wording": "乙", "colour": 1},
            ]
        )
    got = {(p.field, p.rule) for p in err.value.problems}
    assert {
        ("codes[0].code", "format"),
        ("codes[0].wording", "required"),
        ("codes[2].code", "duplicate"),
        ("codes[2].colour", "unknown_field"),
    } <= got
    with pytest.raises(InvalidInputError):
        ResultVocabulary([])
    v = ResultVocabulary(DEFAULT_VOCABULARY.as_list())
    assert v.as_list() == DEFAULT_VOCABULARY.as_list()


def test_methods_and_measures_have_chinese_labels_and_off_site_methods_are_marked() -> None:
    assert set(INSPECTION_METHOD_LABELS) == {m.value for m in InspectionMethod}
    assert set(MEASURE_LABELS) == {m.value for m in Measure}
    assert set(FOLLOW_UP_VISIT_METHOD_LABELS.values()) == {
        "直接回访",
        "电话回访",
        "问卷调查",
        "组织座谈",
        "信函回访",
    }
    assert {
        "online_monitoring",
        "video",
        "drone",
        "remote_sensing",
        "power_use_monitoring",
        "big_data",
    } == OFF_SITE_METHODS
    assert (
        is_off_site(["drone", "big_data"]) and not is_off_site(["drone", "on_site"]) and not is_off_site([])
    )


def test_export_identifiers_are_unique_across_departments_and_carry_the_publishing_departments_plan() -> None:
    common: dict[str, Any] = {"lead": "hj-eeb", "task_number": "2024-001", "year": 2024}
    lead = export_identifiers(department="hj-eeb", department_name="生态环境局", plan_entry="2024003",
                              entry_name="三季度随机抽查", **common)
    assert lead == ("hj-eeb-2024003", "三季度随机抽查", "hj-eeb-2024-001")
    other_lead = export_identifiers(department="hj-amr", department_name="市场监管局", plan_entry="2024003",
                                    entry_name="x", **{**common, "lead": "hj-amr"})
    assert other_lead[0] != lead[0] and other_lead[2] != lead[2]
    partner = export_identifiers(department="hj-amr", department_name="市场监管局", plan_entry="2024003",
                                 entry_name="三季度随机抽查", own_plan_name="市场监管局2024年度抽查计划", **common)
    assert partner == ("hj-amr-2024", "市场监管局2024年度抽查计划", "hj-eeb-2024-001")
    assert export_identifiers(department="hj-amr", department_name="市场监管局", **common)[:2] == (
        "hj-amr-2024-计划外", "市场监管局2024年度计划外抽查")
    assert export_identifiers(department="hj-eeb", department_name="生态环境局", **common)[0] == "hj-eeb-2024-计划外"
