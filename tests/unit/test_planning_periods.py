"""Period arithmetic of the use cases: the period before, the quarter of a day, shared quarters, a plan's
overview (quotas summed per period, the random tasks per period) and which items a department may name."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidInputError
from domain.planning.items import item_problems
from domain.planning.overview import quotas_by_period, random_tasks_by_period
from domain.planning.periods import is_period, previous_period, quarter_of, quarters, share_a_quarter
from domain.planning.rules import Period, PeriodKind, QuotaLine, parse_period

PER_YEAR = {PeriodKind.QUARTER: 4, PeriodKind.MONTH: 12, PeriodKind.HALF: 2, PeriodKind.YEAR: 1}


@st.composite
def periods(draw: st.DrawFn, min_year: int = 1001) -> Period:
    kind = draw(st.sampled_from(list(PeriodKind)))
    return Period(draw(st.integers(min_year, 9999)), kind, draw(st.integers(1, PER_YEAR[kind])))


def test_the_period_before_keeps_its_kind_and_crosses_the_year() -> None:
    assert previous_period("2024Q1") == "2023Q4"
    assert previous_period("2024Q3") == "2024Q2"
    assert previous_period("2024-01") == "2023-12"
    assert previous_period("2024H2") == "2024H1"
    assert previous_period("2024") == "2023"


@given(periods())
def test_the_period_before_ends_the_day_before_the_period_starts(p: Period) -> None:
    before = parse_period(previous_period(p.text))
    assert before.kind is p.kind
    assert before.end + dt.timedelta(days=1) == p.start


def test_a_broken_period_has_no_period_before() -> None:
    with pytest.raises(InvalidInputError):
        previous_period("2024Q5")


@given(st.dates(min_value=dt.date(1000, 1, 1)))
def test_the_quarter_of_a_day_contains_it(day: dt.date) -> None:
    q = parse_period(quarter_of(day))
    assert q.kind is PeriodKind.QUARTER and q.start <= day <= q.end


def test_is_period_tells_period_texts_from_anything_else() -> None:
    assert is_period("2024Q1") and is_period("2024-03") and is_period("2024H2") and is_period("2024")
    assert not is_period("2024Q0") and not is_period(None) and not is_period(2024) and not is_period("")


def test_a_half_year_overlaps_its_two_quarters() -> None:
    assert quarters("2024H1") == ["2024Q1", "2024Q2"]
    assert quarters("2024-08") == ["2024Q3"]
    assert share_a_quarter("2024-08", "2024Q3") and share_a_quarter("2024", "2024Q4")
    assert not share_a_quarter("2024Q1", "2024Q2") and not share_a_quarter("2024Q1", "2023Q1")


@given(periods(), periods())
def test_sharing_a_quarter_is_symmetric_and_means_overlapping_days(a: Period, b: Period) -> None:
    assert share_a_quarter(a.text, b.text) == share_a_quarter(b.text, a.text)
    if a.start <= b.end and b.start <= a.end:
        assert share_a_quarter(a.text, b.text)


def _line(stratum: str, quota: int) -> QuotaLine:
    return QuotaLine(stratum, 10, quota, "rule", f"basis {quota}")


@given(st.lists(st.tuples(st.sampled_from(["2024Q1", "2024Q2"]),
                          st.dictionaries(st.sampled_from(["key/A", "key/B", "general/A"]), st.integers(0, 50))),
                max_size=6))
def test_the_quotas_of_a_period_are_the_sum_of_its_entries(entries: list[tuple[str, dict[str, int]]]) -> None:
    out = quotas_by_period((period, {s: _line(s, q) for s, q in lines.items()}) for period, lines in entries)
    for period in {p for p, _ in entries}:
        expected: dict[str, int] = {}
        for p, lines in entries:
            if p == period:
                for s, q in lines.items():
                    expected[s] = expected.get(s, 0) + q
        assert {s: line.quota for s, line in out[period].items()} == expected
    assert set(out) == {p for p, _ in entries}


def test_case_triggered_tasks_do_not_count_against_the_plan() -> None:
    tasks = [{"origin": "planned", "period": "2024Q1", "is_joint": True},
             {"origin": "case", "period": "2024Q1", "is_joint": False},
             {"origin": "ad_hoc", "period": "2024Q2", "is_joint": False}]
    assert random_tasks_by_period(tasks) == {"2024Q1": [{"is_joint": True}], "2024Q2": [{"is_joint": False}]}


def test_a_department_names_only_its_own_items_from_the_directory() -> None:
    known = {"i1": {"department": "hj-eeb"}, "i2": {"department": "hj-amr"}}
    problems = item_problems("hj-eeb", ["i1", "i2", "i3"], known, "items")
    assert [(p.field, p.rule) for p in problems] == [("items[1]", "other_department"), ("items[2]", "unknown_item")]
    assert item_problems("hj-eeb", ["i1"], known, "items") == []
