"""A task's terms when it is opened: from a plan entry or ad hoc; its name by the naming rule and its number in the year."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.errors import FieldProblem, InvalidInputError
from domain.planning.naming import check_task_name, task_name, task_type
from domain.planning.rules import NOTICE_RULES, parse_period, rules_to_dict


@dataclass(frozen=True)
class TaskTerms:
    """What a task is opened with, before ``Task.open`` validates it (values as given: may be invalid)."""

    period: Any
    category: Any
    scope: Any
    rules: Any
    participants: dict[str, list[str]]


def entry_year(number: object) -> int:
    """The year of a plan entry number (``2024001`` -> 2024); 0 when it does not start with four digits."""
    return int(str(number)[:4]) if str(number)[:4].isdigit() else 0


def planned_terms(
    data: Mapping[str, Any], lead: str, entry: Mapping[str, Any], plan_year: int
) -> TaskTerms:
    """A task from a plan entry: the entry's items join the lead's, each term the request leaves out is the
    entry's, and the period must lie in the plan's year."""
    participants = _participants(data)
    participants[lead] = list(dict.fromkeys([*entry["items"], *participants.get(lead, [])]))
    period, category = data.get("period") or entry["period"], data.get("category") or entry["category"]
    scope, rules = data.get("scope") or entry["scope"], data.get("rules") or entry["rules"]
    if parse_period(period).year != plan_year:
        raise InvalidInputError([FieldProblem("period", "plan_year", f"must lie in {plan_year}")])
    return TaskTerms(period, category, scope, rules, participants)


def ad_hoc_terms(data: Mapping[str, Any]) -> TaskTerms:
    """A task outside the plan: category ``general`` and the 2024 notice's rules unless given."""
    rules = data.get("rules")
    if rules is None:
        rules = rules_to_dict(NOTICE_RULES)
    return TaskTerms(
        data.get("period"), data.get("category") or "general", data.get("scope"), rules, _participants(data)
    )


def _participants(data: Mapping[str, Any]) -> dict[str, list[str]]:
    return {d: list(v) for d, v in (data.get("participants") or {}).items()}


def resolve_task_name(
    given: str | None, lead: Mapping[str, Any], period: Any, category: Any, *, joint: bool, case: bool = False
) -> str:
    """The name by the naming rule from the lead department (``city``, ``county``, ``name``); a given name must equal it.

    When the terms are too broken to name the task, the given name (or "") is kept: ``Task.open`` then names
    the broken field."""
    try:
        kind = task_type(category, joint=joint, case=case)
        expected = task_name(lead["city"], lead["county"], lead["name"], period, kind)
    except InvalidInputError:
        expected = None
    if given is not None and expected is not None:
        check_task_name(given, lead["city"], lead["county"], lead["name"], period, kind)
    return given if given is not None else (expected or "")


def next_task_number(year: int, taken: Iterable[str], attempt: int = 0) -> str:
    """``2024-007``: one past the highest number the lead took in the year, ``attempt`` further on a retry."""
    last = max((int(n.split("-")[1]) for n in taken), default=0)
    return f"{year:04d}-{last + 1 + attempt:03d}"
