"""The Inspection aggregate: 谁检查、谁录入、谁公开, review and push states, deadlines, refusals."""

import copy
import datetime as dt
import uuid
from typing import Any

import pytest
from eventsourcing.application import Application
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.access import Actor
from domain.calendar import WorkCalendar, schedule_from_json
from domain.errors import DomainError, InvalidInputError, PermissionDeniedError
from domain.execution.inspection import (
    Inspection,
    InvalidTransitionError,
    PushState,
    ReviewState,
    inspection_id,
)
from domain.execution.vocabulary import ResultVocabulary

CAL = WorkCalendar.official()
ASSIGNMENT = str(uuid.uuid5(uuid.NAMESPACE_URL, "assignment/1"))
ITEMS = ["EEB-001", "EEB-002"]
INSPECTOR = Actor("eeb-zhang", "hj-eeb", ("inspector",))
INSPECTOR2 = Actor("eeb-li", "hj-eeb", ("inspector",))
REVIEWER = Actor("eeb-wang", "hj-eeb", ("reviewer",))
SYSTEM = Actor("system", "system", ("admin",))
EVIDENCE = {"sha256": "ab" * 32, "size": 1234, "name": "现场照片.jpg", "media_type": "image/jpeg"}


def an_inspection(**over: Any) -> Inspection:
    args = {
        "assignment_id": ASSIGNMENT,
        "task_id": "task-1",
        "department": "hj-eeb",
        "target_id": "target-1",
        "items": ITEMS,
        "team": ["eeb-zhang", "eeb-li"],
        **over,
    }
    return Inspection.open(**args)


def findings(**over: Any) -> dict[str, dict[str, Any]]:
    return {
        "EEB-001": {"result": "no_problem"},
        "EEB-002": {
            "result": "corrected",
            "description": "危废暂存间未设置标识，工艺参数见附件",
            "evidence": [EVIDENCE],
            "measures": [{"kind": "order_correction", "deadline": "2024-10-15"}],
            "confidential": ["evidence"],
        },
        **over,
    }


def submitted() -> Inspection:
    i = an_inspection()
    i.record(INSPECTOR, "2024-09-10", ["on_site", "documentary"], findings())
    i.submit(INSPECTOR2)
    return i


def approved() -> Inspection:
    i = submitted()
    i.approve(REVIEWER, "2024-09-20", CAL)
    return i


def names(i: Inspection) -> list[str]:
    return [type(e).__name__ for e in i.collect_events()]


def test_one_inspection_per_assignment_and_department() -> None:
    i = an_inspection()
    assert i.id == inspection_id(ASSIGNMENT, "hj-eeb") != inspection_id(ASSIGNMENT, "hj-amr")
    assert i.state == ReviewState.NOT_ENTERED.value and i.push_state is None


def test_the_team_enters_and_submits_and_a_reviewer_approves_with_the_20_working_day_deadline() -> None:
    i = an_inspection()
    i.record(INSPECTOR, "2024-09-10", ["on_site"], findings())
    assert i.state == ReviewState.ENTERED.value  # entered, not yet handed to review (outside tester: not_entered)
    i.record(INSPECTOR, "2024-09-10", ["on_site"], findings())  # entered again: replaced, still entered
    assert i.state == ReviewState.ENTERED.value
    i.submit(INSPECTOR)
    assert i.state == ReviewState.AWAITING_REVIEW.value
    deadline = i.approve(REVIEWER, dt.date(2024, 9, 20), CAL)
    assert deadline.date == dt.date(2024, 10, 23) and not deadline.provisional
    assert i.state == ReviewState.APPROVED.value and i.push_state == PushState.PENDING.value
    assert i.findings["EEB-002"]["result_wording"] == "发现问题已责令改正"
    assert not i.is_overdue(dt.date(2024, 10, 23)) and i.is_overdue(dt.date(2024, 10, 24))
    i.publish(SYSTEM, "2024-10-20")
    assert i.state == ReviewState.PUBLISHED.value and not i.is_overdue(dt.date(2025, 1, 1))
    assert not i.published_late
    assert names(i) == ["Opened", "FindingsRecorded", "FindingsRecorded", "Submitted", "Approved", "Published", "ResultReleased"]


