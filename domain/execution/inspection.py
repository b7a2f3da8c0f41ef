"""The Inspection aggregate: one department's findings for one visit (assignment), reviewed and published.

One per (assignment, department): a joint visit has one Inspection per participating department, so each
department enters, reviews and publishes only its own items (谁检查、谁录入、谁公开). The assignment's data
(task, target, the department's items and team) is passed in as plain values when it is opened.

Review states: ``not_entered`` -> (record) ``entered`` (record) -> (submit) ``awaiting_review`` -> ``returned``
(record, submit) | ``approved`` -> ``published``. Push states (国家企业信用信息公示系统), from approval on: ``pending`` ->
``pushed`` -> ``confirmed``; ``failed`` (with a reason) from pending or pushed, and pushed again after a
failure. A refused command raises and records nothing.
"""

import copy
import datetime as dt
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate, event

from domain.access import Actor
from domain.calendar import PUBLICATION_WORKING_DAYS, Deadline, WorkCalendar
from domain.directory import entry_id
from domain.errors import FieldProblem, InvalidInputError
from domain.execution.access import (
    can_enter,
    can_read_confidential,
    require_enter,
    require_publish,
    require_review,
)
from domain.execution.checks import text
from domain.execution.evidence import validate_refs
from domain.execution.vocabulary import DEFAULT_VOCABULARY, Measure, ResultVocabulary
from domain.values import InspectionMethod

__all__ = [
    "CONFIDENTIAL_FIELDS",
    "Inspection",
    "InvalidTransitionError",
    "PushChannel",
    "PushState",
    "ReviewState",
    "inspection_id",
    "redact_finding",
]

_CODE = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,99}$")
MAX_TEXT = 2000
MAX_REASON = 1000
MAX_MEASURES = 10

CONFIDENTIAL_FIELDS: tuple[str, ...] = ("description", "evidence", "measures")
"""Fields of a finding that may be marked confidential (商业秘密/技术秘密). The result never is: it is
what gets published."""

CONFIDENTIAL_HINT = ("the fields of the finding kept from the public, a list of "
                     + ", ".join(CONFIDENTIAL_FIELDS) + ' (e.g. ["description", "measures"]; none: [] or absent)')
_FINDING_KEYS = ("result", "description", "evidence", "measures", "confidential")


def _json(value: object) -> str:
    """A given value as the JSON it came in (``true``, ``"secret"``), for a problem's message."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)
_MEASURE_KEYS = ("kind", "deadline", "note")


class ReviewState(str, Enum):
    NOT_ENTERED = "not_entered"
    ENTERED = "entered"  # 已录入: findings recorded, not yet submitted
    AWAITING_REVIEW = "awaiting_review"
    RETURNED = "returned"
    APPROVED = "approved"
    PUBLISHED = "published"


EDITABLE = (ReviewState.NOT_ENTERED.value, ReviewState.ENTERED.value, ReviewState.RETURNED.value)
"""The states in which the team records, submits and follows the assignment's team (before review or after a return)."""


class PushState(str, Enum):
    PENDING = "pending"
    PUSHED = "pushed"
    FAILED = "failed"
    CONFIRMED = "confirmed"


class PushChannel(str, Enum):
    """How results reach the publicity system: data push (数据归集) or manual entry from the export (信息填报)."""

    DATA_PUSH = "data_push"
    MANUAL_ENTRY = "manual_entry"


class InvalidTransitionError(InvalidInputError):
    """The command does not apply in the aggregate's current state; nothing was changed."""


def _transition(what: str, state: str, allowed: Iterable[str]) -> InvalidTransitionError:
    return InvalidTransitionError(
        [
            FieldProblem(
                "state", "transition", f"cannot {what} in state {state} (only in {', '.join(allowed)})"
            )
        ]
    )


def inspection_id(assignment_id: str | uuid.UUID, department: str) -> uuid.UUID:
    """uuid5 of (assignment id, department): one Inspection per department per visit."""
    return entry_id("inspection", f"{assignment_id}/{department}")


def redact_finding(finding: Mapping[str, Any]) -> dict[str, Any]:
    """A finding for the public: item, result and wording, plus description and measures unless marked
    confidential. Evidence (the files) is never public."""
    secret = set(finding.get("confidential", ()))
    out: dict[str, Any] = {
        "item": finding["item"],
        "result": finding["result"],
        "result_wording": finding["result_wording"],
    }
    for key in ("description", "measures"):
        if key not in secret:
            out[key] = copy.deepcopy(finding.get(key))
    return out


