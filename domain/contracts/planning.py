"""Messages for the annual plans (年度抽查工作计划).

Started from ``python -m services.cli.contracts scaffold``: the fields of each event, typed as in the domain.
"""

from typing import Any

from domain.contracts.base import Message, contract
from domain.planning.plan import AnnualPlan


@contract(AnnualPlan.Created)
class AnnualPlanCreatedV1(Message, frozen=True):
    department: str
    year: int
    name: str


@contract(AnnualPlan.EntryAdded)
class AnnualPlanEntryAddedV1(Message, frozen=True):
    number: str
    name: str
    items: list[str]
    category: str
    scope: dict[str, Any]
    period: str
    rules: list[dict[str, Any]]


@contract(AnnualPlan.EntryChanged)
class AnnualPlanEntryChangedV1(Message, frozen=True):
    number: str
    changes: dict[str, Any]


@contract(AnnualPlan.EntryRemoved)
class AnnualPlanEntryRemovedV1(Message, frozen=True):
    number: str
    reason: str


@contract(AnnualPlan.RulesAdjusted)
class AnnualPlanRulesAdjustedV1(Message, frozen=True):
    entry_number: str
    rules: list[dict[str, Any]]
    reason: str
    previous: list[dict[str, Any]]
