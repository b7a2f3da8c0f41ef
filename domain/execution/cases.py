"""A case-triggered task (个案检查) from a clue: the clue's id, the task's reason, period and items."""

import datetime as dt
import json
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
