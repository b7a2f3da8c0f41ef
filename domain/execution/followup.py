"""Follow-up visits (执法回访): per department and period, draw at least 10% (configurable, rounded
up) of the targets inspected in the period with the verifiable sampler, then record the visits.

The draw is the target draw's (``domain.draw.sampler.draw``, one stratum ``all``): the planner commits to a
seed (its SHA-256) when the pool of inspected targets is frozen, and reveals it at the draw, mixed with any
external entropy; anyone holding the recorded pool and draw re-runs it with ``sampler.verify``.

Visits record the method (直接回访, 电话回访, 问卷调查, 组织座谈, 信函回访), the visitee's opinions
(confidential: only the department's reviewers, auditors and who recorded them read them), problems found, escalation to
discipline inspection (纪检监察) with its outcome, and the feedback given to the visitee.
"""

import copy
import datetime as dt
import math
import re
import uuid
from collections.abc import Collection, Iterable, Mapping
from fractions import Fraction
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate, event

from domain.access import Actor
from domain.directory import entry_id
from domain.draw import sampler
from domain.draw.entropy import check_draw_entropy, check_source
from domain.errors import DomainError, FieldProblem, InvalidInputError, PermissionDeniedError
from domain.execution.access import (
    can_read_confidential,
    can_read_escalations,
    person_ids,
    require_independent,
    require_staff,
    same_person,
)
from domain.execution.checks import iso_date, text
from domain.execution.inspection import InvalidTransitionError
from domain.execution.vocabulary import FollowUpVisitMethod
from domain.planning.rules import parse_period, ratio_text, to_ratio
from domain.values import Role

__all__ = ["DEFAULT_FOLLOW_UP_RATIO", "FollowUpRound", "follow_up_quota", "follow_up_round_id"]

DEFAULT_FOLLOW_UP_RATIO = Fraction(1, 10)
STRATUM = "all"
_CODE = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
MAX_TEXT = 4000
NO_SOURCE_REMEDY = (
    "draw without external entropy (a round cannot be planned twice for one period, so its source cannot be "
    "declared later)"
)


def follow_up_round_id(department: str, period: str) -> uuid.UUID:
    return entry_id("follow-up", f"{department}/{period}")


def follow_up_quota(pool_size: int, ratio: Fraction = DEFAULT_FOLLOW_UP_RATIO) -> int:
    """``ceil(ratio x pool)``, exact: 10% of 31 targets is 4."""
    return min(pool_size, math.ceil(Fraction(ratio) * pool_size))


def _text(problems: list[FieldProblem], fld: str, value: Any, required: bool = False) -> str:
    return text(problems, fld, value, MAX_TEXT, required)


def _date(problems: list[FieldProblem], fld: str, value: Any) -> str | None:
    return iso_date(problems, fld, value)


class RoundExistsError(DomainError):
    """One round a department and period (its id is derived from them): a second plan is 409 naming it."""

    title = "A follow-up round exists for this period"
    status = 409

    def __init__(self, department: str, period: str) -> None:
        rid = follow_up_round_id(department, period)
        super().__init__(f"{department} has a follow-up round for {period} already: {rid}",
                         [FieldProblem("period", "exists", f"the follow-up round {rid} of {department} for {period}")])


