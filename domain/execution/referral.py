"""The Referral aggregate (移送): a finding handed to another department, to judicial organs, or to discipline
inspection, with its documents, receipt, acceptance or rejection, outcome and deadlines; every step an event.

Kinds:
- ``department``: another department in the system (``to`` is its code). That department records the receipt,
  accepts or rejects (with a reason) and reports the outcome.
- ``judicial`` (移送司法机关, a suspected crime): to public security (``to``, e.g. 获嘉县公安局) with a
  copy to the procuratorate (``copy_to``, e.g. 获嘉县人民检察院), both named.
- ``discipline`` (纪检监察): to the discipline inspection and supervision body (``to``).
Outside authorities are not users: the referring department records their receipt, decision and outcome.

States: ``transferred`` -> ``received`` -> ``accepted`` -> ``concluded``; ``rejected`` (with a reason) from
transferred or received. Deadlines (``respond_by``: accept or reject; ``outcome_by``) are calendar dates given
by the caller (it may compute them with the working-day calendar); extending one is an event with a reason.
"""

import copy
import datetime as dt
import re
import uuid
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate, event

from domain.access import Actor
from domain.directory import entry_id
from domain.errors import FieldProblem, InvalidInputError, PermissionDeniedError
from domain.execution.access import require_staff
from domain.execution.checks import iso_date, text
from domain.execution.evidence import validate_refs
from domain.execution.inspection import InvalidTransitionError

__all__ = ["Referral", "ReferralKind", "ReferralState", "referral_id"]

_CODE = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,99}$")
MAX_TEXT = 2000


class ReferralKind(str, Enum):
    DEPARTMENT = "department"
    JUDICIAL = "judicial"
    DISCIPLINE = "discipline"


class ReferralState(str, Enum):
    TRANSFERRED = "transferred"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CONCLUDED = "concluded"


_OPEN = (ReferralState.TRANSFERRED.value, ReferralState.RECEIVED.value)


def referral_id(inspection_id: str | uuid.UUID, item: str, kind: str, to: str) -> uuid.UUID:
    """One referral of a finding per destination: retrying the same referral is a conflict, not a copy."""
    return entry_id("referral", f"{inspection_id}/{item}/{kind}/{to}")


def _text(
    problems: list[FieldProblem], fld: str, value: Any, max_len: int = MAX_TEXT, required: bool = True
) -> str:
    return text(problems, fld, value, max_len, required)


def _date(problems: list[FieldProblem], fld: str, value: Any, required: bool = True) -> str | None:
    return iso_date(problems, fld, value, required)


def _not_before(
    problems: list[FieldProblem], fld: str, day: str | None, earliest: str | None, what: str
) -> None:
    if day and earliest and day < earliest:
        problems.append(FieldProblem(fld, "order", f"must not be before {what} ({earliest})"))


