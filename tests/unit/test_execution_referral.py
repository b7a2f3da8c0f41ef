"""The Referral aggregate: to another department, to judicial organs (with a copy), to 纪检监察."""

import copy
import datetime as dt
import uuid
from typing import Any

import pytest
from eventsourcing.application import Application
from hypothesis import given
from hypothesis import strategies as st

from domain.access import Actor
from domain.errors import DomainError, InvalidInputError, PermissionDeniedError
from domain.execution.inspection import InvalidTransitionError
from domain.execution.referral import Referral, ReferralState, referral_id

EEB = Actor("eeb-wang", "hj-eeb", ("reviewer",))
NR = Actor("nr-liu", "hj-nr", ("reviewer",))
AMR = Actor("amr-zhao", "hj-amr", ("reviewer",))
AUDITOR = Actor("audit", "hj-eeb", ("auditor",))
SOURCE = {"inspection_id": "3f1d2b8e-0000-5000-8000-000000000001", "item": "EEB-002", "target_id": "target-1"}
DOC = {"sha256": "cd" * 32, "size": 2048, "name": "移送函.pdf", "media_type": "application/pdf"}


def a_referral(**over: Any) -> Referral:
    args: dict[str, Any] = {
        "actor": EEB,
        "kind": "department",
        "from_department": "hj-eeb",
        "source": SOURCE,
        "to": "hj-nr",
        "reason": "非法占用耕地堆放固体废物，属自然资源部门管辖",
        "transferred_on": "2024-09-25",
        "documents": [DOC],
        "respond_by": "2024-10-09",
        "outcome_by": "2024-12-31",
        **over,
    }
    return Referral.refer(**args)


def names(r: Referral) -> list[str]:
    return [type(e).__name__ for e in r.collect_events()]


def test_a_department_referral_is_received_accepted_and_concluded_by_the_receiving_department() -> None:
    r = a_referral()
    assert r.id == referral_id(SOURCE["inspection_id"], "EEB-002", "department", "hj-nr")
    assert r.state == ReferralState.TRANSFERRED.value and r.documents == [DOC]
    r.record_receipt(NR, "2024-09-26", "回执 2024-018")
    r.accept(NR, "2024-09-27", "已受理")
    r.add_documents(EEB, [{**DOC, "sha256": "ef" * 32, "name": "照片.pdf"}], "补充照片")
    r.report_outcome(NR, "2024-11-20", "已立案查处，责令恢复原状", [DOC])
    assert r.state == ReferralState.CONCLUDED.value and r.outcome and r.outcome["text"].startswith("已立案")
    assert len(r.documents) == 2
    assert names(r) == ["Referred", "ReceiptRecorded", "Accepted", "DocumentsAdded", "OutcomeReported"]


def test_the_receiving_department_may_reject_with_a_reason() -> None:
    r = a_referral()
    with pytest.raises(InvalidInputError) as err:
        r.reject(NR, "2024-09-28", "  ")
    assert err.value.problems[0].field == "reason"
    r.reject(NR, "2024-09-28", "不属于本部门职责")
    assert r.state == ReferralState.REJECTED.value and r.decision == {
        "accepted": False,
        "on": "2024-09-28",
        "by": "nr-liu",
        "reason": "不属于本部门职责",
    }
    with pytest.raises(InvalidTransitionError):
        r.report_outcome(NR, "2024-10-01", "x")


@pytest.mark.parametrize("actor", [EEB, AMR, AUDITOR])
def test_only_the_receiving_department_decides_a_department_referral(actor: Actor) -> None:
    r = a_referral()
    r.collect_events()
    before = copy.deepcopy(r.__dict__)
    for step in (
        lambda: r.accept(actor, "2024-09-27"),
        lambda: r.reject(actor, "2024-09-27", "no"),
        lambda: r.record_receipt(actor, "2024-09-27"),
    ):
        with pytest.raises(PermissionDeniedError):
            step()
    assert r.__dict__ == before and r.collect_events() == []


def test_a_judicial_referral_names_public_security_and_the_procuratorate_and_the_referrer_records_it() -> (
    None
):
    with pytest.raises(InvalidInputError) as err:
        a_referral(kind="judicial", to="获嘉县公安局")
    assert err.value.problems[0].field == "copy_to"
    r = a_referral(kind="judicial", to="获嘉县公安局", copy_to="获嘉县人民检察院")
    assert r.copy_to == "获嘉县人民检察院" and r.receiving_department == "hj-eeb"
    r.record_receipt(EEB, "2024-09-26", "公安机关受案回执")
    r.accept(EEB, "2024-10-05", "已立案侦查")
    r.report_outcome(EEB, "2024-12-20", "移送审查起诉")
    assert r.state == ReferralState.CONCLUDED.value
    with pytest.raises(PermissionDeniedError):
        a_referral(kind="judicial", to="获嘉县公安局", copy_to="获嘉县人民检察院").accept(NR, "2024-10-05")


