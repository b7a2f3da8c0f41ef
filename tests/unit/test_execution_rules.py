"""Execution rules the use cases apply: request dates, the case task a clue opens, who reads and lists a visit's
records, and the notices that speak for every department of a visit."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.access import Actor
from domain.errors import InvalidInputError, PermissionDeniedError
from domain.execution.cases import case_items, case_period, case_reason, clue_id
from domain.execution.clue import validate_clue
from domain.execution.dates import parse_day, past_day, pre_visit_dates
from domain.execution.inspection import InvalidTransitionError
from domain.execution.joint_notices import lead_first, require_all_approved, review_states
from domain.execution.readers import (
    export_department,
    listed_department,
    reads_everything,
    refuse_partner,
    require_calendar_admin,
    require_uploader,
    require_visit_reader,
)
from domain.planning.rules import parse_period

TODAY = dt.date(2024, 8, 15)
ADMIN = Actor("a", "admin", ("admin",))
AUDITOR = Actor("au", "audit", ("auditor",))
REVIEWER = Actor("r", "hj-eeb", ("reviewer",))
INSPECTOR = Actor("i", "hj-eeb", ("inspector",))
PARTNER = Actor("p", "hj-eeb", ("partner",))


# -- dates ---------------------------------------------------------------------------------------------------
def test_a_day_is_a_date_or_its_iso_text_else_the_default() -> None:
    assert parse_day(None, "on", TODAY) == TODAY and parse_day("", "on", TODAY) == TODAY
    assert parse_day("2024-01-02", "on", TODAY) == dt.date(2024, 1, 2)
    assert parse_day(dt.date(2024, 1, 3), "on", TODAY) == dt.date(2024, 1, 3)
    with pytest.raises(InvalidInputError) as err:
        parse_day("02/01/2024", "sent_on", TODAY)
    assert [(p.field, p.rule) for p in err.value.problems] == [("sent_on", "format")]


@given(st.dates(dt.date(2020, 1, 1), dt.date(2030, 12, 31)))
def test_what_was_done_was_done_by_today(day: dt.date) -> None:
    if day <= TODAY:
        assert past_day(day.isoformat(), "approved_on", TODAY) == day
    else:
        with pytest.raises(InvalidInputError) as err:
            past_day(day.isoformat(), "approved_on", TODAY)
        assert [(p.field, p.rule) for p in err.value.problems] == [("approved_on", "not_future")]


def test_the_pre_visit_window_defaults_to_the_visit_and_what_was_issued() -> None:
    assert pre_visit_dates({}, {}, "2024-09-02", TODAY) == (dt.date(2024, 9, 2), dt.date(2024, 9, 2), TODAY)
    # No visit date yet and none given: no made-up window (the notice says 另行通知).
    assert pre_visit_dates({}, {}, None, TODAY) == (None, None, TODAY)
    issued = {"visit_from": "2024-09-03", "visit_to": "2024-09-05", "issued_on": "2024-08-01"}
    assert pre_visit_dates({"visit_to": "2024-09-06"}, issued, "2024-09-02", TODAY) == (
        dt.date(2024, 9, 3), dt.date(2024, 9, 6), dt.date(2024, 8, 1))


def test_a_pre_visit_window_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(InvalidInputError) as err:
        pre_visit_dates({"visit_from": "2024-09-09", "visit_to": "2024-09-06"}, {}, None, TODAY)
    assert [(p.field, p.rule) for p in err.value.problems] == [("visit_to", "before_visit_from")]


# -- the case task of a clue -----------------------------------------------------------------------------------
CLUE = validate_clue({"source": "monitoring_alert", "department": "hj-eeb", "target_id": "t-1",
                      "received_on": "2024-08-03", "summary": "COD 超标", "method": "online_monitoring",
                      "reference": "预警-17"})


def test_the_same_clue_has_the_same_id() -> None:
    again = validate_clue(CLUE.as_dict())
    assert clue_id(CLUE) == clue_id(again)
    assert clue_id(CLUE) != clue_id(validate_clue({**CLUE.as_dict(), "summary": "COD 超标 3 小时"}))


def test_the_case_reason_says_source_day_summary_method_and_reference() -> None:
    assert case_reason(CLUE) == "个案检查（非现场监测异常）2024-08-03：COD 超标；方式：在线监控；编号：预警-17"
    bare = validate_clue({"source": "complaint", "department": "hj-eeb", "target_id": "t-1",
                          "received_on": "2024-08-03", "summary": "噪声扰民"})
    assert case_reason(bare) == "个案检查（投诉举报）2024-08-03：噪声扰民"


@given(st.dates(dt.date(1000, 1, 1)))
def test_a_case_task_falls_in_the_quarter_it_is_opened_unless_told(today: dt.date) -> None:
    p = parse_period(case_period(None, today))
    assert p.start <= today <= p.end
    assert case_period("2024-07", today) == "2024-07"


def test_a_case_task_needs_a_period_and_items() -> None:
    with pytest.raises(InvalidInputError):
        case_period("Q3", TODAY)
    with pytest.raises(InvalidInputError) as err:
        case_items([])
    assert err.value.problems[0].field == "items"
    assert case_items(("i1",)) == ["i1"]


# -- readers -------------------------------------------------------------------------------------------------
def test_a_visit_is_read_by_its_departments_staff_admins_and_auditors() -> None:
    for actor in (ADMIN, AUDITOR, REVIEWER, INSPECTOR):
        require_visit_reader(actor, ["hj-eeb", "hj-amr"])
    for actor in (PARTNER, Actor("x", "hj-xyz", ("planner",))):
        with pytest.raises(PermissionDeniedError):
            require_visit_reader(actor, ["hj-eeb"])
    assert reads_everything(ADMIN) and reads_everything(AUDITOR) and not reads_everything(REVIEWER)


def test_a_listing_covers_the_actors_department_unless_they_read_everything() -> None:
    assert listed_department(ADMIN, None, "referrals") is None
    assert listed_department(AUDITOR, "hj-amr", "referrals") == "hj-amr"
    assert listed_department(REVIEWER, None, "referrals") == "hj-eeb"
    assert listed_department(REVIEWER, "hj-eeb", "referrals") == "hj-eeb"
    with pytest.raises(PermissionDeniedError, match="referrals of hj-amr are not yours"):
        listed_department(REVIEWER, "hj-amr", "referrals")


def test_an_export_is_for_reviewers_and_planners_of_the_department() -> None:
    assert export_department(ADMIN, None) is None and export_department(REVIEWER, None) == "hj-eeb"
    for actor, dept in ((INSPECTOR, None), (REVIEWER, "hj-amr")):
        with pytest.raises(PermissionDeniedError):
            export_department(actor, dept)


def test_partners_read_results_and_only_staff_upload_evidence() -> None:
    refuse_partner(REVIEWER)
    with pytest.raises(PermissionDeniedError):
        refuse_partner(PARTNER)
    require_uploader(INSPECTOR)
    for actor in (AUDITOR, PARTNER):
        with pytest.raises(PermissionDeniedError):
            require_uploader(actor)
    require_calendar_admin(ADMIN)
    with pytest.raises(PermissionDeniedError):
        require_calendar_admin(AUDITOR)


# -- joint notices -------------------------------------------------------------------------------------------
@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, unique=True), st.data())
def test_the_lead_comes_first_and_every_department_once(departments: list[str], data: st.DataObject) -> None:
    lead = data.draw(st.sampled_from(departments))
    order = lead_first(lead, departments)
    assert order[0] == lead and sorted(order) == sorted(departments)
    assert [d for d in order if d != lead] == [d for d in departments if d != lead]


def test_the_result_notice_waits_for_every_department() -> None:
    states = review_states(["hj-eeb", "hj-amr"], {"hj-eeb": "approved"})
    assert states == {"hj-eeb": "approved", "hj-amr": "not_entered"}
    with pytest.raises(InvalidTransitionError) as err:
        require_all_approved(states)
    assert "hj-amr" in err.value.problems[0].message
    require_all_approved({"hj-eeb": "approved", "hj-amr": "published"})
