"""Item applicability (多项合一 merges only what applies), for all inputs."""

import uuid
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from domain.directory import InspectionItem
from domain.planning.applicability import applicable, applies, restricted, uncovered, visit_items
from domain.tasks.teams import visit_needs

INDUSTRIES = st.sampled_from(["化工", "医疗卫生", "金属制品", "食品加工"])
TAGS = st.sampled_from(["radiation", "medical_waste", "hazardous_waste", "positive_list"])
CLASSES = st.sampled_from(["key", "general", "special"])
TARGETS = st.fixed_dictionaries({"industry": INDUSTRIES, "tags": st.lists(TAGS, max_size=3, unique=True),
                                 "supervision_class": CLASSES})
ITEMS = st.fixed_dictionaries({}, optional={
    "applies_to_industries": st.lists(INDUSTRIES, max_size=2, unique=True),
    "applies_to_tags": st.lists(TAGS, max_size=2, unique=True),
    "applies_to_classes": st.lists(CLASSES, max_size=2, unique=True)})


@given(ITEMS, TARGETS)
def test_an_item_applies_exactly_when_each_list_it_gives_holds(item: dict[str, Any], target: dict[str, Any]) -> None:
    expected = (
        (not item.get("applies_to_industries") or target["industry"] in item["applies_to_industries"])
        and (not item.get("applies_to_classes") or target["supervision_class"] in item["applies_to_classes"])
        and (not item.get("applies_to_tags") or bool(set(item["applies_to_tags"]) & set(target["tags"])))
    )
    assert applies(item, target) is expected
    if not restricted(item):
        assert applies(item, target)


@given(st.dictionaries(st.sampled_from(["hj-eeb", "hj-amr", "hj-em"]),
                       st.lists(ITEMS, min_size=1, max_size=4), min_size=1), TARGETS)
def test_a_visit_carries_only_the_items_that_apply_and_only_departments_with_one(
    by_department: dict[str, list[dict[str, Any]]], target: dict[str, Any]
) -> None:
    items = {f"{d}/{n}": item for d, its in by_department.items() for n, item in enumerate(its)}
    participants = {d: [f"{d}/{n}" for n in range(len(its))] for d, its in by_department.items()}
    visit = visit_items(participants, items, target)
    for d, ids in participants.items():
        wanted = [i for i in ids if applies(items[i], target)]
        assert visit.get(d, []) == wanted  # in the task's order, none that does not apply
        assert (d in visit) is bool(wanted)
    assert applicable([i for ids in participants.values() for i in ids], items, target) == [
        i for ids in visit.values() for i in ids]


@given(st.lists(ITEMS, min_size=1, max_size=4), st.lists(TARGETS, max_size=8))
def test_uncovered_targets_are_those_no_item_applies_to(its: list[dict[str, Any]], targets: list[dict[str, Any]]) -> None:
    items = {str(n): item for n, item in enumerate(its)}
    pairs = [(f"t{n}", t) for n, t in enumerate(targets)]
    assert uncovered(pairs, list(items), items) == [
        tid for tid, t in pairs if not any(applies(i, t) for i in its)]


@given(st.lists(ITEMS, min_size=1, max_size=4), st.lists(TARGETS, min_size=1, max_size=6))
def test_a_team_need_asks_only_for_the_specialties_of_the_items_on_the_visit(
    its: list[dict[str, Any]], targets: list[dict[str, Any]]
) -> None:
    items = {str(n): {**item, "specialty": f"专长{n}"} for n, item in enumerate(its)}
    data = {f"t{n}": t for n, t in enumerate(targets)}
    on_visit = {t: applicable(list(items), items, d) for t, d in data.items()}
    needs = {n.target_id: n for n in visit_needs(list(data), data, items, on_visit)}
    for t in data:
        if not on_visit[t]:
            assert t not in needs  # the department does not go
        else:
            assert needs[t].specialties == frozenset(items[i]["specialty"] for i in on_visit[t])


def test_an_item_stored_before_the_applicability_lists_applies_to_every_target() -> None:
    data: dict[str, Any] = {"code": "EEB-1", "name": "旧事项"}
    state: dict[str, Any] = {"originator_id": uuid.uuid4(), "originator_version": 1, "data": data}
    InspectionItem.Registered.upcast_v1_v2(state)
    assert {k: data[k] for k in ("applies_to_industries", "applies_to_tags", "applies_to_classes")} == {
        "applies_to_industries": [], "applies_to_tags": [], "applies_to_classes": []}
    assert applies(data, {"industry": "金属制品", "tags": [], "supervision_class": "general"})
