"""Follow-up visits (执法回访): a verifiable draw of >= 10% (rounded up), visits, confidential opinions."""

import hashlib
import uuid
from fractions import Fraction

import pytest
from eventsourcing.application import Application
from hypothesis import given
from hypothesis import strategies as st

from domain.access import Actor
from domain.draw import sampler
from domain.errors import InvalidInputError, PermissionDeniedError
from domain.execution.followup import FollowUpRound, follow_up_quota, follow_up_round_id
from domain.execution.inspection import InvalidTransitionError

SEED = bytes(range(32))
COMMIT = hashlib.sha256(SEED).hexdigest()
PLANNER = Actor("eeb-plan", "hj-eeb", ("planner",))
INSPECTOR = Actor("eeb-zhang", "hj-eeb", ("inspector",))
REVIEWER = Actor("eeb-wang", "hj-eeb", ("reviewer",))
AUDITOR = Actor("audit", "audit", ("auditor",))
OTHER_REVIEWER = Actor("amr-rev", "hj-amr", ("reviewer",))
TARGETS = [f"target-{n:03d}" for n in range(31)]
SOURCE = "上证指数2024年10月8日收盘点位"  # not a known kind: any one line of text, as published


def a_round(**over: object) -> FollowUpRound:
    args: dict[str, object] = {
        "actor": PLANNER,
        "department": "hj-eeb",
        "period": "2024Q3",
        "inspected_targets": TARGETS,
        "commitment": COMMIT,
        "entropy_source": SOURCE,
        **over,
    }
    return FollowUpRound.plan(**args)  # type: ignore[arg-type]


def drawn() -> FollowUpRound:
    r = a_round()
    r.draw_visitees(PLANNER, SEED, "3489.78", SOURCE)
    return r


def test_ten_percent_rounded_up_is_drawn_with_the_verifiable_sampler() -> None:
    r = a_round()
    assert r.id == follow_up_round_id("hj-eeb", "2024Q3") and r.quota == 4 and r.ratio == "0.1"
    selected = r.draw_visitees(PLANNER, SEED, "entropy", SOURCE)
    assert len(selected) == 4 and set(selected) <= set(TARGETS)
    assert r.verify().match
    again = sampler.draw(SEED, "entropy", [sampler.Candidate(t, "all") for t in TARGETS], {"all": 4})
    assert list(again.selected) == selected
    with pytest.raises(InvalidTransitionError):
        r.draw_visitees(PLANNER, SEED, "entropy", SOURCE)


def test_the_ratio_is_configurable() -> None:
    assert a_round(ratio="25%").quota == 8 and a_round(ratio=Fraction(1, 3)).ratio == "1/3"
    with pytest.raises(InvalidInputError) as err:
        a_round(ratio="0%")
    assert err.value.problems[0].field == "ratio"


@given(st.integers(min_value=1, max_value=10_000), st.integers(min_value=1, max_value=100))
def test_the_quota_is_at_least_the_ratio_rounded_up(pool: int, percent: int) -> None:
    q = follow_up_quota(pool, Fraction(percent, 100))
    assert q <= pool and q * 100 >= pool * percent and (q - 1) * 100 < pool * percent


def test_the_revealed_seed_must_match_the_commitment() -> None:
    r = a_round()
    with pytest.raises(InvalidInputError) as err:
        r.draw_visitees(PLANNER, bytes(32), "3489.78", SOURCE)
    assert err.value.problems[0].rule == "commitment" and r.draw is None


def test_planning_and_drawing_are_the_departments_planners() -> None:
    with pytest.raises(PermissionDeniedError):
        a_round(actor=INSPECTOR)
    with pytest.raises(PermissionDeniedError):
        a_round(actor=Actor("amr-plan", "hj-amr", ("planner",)))
    with pytest.raises(PermissionDeniedError):
        a_round().draw_visitees(REVIEWER, SEED)