def test_a_returned_inspection_is_corrected_and_submitted_again() -> None:
    i = submitted()
    i.return_(REVIEWER, "EEB-002 描述不完整")
    assert i.state == ReviewState.RETURNED.value
    i.record(
        INSPECTOR,
        "2024-09-10",
        ["on_site"],
        {"EEB-002": {"result": "follow_up_pending", "description": "已立案"}},
    )
    assert i.state == ReviewState.RETURNED.value  # the return stays visible until submitted again
    i.submit(INSPECTOR)
    assert i.findings["EEB-002"]["result"] == "follow_up_pending"
    assert i.findings["EEB-001"]["result"] == "no_problem"  # untouched items are kept
    assert [h["action"] for h in i.history] == ["submitted", "returned", "submitted"]


@pytest.mark.parametrize(
    "actor",
    [
        Actor("amr-zhao", "hj-amr", ("inspector",)),  # another department's inspector
        Actor("eeb-sun", "hj-eeb", ("inspector",)),  # same department, not on the team
        Actor("eeb-zhang", "hj-eeb", ("planner",)),  # on the team by id, but not as an inspector
        Actor("eeb-zhang", "hj-amr", ("inspector",)),  # same id, other department
        REVIEWER,
        Actor("audit", "hj-eeb", ("auditor",)),
    ],
)
def test_only_the_departments_team_enters_findings(actor: Actor) -> None:
    i = an_inspection()
    i.collect_events()
    with pytest.raises(PermissionDeniedError):
        i.record(actor, "2024-09-10", ["on_site"], findings())
    with pytest.raises(PermissionDeniedError):
        i.submit(actor)
    assert i.findings == {} and i.collect_events() == []


@pytest.mark.parametrize(
    "actor",
    [
        Actor("amr-rev", "hj-amr", ("reviewer",)),  # another department's reviewer
        INSPECTOR,  # the team
        Actor("eeb-zhang", "hj-eeb", ("inspector", "reviewer")),  # no one reviews their own findings
        Actor("eeb-plan", "hj-eeb", ("planner",)),
        Actor("audit", "hj-eeb", ("auditor",)),
    ],
)
def test_only_the_departments_reviewers_return_or_approve(actor: Actor) -> None:
    i = submitted()
    i.collect_events()
    before = copy.deepcopy(i.__dict__)
    with pytest.raises(PermissionDeniedError):
        i.approve(actor, "2024-09-20", CAL)
    with pytest.raises(PermissionDeniedError):
        i.return_(actor, "no")
    assert i.__dict__ == before and i.collect_events() == []


def test_only_approved_results_are_published_or_pushed() -> None:
    i = submitted()
    with pytest.raises(InvalidTransitionError) as err:
        i.publish(SYSTEM, "2024-10-01")
    assert err.value.problems[0].field == "state"
    with pytest.raises(InvalidTransitionError):
        i.mark_pushed(SYSTEM, "2024-10-01")
    with pytest.raises(PermissionDeniedError):
        approved().publish(Actor("amr-rev", "hj-amr", ("reviewer",)), "2024-10-01")


def test_push_states_move_pending_pushed_failed_pushed_confirmed() -> None:
    i = approved()
    i.collect_events()
    with pytest.raises(InvalidTransitionError):
        i.confirm_push(SYSTEM, "2024-09-21")
    i.mark_pushed(SYSTEM, "2024-09-21", "data_push", "batch-7")
    i.mark_push_failed(SYSTEM, "2024-09-22", "HTTP 502 from the publicity system")
    assert i.push_state == PushState.FAILED.value and i.push["reason"].startswith("HTTP 502")
    i.mark_pushed(REVIEWER, "2024-09-23", "manual_entry")
    i.confirm_push(SYSTEM, "2024-09-24", "公示编号 123")
    assert i.push_state == PushState.CONFIRMED.value
    with pytest.raises(InvalidTransitionError):
        i.mark_push_failed(SYSTEM, "2024-09-25", "late")
    with pytest.raises(InvalidInputError) as err:
        approved().mark_push_failed(SYSTEM, "2024-09-25", " ")
    assert err.value.problems[0].field == "reason"
    with pytest.raises(InvalidInputError) as err:
        approved().mark_pushed(SYSTEM, "2024-09-25", "fax")
    assert err.value.problems[0].field == "channel"
    assert names(i) == ["Pushed", "PushFailed", "Pushed", "PushConfirmed"]


