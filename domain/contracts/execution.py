"""Messages for carrying out inspections: visits and notices, inspections and findings, referrals, follow-up rounds.

Started from ``python -m services.cli.contracts scaffold``: the fields of each event, typed as in the domain.
"""

from typing import Any

from domain.contracts.base import Message, contract
from domain.execution.followup import FollowUpRound
from domain.execution.inspection import Inspection
from domain.execution.referral import Referral
from domain.execution.visit import VisitNotices


@contract(FollowUpRound.Drawn)
class FollowUpRoundDrawnV1(Message, frozen=True):
    by: str
    record: dict[str, Any]


@contract(FollowUpRound.Escalated)
class FollowUpRoundEscalatedV1(Message, frozen=True):
    by: str
    target_id: str
    on: str
    authority: str
    reason: str


@contract(FollowUpRound.EscalationOutcomeRecorded)
class FollowUpRoundEscalationOutcomeRecordedV1(Message, frozen=True):
    by: str
    target_id: str
    on: str
    outcome: str


@contract(FollowUpRound.FeedbackGiven)
class FollowUpRoundFeedbackGivenV1(Message, frozen=True):
    by: str
    target_id: str
    on: str
    method: str
    feedback: str


@contract(FollowUpRound.OverlapDeclared)
class FollowUpRoundOverlapDeclaredV1(Message, frozen=True):
    overlaps: list[dict[str, str]]
    reason: str


@contract(FollowUpRound.Planned)
class FollowUpRoundPlannedV1(Message, frozen=True):
    department: str
    period: str
    ratio: str
    pool: list[str]
    quota: int
    commitment: str
    by: str


@contract(FollowUpRound.Planned)
class FollowUpRoundPlannedV2(Message, frozen=True):
    department: str
    period: str
    ratio: str
    pool: list[str]
    quota: int
    commitment: str
    by: str
    position: int | None


@contract(FollowUpRound.Planned)
class FollowUpRoundPlannedV3(Message, frozen=True):
    """``entropy_source``: the public source of the draw's external entropy declared with the commitment (``""``:
    none); ``null`` for rounds planned before sources were declared (their draws took any text)."""

    department: str
    period: str
    ratio: str
    pool: list[str]
    quota: int
    commitment: str
    by: str
    position: int | None
    entropy_source: str | None


@contract(FollowUpRound.VisitRecorded)
class FollowUpRoundVisitRecordedV1(Message, frozen=True):
    by: str
    target_id: str
    visited_on: str
    method: str
    opinions: str
    problems: str


@contract(Inspection.Approved)
class InspectionApprovedV1(Message, frozen=True):
    by: str
    approved_on: str
    deadline: dict[str, Any]


@contract(Inspection.DeadlineRecomputed)
class InspectionDeadlineRecomputedV1(Message, frozen=True):
    deadline: dict[str, Any]
    previous: dict[str, Any]


@contract(Inspection.FindingsRecorded)
class InspectionFindingsRecordedV1(Message, frozen=True):
    by: str
    inspected_on: str
    methods: list[str]
    findings: dict[str, dict[str, Any]]


@contract(Inspection.Opened)
class InspectionOpenedV1(Message, frozen=True):
    assignment_id: str
    task_id: str
    department: str
    target_id: str
    items: list[str]
    team: list[str]


@contract(Inspection.Published)
class InspectionPublishedV1(Message, frozen=True):
    by: str
    published_on: str


class PublicFindingV1(Message, frozen=True):
    """One item's published result; ``description`` and ``measures`` only when not confidential."""

    item: str
    result: str
    result_wording: str
    description: str | None = None
    measures: list[dict[str, Any]] | None = None


class PublicResultV1(Message, frozen=True):
    """A published result (一公开) as anyone may see it, on ``dualrandom.public.inspection.result_released``."""

    department: str
    target_id: str
    task_id: str
    inspected_on: str
    published_on: str
    findings: list[PublicFindingV1]


@contract(Inspection.ResultReleased, public=PublicResultV1)
class InspectionResultReleasedV1(Message, frozen=True):
    department: str
    target_id: str
    task_id: str
    inspected_on: str
    published_on: str
    findings: list[dict[str, Any]]


@contract(Inspection.PushConfirmed)
class InspectionPushConfirmedV1(Message, frozen=True):
    by: str
    reference: str
    on: str


@contract(Inspection.PushFailed)
class InspectionPushFailedV1(Message, frozen=True):
    by: str
    reason: str
    on: str


@contract(Inspection.Pushed)
class InspectionPushedV1(Message, frozen=True):
    by: str
    channel: str
    reference: str
    on: str


@contract(Inspection.Returned)
class InspectionReturnedV1(Message, frozen=True):
    by: str
    reason: str


@contract(Inspection.Submitted)
class InspectionSubmittedV1(Message, frozen=True):
    by: str


@contract(Referral.Accepted)
class ReferralAcceptedV1(Message, frozen=True):
    by: str
    on: str
    note: str


@contract(Referral.DeadlineExtended)
class ReferralDeadlineExtendedV1(Message, frozen=True):
    by: str
    deadline: str
    new: str
    previous: str | None
    reason: str


@contract(Referral.DocumentsAdded)
class ReferralDocumentsAddedV1(Message, frozen=True):
    by: str
    documents: list[dict[str, Any]]
    note: str


@contract(Referral.OutcomeReported)
class ReferralOutcomeReportedV1(Message, frozen=True):
    by: str
    on: str
    text: str
    documents: list[dict[str, Any]]


@contract(Referral.ReceiptRecorded)
class ReferralReceiptRecordedV1(Message, frozen=True):
    by: str
    on: str
    reference: str


@contract(Referral.Referred)
class ReferralReferredV1(Message, frozen=True):
    kind: str
    from_department: str
    to: str
    copy_to: str
    source: dict[str, str]
    reason: str
    transferred_on: str
    documents: list[dict[str, Any]]
    respond_by: str | None
    outcome_by: str | None
    by: str


@contract(Referral.Rejected)
class ReferralRejectedV1(Message, frozen=True):
    by: str
    on: str
    reason: str


@contract(VisitNotices.DocumentsShared)
class VisitNoticesDocumentsSharedV1(Message, frozen=True):
    by: str
    department: str
    documents: list[dict[str, Any]]
    note: str


@contract(VisitNotices.Opened)
class VisitNoticesOpenedV1(Message, frozen=True):
    assignment_id: str
    target_id: str
    lead_department: str
    departments: list[str]


@contract(VisitNotices.PreVisitNoticeIssued)
class VisitNoticesPreVisitNoticeIssuedV1(Message, frozen=True):
    by: str
    issued_on: str
    visit_from: str
    visit_to: str
    documents: list[str]
    sha256: str


@contract(VisitNotices.PreVisitNoticeSent)
class VisitNoticesPreVisitNoticeSentV1(Message, frozen=True):
    by: str
    sent_on: str
    method: str
    recipient: str
    note: str


@contract(VisitNotices.ResultNoticeDelivered)
class VisitNoticesResultNoticeDeliveredV1(Message, frozen=True):
    by: str
    delivered_on: str
    method: str
    recipient: str
    note: str


@contract(VisitNotices.ResultNoticeIssued)
class VisitNoticesResultNoticeIssuedV1(Message, frozen=True):
    by: str
    issued_on: str
    sha256: str
    departments: list[str]


@contract(Inspection.TeamChanged)
class InspectionTeamChangedV1(Message, frozen=True):
    """The assignment's team for this department changed (recusal, redraw): mirrored here."""

    team: list[str]
    previous: list[str]
