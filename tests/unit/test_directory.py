"""Directory aggregates: validation, meaningful events, only real changes recorded."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.directory import Department, InspectionItem, Inspector, Target
from domain.errors import InvalidInputError
from tests.support.builders import a_department, a_target, an_inspector, an_item


def events_of(agg) -> list[str]:
    return [type(e).__name__ for e in agg.collect_events()]


def test_a_new_target_gets_defaults_and_one_registered_event() -> None:
    t = Target(data=Target.validate_new(a_target(tags="positive_list；off_site_monitored")))
    assert t.data["status"] == "active"
    assert t.data["tags"] == ["positive_list", "off_site_monitored"]
    assert events_of(t) == ["Registered"]


def test_the_same_key_gives_the_same_id() -> None:
    data = Target.validate_new(a_target())
    assert Target(data=data).id == Target(data=dict(data)).id
    assert Department.id_for(a_department()) != Department.id_for(a_department(code="hj-amr"))


def test_every_problem_of_a_record_is_reported_at_once() -> None:
    with pytest.raises(InvalidInputError) as err:
        Target.validate_new({"credit_code": "91410724MA0000000X", "name": "", "supervision_class": "vip", "colour": "red"})
    found = {(p.field, p.rule) for p in err.value.problems}
    assert found == {
        ("colour", "unknown_field"), ("credit_code", "check_digit"), ("name", "required"),
        ("county", "required"), ("supervision_class", "choice"), ("risk_class", "required"),
    }


def test_reclassification_risk_tags_and_deregistration_are_events_of_their_own() -> None:
    t = Target(data=Target.validate_new(a_target(tags=["hazardous_waste"])))
    t.collect_events()
    changed = t.change({"supervision_class": "key", "risk_class": "D", "tags": ["positive_list"], "status": "deregistered",
                        "address": "获嘉县照镜镇"})
    assert set(changed) == {"supervision_class", "risk_class", "tags", "status", "address"}
    assert events_of(t) == ["Reclassified", "RiskClassChanged", "Untagged", "Tagged", "Deregistered", "DetailsUpdated"]
    assert t.data["status"] == "deregistered" and t.data["tags"] == ["positive_list"]


def test_unchanged_values_record_nothing() -> None:
    t = Target(data=Target.validate_new(a_target()))
    t.collect_events()
    assert t.change(dict(t.data.items())) == {}
    assert events_of(t) == []


def test_identity_fields_cannot_change() -> None:
    t = Target(data=Target.validate_new(a_target()))
    with pytest.raises(InvalidInputError) as err:
        t.change({"credit_code": a_target()["credit_code"]})
    assert err.value.problems[0].rule == "immutable"


def test_inspector_activation_and_conflicts_are_events() -> None:
    i = Inspector(data=Inspector.validate_new(an_inspector()))
    i.collect_events()
    tid = str(Target.id_for(a_target()))
    i.change({"active": "否", "conflicts": [tid]})
    assert events_of(i) == ["Deactivated", "ConflictDeclared"]
    i.change({"conflicts": []})
    assert events_of(i) == ["ConflictWithdrawn"]


def test_dates_booleans_and_lists_are_normalised() -> None:
    i = Inspector.validate_new(an_inspector(certificate_expiry="2027-01-05T00:00:00", active="是"))
    assert i["certificate_expiry"] == "2027-01-05" and i["active"] is True
    with pytest.raises(InvalidInputError) as err:
        Inspector.validate_new(an_inspector(certificate_expiry="31/12/2027", conflicts=["not-a-uuid"]))
    assert {p.field for p in err.value.problems} == {"certificate_expiry", "conflicts"}
    item = InspectionItem.validate_new(an_item(methods="on_site、drone", needs_expert="需要"))
    assert item["methods"] == ["on_site", "drone"] and item["needs_expert"] is True


# Any text a field accepts: no C0 control character but tab and line feed, no carriage return (which becomes a
# line feed: tests/unit/test_text_rule.py).
accepted_text = st.characters(codec="utf-8", exclude_characters=[chr(c) for c in range(32) if c not in (9, 10)])
fields = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(accepted_text, min_size=1, max_size=20).filter(str.strip),
        "supervision_class": st.sampled_from(["key", "general", "special"]),
        "risk_class": st.sampled_from("ABCD"),
        "tags": st.lists(st.sampled_from(["positive_list", "off_site_monitored", "radiation"]), unique=True),
        "status": st.sampled_from(["active", "closed", "deregistered"]),
        "industry": st.text(accepted_text, max_size=10),
    },
)


@given(changes=st.lists(fields, max_size=6))
def test_replaying_the_events_gives_the_same_state(changes: list[dict]) -> None:
    t = Target(data=Target.validate_new(a_target()))
    for c in changes:
        t.change(c)
    events = t.collect_events()
    replayed = None
    for e in events:
        replayed = e.mutate(replayed)
    assert replayed is not None and replayed.data == t.data and replayed.version == t.version
    # applying the final state again changes nothing
    assert t.change(dict(t.data)) == {}