def test_a_discipline_inspection_referral() -> None:
    r = a_referral(kind="discipline", to="获嘉县纪委监委", respond_by=None, outcome_by=None)
    r.record_receipt(EEB, "2024-09-26")
    assert r.state == ReferralState.RECEIVED.value and r.overdue(dt.date(2030, 1, 1)) == []


def test_bad_referrals_are_refused_naming_each_field() -> None:
    with pytest.raises(InvalidInputError) as err:
        a_referral(
            kind="rumour",
            source={"item": "x"},
            to="",
            reason="",
            transferred_on="soon",
            documents=[{"sha256": "1"}],
            respond_by="2024-09-01",
        )
    fields = {p.field for p in err.value.problems}
    assert {
        "kind",
        "source.inspection_id",
        "source.target_id",
        "to",
        "reason",
        "transferred_on",
        "documents[0].sha256",
    } <= fields
    with pytest.raises(InvalidInputError) as err:
        a_referral(to="hj-eeb")
    assert err.value.problems[0].rule == "other_department"
    with pytest.raises(InvalidInputError) as err:
        a_referral(respond_by="2024-09-01")
    assert err.value.problems[0].field == "respond_by"
    with pytest.raises(PermissionDeniedError):
        a_referral(actor=AMR)
    with pytest.raises(PermissionDeniedError):
        a_referral(actor=AUDITOR)


def test_deadlines_are_flagged_when_passed_and_extended_with_a_reason() -> None:
    r = a_referral()
    assert r.overdue(dt.date(2024, 10, 9)) == []
    assert r.overdue(dt.date(2024, 10, 10)) == ["respond_by"]
    r.collect_events()
    r.extend_deadline(EEB, "respond_by", "2024-10-20", "对方部门申请延期")
    assert r.overdue(dt.date(2024, 10, 10)) == [] and r.extensions[0]["previous"] == "2024-10-09"
    r.accept(NR, "2024-10-12")
    assert r.overdue(dt.date(2025, 1, 1)) == ["outcome_by"]
    with pytest.raises(InvalidTransitionError):
        r.extend_deadline(EEB, "respond_by", "2024-10-30", "late")
    with pytest.raises(InvalidInputError):
        r.extend_deadline(EEB, "whenever", "2024-10-30", "x")
    assert names(r) == ["DeadlineExtended", "Accepted"]


def test_steps_out_of_order_are_refused() -> None:
    r = a_referral()
    with pytest.raises(InvalidTransitionError):
        r.report_outcome(NR, "2024-10-01", "x")
    with pytest.raises(InvalidInputError) as err:
        r.record_receipt(NR, "2024-09-01")
    assert err.value.problems[0].rule == "order"
    r.record_receipt(NR, "2024-09-26")
    with pytest.raises(InvalidTransitionError):
        r.record_receipt(NR, "2024-09-27")


def test_a_referral_replays_from_its_stored_events() -> None:
    r = a_referral()
    r.record_receipt(NR, "2024-09-26")
    r.accept(NR, "2024-09-27")
    app: Application[uuid.UUID] = Application()
    app.save(r)
    assert app.repository.get(r.id).__dict__ == r.__dict__


ACTORS = [EEB, NR, AMR, AUDITOR, Actor("nr-insp", "hj-nr", ("inspector",))]
STEPS = ["receipt", "accept", "reject", "reject_blank", "outcome", "docs", "extend", "extend_bad"]


def step(r: Referral, name: str, actor: Actor) -> None:
    if name == "receipt":
        r.record_receipt(actor, "2024-09-26")
    elif name == "accept":
        r.accept(actor, "2024-09-27")
    elif name == "reject":
        r.reject(actor, "2024-09-27", "不属于本部门职责")
    elif name == "reject_blank":
        r.reject(actor, "2024-09-27", "")
    elif name == "outcome":
        r.report_outcome(actor, "2024-10-30", "已处罚")
    elif name == "docs":
        r.add_documents(actor, [{**DOC, "sha256": "12" * 32}])
    elif name == "extend":
        r.extend_deadline(actor, "outcome_by", "2025-01-31", "案情复杂")
    else:
        r.extend_deadline(actor, "respond_by", "2024-01-01", "")


@given(st.lists(st.tuples(st.sampled_from(STEPS), st.sampled_from(ACTORS)), max_size=20))
def test_any_refused_referral_step_changes_nothing(steps: list[tuple[str, Actor]]) -> None:
    r = a_referral()
    r.collect_events()
    for name, actor in steps:
        before = copy.deepcopy(r.__dict__)
        try:
            step(r, name, actor)
        except DomainError:
            assert r.__dict__ == before and r.collect_events() == []
        else:
            assert len(r.collect_events()) <= 1