class Referral(Aggregate):
    """A referral of one finding (``source``: ``{inspection_id, item, target_id}``).

    ``documents``: evidence references handed over (with ``transfer`` and any added later), ``receipt``
    (回执: ``{on, reference, by}``), ``decision`` (``{accepted, on, by, note | reason}``), ``outcome``
    (``{on, text, documents, by}``), ``respond_by`` / ``outcome_by`` (ISO dates or None),
    ``extensions`` (``[{deadline, previous, new, reason}]``).
    """

    KIND: ClassVar[str] = "referral"

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
    state: str
    receipt: dict[str, Any] | None
    decision: dict[str, Any] | None
    outcome: dict[str, Any] | None
    extensions: list[dict[str, Any]]

    class Referred(Aggregate.Created):
        """The finding was transferred (移送), with its documents; for judicial referrals, copied to
        ``copy_to`` on the same day."""

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

    class DocumentsAdded(Aggregate.Event):
        by: str
        documents: list[dict[str, Any]]
        note: str

    class ReceiptRecorded(Aggregate.Event):
        by: str
        on: str
        reference: str

    class Accepted(Aggregate.Event):
        by: str
        on: str
        note: str

    class Rejected(Aggregate.Event):
        by: str
        on: str
        reason: str

    class OutcomeReported(Aggregate.Event):
        by: str
        on: str
        text: str
        documents: list[dict[str, Any]]

    class DeadlineExtended(Aggregate.Event):
        by: str
        deadline: str  # respond_by | outcome_by
        new: str
        previous: str | None
        reason: str

    @staticmethod
    def create_id(kind: str, source: dict[str, str], to: str, **_: Any) -> uuid.UUID:
        return referral_id(source["inspection_id"], source["item"], kind, to)

    @classmethod
    def refer(
        cls,
        actor: Actor,
        kind: str,
        from_department: str,
        source: Mapping[str, Any],
        to: str,
        reason: str,
        transferred_on: dt.date | str,
        documents: Iterable[Any] = (),
        copy_to: str = "",
        respond_by: dt.date | str | None = None,
        outcome_by: dt.date | str | None = None,
    ) -> "Referral":
        """Transfer a finding. ``to``: a department code (``department``) or the authority's name."""
        require_staff(actor, from_department, "refer findings")
        problems: list[FieldProblem] = []
        kinds = [k.value for k in ReferralKind]
        if kind not in kinds:
            problems.append(FieldProblem("kind", "choice", f"must be one of: {', '.join(kinds)}"))
        if not isinstance(from_department, str) or not _CODE.match(from_department):
            problems.append(FieldProblem("from_department", "format", "must be a department code"))
        src: dict[str, str] = {}
        if not isinstance(source, Mapping):
            problems.append(FieldProblem("source", "type", "must be {inspection_id, item, target_id}"))
        else:
            for key in ("inspection_id", "item", "target_id"):
                v = source.get(key)
                v = str(v) if isinstance(v, uuid.UUID) else v
                if not isinstance(v, str) or not _ID.match(v):
                    problems.append(FieldProblem(f"source.{key}", "required", "must be an id"))
                else:
                    src[key] = v
        if kind == ReferralKind.DEPARTMENT.value:
            if not isinstance(to, str) or not _CODE.match(to):
                problems.append(
                    FieldProblem("to", "format", "must be the code of a department in the system")
                )
            elif to == from_department:
                problems.append(FieldProblem("to", "other_department", "must be another department"))
            dest = to if isinstance(to, str) else ""
        else:
            dest = _text(problems, "to", to, 200)
        cc = _text(problems, "copy_to", copy_to, 200, required=False)
        if kind == ReferralKind.JUDICIAL.value and not cc:
            problems.append(
                FieldProblem(
                    "copy_to",
                    "required",
                    "a judicial referral is copied to the procuratorate (人民检察院): name it",
                )
            )
        why = _text(problems, "reason", reason)
        on = _date(problems, "transferred_on", transferred_on)
        docs = validate_refs(documents, "documents", problems)
        rb = _date(problems, "respond_by", respond_by, required=False)
        ob = _date(problems, "outcome_by", outcome_by, required=False)
        _not_before(problems, "respond_by", rb, on, "the transfer")
        _not_before(problems, "outcome_by", ob, rb or on, "the response deadline")
        if problems:
            raise InvalidInputError(problems)
        assert on is not None  # required: _date added a problem otherwise
        return cls(
            kind=kind,
            from_department=from_department,
            to=dest,
            copy_to=cc,
            source=src,
            reason=why,
            transferred_on=on,
            documents=docs,
            respond_by=rb,
            outcome_by=ob,
            by=actor.subject,
        )

    @event(Referred)
    def __init__(
        self,
        kind: str,
        from_department: str,
        to: str,
        copy_to: str,
        source: dict[str, str],
        reason: str,
        transferred_on: str,
        documents: list[dict[str, Any]],
        respond_by: str | None,
        outcome_by: str | None,
        by: str,
    ) -> None:
        self.kind = kind
        self.from_department = from_department
        self.to = to
        self.copy_to = copy_to
        self.source = dict(source)
        self.reason = reason
        self.transferred_on = transferred_on
        self.documents = copy.deepcopy(documents)
        self.respond_by = respond_by
        self.outcome_by = outcome_by
        self.state = ReferralState.TRANSFERRED.value
        self.receipt = None
        self.decision = None
        self.outcome = None
        self.extensions = []

    # -- who ------------------------------------------------------------------------------------------
    @property
    def department(self) -> str:
        """The owning department (events' ``owner``): the referring one."""
        return self.from_department

    @property
    def departments(self) -> list[str]:
        """The departments in the system it concerns: a referral to a department goes to both."""
        if self.kind == ReferralKind.DEPARTMENT.value:
            return sorted({self.from_department, self.to})
        return [self.from_department]

    @property
    def receiving_department(self) -> str:
        """Who records the receiving side: the receiving department (outside authorities: the referrer)."""
        return self.to if self.kind == ReferralKind.DEPARTMENT.value else self.from_department

    def _require_receiver(self, actor: Actor, what: str) -> None:
        require_staff(actor, self.receiving_department, what)

    def _require_state(self, what: str, *states: str) -> None:
        if self.state not in states:
            raise InvalidTransitionError(
                [
                    FieldProblem(
                        "state",
                        "transition",
                        f"cannot {what} in state {self.state} (only in {', '.join(states)})",
                    )
                ]
            )

    # -- commands -------------------------------------------------------------------------------------
    def add_documents(self, actor: Actor, documents: Iterable[Any], note: str = "") -> None:
        """Hand over further documents (either side), until the referral is closed."""
        try:
            require_staff(actor, self.from_department, "add documents to this referral")
        except PermissionDeniedError:  # the receiving side may add documents too
            self._require_receiver(actor, "add documents to this referral")
        self._require_state("add documents", *_OPEN, ReferralState.ACCEPTED.value)
        problems: list[FieldProblem] = []
        docs = validate_refs(documents, "documents", problems)
        text = _text(problems, "note", note, required=False)
        if not docs and not problems:
            problems.append(FieldProblem("documents", "required", "must list at least one document"))
        if problems:
            raise InvalidInputError(problems)
        self._add_documents(by=actor.subject, documents=docs, note=text)

    def record_receipt(self, actor: Actor, on: dt.date | str, reference: str = "") -> None:
        """回执: the receiver acknowledged the transfer (``reference``: the receipt's number or note)."""
        self._require_receiver(actor, "record the receipt")
        self._require_state("record the receipt", ReferralState.TRANSFERRED.value)
        problems: list[FieldProblem] = []
        day = _date(problems, "on", on)
        _not_before(problems, "on", day, self.transferred_on, "the transfer")
        ref = _text(problems, "reference", reference, 200, required=False)
        if problems or day is None:
            raise InvalidInputError(problems)
        self._receipt(by=actor.subject, on=day, reference=ref)

    def accept(self, actor: Actor, on: dt.date | str, note: str = "") -> None:
        self._require_receiver(actor, "accept the referral")
        self._require_state("accept", *_OPEN)
        problems: list[FieldProblem] = []
        day = _date(problems, "on", on)
        _not_before(problems, "on", day, self._last_day(), "the previous step")
        text = _text(problems, "note", note, required=False)
        if problems or day is None:
            raise InvalidInputError(problems)
        self._accept(by=actor.subject, on=day, note=text)

    def reject(self, actor: Actor, on: dt.date | str, reason: str) -> None:
        self._require_receiver(actor, "reject the referral")
        self._require_state("reject", *_OPEN)
        problems: list[FieldProblem] = []
        day = _date(problems, "on", on)
        _not_before(problems, "on", day, self._last_day(), "the previous step")
        why = _text(problems, "reason", reason)
        if problems or day is None:
            raise InvalidInputError(problems)
        self._reject(by=actor.subject, on=day, reason=why)

    def report_outcome(
        self, actor: Actor, on: dt.date | str, text: str, documents: Iterable[Any] = ()
    ) -> None:
        """处理结果: what the receiver did (立案, penalty, no case, ...)."""
        self._require_receiver(actor, "report the outcome")
        self._require_state("report the outcome", ReferralState.ACCEPTED.value)
        problems: list[FieldProblem] = []
        day = _date(problems, "on", on)
        _not_before(problems, "on", day, self._last_day(), "the acceptance")
        body = _text(problems, "text", text)
        docs = validate_refs(documents, "documents", problems)
        if problems or day is None:
            raise InvalidInputError(problems)
        self._outcome(by=actor.subject, on=day, text=body, documents=docs)

    def extend_deadline(self, actor: Actor, deadline: str, new: dt.date | str, reason: str) -> None:
        """Move ``respond_by`` or ``outcome_by`` (with a reason), while it still matters."""
        require_staff(actor, self.from_department, "extend a referral deadline")
        problems: list[FieldProblem] = []
        if deadline not in ("respond_by", "outcome_by"):
            raise InvalidInputError([FieldProblem("deadline", "choice", "must be respond_by or outcome_by")])
        if deadline == "respond_by":
            self._require_state("extend the response deadline", *_OPEN)
        else:
            self._require_state("extend the outcome deadline", *_OPEN, ReferralState.ACCEPTED.value)
        day = _date(problems, "new", new)
        _not_before(problems, "new", day, self.transferred_on, "the transfer")
        why = _text(problems, "reason", reason)
        if problems or day is None:
            raise InvalidInputError(problems)
        previous = getattr(self, deadline)
        if previous == day:
            return
        self._extend(by=actor.subject, deadline=deadline, new=day, previous=previous, reason=why)

    # -- queries --------------------------------------------------------------------------------------
    def overdue(self, today: dt.date) -> list[str]:
        """Deadlines passed without their step: ``respond_by`` (no decision), ``outcome_by`` (no outcome)."""
        out: list[str] = []
        iso = today.isoformat()
        if self.state in _OPEN and self.respond_by and iso > self.respond_by:
            out.append("respond_by")
        if self.state in (*_OPEN, ReferralState.ACCEPTED.value) and self.outcome_by and iso > self.outcome_by:
            out.append("outcome_by")
        return out

    def _last_day(self) -> str:
        return (self.receipt or {}).get("on") or self.transferred_on

    # -- mutators -------------------------------------------------------------------------------------
    @event(DocumentsAdded)
    def _add_documents(self, by: str, documents: list[dict[str, Any]], note: str) -> None:
        known = {d["sha256"] for d in self.documents}
        self.documents.extend(copy.deepcopy(d) for d in documents if d["sha256"] not in known)

    @event(ReceiptRecorded)
    def _receipt(self, by: str, on: str, reference: str) -> None:
        self.state = ReferralState.RECEIVED.value
        self.receipt = {"on": on, "reference": reference, "by": by}

    @event(Accepted)
    def _accept(self, by: str, on: str, note: str) -> None:
        self.state = ReferralState.ACCEPTED.value
        self.decision = {"accepted": True, "on": on, "by": by, "note": note}

    @event(Rejected)
    def _reject(self, by: str, on: str, reason: str) -> None:
        self.state = ReferralState.REJECTED.value
        self.decision = {"accepted": False, "on": on, "by": by, "reason": reason}

    @event(OutcomeReported)
    def _outcome(self, by: str, on: str, text: str, documents: list[dict[str, Any]]) -> None:
        self.state = ReferralState.CONCLUDED.value
        self.outcome = {"on": on, "text": text, "documents": copy.deepcopy(documents), "by": by}

    @event(DeadlineExtended)
    def _extend(self, by: str, deadline: str, new: str, previous: str | None, reason: str) -> None:
        setattr(self, deadline, new)
        self.extensions.append({"deadline": deadline, "previous": previous, "new": new, "reason": reason})


NOT_REFERABLE_RESULTS = frozenset({"no_problem"})
"""Results that leave nothing to transfer: a referral (移送) passes on a problem found."""


def require_referable(finding: Mapping[str, Any], item_field: str = "item") -> None:
    """A finding may be referred only when a problem was found: a ``no_problem`` finding is refused (422 naming
    the rule ``nothing_to_refer``)."""
    if finding.get("result") in NOT_REFERABLE_RESULTS:
        raise InvalidInputError([FieldProblem(
            item_field, "nothing_to_refer",
            f"the finding's result is {finding.get('result')} (未发现问题): only a problem found is referred (移送)")])
