"""The VisitNotices aggregate: what was told to the enterprise about one visit (assignment), and when.

One per assignment (uuid5 of its id). Records the pre-visit notice (一次告知: issued, with the documents
listed and the rendered HTML's SHA-256; sent, when and how), documents shared between the departments before
the visit (资料互通), and the result notice (一表告知: issued only once every participating department has
approved its findings; delivered, when and how). The HTML itself comes from ``domain.execution.notices``.
"""

import copy
import datetime as dt
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate, event

from domain.access import Actor
from domain.directory import entry_id
from domain.errors import FieldProblem, InvalidInputError
from domain.execution.access import require_staff
from domain.execution.checks import iso_date, text
from domain.execution.evidence import validate_refs
from domain.execution.inspection import InvalidTransitionError, ReviewState

__all__ = ["DeliveryMethod", "VisitNotices", "visit_notices_id"]

_CODE = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,99}$")


class DeliveryMethod(str, Enum):
    """送达方式."""

    IN_PERSON = "in_person"  # 直接送达
    POST = "post"  # 邮寄送达
    ELECTRONIC = "electronic"  # 电子送达 (e-mail, platform message)
    OTHER = "other"


def visit_notices_id(assignment_id: str | uuid.UUID) -> uuid.UUID:
    return entry_id("visit-notices", str(assignment_id))


def _date(problems: list[FieldProblem], fld: str, value: Any) -> str | None:
    return iso_date(problems, fld, value)


def _text(
    problems: list[FieldProblem], fld: str, value: Any, max_len: int = 500, required: bool = False
) -> str:
    return text(problems, fld, value, max_len, required)


def _method(problems: list[FieldProblem], value: Any) -> str:
    choices = [m.value for m in DeliveryMethod]
    value = value.value if isinstance(value, DeliveryMethod) else value
    if value not in choices:
        problems.append(FieldProblem("method", "choice", f"must be one of: {', '.join(choices)}"))
    return str(value)


def _sha(problems: list[FieldProblem], value: Any) -> str:
    if not isinstance(value, str) or not _SHA256.match(value):
        problems.append(FieldProblem("sha256", "format", "must be the notice's SHA-256, 64 lowercase hex"))
        return ""
    return value


