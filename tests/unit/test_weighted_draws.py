"""Weighted draws weigh: the stratum is the supervision class, so risk weights differ inside it, and a
higher-risk target is selected more often at the configured ratio; where weighting cannot matter, it is refused."""

import hashlib
import math

import pytest

from domain.draw.sampler import Candidate, draw
from domain.errors import InvalidInputError
from domain.tasks.pool import build_pool
from domain.tasks.strata import frozen_strata
from domain.tasks.task import validate_options, weighting_problems

WEIGHTS = {"A": 1, "B": 2, "C": 4, "D": 8}
PER_CLASS = 10
DRAWS = 3000
SIGMAS = 4.5  # a false alarm about once in 150,000 runs per class; the seeds are fixed, so the run is repeatable


def _targets() -> list[tuple[str, dict[str, str]]]:
    return [(f"t-{risk}-{i:02d}", {"county": "获嘉县", "supervision_class": "key", "risk_class": risk,
                                    "status": "active"})
            for risk in ("A", "B", "D") for i in range(PER_CLASS)]


def test_the_weighted_pool_has_one_stratum_per_supervision_class() -> None:
    pool = build_pool(_targets(), {}, weights=WEIGHTS)
    assert {r.stratum for r in pool.rows} == {"key"} and pool.by_class
    assert {r.weight for r in pool.rows} == {1, 2, 8}
    strata = frozen_strata([{"supervision_class": "key", "min_ratio": "10%"}], "2024Q2", pool, 5, {})
    # 10% of each risk class's 10, rounded up: 1 + 1 + 1, drawn from the one class stratum by weight
    assert list(strata) == ["key"] and strata["key"]["quota"] == 3 and strata["key"]["pool_size"] == 30
    assert build_pool(_targets(), {}).rows[0].stratum == "key/A"  # unweighted: per risk class, as before


def test_higher_risk_targets_are_selected_at_the_configured_ratio() -> None:
    """With a quota of 1, Efraimidis-Spirakis selects a target with probability weight / total weight, so each
    risk class's count over many draws is binomial: checked within SIGMAS standard deviations of its mean."""
    pool = build_pool(_targets(), {}, weights=WEIGHTS)
    rows = [Candidate(r.id, r.stratum, r.weight) for r in pool.rows]
    risk_of = {tid: data["risk_class"] for tid, data in _targets()}
    total = PER_CLASS * (WEIGHTS["A"] + WEIGHTS["B"] + WEIGHTS["D"])
    counts = {"A": 0, "B": 0, "D": 0}
    for i in range(DRAWS):
        seed = hashlib.sha256(f"weighted-draw-{i}".encode()).digest()
        result = draw(seed, "", rows, {"key": 1}, weighted=True)
        counts[risk_of[result.selected[0]]] += 1
    for risk, count in counts.items():
        p = PER_CLASS * WEIGHTS[risk] / total
        mean, sd = DRAWS * p, math.sqrt(DRAWS * p * (1 - p))
        assert abs(count - mean) <= SIGMAS * sd, (risk, count, mean, sd)
    # the uniform draw's expectation (a third each) is far outside those bounds for A and D
    assert counts["D"] > DRAWS / 3 + 10 * math.sqrt(DRAWS * 2 / 9) > counts["A"]


def test_where_weighting_cannot_change_anything_it_is_refused() -> None:
    with pytest.raises(InvalidInputError) as caught:
        validate_options({"weighted": True, "risk_weights": {"A": 3, "B": 3, "C": 3, "D": 3}})
    assert [(p.field, p.rule) for p in caught.value.problems] == [("options.weighted", "weights_equal")]
    linked = [{"supervision_class": "general", "risk_class": "D", "full": True}]
    assert [p.rule for p in weighting_problems({"weighted": True}, linked, {})] == ["risk_class_rules"]
    assert [p.rule for p in weighting_problems({"weighted": True}, [], {"risk_classes": ["D"]})] == ["single_risk_class"]
    assert weighting_problems({"weighted": False}, linked, {"risk_classes": ["D"]}) == []
    assert weighting_problems({"weighted": True}, [{"supervision_class": "key"}], {"risk_classes": ["C", "D"]}) == []
