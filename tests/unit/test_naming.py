"""Task names, as the notice rules: 新乡市 + 县区名称 + 部门名称 + 时间 + 任务类型."""

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from domain.errors import InvalidInputError
from domain.planning.naming import (
    CASE_TASK,
    GENERAL_TASK,
    JOINT_TASK,
    KEY_TASK,
    NAMING_RULE,
    check_task_name,
    period_words,
    task_name,
    task_type,
)
from domain.planning.rules import parse_period

SEED = ("新乡市", "获嘉县", "新乡市生态环境局获嘉分局")
SEED_EXAMPLE = "新乡市获嘉县生态环境局获嘉分局2024年第一季度一般检查事项随机抽查"


def test_the_seed_example_is_generated_exactly() -> None:
    assert task_name(*SEED, parse_period("2024Q1"), GENERAL_TASK) == SEED_EXAMPLE
    assert task_name(*SEED, "2024Q1", "一般检查事项随机抽查") == SEED_EXAMPLE
    check_task_name(SEED_EXAMPLE, *SEED, "2024Q1", GENERAL_TASK)
    check_task_name(f" {SEED_EXAMPLE}\n", *SEED, "2024Q1", GENERAL_TASK)


@pytest.mark.parametrize(
    ("period", "words"),
    [
        ("2024Q1", "2024年第一季度"),
        ("2024Q4", "2024年第四季度"),
        ("2024-03", "2024年3月"),
        ("2024-11", "2024年11月"),
        ("2024H1", "2024年上半年"),
        ("2024H2", "2024年下半年"),
        ("2024", "2024年度"),
    ],
)
def test_every_period_kind_has_its_time_words(period: str, words: str) -> None:
    assert period_words(period) == words


def test_a_department_named_after_its_county_is_not_repeated_and_task_types_follow_the_task() -> None:
    assert task_name(
        "新乡市", "获嘉县", "获嘉县市场监督管理局", "2024-03", task_type("general", joint=True)
    ) == ("新乡市获嘉县市场监督管理局2024年3月部门联合随机抽查")
    assert task_name("新乡市", "获嘉县", "新乡市获嘉县应急管理局", "2024H1", task_type("key")) == (
        "新乡市获嘉县应急管理局2024年上半年重点检查事项随机抽查"
    )
    assert (
        task_name("新乡市", "获嘉县", "自然资源局", "2024", GENERAL_TASK)
        == "新乡市获嘉县自然资源局2024年度一般检查事项随机抽查"
    )
    assert (task_type("general"), task_type("key"), task_type("key", joint=True)) == (
        GENERAL_TASK,
        KEY_TASK,
        JOINT_TASK,
    )


@pytest.mark.parametrize(
    "name",
    [
        "新乡市生态环境局获嘉分局一季度随机抽查",  # the seed's plan-entry name is not a task name
        "新乡市获嘉县新乡市生态环境局获嘉分局2024年第一季度一般检查事项随机抽查",  # city twice
        "获嘉县新乡市生态环境局获嘉分局2024年第一季度一般检查事项随机抽查",  # county before city
        "新乡市获嘉县生态环境局获嘉分局2024年第二季度一般检查事项随机抽查",  # wrong quarter
        "新乡市获嘉县生态环境局获嘉分局2024年第一季度重点检查事项随机抽查",  # wrong task type
        "新乡市获嘉县生态环境局获嘉分局一般检查事项随机抽查",  # no time
        "",
    ],
)
def test_a_broken_name_is_refused_quoting_the_rule_and_the_expected_name(name: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        check_task_name(name, *SEED, "2024Q1", GENERAL_TASK)
    p = err.value.problems[0]
    assert (p.field, p.rule) == ("name", "naming_rule")
    assert NAMING_RULE == "新乡市+县区名称+部门名称+时间+任务类型"
    assert NAMING_RULE in p.message and SEED_EXAMPLE in p.message


def test_missing_parts_are_refused_naming_each_field() -> None:
    with pytest.raises(InvalidInputError) as err:
        task_name("", " ", "新乡市生态环境局获嘉分局", "2024Q1", "")
    assert {p.field for p in err.value.problems} == {"city", "county", "task_type"}
    with pytest.raises(InvalidInputError) as err:
        task_name("新乡市", "获嘉县", "新乡市获嘉县", "2024Q1", GENERAL_TASK)
    assert err.value.problems[0].field == "department_name"
    with pytest.raises(InvalidInputError) as err:
        task_name(*SEED, "2024Q9", GENERAL_TASK)
    assert err.value.problems[0].field == "period"


chinese = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x4FFF), min_size=1, max_size=8)
periods = st.one_of(
    st.builds(lambda y, q: f"{y}Q{q}", st.integers(2000, 2100), st.integers(1, 4)),
    st.builds(lambda y, m: f"{y}-{m:02d}", st.integers(2000, 2100), st.integers(1, 12)),
    st.builds(lambda y, h: f"{y}H{h}", st.integers(2000, 2100), st.integers(1, 2)),
    st.builds(str, st.integers(2000, 2100)),
)


@given(
    county=chinese, dept=chinese, period=periods, kind=st.sampled_from([GENERAL_TASK, KEY_TASK, JOINT_TASK])
)
def test_a_generated_name_always_passes_the_check_and_has_the_rules_shape(
    county: str, dept: str, period: str, kind: str
) -> None:
    assume(not dept.startswith(county))  # a department that is only the county's name has no name part left
    name = task_name("新乡市", county, f"新乡市{dept}", period, kind)
    check_task_name(name, "新乡市", county, f"新乡市{dept}", period, kind)
    assert name.startswith(f"新乡市{county}") and name.endswith(f"{period_words(period)}{kind}")


def test_a_case_triggered_task_is_named_as_a_clue_check_never_as_a_random_one() -> None:
    for category in ("general", "key"):
        for joint in (False, True):
            assert task_type(category, joint=joint, case=True) == CASE_TASK == "案件线索核查"
    name = task_name(*SEED, "2025Q1", task_type("general", case=True))
    assert name == "新乡市获嘉县生态环境局获嘉分局2025年第一季度案件线索核查" and "随机" not in name
