"""A case-triggered task (个案检查) from a clue: the clue's id, the task's reason, period and items."""

import datetime as dt
import json
import re
import uuid
from collections.abc import Sequence
from typing import Any

from domain.errors import FieldProblem, InvalidInputError
from domain.execution.clue import CLUE_SOURCE_LABELS, Clue
from domain.execution.vocabulary import INSPECTION_METHOD_LABELS
from domain.planning.periods import quarter_of
from domain.planning.rules import parse_period

CLUE_NAMESPACE = uuid.UUID("3c1f6a2e-9b7d-5e40-8a1c-4d2e6f8a0b13")


def clue_id(clue: Clue) -> uuid.UUID:
    """The same clue, the same id: a UUID5 of its canonical JSON (the events' causation id)."""
    return uuid.uuid5(CLUE_NAMESPACE, json.dumps(clue.as_dict(), sort_keys=True, ensure_ascii=False))


def case_reason(clue: Clue) -> str:
    """The task's reason: ``个案检查（source）received：summary``, then the method and the reference when given."""
    reason = f"个案检查（{CLUE_SOURCE_LABELS[clue.source]}）{clue.received_on}：{clue.summary}"
    if clue.method:
        reason += f"；方式：{INSPECTION_METHOD_LABELS.get(clue.method, clue.method)}"
    if clue.reference:
        reason += f"；编号：{clue.reference}"
    return reason


def case_period(given: str | None, today: dt.date) -> str:
    """The task's period: the given one, else the quarter of today; refused when not a period."""
    period = given or quarter_of(today)
    parse_period(period)
    return period


def case_items(items: Sequence[Any] | None) -> list[Any]:
    """The department's items to inspect: at least one."""
    out = list(items or [])
    if not out:
        raise InvalidInputError([FieldProblem("items", "required", "name the department's items to inspect")])
    return out


_RECEIVED = re.compile(r"^个案检查（[^）]*）(\d{4}-\d{2}-\d{2})：")


def clue_received_on(reason: str) -> dt.date | None:
    """The clue's date from a case task's reason (``case_reason``'s ``个案检查（source）YYYY-MM-DD：…``), else None."""
    m = _RECEIVED.match(reason or "")
    if not m:
        return None
    try:
        return dt.date.fromisoformat(m.group(1))
    except ValueError:
        return None


def earliest_inspection(period: str, origin: str, reason: str) -> tuple[dt.date, str]:
    """The earliest date an inspection of a task can carry, and why: the start of the task's period, or for a
    case-triggered task the clue's date when later (nobody inspects a case before its clue arrived)."""
    start = parse_period(period).start
    why = f"the task's period {period} starts then"
    received = clue_received_on(reason) if origin == "case" else None
    if received is not None and received > start:
        return received, "the clue of the case task was received then"
    return start, why
