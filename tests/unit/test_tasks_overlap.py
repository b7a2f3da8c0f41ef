"""The overlap predicate of random tasks, against a brute force over a small world of months and targets."""

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidInputError
from domain.tasks.overlap import Footprint, OverlapError, declared_overlaps, overlaps

DEPTS = ("hj-eeb", "hj-amr", "hj-em")
ITEMS = ("i1", "i2", "i3", "i4")
COUNTIES = ("获嘉县", "原阳县")
CLASSES = ("key", "general")
RISKS = ("A", "B", "C", "D")
PERIODS = ["2024", "2025Q1", *[f"2024Q{q}" for q in range(1, 5)], "2024H1", "2024H2",
           *[f"2024-{m:02d}" for m in range(1, 13)]]

MONTHS: dict[str, set[tuple[int, int]]] = {p: set() for p in PERIODS}
for _p in PERIODS:
    year = int(_p[:4])
    if _p == str(year):
        MONTHS[_p] = {(year, m) for m in range(1, 13)}
    elif "Q" in _p:
        q = int(_p[-1])
        MONTHS[_p] = {(year, m) for m in range(3 * q - 2, 3 * q + 1)}
    elif "H" in _p:
        h = int(_p[-1])
        MONTHS[_p] = {(year, m) for m in range(6 * h - 5, 6 * h + 1)}
    else:
        MONTHS[_p] = {(year, int(_p[5:]))}


def subset(values: tuple[str, ...]) -> Any:
    return st.lists(st.sampled_from(values), unique=True, max_size=len(values))


@st.composite
def footprints(draw: Any, number: int) -> Footprint:
    depts = draw(st.lists(st.sampled_from(DEPTS), unique=True, min_size=1, max_size=3))
    participants = {d: draw(st.lists(st.sampled_from(ITEMS), unique=True, min_size=1, max_size=3)) for d in depts}
    scope = {"county": draw(st.sampled_from(("", *COUNTIES))), "industries": [],
             "supervision_classes": draw(subset(CLASSES)), "risk_classes": draw(subset(RISKS)),
             "tags": draw(subset(("a", "b")))}
    return Footprint(f"t{number}", f"2024-00{number}", f"task {number}", draw(st.sampled_from(("planned", "ad_hoc", "case"))),
                     draw(st.sampled_from(PERIODS)), participants, scope)


def admits(scope: dict[str, Any], target: tuple[str, str, str, frozenset[str]]) -> bool:
    county, cls, risk, tags = target
    return ((not scope["county"] or scope["county"] == county)
            and (not scope["supervision_classes"] or cls in scope["supervision_classes"])
            and (not scope["risk_classes"] or risk in scope["risk_classes"])
            and (not scope["tags"] or bool(set(scope["tags"]) & tags)))


TARGETS = [(c, k, r, frozenset(t)) for c in COUNTIES for k in CLASSES for r in RISKS
           for t in ((), ("a",), ("b",), ("a", "b"))]


def brute_force(a: Footprint, b: Footprint) -> bool:
    """Some month, some department bringing some item to both, and some target both scopes admit."""
    if "case" in (a.origin, b.origin):
        return False
    months = MONTHS[a.period] & MONTHS[b.period]
    work = {(d, i) for d, items in a.participants.items() for i in items} & {
        (d, i) for d, items in b.participants.items() for i in items}
    return bool(months and work and any(admits(dict(a.scope), t) and admits(dict(b.scope), t) for t in TARGETS))


@given(footprints(1), footprints(2))
def test_overlap_is_exactly_a_shared_month_department_item_and_target(a: Footprint, b: Footprint) -> None:
    assert overlaps(a, b) == brute_force(a, b) == overlaps(b, a)


@given(footprints(1))
def test_a_task_never_overlaps_itself(a: Footprint) -> None:
    assert not overlaps(a, a)


def _fp(number: int, period: str, items: list[str], origin: str = "planned") -> Footprint:
    return Footprint(f"t{number}", f"2024-00{number}", f"task {number}", origin, period, {"hj-eeb": items},
                     {"county": "获嘉县"})


def test_a_may_task_overlaps_the_second_quarter_and_must_be_declared() -> None:
    q2, q3 = _fp(1, "2024Q2", ["i1"]), _fp(2, "2024Q3", ["i1"])
    may = _fp(3, "2024-05", ["i1", "i2"])
    with pytest.raises(OverlapError) as caught:
        declared_overlaps(may, [q2, q3], [], "")
    assert [f.id for f in caught.value.undeclared] == ["t1"]
    with pytest.raises(InvalidInputError) as bad:
        declared_overlaps(may, [q2, q3], ["t1"], " ")
    assert [p.field for p in bad.value.problems] == ["overlap_reason"]
    with pytest.raises(InvalidInputError) as bad:
        declared_overlaps(may, [q2, q3], ["t1", "t2"], "加抽")
    assert [p.rule for p in bad.value.problems] == ["not_overlapping"]
    assert declared_overlaps(may, [q2, q3], ["t1"], "加抽") == [
        {"id": "t1", "number": "2024-001", "name": "task 1", "period": "2024Q2"}]
    assert declared_overlaps(_fp(4, "2024Q2", ["i9"]), [q2, q3], [], "") == []