class VisitNotices(Aggregate):
    """The notices of one visit. ``pre_visit`` / ``result``: ``{issued_on, sha256, ..., sent: [...]}``/None;
    ``shared``: documents shared between departments, oldest first."""

    KIND: ClassVar[str] = "visit_notices"

    assignment_id: str
    target_id: str
    lead_department: str
    departments: list[str]
    pre_visit: dict[str, Any] | None
    result: dict[str, Any] | None
    shared: list[dict[str, Any]]

    class Opened(Aggregate.Created):
        assignment_id: str
        target_id: str
        lead_department: str
        departments: list[str]

    class PreVisitNoticeIssued(Aggregate.Event):
        by: str
        issued_on: str
        visit_from: str
        visit_to: str
        documents: list[str]
        sha256: str

    class PreVisitNoticeSent(Aggregate.Event):
        by: str
        sent_on: str
        method: str
        recipient: str
        note: str

    class DocumentsShared(Aggregate.Event):
        """资料互通: a department shares documents with the other departments of the visit."""

        by: str
        department: str
        documents: list[dict[str, Any]]
        note: str

    class ResultNoticeIssued(Aggregate.Event):
        by: str
        issued_on: str
        sha256: str
        departments: list[str]

    class ResultNoticeDelivered(Aggregate.Event):
        by: str
        delivered_on: str
        method: str
        recipient: str
        note: str

    @staticmethod
    def create_id(assignment_id: str, **_: Any) -> uuid.UUID:
        return visit_notices_id(assignment_id)

    @classmethod
    def open(
        cls,
        assignment_id: str | uuid.UUID,
        target_id: str | uuid.UUID,
        lead_department: str,
        departments: Sequence[str],
    ) -> "VisitNotices":
        problems: list[FieldProblem] = []
        a, t = str(assignment_id), str(target_id)
        if not _ID.match(a):
            problems.append(FieldProblem("assignment_id", "format", "must be an id"))
        if not _ID.match(t):
            problems.append(FieldProblem("target_id", "format", "must be an id"))
        depts: list[str] = []
        if isinstance(departments, str) or not isinstance(departments, Iterable):
            problems.append(FieldProblem("departments", "type", "must be a list of department codes"))
        else:
            for d in departments:
                if not isinstance(d, str) or not _CODE.match(d):
                    problems.append(FieldProblem("departments", "format", f"{d!r} is not a department code"))
                elif d not in depts:
                    depts.append(d)
        if lead_department not in depts:
            problems.append(FieldProblem("lead_department", "membership", "must be one of the departments"))
        if problems:
            raise InvalidInputError(problems)
        return cls(assignment_id=a, target_id=t, lead_department=lead_department, departments=depts)

    @event(Opened)
    def __init__(
        self, assignment_id: str, target_id: str, lead_department: str, departments: list[str]
    ) -> None:
        self.assignment_id = assignment_id
        self.target_id = target_id
        self.lead_department = lead_department
        self.departments = list(departments)
        self.pre_visit = None
        self.result = None
        self.shared = []

    @property
    def department(self) -> str:
        """The owning department (events' ``owner``): the lead; ``departments`` lists every participant."""
        return self.lead_department

    # -- commands -------------------------------------------------------------------------------------
    def issue_pre_visit_notice(
        self,
        actor: Actor,
        issued_on: dt.date | str,
        visit_from: dt.date | str,
        visit_to: dt.date | str,
        documents: Sequence[str],
        sha256: str,
    ) -> None:
        """The lead department issues the 一次告知书 (re-issuing replaces it, e.g. a changed window)."""
        require_staff(actor, self.lead_department, "issue the pre-visit notice")
        if self.result is not None:
            raise InvalidTransitionError(
                [FieldProblem("state", "transition", "the visit's results were already notified")]
            )
        problems: list[FieldProblem] = []
        on = _date(problems, "issued_on", issued_on)
        vf = _date(problems, "visit_from", visit_from)
        vt = _date(problems, "visit_to", visit_to)
        if vf and vt and vt < vf:
            problems.append(FieldProblem("visit_to", "order", "must not be before visit_from"))
        if isinstance(documents, str) or not all(isinstance(d, str) for d in documents):
            problems.append(FieldProblem("documents", "type", "must be a list of document names"))
        sha = _sha(problems, sha256)
        if problems or not (on and vf and vt):
            raise InvalidInputError(problems)
        self._issue_pre(
            by=actor.subject, issued_on=on, visit_from=vf, visit_to=vt, documents=list(documents), sha256=sha
        )

    def record_pre_visit_notice_sent(
        self, actor: Actor, sent_on: dt.date | str, method: str, recipient: str = "", note: str = ""
    ) -> None:
        require_staff(actor, self.lead_department, "record the pre-visit notice as sent")
        if self.pre_visit is None:
            raise InvalidTransitionError(
                [FieldProblem("state", "transition", "issue the pre-visit notice first")]
            )
        problems: list[FieldProblem] = []
        on = _date(problems, "sent_on", sent_on)
        if on and on < self.pre_visit["issued_on"]:
            problems.append(FieldProblem("sent_on", "order", "must not be before the notice was issued"))
        m = _method(problems, method)
        rc = _text(problems, "recipient", recipient, 200)
        nt = _text(problems, "note", note)
        if problems or on is None:
            raise InvalidInputError(problems)
        self._sent_pre(by=actor.subject, sent_on=on, method=m, recipient=rc, note=nt)

    def share_documents(self, actor: Actor, documents: Iterable[Any], note: str = "") -> None:
        """资料互通: a participating department shares evidence-store documents with the others."""
        if actor.department not in self.departments:
            require_staff(actor, self.lead_department, "share documents of this visit")  # raises unless admin
        else:
            require_staff(actor, actor.department, "share documents of this visit")
        problems: list[FieldProblem] = []
        docs = validate_refs(documents, "documents", problems)
        nt = _text(problems, "note", note)
        if not docs and not problems:
            problems.append(FieldProblem("documents", "required", "must list at least one document"))
        if problems:
            raise InvalidInputError(problems)
        self._share(by=actor.subject, department=actor.department, documents=docs, note=nt)

    def issue_result_notice(
        self, actor: Actor, issued_on: dt.date | str, sha256: str, review_states: Mapping[str, str]
    ) -> None:
        """一表告知, once every participating department approved (``review_states``: department -> state)."""
        require_staff(actor, self.lead_department, "issue the result notice")
        waiting = [
            d
            for d in self.departments
            if review_states.get(d) not in (ReviewState.APPROVED.value, ReviewState.PUBLISHED.value)
        ]
        if waiting:
            raise InvalidTransitionError(
                [
                    FieldProblem(
                        "review_states",
                        "not_all_approved",
                        f"not yet approved by: {', '.join(waiting)}; "
                        "the result notice covers every department",
                    )
                ]
            )
        problems: list[FieldProblem] = []
        on = _date(problems, "issued_on", issued_on)
        sha = _sha(problems, sha256)
        if problems or on is None:
            raise InvalidInputError(problems)
        self._issue_result(by=actor.subject, issued_on=on, sha256=sha, departments=list(self.departments))

    def record_result_notice_delivered(
        self, actor: Actor, delivered_on: dt.date | str, method: str, recipient: str = "", note: str = ""
    ) -> None:
        require_staff(actor, self.lead_department, "record the result notice as delivered")
        if self.result is None:
            raise InvalidTransitionError(
                [FieldProblem("state", "transition", "issue the result notice first")]
            )
        problems: list[FieldProblem] = []
        on = _date(problems, "delivered_on", delivered_on)
        if on and on < self.result["issued_on"]:
            problems.append(FieldProblem("delivered_on", "order", "must not be before the notice was issued"))
        m = _method(problems, method)
        rc = _text(problems, "recipient", recipient, 200)
        nt = _text(problems, "note", note)
        if problems or on is None:
            raise InvalidInputError(problems)
        self._delivered(by=actor.subject, delivered_on=on, method=m, recipient=rc, note=nt)

    # -- mutators -------------------------------------------------------------------------------------
    @event(PreVisitNoticeIssued)
    def _issue_pre(
        self, by: str, issued_on: str, visit_from: str, visit_to: str, documents: list[str], sha256: str
    ) -> None:
        self.pre_visit = {
            "issued_on": issued_on,
            "visit_from": visit_from,
            "visit_to": visit_to,
            "documents": list(documents),
            "sha256": sha256,
            "by": by,
            "sent": [],
        }

    @event(PreVisitNoticeSent)
    def _sent_pre(self, by: str, sent_on: str, method: str, recipient: str, note: str) -> None:
        if self.pre_visit is not None:  # always, after the command's check
            self.pre_visit["sent"].append(
                {"on": sent_on, "method": method, "recipient": recipient, "note": note, "by": by}
            )

    @event(DocumentsShared)
    def _share(self, by: str, department: str, documents: list[dict[str, Any]], note: str) -> None:
        self.shared.append(
            {"by": by, "department": department, "documents": copy.deepcopy(documents), "note": note}
        )

    @event(ResultNoticeIssued)
    def _issue_result(self, by: str, issued_on: str, sha256: str, departments: list[str]) -> None:
        self.result = {
            "issued_on": issued_on,
            "sha256": sha256,
            "departments": list(departments),
            "by": by,
            "delivered": [],
        }

    @event(ResultNoticeDelivered)
    def _delivered(self, by: str, delivered_on: str, method: str, recipient: str, note: str) -> None:
        if self.result is not None:  # always, after the command's check
            self.result["delivered"].append(
                {"on": delivered_on, "method": method, "recipient": recipient, "note": note, "by": by}
            )
