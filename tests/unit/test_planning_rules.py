"""Sampling rules and quotas: exact, rounded up, capped, explained; periods."""

import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidInputError
from domain.planning.rules import (
    HENAN_AMR_2020_RISK_RULES,
    NOTICE_MIN_TASKS_PER_QUARTER,
    NOTICE_RULES,
    Period,
    PeriodKind,
    SamplingRule,
    compute_quotas,
    parse_period,
    periods_in_year,
    resolve_rule,
    rules_from_dict,
    rules_to_dict,
)

ratios = st.builds(Fraction, st.integers(0, 1000), st.integers(1, 1000)).filter(lambda r: r <= 1)
risks = st.sampled_from("ABCD")


def quota_of(
    rules: Iterable[SamplingRule],
    counts: Mapping[tuple[str, str], int],
    inspectors: int = 0,
    period: tuple[int, int] = (4, 1),
    done: Mapping[tuple[str, str], int] | None = None,
) -> dict[str, int]:
    return {
        k: line.quota for k, line in compute_quotas(rules, counts, inspectors, *period, done or {}).items()
    }


@given(ratio=ratios, pool=st.integers(0, 100_000), risk=risks)
def test_a_ratio_quota_is_rounded_up_and_never_exceeds_the_pool(
    ratio: Fraction, pool: int, risk: str
) -> None:
    line = compute_quotas([SamplingRule("key", min_ratio=ratio)], {("key", risk): pool}, 3, 4, 1)[
        f"key/{risk}"
    ]
    assert line.quota >= ratio * pool
    assert line.quota - 1 < ratio * pool
    assert line.quota <= pool == line.pool_size


def test_the_basis_spells_out_the_arithmetic() -> None:
    lines = compute_quotas(NOTICE_RULES, {("key", "B"): 37, ("special", "A"): 4}, 5, 4, 1)
    assert lines["key/B"].quota == 10
    assert lines["key/B"].basis == "ceil(25% x 37) = 10"
    assert lines["key/B"].rule_text == "key: >= 25% per period"
    assert lines["special/A"].quota == 0 and "no minimum" in lines["special/A"].basis


def test_ratios_are_exact_whatever_form_they_are_given_in_and_floats_are_refused() -> None:
    forms = [Fraction(1, 4), Decimal("0.25"), "0.25", "25%", "1/4"]
    assert len({SamplingRule("key", min_ratio=f) for f in forms}) == 1  # type: ignore[arg-type]
    assert SamplingRule("key", min_ratio=Decimal("0.25")).min_ratio == Fraction(1, 4)
    # 0.07 is not exact in binary: 0.07 x 100 = 7.000000000000001 would give 8
    assert quota_of([SamplingRule("key", min_ratio=Decimal("0.07"))], {("key", "A"): 100})["key/A"] == 7
    with pytest.raises(InvalidInputError) as err:
        SamplingRule("key", min_ratio=0.25)  # type: ignore[arg-type]
    assert (err.value.problems[0].field, err.value.problems[0].rule) == ("min_ratio", "exact")


def test_a_rule_refuses_every_bad_field_at_once() -> None:
    with pytest.raises(InvalidInputError) as err:
        SamplingRule(
            "vip",
            risk_class="E",
            min_ratio=Fraction(3, 2),
            min_per_inspector=-1,
            combine="both",
            max_ratio=Fraction(1, 2),  # type: ignore[arg-type]  # declared None on purpose: it is refused
        )
    assert {p.field for p in err.value.problems} == {
        "supervision_class",
        "risk_class",
        "min_ratio",
        "min_per_inspector",
        "combine",
        "max_ratio",
    }