class FollowUpRound(Aggregate):
    """One department's follow-up visits for one period.

    ``pool``: the inspected targets (sorted ids), ``quota``, ``commitment``; after the draw ``draw`` (the
    sampler's record) and ``selected``; ``visits`` maps a selected target to its records:
    ``{"visits": [...], "escalations": [...], "feedback": [...]}``.
    """

    KIND: ClassVar[str] = "follow_up_round"

    department: str
    period: str
    ratio: str
    pool: list[str]
    quota: int
    commitment: str
    position: int | None
    entropy_source: str | None
    draw: dict[str, Any] | None
    selected: list[str]
    visits: dict[str, dict[str, list[dict[str, Any]]]]
    overlaps: list[dict[str, str]]
    overlap_reason: str

    class Planned(Aggregate.Created):
        """The pool frozen and the seed committed. ``position`` (version 2): the log position the inspected
        targets were read at (every event up to it, inclusive; docs/verifying-a-draw.md section 17); version 1
        has none (``None``): they were read just before this event, at no recorded position.
        ``entropy_source`` (version 3): the public source of the draw's external entropy, declared with the
        commitment (``""``: the draw takes none); versions 1 and 2 had no such field (``None``: their draws take
        any text, as they did then)."""

        class_version = 3

        department: str
        period: str
        ratio: str
        pool: list[str]
        quota: int
        commitment: str
        by: str
        position: int | None
        entropy_source: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["position"] = None

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state["entropy_source"] = None

    class Drawn(Aggregate.Event):
        by: str
        record: dict[str, Any]

    class OverlapDeclared(Aggregate.Event):
        """The round's period overlaps the department's other follow-up rounds (``domain.tasks.overlap``),
        declared when it was planned: each one's id and period, and why a second draw is needed."""

        overlaps: list[dict[str, str]]
        reason: str

    class VisitRecorded(Aggregate.Event):
        by: str
        target_id: str
        visited_on: str
        method: str
        opinions: str  # confidential
        problems: str

    class Escalated(Aggregate.Event):
        """交纪检监察: a serious problem handed to discipline inspection."""

        by: str
        target_id: str
        on: str
        authority: str
        reason: str

    class EscalationOutcomeRecorded(Aggregate.Event):
        by: str
        target_id: str
        on: str
        outcome: str

    class FeedbackGiven(Aggregate.Event):
        """处理情况反馈给回访对象."""

        by: str
        target_id: str
        on: str
        method: str
        feedback: str

    @staticmethod
    def create_id(department: str, period: str, **_: Any) -> uuid.UUID:
        return follow_up_round_id(department, period)

    @classmethod
    def plan(
        cls,
        actor: Actor,
        department: str,
        period: str,
        inspected_targets: Iterable[str],
        commitment: str,
        ratio: Fraction | str = DEFAULT_FOLLOW_UP_RATIO,
        position: int | None = None,
        entropy_source: object = "",
    ) -> "FollowUpRound":
        """Freeze the pool of targets inspected in the period (read at log ``position``), commit to the draw's
        seed and declare the public source of its external entropy (``domain.draw.entropy``; ``""``: none)."""
        if not actor.has(Role.ADMIN) and not (actor.department == department and actor.has(Role.PLANNER)):
            raise PermissionDeniedError(
                f"{actor.subject!r} ({actor.role} of {actor.department!r}) may not plan follow-up visits "
                f"of department {department!r}: its planner does"
            )
        problems: list[FieldProblem] = []
        if not isinstance(department, str) or not _CODE.match(department):
            problems.append(FieldProblem("department", "format", "must be a department code"))
        try:
            p = parse_period(period).text
        except InvalidInputError as exc:
            problems += [FieldProblem("period", x.rule, x.message) for x in exc.problems]
            p = ""
        try:
            r = to_ratio(ratio, "ratio")
            if r == 0:
                problems.append(FieldProblem("ratio", "range", "must be above 0"))
        except InvalidInputError as exc:
            problems += exc.problems
            r = Fraction(0)
        pool = sorted({str(t) for t in inspected_targets}) if not isinstance(inspected_targets, str) else []
        if not pool:
            problems.append(
                FieldProblem("inspected_targets", "required", "no target was inspected in the period")
            )
        else:
            try:
                sampler.pool_digest(pool)
            except InvalidInputError as exc:
                problems += [FieldProblem("inspected_targets", x.rule, x.message) for x in exc.problems]
        if not isinstance(commitment, str) or not re.fullmatch(r"[0-9a-f]{64}", commitment):
            problems.append(
                FieldProblem("commitment", "format", "must be the seed's SHA-256, 64 lowercase hex")
            )
        if position is not None and (type(position) is not int or position < 0):
            problems.append(FieldProblem("position", "format", "must be a log position (an integer >= 0)"))
        try:
            source = check_source(entropy_source)
        except InvalidInputError as exc:
            problems += exc.problems
            source = ""
        if problems:
            raise InvalidInputError(problems)
        return cls(
            department=department,
            period=p,
            ratio=ratio_text(r),
            pool=pool,
            quota=follow_up_quota(len(pool), r),
            commitment=commitment,
            by=actor.subject,
            position=position,
            entropy_source=source,
        )

    @event(Planned)
    def __init__(
        self, department: str, period: str, ratio: str, pool: list[str], quota: int, commitment: str, by: str,
        position: int | None = None, entropy_source: str | None = None,
    ) -> None:
        self.department = department
        self.period = period
        self.ratio = ratio
        self.pool = list(pool)
        self.quota = quota
        self.commitment = commitment
        self.position = position
        self.entropy_source = entropy_source
        self.draw = None
        self.selected = []
        self.visits = {}
        self.overlaps = []
        self.overlap_reason = ""

    # -- commands -------------------------------------------------------------------------------------
    def declare_overlaps(self, overlaps: list[dict[str, str]], reason: str) -> None:
        """Record the overlapping rounds the planner named (``domain.tasks.overlap.follow_up_overlaps``)."""
        if overlaps:
            self._overlaps(overlaps=[dict(o) for o in overlaps], reason=reason.strip())

    def check_draw(self, actor: Actor, external_entropy: object = "", entropy_source: object = "") -> str:
        """What the draw checks before anything is revealed: who draws, that the round was not drawn, and the
        external entropy against the declared source. Returns the entropy the draw uses."""
        if not actor.has(Role.ADMIN) and not (
            actor.department == self.department and actor.has(Role.PLANNER)
        ):
            raise PermissionDeniedError(
                f"{actor.subject!r} may not draw follow-up visits of {self.department!r}"
            )
        if self.draw is not None:
            raise InvalidTransitionError([FieldProblem("state", "transition", "the round was already drawn")])
        if self.entropy_source is not None:
            return check_draw_entropy(self.entropy_source, entropy_source, external_entropy, NO_SOURCE_REMEDY)
        if not isinstance(external_entropy, str):
            raise InvalidInputError([FieldProblem("external_entropy", "type", "must be text ('' for none)")])
        return external_entropy

    def draw_visitees(
        self, actor: Actor, seed: bytes, external_entropy: object = "", entropy_source: object = ""
    ) -> list[str]:
        """Reveal the seed and draw ``quota`` of the pool with the value published for the declared entropy
        source (``entropy_source`` repeats it; ``domain.draw.entropy.check_draw_entropy``); returns the selected
        target ids. A round planned before sources were declared (``Planned`` version 1 or 2) takes any text, as
        it did then, and its record names no source; a later one's record names its source (``""``: none)."""
        value = self.check_draw(actor, external_entropy, entropy_source)
        if sampler.commitment(seed) != self.commitment:
            raise InvalidInputError(
                [FieldProblem("seed", "commitment", "SHA-256 of the revealed seed is not the committed one")]
            )
        result = sampler.draw(
            seed, value, [sampler.Candidate(t, STRATUM) for t in self.pool], {STRATUM: self.quota}
        )
        record = result.as_record()
        if self.entropy_source is not None:
            record["entropy_source"] = self.entropy_source
        self._drawn(by=actor.subject, record=record)
        return list(self.selected)

    def verify(self) -> sampler.VerifyOutcome:
        """Check the draw's entropy source against the declared one (docs/verifying-a-draw.md section 17), then
        re-run the recorded draw over the recorded pool."""
        if self.draw is None:
            return sampler.VerifyOutcome(False, "draw: the round has not been drawn")
        source = self.entropy_source
        if source is not None:  # declared with the commitment (Planned version 3)
            recorded = self.draw.get("entropy_source")
            if recorded != source:
                return sampler.VerifyOutcome(
                    False, f"entropy_source: the draw names {recorded!r}, the commitment declared {source!r}")
            if not source and self.draw.get("external_entropy") != "":
                return sampler.VerifyOutcome(
                    False, "external_entropy: the commitment declared no entropy source, the draw used some")
        return sampler.verify(self.draw, [sampler.Candidate(t, STRATUM) for t in self.pool])

    def record_visit(
        self,
        actor: Actor,
        target_id: str,
        visited_on: dt.date | str,
        method: str,
        opinions: str = "",
        problems_found: str = "",
        inspected_by: Collection[str] = (),
        aliases: Collection[str] = (),
    ) -> None:
        """``inspected_by``: the inspector ids of the teams that inspected the firm (they may not record it);
        ``aliases``: the actor's inspector entry ids (``person_ids``)."""
        self._require_staff(actor, "record follow-up visits")
        require_independent(actor, inspected_by, aliases)
        problems: list[FieldProblem] = []
        self._check_target(problems, target_id)
        day = _date(problems, "visited_on", visited_on)
        methods = [m.value for m in FollowUpVisitMethod]
        method = method.value if isinstance(method, FollowUpVisitMethod) else method
        if method not in methods:
            problems.append(FieldProblem("method", "choice", f"must be one of: {', '.join(methods)}"))
        op = _text(problems, "opinions", opinions)
        pf = _text(problems, "problems", problems_found)
        if problems or day is None:
            raise InvalidInputError(problems)
        self._visit(
            by=actor.subject, target_id=target_id, visited_on=day, method=method, opinions=op, problems=pf
        )

    def escalate(self, actor: Actor, target_id: str, on: dt.date | str, authority: str, reason: str) -> None:
        """Hand a serious problem to discipline inspection (纪检监察); needs a recorded visit first."""
        self._require_staff(actor, "escalate follow-up problems")
        problems: list[FieldProblem] = []
        self._check_target(problems, target_id, visited=True)
        day = _date(problems, "on", on)
        auth = _text(problems, "authority", authority, required=True)
        why = _text(problems, "reason", reason, required=True)
        if problems or day is None:
            raise InvalidInputError(problems)
        self._escalate(by=actor.subject, target_id=target_id, on=day, authority=auth, reason=why)

    def record_escalation_outcome(
        self, actor: Actor, target_id: str, on: dt.date | str, outcome: str
    ) -> None:
        self._require_staff(actor, "record escalation outcomes")
        problems: list[FieldProblem] = []
        self._check_target(problems, target_id, visited=True)
        if not problems and not self.visits[target_id]["escalations"]:
            problems.append(
                FieldProblem("target_id", "not_escalated", "nothing was escalated for this target")
            )
        day = _date(problems, "on", on)
        text = _text(problems, "outcome", outcome, required=True)
        if problems or day is None:
            raise InvalidInputError(problems)
        self._escalation_outcome(by=actor.subject, target_id=target_id, on=day, outcome=text)

    def give_feedback(
        self, actor: Actor, target_id: str, on: dt.date | str, feedback: str, method: str = "letter"
    ) -> None:
        """Tell the visitee how their opinions and the problems were handled."""
        self._require_staff(actor, "give feedback")
        problems: list[FieldProblem] = []
        self._check_target(problems, target_id, visited=True)
        day = _date(problems, "on", on)
        methods = [m.value for m in FollowUpVisitMethod]
        if method not in methods:
            problems.append(FieldProblem("method", "choice", f"must be one of: {', '.join(methods)}"))
        text = _text(problems, "feedback", feedback, required=True)
        if problems or day is None:
            raise InvalidInputError(problems)
        self._feedback(by=actor.subject, target_id=target_id, on=day, method=method, feedback=text)

    # -- queries --------------------------------------------------------------------------------------
    def visits_for(
        self, actor: Actor, inspectors: Mapping[str, Collection[str]] | None = None, aliases: Collection[str] = ()
    ) -> dict[str, dict[str, Any]]:
        """The visits as ``actor`` may read them. Opinions: the department's reviewers, auditors, and whoever
        recorded the visit (they wrote them); others get ``None``. Escalations (纪检监察): ``None`` unless
        ``can_read_escalations`` (never for the inspectors who inspected the firm: ``inspectors``, per target)."""
        out: dict[str, dict[str, Any]] = copy.deepcopy(self.visits)
        confidential = can_read_confidential(actor, self.department)
        me = person_ids(actor, aliases)
        for target, rec in out.items():
            for v in rec["visits"]:
                if not confidential and not same_person(me, [v.get("by") or ""]):
                    v["opinions"] = None
            if not can_read_escalations(actor, self.department, (inspectors or {}).get(target, ()), aliases):
                rec["escalations"] = None
        return out

    def sees_whole_round(self, actor: Actor) -> bool:
        """Who reads the whole round (pool, draw record with the seed, every selected target and visit): admins,
        auditors, and the department's planners and reviewers. Its other staff (inspectors) read only the selected
        targets they did not inspect in the period and their visits: an inspector must not learn which of the
        firms they inspected will be called back (and could be pressed before the visit)."""
        return actor.has(Role.ADMIN) or actor.has(Role.AUDITOR) or (
            actor.department == self.department and (actor.has(Role.PLANNER) or actor.has(Role.REVIEWER)))

    def hidden_from(
        self, actor: Actor, inspectors: Mapping[str, Collection[str]], aliases: Collection[str] = ()
    ) -> set[str]:
        """The selected targets ``actor`` may not see: none for who sees the whole round, else those the actor
        inspected (``inspectors``: per target, the ids of who inspected it in the period)."""
        if self.sees_whole_round(actor):
            return set()
        me = person_ids(actor, aliases)
        return {t for t in self.selected if same_person(me, inspectors.get(t, ()))}

    # -- helpers --------------------------------------------------------------------------------------
    def _require_staff(self, actor: Actor, what: str) -> None:
        require_staff(actor, self.department, what)
        if self.draw is None:
            raise InvalidTransitionError([FieldProblem("state", "transition", "draw the visitees first")])

    def _check_target(self, problems: list[FieldProblem], target_id: Any, visited: bool = False) -> None:
        if target_id not in self.selected:
            problems.append(FieldProblem("target_id", "not_selected", "was not drawn for a follow-up visit"))
        elif visited and not self.visits[target_id]["visits"]:
            problems.append(FieldProblem("target_id", "not_visited", "record a visit to this target first"))

    # -- mutators -------------------------------------------------------------------------------------
    @event(OverlapDeclared)
    def _overlaps(self, overlaps: list[dict[str, str]], reason: str) -> None:
        self.overlaps = [dict(o) for o in overlaps]
        self.overlap_reason = reason

    @event(Drawn)
    def _drawn(self, by: str, record: dict[str, Any]) -> None:
        self.draw = copy.deepcopy(record)
        self.selected = list(record["selected"])
        self.visits = {t: {"visits": [], "escalations": [], "feedback": []} for t in self.selected}

    @event(VisitRecorded)
    def _visit(
        self, by: str, target_id: str, visited_on: str, method: str, opinions: str, problems: str
    ) -> None:
        self.visits[target_id]["visits"].append(
            {"by": by, "visited_on": visited_on, "method": method, "opinions": opinions, "problems": problems}
        )

    @event(Escalated)
    def _escalate(self, by: str, target_id: str, on: str, authority: str, reason: str) -> None:
        self.visits[target_id]["escalations"].append(
            {"by": by, "on": on, "authority": authority, "reason": reason, "outcome": None}
        )

    @event(EscalationOutcomeRecorded)
    def _escalation_outcome(self, by: str, target_id: str, on: str, outcome: str) -> None:
        self.visits[target_id]["escalations"][-1]["outcome"] = {"on": on, "text": outcome, "by": by}

    @event(FeedbackGiven)
    def _feedback(self, by: str, target_id: str, on: str, method: str, feedback: str) -> None:
        self.visits[target_id]["feedback"].append(
            {"by": by, "on": on, "method": method, "feedback": feedback}
        )