def test_bad_findings_are_refused_naming_each_field_and_rule() -> None:
    i = an_inspection()
    i.collect_events()
    bad: dict[str, dict[str, Any]] = {
        "EEB-001": {"result": "fine", "colour": "red"},
        "EEB-002": {
            "result": "corrected",  # a problem found needs a description
            "evidence": [{"sha256": "xyz", "size": 0, "name": "", "media_type": "jpeg"}],
            "measures": [{"kind": "order_correction"}, {"kind": "other"}, {"kind": "shout"}],
            "confidential": ["result"],
        },
        "EEB-999": {"result": "no_problem"},
    }
    with pytest.raises(InvalidInputError) as err:
        i.record(INSPECTOR, "2024-13-01", ["psychic"], bad)
    got = {(p.field, p.rule) for p in err.value.problems}
    assert {
        ("inspected_on", "format"),
        ("methods", "choice"),
        ("findings.EEB-001.result", "choice"),
        ("findings.EEB-001.colour", "unknown_field"),
        ("findings.EEB-002.description", "required"),
        ("findings.EEB-002.evidence[0].sha256", "format"),
        ("findings.EEB-002.evidence[0].size", "range"),
        ("findings.EEB-002.evidence[0].name", "format"),
        ("findings.EEB-002.evidence[0].media_type", "format"),
        ("findings.EEB-002.measures[0].deadline", "required"),
        ("findings.EEB-002.measures[1].note", "required"),
        ("findings.EEB-002.measures[2].kind", "choice"),
        ("findings.EEB-002.confidential", "choice"),
        ("findings.EEB-999", "unknown_item"),
    } <= got
    assert i.findings == {} and i.collect_events() == []


def test_a_future_inspection_date_and_an_incomplete_submission_are_refused() -> None:
    i = an_inspection()
    with pytest.raises(InvalidInputError) as err:
        i.record(INSPECTOR, "2024-09-10", ["on_site"], findings(), today=dt.date(2024, 9, 1))
    assert err.value.problems[0].rule == "not_future"
    i.record(INSPECTOR, "2024-09-10", ["on_site"], {"EEB-001": {"result": "no_problem"}})
    with pytest.raises(InvalidInputError) as err:
        i.submit(INSPECTOR)
    assert err.value.problems[0].rule == "incomplete" and "EEB-002" in err.value.problems[0].message


def test_a_configured_vocabulary_is_used_and_its_wording_kept() -> None:
    vocab = ResultVocabulary(
        [{"code": "ok", "wording": "合格"}, {"code": "bad", "wording": "不合格", "problem_found": True}]
    )
    i = an_inspection(items=["EEB-001"])
    i.record(
        INSPECTOR,
        "2024-09-10",
        ["drone"],
        {"EEB-001": {"result": "bad", "description": "x"}},
        vocabulary=vocab,
    )
    assert i.findings["EEB-001"]["result_wording"] == "不合格"
    with pytest.raises(InvalidInputError):
        i.record(INSPECTOR, "2024-09-10", ["drone"], {"EEB-001": {"result": "no_problem"}}, vocabulary=vocab)


def test_confidential_fields_are_redacted_for_the_public_and_other_departments() -> None:
    i = an_inspection()
    i.record(
        INSPECTOR,
        "2024-09-10",
        ["on_site"],
        {
            **findings(),
            "EEB-002": {
                "result": "corrected",
                "description": "工艺配方：机密",
                "evidence": [EVIDENCE],
                "measures": [{"kind": "case_filed"}],
                "confidential": ["description", "measures"],
            },
        },
    )
    public = i.public_findings()[1]
    assert public == {"item": "EEB-002", "result": "corrected", "result_wording": "发现问题已责令改正"}
    assert "机密" not in str(i.findings_for(Actor("amr-rev", "hj-amr", ("reviewer",))))
    assert "机密" in str(i.findings_for(REVIEWER)) and "机密" in str(i.findings_for(INSPECTOR))
    assert "机密" in str(i.findings_for(Actor("audit", "audit", ("auditor",))))


