"""Clues for case-triggered inspections (个案检查): an off-site alert, a complaint or a referral in.

A value with its validation; the application records it (with the risk raise and the case-triggered task,
which is not counted as random) on the aggregates it belongs to.
"""

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from domain.errors import FieldProblem, InvalidInputError
from domain.execution.evidence import validate_refs
from domain.execution.vocabulary import OFF_SITE_METHODS
from domain.values import RiskClass

__all__ = ["CLUE_SOURCE_LABELS", "Clue", "ClueSource", "raised_risk_class", "validate_clue"]

_CODE = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,99}$")
_KEYS = ("source", "department", "target_id", "received_on", "summary", "reference", "method", "evidence")


class ClueSource(str, Enum):
    MONITORING_ALERT = "monitoring_alert"  # 在线监控等非现场手段发现的异常
    COMPLAINT = "complaint"  # 投诉举报
    REFERRAL_IN = "referral_in"  # 其他部门移送、上级交办
    OTHER = "other"


CLUE_SOURCE_LABELS = {
    ClueSource.MONITORING_ALERT.value: "非现场监测异常",
    ClueSource.COMPLAINT.value: "投诉举报",
    ClueSource.REFERRAL_IN.value: "移送交办",
    ClueSource.OTHER.value: "其他",
}


@dataclass(frozen=True)
class Clue:
    """``method``: the off-site method behind a monitoring alert (``online_monitoring``, ``drone``...)."""

    source: str
    department: str
    target_id: str
    received_on: str
    summary: str
    reference: str = ""
    method: str = ""
    evidence: tuple[dict[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "department": self.department,
            "target_id": self.target_id,
            "received_on": self.received_on,
            "summary": self.summary,
            "reference": self.reference,
            "method": self.method,
            "evidence": [dict(e) for e in self.evidence],
        }


def validate_clue(data: Mapping[str, Any], today: dt.date | None = None) -> Clue:
    """A checked clue; every problem named (``field``, ``rule``)."""
    if not isinstance(data, Mapping):
        raise InvalidInputError([FieldProblem("clue", "type", "must be an object")])
    problems = [FieldProblem(k, "unknown_field", "is not a field of a clue") for k in data if k not in _KEYS]
    sources = [s.value for s in ClueSource]
    source = data.get("source")
    if source not in sources:
        problems.append(FieldProblem("source", "choice", f"must be one of: {', '.join(sources)}"))
    department = data.get("department")
    if not isinstance(department, str) or not _CODE.match(department):
        problems.append(FieldProblem("department", "format", "must be a department code"))
    target = data.get("target_id")
    target = str(target) if isinstance(target, uuid.UUID) else target
    if not isinstance(target, str) or not _ID.match(target):
        problems.append(FieldProblem("target_id", "format", "must be a target id"))
    raw = data.get("received_on")
    received = ""
    try:
        day = raw if isinstance(raw, dt.date) else dt.date.fromisoformat(str(raw))
        if today is not None and day > today:
            problems.append(FieldProblem("received_on", "not_future", "must not be after today"))
        received = day.isoformat()
    except ValueError:
        problems.append(FieldProblem("received_on", "format", "must be a date YYYY-MM-DD"))
    texts: dict[str, str] = {}
    for key, limit, required in (("summary", 2000, True), ("reference", 200, False)):
        value = data.get(key) or ""
        if not isinstance(value, str):
            problems.append(FieldProblem(key, "type", "must be text"))
            value = ""
        value = value.strip()
        if required and not value:
            problems.append(FieldProblem(key, "required", "must not be empty"))
        elif len(value) > limit:
            problems.append(FieldProblem(key, "max_length", f"must be at most {limit} characters"))
        texts[key] = value
    method = data.get("method") or ""
    if source == ClueSource.MONITORING_ALERT.value and method not in OFF_SITE_METHODS:
        problems.append(
            FieldProblem(
                "method",
                "choice",
                f"an alert names its off-site method: {', '.join(sorted(OFF_SITE_METHODS))}",
            )
        )
    elif method and method not in OFF_SITE_METHODS:
        problems.append(FieldProblem("method", "choice", "must be an off-site method or empty"))
    evidence = validate_refs(data.get("evidence"), "evidence", problems)
    if problems:
        raise InvalidInputError(problems)
    return Clue(
        source=str(source),
        department=str(department),
        target_id=str(target),
        received_on=received,
        summary=texts["summary"],
        reference=texts["reference"],
        method=str(method),
        evidence=tuple(evidence),
    )


def raised_risk_class(current: str) -> str:
    """The next higher credit-risk class (A low .. D high); D stays D."""
    order = [c.value for c in RiskClass]
    if current not in order:
        raise InvalidInputError([FieldProblem("risk_class", "choice", f"must be one of: {', '.join(order)}")])
    return order[min(order.index(current) + 1, len(order) - 1)]