def test_the_seed_reads_five_percent_or_six_per_inspector_as_either_bound_suffices() -> None:
    general = resolve_rule(NOTICE_RULES, "general", "B")
    assert general is not None and general.combine == "either"
    assert general.describe() == "general: >= 5% or >= 6 per inspector per period"
    # 200 firms, 4 inspectors: 5% = 10, 6 x 4 = 24: either suffices -> 10, the larger -> 24
    counts = {("general", "B"): 200}
    assert quota_of(NOTICE_RULES, counts, inspectors=4)["general/B"] == 10
    larger = [SamplingRule("general", min_ratio=Decimal("0.05"), min_per_inspector=6, combine="larger")]
    assert quota_of(larger, counts, inspectors=4)["general/B"] == 24
    # 1000 firms: 5% = 50 vs 24
    assert quota_of(NOTICE_RULES, {("general", "B"): 1000}, inspectors=4)["general/B"] == 24
    assert quota_of(larger, {("general", "B"): 1000}, inspectors=4)["general/B"] == 50


pools = st.dictionaries(risks, st.integers(0, 3000), min_size=1)


@given(pools=pools, ratio=ratios, per=st.integers(0, 20), inspectors=st.integers(0, 60))
def test_either_takes_the_smaller_total_and_larger_the_larger(
    pools: dict[str, int], ratio: Fraction, per: int, inspectors: int
) -> None:
    counts = {("general", r): n for r, n in pools.items()}
    either = quota_of([SamplingRule("general", min_ratio=ratio, min_per_inspector=per)], counts, inspectors)
    larger = quota_of(
        [SamplingRule("general", min_ratio=ratio, min_per_inspector=per, combine="larger")],
        counts,
        inspectors,
    )
    by_ratio = sum(math.ceil(ratio * n) for n in pools.values())
    by_inspector = min(per * inspectors, sum(pools.values()))
    assert sum(either.values()) == min(by_ratio, by_inspector)
    assert sum(larger.values()) == max(by_ratio, by_inspector)
    # Per stratum each bound is spread on its own, so only the totals are ordered; no stratum exceeds its pool.
    assert all(max(either[k], larger[k]) <= counts[tuple(k.split("/"))] for k in either)  # type: ignore[index]


@given(pools=pools, per=st.integers(0, 20), inspectors=st.integers(0, 60))
def test_the_per_inspector_total_is_spread_over_the_strata_in_proportion(
    pools: dict[str, int], per: int, inspectors: int
) -> None:
    counts = {("general", r): n for r, n in pools.items()}
    quotas = quota_of([SamplingRule("general", min_per_inspector=per)], counts, inspectors)
    total, whole = per * inspectors, sum(pools.values())
    assert sum(quotas.values()) == min(total, whole)
    for r, n in pools.items():
        assert 0 <= quotas[f"general/{r}"] <= n
        if (
            whole > 0 and total <= whole
        ):  # uncapped: each share is its exact proportion, rounded one way or the other
            assert abs(quotas[f"general/{r}"] - Fraction(total * n, whole)) < 1


def test_per_inspector_ties_go_to_the_higher_risk_class_and_the_basis_says_how() -> None:
    lines = compute_quotas(
        [SamplingRule("general", min_per_inspector=3)], {("general", "A"): 10, ("general", "D"): 10}, 1, 4, 1
    )
    assert (lines["general/A"].quota, lines["general/D"].quota) == (1, 2)
    assert lines["general/D"].basis == (
        "3 per inspector x 1 inspectors = 3, share of general (pool 20): "
        "3 x 10/20 = 1.5 -> 2 (largest remainder)"
    )


def test_a_quota_above_the_pool_is_capped_and_says_so() -> None:
    line = compute_quotas(
        [SamplingRule("general", min_ratio=Decimal("0.05"), min_per_inspector=6, combine="larger")],
        {("general", "C"): 20},
        10,
        4,
        1,
    )["general/C"]
    assert line.quota == 20 and line.basis.endswith("capped at pool size 20")