def test_a_provisional_deadline_is_recomputed_when_the_year_is_loaded() -> None:
    last = CAL.covered_years[-1]
    i = an_inspection()
    i.record(
        INSPECTOR,
        f"{last}-12-01",
        ["on_site"],
        {"EEB-001": {"result": "no_problem"}, "EEB-002": {"result": "no_problem"}},
    )
    i.submit(INSPECTOR)
    deadline = i.approve(REVIEWER, f"{last}-12-20", CAL)
    assert deadline.provisional and i.deadline and i.deadline["provisional"]
    i.collect_events()
    assert i.recompute_deadline(CAL) is False  # nothing loaded yet: unchanged, no event
    week = [f"{last + 1}-01-0{d}" for d in range(1, 8)]
    loaded = CAL.with_schedule(schedule_from_json({"year": last + 1, "holidays": week, "workdays": []}))
    assert i.recompute_deadline(loaded) is True
    assert (
        i.deadline is not None
        and not i.deadline["provisional"]
        and i.deadline["date"] > deadline.date.isoformat()
    )
    events = i.collect_events()
    assert [type(e).__name__ for e in events] == ["DeadlineRecomputed"]
    assert isinstance(events[0], Inspection.DeadlineRecomputed) and events[0].previous["provisional"]
    assert i.recompute_deadline(loaded) is False


def test_an_inspection_replays_from_its_stored_events() -> None:
    i = approved()
    i.mark_pushed(SYSTEM, "2024-09-21")
    app: Application[uuid.UUID] = Application()
    app.save(i)
    again: Inspection = app.repository.get(i.id)
    assert again.__dict__ == i.__dict__


# -- property: a refused command changes nothing -------------------------------------------------------
ACTORS = [
    INSPECTOR,
    INSPECTOR2,
    REVIEWER,
    SYSTEM,
    Actor("amr-x", "hj-amr", ("inspector", "reviewer")),
    Actor("eeb-sun", "hj-eeb", ("inspector",)),
    Actor("audit", "x", ("auditor",)),
]
COMMANDS = ["record", "record_bad", "submit", "return", "approve", "publish", "pushed", "failed", "confirm"]


def run(i: Inspection, command: str, actor: Actor) -> None:
    if command == "record":
        i.record(actor, "2024-09-10", ["on_site"], findings())
    elif command == "record_bad":
        i.record(actor, "2024-09-10", [], {"EEB-001": {"result": "nope"}})
    elif command == "submit":
        i.submit(actor)
    elif command == "return":
        i.return_(actor, "补充材料")
    elif command == "approve":
        i.approve(actor, "2024-09-20", CAL)
    elif command == "publish":
        i.publish(actor, "2024-09-30")
    elif command == "pushed":
        i.mark_pushed(actor, "2024-09-30")
    elif command == "failed":
        i.mark_push_failed(actor, "2024-09-30", "timeout")
    else:
        i.confirm_push(actor, "2024-09-30")


@settings(max_examples=150)
@given(st.lists(st.tuples(st.sampled_from(COMMANDS), st.sampled_from(ACTORS)), max_size=25))
def test_any_refused_command_changes_nothing(steps: list[tuple[str, Actor]]) -> None:
    i = an_inspection()
    i.collect_events()
    for command, actor in steps:
        before = copy.deepcopy(i.__dict__)
        try:
            run(i, command, actor)
        except DomainError:
            assert i.__dict__ == before
            assert i.collect_events() == []
        else:
            # one event a command; publishing also records the public record (ResultReleased)
            assert len(i.collect_events()) == (2 if command == "publish" else 1)
        assert i.state in {s.value for s in ReviewState}
        if i.state in (
            ReviewState.NOT_ENTERED.value,
            ReviewState.ENTERED.value,
            ReviewState.AWAITING_REVIEW.value,
            ReviewState.RETURNED.value,
        ):
            assert i.push_state is None


def test_the_team_follows_the_assignment_until_review() -> None:
    i = an_inspection()
    i.collect_events()
    assert i.sync_team(["eeb-zhang", "eeb-li"]) is False
    assert i.sync_team(["eeb-zhang", "eeb-sun"]) is True
    with pytest.raises(PermissionDeniedError):
        i.record(INSPECTOR2, "2024-09-10", ["on_site"], findings())  # eeb-li was replaced
    i.record(Actor("eeb-sun", "hj-eeb", ("inspector",)), "2024-09-10", ["on_site"], findings())
    i.submit(INSPECTOR)
    with pytest.raises(InvalidTransitionError):
        i.sync_team(["eeb-zhang"])
    with pytest.raises(InvalidInputError):
        i.sync_team([])
    assert names(i) == ["TeamChanged", "FindingsRecorded", "Submitted"]
