"""What a follow-up round's verification checks (docs/verifying-a-draw.md section 17, "What a verifier checks"):
the pool re-derived from the log's inspection events, then the round's chain and its draw, in the order and with
the difference texts of the standalone verifier's ``check_follow_up`` (docs/verifier/verify_draws.py), so the
server's ``GET /follow-ups/{id}/verification`` and an outside verifier say the same thing of the same log.

Pure: events in, pool out; plan and record in, first difference out. The caller streams the events.
"""

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from domain.draw import sampler
from domain.errors import InvalidInputError
from domain.planning.rules import parse_period

__all__ = ["FINDINGS", "OPENED", "FollowUpCheck", "InspectedTargets", "check_follow_up", "follow_up_pool",
           "period_problem", "quota_of", "read_position"]

INSPECTION = "domain.execution.inspection:Inspection."
OPENED = INSPECTION + "Opened"
FINDINGS = INSPECTION + "FindingsRecorded"
STRATUM = "all"
_RATIO = re.compile(r"^(\d+(\.\d+)?|\d+/[1-9]\d*)$")


def _day(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


class InspectedTargets:
    """The fold of section 17, "The pool": the targets ``department`` inspected in ``period``. Keeps one
    ``[target, inspection day]`` per inspection of that department only (its last ``FindingsRecorded`` replaces
    the day), so its memory follows the department's inspections, not the log's length."""

    def __init__(self, department: str, period: str) -> None:
        p = parse_period(period)
        self.department = department
        self.start, self.end = p.start.isoformat(), p.end.isoformat()
        self.inspections: dict[str, list[str]] = {}

    def apply(self, topic: str, inspection_id: object, data: Mapping[str, Any]) -> None:
        """One event of the log (its stored topic, aggregate id and data); other topics are ignored."""
        if topic == OPENED:
            if data["department"] == self.department:
                self.inspections[str(inspection_id)] = [str(data["target_id"]), ""]
        elif topic == FINDINGS:
            entry = self.inspections.get(str(inspection_id))
            if entry is not None:
                entry[1] = _day(data["inspected_on"])

    def pool(self) -> list[str]:
        """Each target id once, whose inspection day lies in the period (text comparison), by UTF-8 bytes."""
        return sorted({t for t, day in self.inspections.values() if day and self.start <= day <= self.end},
                      key=str.encode)


def follow_up_pool(events: Iterable[tuple[str, object, Mapping[str, Any]]], department: str, period: str) -> list[str]:
    """``(topic, aggregate id, data)`` of the log up to the read position, in log order -> the pool."""
    fold = InspectedTargets(department, period)
    for topic, oid, data in events:
        fold.apply(topic, oid, data)
    return fold.pool()


def quota_of(ratio: Any, n: int) -> int | None:
    """``min(n, ceil(ratio x n))`` exactly; None when ``ratio`` is not an exact ratio in (0, 1] as recorded."""
    if not isinstance(ratio, str) or not _RATIO.match(ratio):
        return None
    r = Fraction(ratio)
    if not 0 < r <= 1:
        return None
    return min(n, -(-(r.numerator * n) // r.denominator))


def read_position(plan: Mapping[str, Any], planned_at: int) -> int | None:
    """Where the pool is re-derived (every event up to it, inclusive): version 2's ``position``, version 1's
    (``None``) just before ``Planned``; None when ``position`` is not an integer below ``Planned``'s own."""
    at = plan.get("position")
    if at is None:
        return planned_at - 1
    return at if type(at) is int and at < planned_at else None


@dataclass(frozen=True)
class FollowUpCheck:
    """``first_difference`` None: the round reproduces. ``skipped``: a version 1 round whose pool, re-derived
    just before its ``Planned`` event, is not the recorded one (neither a match nor a mismatch)."""

    first_difference: str | None = None
    skipped: bool = False

    @property
    def match(self) -> bool:
        return self.first_difference is None


def _position_difference(at: Any, planned_at: int) -> str | None:
    if at is None:
        return None
    if type(at) is not int:
        return f"position: {at!r} is not an integer"
    if at >= planned_at:
        return f"position: {at} is not below the Planned event's own position {planned_at}"
    return None


def check_follow_up(plan: Mapping[str, Any], planned_at: int, record: Mapping[str, Any],
                    pool: Sequence[str] | None, drawn_at: Sequence[int] = ()) -> FollowUpCheck:
    """The first difference of a drawn round: ``plan`` the ``Planned`` event's data (at log position
    ``planned_at``), ``record`` the ``Drawn`` record, ``pool`` re-derived at ``read_position`` (None: not
    re-derived), ``drawn_at`` the positions of the round's ``Drawn`` events (one expected)."""
    if len(drawn_at) > 1:
        return FollowUpCheck(f"drawn: the round was drawn {len(drawn_at)} times (positions "
                             f"{', '.join(str(p) for p in drawn_at)})")
    at = plan.get("position")
    difference = _position_difference(at, planned_at)
    if difference:
        return FollowUpCheck(difference)
    if pool is None:
        return FollowUpCheck(f"position: {at} is not a position of this log")
    planned = list(plan.get("pool") or [])
    pool = list(pool)
    if planned != pool:
        first = next((i for i, (a, b) in enumerate(zip(planned, pool)) if a != b), min(len(planned), len(pool)))
        shown = (repr(planned[first]) if first < len(planned) else "nothing",
                 repr(pool[first]) if first < len(pool) else "nothing")
        difference = f"pool: recorded {len(planned)} ids, recomputed {len(pool)}; first difference at [{first}]: " \
                     f"recorded {shown[0]}, recomputed {shown[1]}"
        if at is None:
            return FollowUpCheck(f"version 1 (no position): with the inspections just before it, {difference}",
                                 skipped=True)
        return FollowUpCheck(difference)
    quota = quota_of(plan.get("ratio"), len(pool))
    if quota is None:
        return FollowUpCheck(f"ratio: {plan.get('ratio')!r} is not an exact ratio in (0, 1]")
    if plan.get("quota") != quota:
        return FollowUpCheck(f"quota: planned {plan.get('quota')}, recomputed {quota}")
    if record.get("commitment") != plan.get("commitment"):
        return FollowUpCheck("commitment: the draw's is not the one made when the round was planned")
    declared = plan.get("entropy_source")
    if declared is None:  # versions 1 and 2: their draws name no source
        if "entropy_source" in record:
            return FollowUpCheck(f"entropy_source: the draw names {record['entropy_source']!r}, the round declared "
                                 "none (planned before sources were declared)")
    else:  # version 3: the source declared with the commitment
        if record.get("entropy_source") != declared:
            return FollowUpCheck(f"entropy_source: the draw names {record.get('entropy_source')!r}, the commitment "
                                 f"declared {declared!r}")
        if not declared and record.get("external_entropy") != "":
            return FollowUpCheck("external_entropy: the commitment declared no entropy source, the draw used some")
    strata = record.get("strata")
    recorded_quota = strata.get(STRATUM, {}).get("quota") if isinstance(strata, Mapping) else None
    if recorded_quota != plan.get("quota"):
        return FollowUpCheck(f"strata['all'].quota: recorded {recorded_quota}, planned {plan.get('quota')}")
    outcome = sampler.verify(record, [sampler.Candidate(t, STRATUM) for t in pool])
    return FollowUpCheck(None if outcome.match else outcome.first_difference or "draw: does not reproduce")


def period_problem(period: Any) -> str | None:
    """``period: ...`` when the round's recorded period is not one (its pool cannot be re-derived)."""
    try:
        parse_period(period)
    except (InvalidInputError, AttributeError, ValueError):
        return f"period: {period!r} is not a period"
    return None