def test_a_risk_class_rule_overrides_the_class_wide_one_for_its_stratum_only() -> None:
    rules = (*NOTICE_RULES, SamplingRule("general", "D", full=True))
    counts = {("key", "D"): 8, ("general", "A"): 100, ("general", "D"): 7}
    lines = compute_quotas(rules, counts, 10, 4, 1)
    assert lines["general/D"].quota == 7 and lines["general/D"].rule_text == "general/D: 100% per period"
    assert lines["general/A"].quota == 5  # the class-wide rule now governs general/A alone: 5% < 6 x 10
    assert lines["key/D"].quota == 2  # key's 25% is untouched by a general override


def test_either_with_no_inspectors_lets_the_per_inspector_bound_win_only_when_it_is_smaller() -> None:
    # 6 per inspector x 0 inspectors = 0 satisfies "either" with nothing drawn; the seed's wording allows
    # it, so the quota is 0.
    line = compute_quotas(NOTICE_RULES, {("general", "A"): 100}, 0, 4, 1)["general/A"]
    assert line.quota == 0 and "-> per inspector" in line.basis


def test_henan_market_regulation_ratios_map_onto_the_four_risk_classes() -> None:
    counts = {("general", r): 100 for r in "ABCD"}
    assert quota_of(HENAN_AMR_2020_RISK_RULES, counts) == {
        "general/A": 4,
        "general/B": 8,
        "general/C": 20,
        "general/D": 100,
    }
    combined = (*NOTICE_RULES, *HENAN_AMR_2020_RISK_RULES)
    assert quota_of(combined, {("key", "A"): 100, **counts}, inspectors=50)["key/A"] == 25


def test_once_a_year_spreads_the_targets_not_yet_inspected_over_the_periods_left() -> None:
    rule = [SamplingRule("special", once_a_year=True)]
    line = compute_quotas(rule, {("special", "B"): 40}, 2, 4, 2, {("special", "B"): 10})["special/B"]
    assert line.quota == 10  # ceil(30 / 3)
    assert line.basis == "once a year: ceil(30 not yet inspected / 3 periods left) = 10"
    assert (
        quota_of(rule, {("special", "B"): 40}, period=(4, 4), done={("special", "B"): 33})["special/B"] == 7
    )


@given(pool=st.integers(0, 500), kind=st.sampled_from(list(PeriodKind)), ratio=st.none() | ratios)
def test_once_a_year_inspects_every_target_by_the_end_of_the_year(pool: int, kind: PeriodKind, ratio) -> None:
    rule = [SamplingRule("special", min_ratio=ratio, once_a_year=True)]
    n = periods_in_year(kind)
    done = 0
    for index in range(1, n + 1):
        q = quota_of(rule, {("special", "A"): pool}, period=(n, index), done={("special", "A"): done})[
            "special/A"
        ]
        if ratio is not None:
            assert q >= ratio * pool
        done = min(pool, done + q)
    assert done == pool


def test_strata_without_a_rule_get_nothing_and_the_output_is_in_stratum_order() -> None:
    lines = compute_quotas(
        [SamplingRule("key", min_ratio=Decimal("0.25"))],
        {("general", "B"): 3, ("key", "D"): 4, ("key", "A"): 4},
        1,
        4,
        1,
    )
    assert list(lines) == ["key/A", "key/D", "general/B"]
    assert lines["general/B"].quota == 0 and lines["general/B"].rule_text == "no rule"


def test_bad_quota_inputs_name_their_field() -> None:
    with pytest.raises(InvalidInputError) as err:
        compute_quotas(NOTICE_RULES, {("vip", "A"): 3}, 1, 4, 1)
    assert err.value.problems[0].field == "counts"
    with pytest.raises(InvalidInputError) as err:
        compute_quotas(NOTICE_RULES, {("key", "A"): 3}, -1, 4, 5)
    assert {p.field for p in err.value.problems} == {"inspectors", "period_index"}
    with pytest.raises(InvalidInputError) as err:
        compute_quotas([SamplingRule("key"), SamplingRule("key", min_ratio=Decimal("0.3"))], {}, 1, 4, 1)
    assert (err.value.problems[0].field, err.value.problems[0].rule) == ("rules[1]", "duplicate")


