"""A task's terms when opened (from a plan entry or ad hoc), its name and its number in the year; the strata a
freeze records; merges and redraws; the confidential drawn list."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.access import Actor
from domain.errors import InvalidInputError, PermissionDeniedError
from domain.planning.rules import NOTICE_RULES, rules_to_dict
from domain.tasks.drawn_list import require_drawn_list
from domain.tasks.merging import require_no_inspection_begun, require_redraw_allowed, require_same_quarter
from domain.tasks.opening import ad_hoc_terms, entry_year, next_task_number, planned_terms, resolve_task_name
from domain.tasks.pool import Pool, build_pool
from domain.tasks.strata import frozen_strata
from domain.tasks.task import TaskStateError

LEAD = {"city": "新乡市", "county": "获嘉县", "name": "新乡市生态环境局获嘉分局"}
ENTRY = {"items": ["i1", "i2"], "period": "2024Q1", "category": "general", "scope": {"county": "获嘉县"},
         "rules": [{"supervision_class": "key", "min_ratio": "50%"}]}


def test_a_plan_entry_gives_the_terms_the_request_leaves_out() -> None:
    terms = planned_terms({"participants": {"hj-eeb": ["i3", "i1"], "hj-amr": ["m1"]}, "period": "2024Q2"},
                          "hj-eeb", ENTRY, 2024)
    assert terms.participants == {"hj-eeb": ["i1", "i2", "i3"], "hj-amr": ["m1"]}
    assert (terms.period, terms.category, terms.scope, terms.rules) == (
        "2024Q2", "general", {"county": "获嘉县"}, ENTRY["rules"])


def test_a_planned_task_lies_in_the_plans_year() -> None:
    with pytest.raises(InvalidInputError) as err:
        planned_terms({"period": "2025Q1"}, "hj-eeb", ENTRY, 2024)
    assert [(p.field, p.rule) for p in err.value.problems] == [("period", "plan_year")]


def test_an_ad_hoc_task_is_general_under_the_seed_rules_unless_told() -> None:
    terms = ad_hoc_terms({"period": "2024Q3", "participants": {"hj-eeb": ("i1",)}})
    assert (terms.category, terms.rules, terms.participants) == ("general", rules_to_dict(NOTICE_RULES),
                                                                  {"hj-eeb": ["i1"]})
    assert ad_hoc_terms({"rules": [], "category": "key"}).rules == []


def test_an_entry_number_starts_with_its_year() -> None:
    assert entry_year("2024001") == 2024 and entry_year(2025003) == 2025 and entry_year("x024001") == 0


def test_the_name_follows_the_naming_rule_and_a_given_one_must_equal_it() -> None:
    name = resolve_task_name(None, LEAD, "2024Q1", "general", joint=False)
    assert name == "新乡市获嘉县生态环境局获嘉分局2024年第一季度一般检查事项随机抽查"
    assert resolve_task_name(f" {name} ", LEAD, "2024Q1", "general", joint=False) == f" {name} "
    with pytest.raises(InvalidInputError) as err:
        resolve_task_name("随便起的名字", LEAD, "2024Q1", "general", joint=False)
    assert err.value.problems[0].rule == "naming_rule"
    # Terms too broken to name the task: the given name stays, Task.open names the broken field.
    assert resolve_task_name(None, LEAD, "2024Q9", "general", joint=True) == ""
    assert resolve_task_name("自定", LEAD, "2024Q9", "general", joint=True) == "自定"


@given(st.integers(1000, 9999), st.sets(st.integers(1, 998)), st.integers(0, 19))
def test_the_next_number_is_past_every_number_taken(year: int, taken: set[int], attempt: int) -> None:
    numbers = [f"{year}-{n:03d}" for n in taken]
    number = next_task_number(year, numbers, attempt)
    assert number.startswith(f"{year}-") and number not in numbers
    assert int(number.split("-")[1]) == max(taken, default=0) + 1 + attempt


def _pool(classes: list[tuple[str, str]]) -> Pool:
    targets = [(f"t{i:03d}", {"supervision_class": sc, "risk_class": rc, "status": "active"})
               for i, (sc, rc) in enumerate(classes)]
    return build_pool(targets, {})


RULES = [{"supervision_class": "key", "min_ratio": "50%"}, {"supervision_class": "general", "min_ratio": "10%"}]


def test_the_strata_are_the_rules_minimum_capped_by_the_pool() -> None:
    pool = _pool([("key", "A")] * 5 + [("general", "B")] * 20)
    strata = frozen_strata(RULES, "2024Q1", pool, 3, {})
    assert {s: (v["pool_size"], v["quota"]) for s, v in strata.items()} == {"key/A": (5, 3), "general/B": (20, 2)}


@given(st.integers(1, 12), st.integers(0, 30))
def test_a_planner_may_raise_a_quota_never_lower_it(size: int, wanted: int) -> None:
    pool = _pool([("key", "A")] * size)
    minimum = frozen_strata(RULES, "2024Q1", pool, 0, {})["key/A"]["quota"]
    if wanted < minimum:
        with pytest.raises(InvalidInputError) as err:
            frozen_strata(RULES, "2024Q1", pool, 0, {"key/A": wanted})
        assert [(p.field, p.rule) for p in err.value.problems] == [("quotas.key/A", "rule_minimum")]
    else:
        line = frozen_strata(RULES, "2024Q1", pool, 0, {"key/A": wanted})["key/A"]
        assert line["quota"] == min(wanted, size) and line["basis"].startswith("set by the planner")


def test_a_quota_for_a_stratum_the_pool_lacks_is_refused() -> None:
    with pytest.raises(InvalidInputError) as err:
        frozen_strata(RULES, "2024Q1", _pool([("key", "A")]), 0, {"special/D": 1, "key/A": True})
    assert sorted((p.field, p.rule) for p in err.value.problems) == [
        ("quotas.key/A", "rule_minimum"), ("quotas.special/D", "unknown_stratum")]


def test_visits_merge_within_a_quarter_before_any_inspection_opens() -> None:
    require_same_quarter("2024-08", "2024Q3")
    with pytest.raises(InvalidInputError):
        require_same_quarter("2024Q2", "2024Q3")
    require_no_inspection_begun([])
    with pytest.raises(InvalidInputError) as err:
        require_no_inspection_begun([("absorbed", "hj-eeb"), ("into", "hj-amr")])
    assert [p.field for p in err.value.problems] == ["absorbed", "into"]


def test_a_draw_merged_with_another_tasks_is_not_redrawn() -> None:
    require_redraw_allowed(shares_a_visit=False, merged_away=False)
    for shares, merged in ((True, False), (False, True)):
        with pytest.raises(TaskStateError):
            require_redraw_allowed(shares_a_visit=shares, merged_away=merged)


def test_the_drawn_list_is_for_the_tasks_planners_and_auditors() -> None:
    require_drawn_list(Actor("p", "hj-eeb", ("planner",)), ["hj-eeb", "hj-amr"])
    require_drawn_list(Actor("a", "audit", ("auditor",)), ["hj-eeb"])
    for actor in (Actor("p", "hj-xyz", ("planner",)), Actor("i", "hj-eeb", ("inspector",))):
        with pytest.raises(PermissionDeniedError):
            require_drawn_list(actor, ["hj-eeb"])