def test_bad_plans_are_refused_naming_each_field() -> None:
    with pytest.raises(InvalidInputError) as err:
        a_round(
            actor=Actor("admin", "system", ("admin",)),
            department="EEB",
            period="Q3",
            inspected_targets=[],
            commitment="x",
        )
    assert {p.field for p in err.value.problems} == {
        "department",
        "period",
        "inspected_targets",
        "commitment",
    }


def test_visits_escalation_and_feedback_are_recorded_and_opinions_are_confidential() -> None:
    r = drawn()
    t = r.selected[0]
    with pytest.raises(InvalidInputError) as err:
        r.escalate(INSPECTOR, t, "2024-10-12", "获嘉县纪委监委", "索要财物")
    assert err.value.problems[0].rule == "not_visited"
    visitor = Actor("eeb-li", "hj-eeb", ("inspector",))
    with pytest.raises(PermissionDeniedError):  # who inspected the firm does not record its follow-up visit
        r.record_visit(INSPECTOR, t, "2024-10-10", "phone", opinions="x", inspected_by={"eeb-zhang", "eeb-zhao"})
    assert r.visits[t]["visits"] == []
    r.record_visit(
        visitor, t, "2024-10-10", "phone", opinions="检查人员索要财物", problems_found="涉嫌违纪",
        inspected_by={"eeb-zhang", "eeb-zhao"},
    )
    r.escalate(REVIEWER, t, "2024-10-12", "获嘉县纪委监委", "回访发现检查人员涉嫌索要财物")
    r.record_escalation_outcome(REVIEWER, t, "2024-11-30", "已立案审查")
    r.give_feedback(REVIEWER, t, "2024-12-02", "已将处理情况告知", "letter")
    assert r.visits[t]["escalations"][0]["outcome"]["text"] == "已立案审查"
    for reader in (REVIEWER, AUDITOR, visitor):  # visitor: who recorded the opinions reads them back
        assert r.visits_for(reader)[t]["visits"][0]["opinions"] == "检查人员索要财物"
    for reader in (INSPECTOR, PLANNER, OTHER_REVIEWER, Actor("admin", "system", ("admin",))):
        assert "索要财物" not in str(r.visits_for(reader)[t]["visits"])
    # The escalation: never to the firm's inspectors (it may be about them), nor to any inspector.
    inspected = {t: {"eeb-zhang", "eeb-zhao"}}
    for reader in (INSPECTOR, visitor, Actor("eeb-zhang", "hj-eeb", ("reviewer",))):
        assert r.visits_for(reader, inspected)[t]["escalations"] is None
    for reader in (REVIEWER, PLANNER, AUDITOR):
        assert r.visits_for(reader, inspected)[t]["escalations"][0]["authority"] == "获嘉县纪委监委"
    app: Application[uuid.UUID] = Application()
    app.save(r)
    events = [type(e).__name__ for e in app.events.get(r.id)]
    assert events == [
        "Planned",
        "Drawn",
        "VisitRecorded",
        "Escalated",
        "EscalationOutcomeRecorded",
        "FeedbackGiven",
    ]
    assert app.repository.get(r.id).__dict__ == r.__dict__


def test_visits_need_a_drawn_target_a_known_method_and_department_staff() -> None:
    r = a_round()
    with pytest.raises(InvalidTransitionError):
        r.record_visit(INSPECTOR, TARGETS[0], "2024-10-10", "phone")
    r.draw_visitees(PLANNER, SEED, "3489.78", SOURCE)
    not_drawn = next(t for t in TARGETS if t not in r.selected)
    with pytest.raises(InvalidInputError) as err:
        r.record_visit(INSPECTOR, not_drawn, "2024-10-10", "telepathy")
    assert {(p.field, p.rule) for p in err.value.problems} == {
        ("target_id", "not_selected"),
        ("method", "choice"),
    }
    with pytest.raises(PermissionDeniedError):
        r.record_visit(OTHER_REVIEWER, r.selected[0], "2024-10-10", "phone")
    with pytest.raises(PermissionDeniedError):
        r.record_visit(AUDITOR, r.selected[0], "2024-10-10", "phone")