def test_rules_serialise_to_plain_json_with_ratios_as_text_and_back() -> None:
    rules = (
        *NOTICE_RULES,
        *HENAN_AMR_2020_RISK_RULES,
        SamplingRule("special", "C", min_ratio=Fraction(1, 3), once_a_year=True),
    )
    data = rules_to_dict(rules)
    assert json.loads(json.dumps(data)) == data
    assert data[0] == {
        "supervision_class": "key",
        "risk_class": None,
        "min_ratio": "0.25",
        "min_per_inspector": None,
        "combine": "either",
        "full": False,
        "once_a_year": False,
    }
    assert data[1]["min_ratio"] == "0.05" and data[-1]["min_ratio"] == "1/3"
    assert rules_from_dict(data) == rules


def test_rules_from_dicts_name_the_broken_field_and_index() -> None:
    with pytest.raises(InvalidInputError) as err:
        rules_from_dict(
            [
                {"supervision_class": "key", "min_ratio": "0.25"},
                {"supervision_class": "general", "min_ratio": "lots", "colour": "red"},
            ]
        )
    assert {(p.field, p.rule) for p in err.value.problems} == {
        ("rules[1].colour", "unknown_field"),
        ("rules[1].min_ratio", "format"),
    }
    with pytest.raises(InvalidInputError) as err:
        rules_from_dict([{"supervision_class": "general", "min_ratio": "lots"}, {"min_ratio": 0.1}])
    assert {(p.field, p.rule) for p in err.value.problems} == {
        ("rules[0].min_ratio", "format"),
        ("rules[1].supervision_class", "required"),
        ("rules[1].min_ratio", "exact"),
    }


def test_the_seed_requires_at_least_one_task_per_quarter() -> None:
    assert NOTICE_MIN_TASKS_PER_QUARTER == 1


@pytest.mark.parametrize(
    ("text", "kind", "index", "start", "end"),
    [
        ("2024Q1", PeriodKind.QUARTER, 1, dt.date(2024, 1, 1), dt.date(2024, 3, 31)),
        ("2024q4", PeriodKind.QUARTER, 4, dt.date(2024, 10, 1), dt.date(2024, 12, 31)),
        ("2024-02", PeriodKind.MONTH, 2, dt.date(2024, 2, 1), dt.date(2024, 2, 29)),
        ("2023-02", PeriodKind.MONTH, 2, dt.date(2023, 2, 1), dt.date(2023, 2, 28)),
        ("2024H2", PeriodKind.HALF, 2, dt.date(2024, 7, 1), dt.date(2024, 12, 31)),
        (" 2024 ", PeriodKind.YEAR, 1, dt.date(2024, 1, 1), dt.date(2024, 12, 31)),
    ],
)
def test_periods_parse_with_their_dates(
    text: str, kind: PeriodKind, index: int, start: dt.date, end: dt.date
) -> None:
    p = parse_period(text)
    assert (p.kind, p.index, p.start, p.end) == (kind, index, start, end)
    assert parse_period(p.text) == p


@pytest.mark.parametrize(
    "text", ["2024Q5", "2024Q0", "2024-13", "2024-00", "2024H3", "24Q1", "2024 Q1", "Q1", "", None, 2024]
)
def test_a_bad_period_is_refused_naming_the_period_field(text) -> None:
    with pytest.raises(InvalidInputError) as err:
        parse_period(text)
    assert err.value.problems[0].field == "period"


def test_periods_per_year_and_containment() -> None:
    assert [periods_in_year(k) for k in ("quarter", "month", "half", "year")] == [4, 12, 2, 1]
    with pytest.raises(InvalidInputError):
        periods_in_year("week")
    assert parse_period("2024H1").contains(parse_period("2024-06"))
    assert not parse_period("2024Q1").contains(parse_period("2024H1"))
    assert [q.text for q in parse_period("2024H2").quarters()] == ["2024Q3", "2024Q4"]
    assert Period.of("quarter", dt.date(2024, 5, 20)).text == "2024Q2"