# -- input checks ---------------------------------------------------------------------------------------
def _text(problems: list[FieldProblem], fld: str, value: Any, max_len: int, required: bool) -> str:
    return text(problems, fld, value, max_len, required)


def _date(problems: list[FieldProblem], fld: str, value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        problems.append(FieldProblem(fld, "type", "must be a date YYYY-MM-DD, not a time"))
        return None
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    problems.append(FieldProblem(fld, "format", "must be a date YYYY-MM-DD"))
    return None


def _ids(problems: list[FieldProblem], fld: str, values: Any, what: str) -> list[str]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        problems.append(FieldProblem(fld, "type", f"must be a list of {what}"))
        return []
    out: list[str] = []
    for v in values:
        text = str(v) if isinstance(v, uuid.UUID) else v
        if not isinstance(text, str) or not _ID.match(text):
            problems.append(FieldProblem(fld, "format", f"{v!r} is not {what}"))
        elif text not in out:
            out.append(text)
    if not out:
        problems.append(FieldProblem(fld, "required", f"must list at least one {what}"))
    return out


def _one_id(problems: list[FieldProblem], fld: str, value: Any) -> str:
    text = str(value) if isinstance(value, uuid.UUID) else value
    if not isinstance(text, str) or not _ID.match(text):
        problems.append(FieldProblem(fld, "format", "must be an id"))
        return ""
    return text


def _methods(problems: list[FieldProblem], values: Any) -> list[str]:
    choices = [m.value for m in InspectionMethod]
    if isinstance(values, str) or not isinstance(values, Iterable):
        problems.append(FieldProblem("methods", "type", "must be a list of inspection methods"))
        return []
    out: list[str] = []
    for v in values:
        v = v.value if isinstance(v, InspectionMethod) else v
        if v not in choices:
            problems.append(FieldProblem("methods", "choice", f"{v!r} is not one of: {', '.join(choices)}"))
        elif v not in out:
            out.append(v)
    if not out and not problems:
        problems.append(FieldProblem("methods", "required", "must name at least one inspection method"))
    return out


def _measures(
    problems: list[FieldProblem], fld: str, values: Any, inspected_on: dt.date | None
) -> list[dict[str, Any]]:
    if values is None:
        return []
    if isinstance(values, (str, Mapping)) or not isinstance(values, Iterable):
        problems.append(FieldProblem(fld, "type", "must be a list of {kind, deadline, note}"))
        return []
    values = list(values)
    if len(values) > MAX_MEASURES:
        problems.append(FieldProblem(fld, "max_items", f"at most {MAX_MEASURES} measures"))
        return []
    kinds = [m.value for m in Measure]
    out: list[dict[str, Any]] = []
    for i, m in enumerate(values):
        f = f"{fld}[{i}]"
        if not isinstance(m, Mapping):
            problems.append(FieldProblem(f, "type", "must be an object {kind, deadline, note}"))
            continue
        problems += [
            FieldProblem(f"{f}.{k}", "unknown_field", "is not a field of a measure")
            for k in m
            if k not in _MEASURE_KEYS
        ]
        kind = m.get("kind")
        kind = kind.value if isinstance(kind, Measure) else kind
        if kind not in kinds:
            problems.append(
                FieldProblem(f"{f}.kind", "choice", f"{kind!r} is not one of: {', '.join(kinds)}")
            )
        note = _text(problems, f"{f}.note", m.get("note"), MAX_TEXT, required=kind == Measure.OTHER.value)
        deadline: str | None = None
        if m.get("deadline") not in (None, ""):
            d = _date(problems, f"{f}.deadline", m.get("deadline"))
            if d is not None:
                if inspected_on is not None and d < inspected_on:
                    problems.append(
                        FieldProblem(f"{f}.deadline", "after_inspection", "must not be before the inspection")
                    )
                deadline = d.isoformat()
        elif kind == Measure.ORDER_CORRECTION.value:
            problems.append(
                FieldProblem(f"{f}.deadline", "required", "an order to correct (责令改正) needs a deadline")
            )
        out.append({"kind": kind, "deadline": deadline, "note": note})
    return out


class Inspection(Aggregate):
    """One department's findings for one visit.

    ``findings`` maps each item code to ``{item, result, result_wording, problem_found, description,
    evidence: [{sha256, size, name, media_type}], measures: [{kind, deadline, note}],
    confidential: [field]}``.
    ``deadline`` is the publication deadline (``Deadline.as_dict()``), set on approval.
    """

    KIND: ClassVar[str] = "inspection"

    assignment_id: str
    task_id: str
    department: str
    target_id: str
    items: list[str]
    team: list[str]
    state: str
    inspected_on: str | None
    methods: list[str]
    findings: dict[str, dict[str, Any]]
    history: list[dict[str, Any]]
    approved_on: str | None
    deadline: dict[str, Any] | None
    published_on: str | None
    push_state: str | None
    push: dict[str, Any]

    class Opened(Aggregate.Created):
        assignment_id: str
        task_id: str
        department: str
        target_id: str
        items: list[str]
        team: list[str]

    class TeamChanged(Aggregate.Event):
        """The assignment's team for this department changed (recusal, redraw): mirrored here."""

        team: list[str]
        previous: list[str]

    class FindingsRecorded(Aggregate.Event):
        """Findings entered (or re-entered) for some items; each replaces that item's earlier finding."""

        by: str
        inspected_on: str
        methods: list[str]
        findings: dict[str, dict[str, Any]]

    class Submitted(Aggregate.Event):
        by: str

    class Returned(Aggregate.Event):
        by: str
        reason: str

    class Approved(Aggregate.Event):
        by: str
        approved_on: str
        deadline: dict[str, Any]

    class DeadlineRecomputed(Aggregate.Event):
        """A provisional deadline recomputed after a year's schedule was loaded."""

        deadline: dict[str, Any]
        previous: dict[str, Any]

    class Published(Aggregate.Event):
        by: str
        published_on: str

    class ResultReleased(Aggregate.Event):
        """What the publication makes public (一公开), recorded with it: the findings with confidential
        fields and evidence removed. Partner agencies and the public subject read this event."""

        department: str
        target_id: str
        task_id: str
        inspected_on: str
        published_on: str
        findings: list[dict[str, Any]]

    class Pushed(Aggregate.Event):
        by: str
        channel: str
        reference: str
        on: str

    class PushFailed(Aggregate.Event):
        by: str
        reason: str
        on: str

    class PushConfirmed(Aggregate.Event):
        by: str
        reference: str
        on: str

    @staticmethod
    def create_id(
        assignment_id: str, task_id: str, department: str, target_id: str, items: list[str], team: list[str]
    ) -> uuid.UUID:
        return inspection_id(assignment_id, department)

    @classmethod
    def open(
        cls,
        assignment_id: str | uuid.UUID,
        task_id: str | uuid.UUID,
        department: str,
        target_id: str | uuid.UUID,
        items: Sequence[str],
        team: Sequence[str],
    ) -> "Inspection":
        """Open the department's inspection of a visit: its items (codes) and its team (inspector ids)."""
        problems: list[FieldProblem] = []
        a = _one_id(problems, "assignment_id", assignment_id)
        t = _one_id(problems, "task_id", task_id)
        tg = _one_id(problems, "target_id", target_id)
        if not isinstance(department, str) or not _CODE.match(department):
            problems.append(FieldProblem("department", "format", "must be a department code"))
        its = _ids(problems, "items", items, "item code")
        tm = _ids(problems, "team", team, "inspector id")
        if problems:
            raise InvalidInputError(problems)
        return cls(assignment_id=a, task_id=t, department=department, target_id=tg, items=its, team=tm)

    @event(Opened)
    def __init__(
        self,
        assignment_id: str,
        task_id: str,
        department: str,
        target_id: str,
        items: list[str],
        team: list[str],
    ) -> None:
        self.assignment_id = assignment_id
        self.task_id = task_id
        self.department = department
        self.target_id = target_id
        self.items = list(items)
        self.team = list(team)
        self.state = ReviewState.NOT_ENTERED.value
        self.inspected_on = None
        self.methods = []
        self.findings = {}
        self.history = []
        self.approved_on = None
        self.deadline = None
        self.published_on = None
        self.push_state = None
        self.push = {}

    # -- commands ----------------------------------------------------------------------------------------
    def sync_team(self, team: Sequence[str]) -> bool:
        """Mirror the assignment's current team (the application calls it after a recusal or redraw);
        False (no event) when unchanged. Refused once the findings are under review or later."""
        problems: list[FieldProblem] = []
        tm = _ids(problems, "team", team, "inspector id")
        if problems:
            raise InvalidInputError(problems)
        if tm == self.team:
            return False
        allowed = EDITABLE
        if self.state not in allowed:
            raise _transition("change the team", self.state, allowed)
        self._change_team(team=tm, previous=list(self.team))
        return True

    def record(
        self,
        actor: Actor,
        inspected_on: dt.date | str,
        methods: Iterable[str],
        findings: Mapping[str, Mapping[str, Any]],
        vocabulary: ResultVocabulary = DEFAULT_VOCABULARY,
        today: dt.date | None = None,
        not_before: tuple[dt.date, str] | None = None,
    ) -> None:
        """Enter findings for some or all items (``{item code: {result, description, evidence, measures,
        confidential}}``); an item entered again is replaced. Only the team's inspectors, before review.
        ``not_before``: the earliest possible inspection date and why (the task's period start, a clue's date):
        an earlier ``inspected_on`` is refused (``before_task``)."""
        require_enter(actor, self.department, self.team)
        allowed = EDITABLE
        if self.state not in allowed:
            raise _transition("record findings", self.state, allowed)
        problems: list[FieldProblem] = []
        day = _date(problems, "inspected_on", inspected_on)
        if day is not None and today is not None and day > today:
            problems.append(FieldProblem("inspected_on", "not_future", "must not be after today"))
        if day is not None and not_before is not None and day < not_before[0]:
            problems.append(FieldProblem("inspected_on", "before_task",
                                         f"must not be before {not_before[0].isoformat()} ({not_before[1]})"))
        ms = _methods(problems, methods)
        out: dict[str, dict[str, Any]] = {}
        if not isinstance(findings, Mapping) or not findings:
            problems.append(
                FieldProblem("findings", "required", "must map at least one item code to a finding")
            )
            findings = {}
        for code, f in findings.items():
            fld = f"findings.{code}"
            if code not in self.items:
                problems.append(
                    FieldProblem(fld, "unknown_item", f"{code!r} is not an item of this inspection")
                )
                continue
            if not isinstance(f, Mapping):
                problems.append(FieldProblem(fld, "type", "must be an object"))
                continue
            problems += [
                FieldProblem(f"{fld}.{k}", "unknown_field", "is not a field of a finding")
                for k in f
                if k not in _FINDING_KEYS
            ]
            result = None
            try:
                result = vocabulary.get(f.get("result"), f"{fld}.result")  # type: ignore[arg-type]
            except InvalidInputError as exc:
                problems += exc.problems
            found = bool(result and result.problem_found)
            desc = _text(problems, f"{fld}.description", f.get("description"), MAX_TEXT, required=found)
            evidence = validate_refs(f.get("evidence"), f"{fld}.evidence", problems)
            measures = _measures(problems, f"{fld}.measures", f.get("measures"), day)
            secret = f.get("confidential") or []
            if isinstance(secret, (str, Mapping)) or not isinstance(secret, Iterable):
                problems.append(FieldProblem(f"{fld}.confidential", "type", f"must be a list of field names, not "
                                             f"{_json(secret)}: {CONFIDENTIAL_HINT}"))
                secret = []
            bad = [s for s in secret if s not in CONFIDENTIAL_FIELDS]
            if bad:
                problems.append(FieldProblem(f"{fld}.confidential", "choice",
                                             f"{', '.join(_json(b) for b in bad)} is not a field that can be "
                                             f"confidential: {CONFIDENTIAL_HINT}"))
            if result is None:
                continue
            out[code] = {
                "item": code,
                "result": result.code,
                "result_wording": result.wording,
                "problem_found": result.problem_found,
                "description": desc,
                "evidence": evidence,
                "measures": measures,
                "confidential": [c for c in CONFIDENTIAL_FIELDS if c in secret],
            }
        if problems or day is None:
            raise InvalidInputError(problems)
        self._record(by=actor.subject, inspected_on=day.isoformat(), methods=ms, findings=out)

    def submit(self, actor: Actor) -> None:
        """Hand the findings to review; every item needs a finding."""
        require_enter(actor, self.department, self.team)
        allowed = EDITABLE
        if self.state not in allowed:
            raise _transition("submit", self.state, allowed)
        missing = [i for i in self.items if i not in self.findings]
        if missing:
            raise InvalidInputError(
                [FieldProblem("findings", "incomplete", f"no finding yet for: {', '.join(missing)}")]
            )
        self._submit(by=actor.subject)

    def return_(self, actor: Actor, reason: str) -> None:
        """Send the findings back to the team, with the reason (退回)."""
        require_review(actor, self.department, self.team)
        self._require_state("return", ReviewState.AWAITING_REVIEW)
        problems: list[FieldProblem] = []
        why = _text(problems, "reason", reason, MAX_REASON, required=True)
        if problems:
            raise InvalidInputError(problems)
        self._return(by=actor.subject, reason=why)

    def approve(
        self,
        actor: Actor,
        approved_on: dt.date | str,
        calendar: WorkCalendar,
        working_days: int = PUBLICATION_WORKING_DAYS,
    ) -> Deadline:
        """Approve; the publication deadline is ``working_days`` working days after ``approved_on``."""
        require_review(actor, self.department, self.team)
        self._require_state("approve", ReviewState.AWAITING_REVIEW)
        problems: list[FieldProblem] = []
        day = _date(problems, "approved_on", approved_on)
        if day is not None and self.inspected_on and day < dt.date.fromisoformat(self.inspected_on):
            problems.append(
                FieldProblem("approved_on", "after_inspection", "must not be before the inspection")
            )
        if problems or day is None:
            raise InvalidInputError(problems)
        deadline = calendar.add_working_days(day, working_days)
        self._approve(by=actor.subject, approved_on=day.isoformat(), deadline=deadline.as_dict())
        return deadline

    def recompute_deadline(self, calendar: WorkCalendar) -> bool:
        """Recompute a provisional deadline with ``calendar``; False (no event) when nothing changed."""
        if self.deadline is None or not self.deadline["provisional"]:
            return False
        new = Deadline.from_dict(self.deadline).recompute(calendar).as_dict()
        if new == self.deadline:
            return False
        self._recompute(deadline=new, previous=copy.deepcopy(self.deadline))
        return True

    def publish(self, actor: Actor, published_on: dt.date | str) -> None:
        """Mark the approved results published (public read model / publicity system)."""
        require_publish(actor, self.department)
        self._require_state("publish", ReviewState.APPROVED)
        problems: list[FieldProblem] = []
        day = _date(problems, "published_on", published_on)
        if day is not None and self.approved_on and day < dt.date.fromisoformat(self.approved_on):
            problems.append(FieldProblem("published_on", "after_approval", "must not be before the approval"))
        if problems or day is None:
            raise InvalidInputError(problems)
        self._publish(by=actor.subject, published_on=day.isoformat())
        self._release(department=self.department, target_id=self.target_id, task_id=self.task_id,
                      inspected_on=self.inspected_on or "", published_on=day.isoformat(),
                      findings=self.public_findings())

    def mark_pushed(
        self, actor: Actor, on: dt.date | str, channel: str = PushChannel.DATA_PUSH.value, reference: str = ""
    ) -> None:
        """The result was sent to the publicity system (pending or failed -> pushed)."""
        self._require_push("mark pushed", actor, (PushState.PENDING, PushState.FAILED))
        problems: list[FieldProblem] = []
        day = _date(problems, "on", on)
        channels = [c.value for c in PushChannel]
        if channel not in channels:
            problems.append(FieldProblem("channel", "choice", f"must be one of: {', '.join(channels)}"))
        ref = _text(problems, "reference", reference, 200, required=False)
        if problems or day is None:
            raise InvalidInputError(problems)
        self._pushed(by=actor.subject, channel=channel, reference=ref, on=day.isoformat())

    def mark_push_failed(self, actor: Actor, on: dt.date | str, reason: str) -> None:
        """The push failed (pending or pushed -> failed), with the reason."""
        self._require_push("mark the push failed", actor, (PushState.PENDING, PushState.PUSHED))
        problems: list[FieldProblem] = []
        day = _date(problems, "on", on)
        why = _text(problems, "reason", reason, MAX_REASON, required=True)
        if problems or day is None:
            raise InvalidInputError(problems)
        self._push_failed(by=actor.subject, reason=why, on=day.isoformat())

    def confirm_push(self, actor: Actor, on: dt.date | str, reference: str = "") -> None:
        """The publicity system shows the result (pushed -> confirmed)."""
        self._require_push("confirm the push", actor, (PushState.PUSHED,))
        problems: list[FieldProblem] = []
        day = _date(problems, "on", on)
        ref = _text(problems, "reference", reference, 200, required=False)
        if problems or day is None:
            raise InvalidInputError(problems)
        self._push_confirmed(by=actor.subject, reference=ref, on=day.isoformat())

    # -- queries -----------------------------------------------------------------------------------------
    @property
    def is_approved(self) -> bool:
        return self.state in (ReviewState.APPROVED.value, ReviewState.PUBLISHED.value)

    def publication_deadline(self) -> Deadline | None:
        return None if self.deadline is None else Deadline.from_dict(self.deadline)

    def is_overdue(self, today: dt.date) -> bool:
        """Approved, not yet published, and past the publication deadline."""
        d = self.publication_deadline()
        return self.state == ReviewState.APPROVED.value and d is not None and d.is_overdue(today)

    @property
    def published_late(self) -> bool:
        d = self.publication_deadline()
        return bool(self.published_on and d and dt.date.fromisoformat(self.published_on) > d.date)

    def public_findings(self) -> list[dict[str, Any]]:
        """The findings with confidential fields and evidence removed, in item order."""
        return [redact_finding(self.findings[i]) for i in self.items if i in self.findings]

    def findings_for(self, actor: Actor) -> list[dict[str, Any]]:
        """Full findings for the team, the department's reviewers and auditors; redacted for anyone else."""
        if can_read_confidential(actor, self.department) or can_enter(actor, self.department, self.team):
            return [copy.deepcopy(self.findings[i]) for i in self.items if i in self.findings]
        return self.public_findings()

    # -- helpers -----------------------------------------------------------------------------------------
    def _require_state(self, what: str, *states: ReviewState) -> None:
        if self.state not in {s.value for s in states}:
            raise _transition(what, self.state, [s.value for s in states])

    def _require_push(self, what: str, actor: Actor, states: Sequence[PushState]) -> None:
        require_publish(actor, self.department)
        if not self.is_approved:
            raise _transition(what, self.state, [ReviewState.APPROVED.value, ReviewState.PUBLISHED.value])
        if self.push_state not in {s.value for s in states}:
            raise InvalidTransitionError(
                [
                    FieldProblem(
                        "push_state",
                        "transition",
                        f"cannot {what} when the push is {self.push_state} "
                        f"(only when {', '.join(s.value for s in states)})",
                    )
                ]
            )

    # -- mutators (also run on replay) -------------------------------------------------------------------
    @event(TeamChanged)
    def _change_team(self, team: list[str], previous: list[str]) -> None:
        self.team = list(team)

    @event(FindingsRecorded)
    def _record(
        self, by: str, inspected_on: str, methods: list[str], findings: dict[str, dict[str, Any]]
    ) -> None:
        self.inspected_on = inspected_on
        self.methods = list(methods)
        self.findings.update(copy.deepcopy(findings))
        if self.state == ReviewState.NOT_ENTERED.value:  # derived on replay too: no stored event changes
            self.state = ReviewState.ENTERED.value

    @event(Submitted)
    def _submit(self, by: str) -> None:
        self.state = ReviewState.AWAITING_REVIEW.value
        self.history.append({"action": "submitted", "by": by})

    @event(Returned)
    def _return(self, by: str, reason: str) -> None:
        self.state = ReviewState.RETURNED.value
        self.history.append({"action": "returned", "by": by, "reason": reason})

    @event(Approved)
    def _approve(self, by: str, approved_on: str, deadline: dict[str, Any]) -> None:
        self.state = ReviewState.APPROVED.value
        self.approved_on = approved_on
        self.deadline = copy.deepcopy(deadline)
        self.push_state = PushState.PENDING.value
        self.history.append({"action": "approved", "by": by})

    @event(DeadlineRecomputed)
    def _recompute(self, deadline: dict[str, Any], previous: dict[str, Any]) -> None:
        self.deadline = copy.deepcopy(deadline)

    @event(Published)
    def _publish(self, by: str, published_on: str) -> None:
        self.state = ReviewState.PUBLISHED.value
        self.published_on = published_on

    @event(ResultReleased)
    def _release(self, department: str, target_id: str, task_id: str, inspected_on: str, published_on: str,
                 findings: list[dict[str, Any]]) -> None:
        pass  # the state changed with Published; this event carries the public record
    @event(Pushed)
    def _pushed(self, by: str, channel: str, reference: str, on: str) -> None:
        self.push_state = PushState.PUSHED.value
        self.push = {"channel": channel, "reference": reference, "pushed_on": on, "reason": ""}

    @event(PushFailed)
    def _push_failed(self, by: str, reason: str, on: str) -> None:
        self.push_state = PushState.FAILED.value
        self.push = {**self.push, "reason": reason, "failed_on": on}

    @event(PushConfirmed)
    def _push_confirmed(self, by: str, reference: str, on: str) -> None:
        self.push_state = PushState.CONFIRMED.value
        self.push = {**self.push, "confirmed_on": on, "confirmation": reference, "reason": ""}
