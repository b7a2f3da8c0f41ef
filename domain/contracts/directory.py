"""Messages for the directory events (一单两库 + 专家库): departments, items, targets, inspectors, experts.

A ``Registered`` message carries the entry's fields at the top level (the event keeps them in ``data``).
Classification fields are plain strings so that a new value in the domain is not a contract change.
"""

import datetime as dt
from collections.abc import Mapping
from typing import Any

from domain.contracts.base import Message, contract
from domain.directory import (
    Department,
    DirectoryEntry,
    Expert,
    InspectionItem,
    Inspector,
    Target,
    _WithConflicts,
)


def _entry_data(state: Mapping[str, Any]) -> Mapping[str, Any]:
    data: Mapping[str, Any] = state["data"]
    return data


# -- every kind (declared on the common base: stored as DirectoryEntry.DetailsUpdated, typed per kind) -------
@contract(DirectoryEntry.DetailsUpdated)
class DirectoryEntryDetailsUpdatedV1(Message, frozen=True):
    """Plain fields of a directory entry changed (those without an event of their own): name -> new value.

    CloudEvents type ``cn.gov.dualrandom.<kind>.details_updated.v1`` (``target``, ``inspector``...)."""

    changes: dict[str, Any]


@contract(_WithConflicts.ConflictDeclared)
class WithConflictsConflictDeclaredV1(Message, frozen=True):
    """回避: an inspector or expert declared a conflict of interest with a target (``<kind>.conflict_declared``)."""

    target_id: str


@contract(_WithConflicts.ConflictWithdrawn)
class WithConflictsConflictWithdrawnV1(Message, frozen=True):
    """A declared conflict of interest was withdrawn (``<kind>.conflict_withdrawn``)."""

    target_id: str


# -- Department ----------------------------------------------------------------------------------------
@contract(Department.Registered, convert=_entry_data)
class DepartmentRegisteredV1(Message, frozen=True):
    """A department joined: ``code`` names it in subjects (``dualrandom.<code>...``)."""

    code: str
    name: str
    city: str
    county: str
    kind: str
    contact: str = ""
    phone: str = ""



# -- InspectionItem ------------------------------------------------------------------------------------
@contract(InspectionItem.Registered, convert=_entry_data)
class InspectionItemRegisteredV1(Message, frozen=True):
    """An item of a department's random-inspection list (随机抽查事项清单)."""

    department: str
    code: str
    name: str
    category: str
    legal_basis: str = ""
    methods: list[str] = []
    documents: list[str] = []
    needs_expert: bool = False
    specialty: str = ""
    expert_field: str = ""
    applies_to_industries: list[str] = []
    applies_to_tags: list[str] = []
    applies_to_classes: list[str] = []



# -- Target (shared directory) -------------------------------------------------------------------------
@contract(Target.Registered, convert=_entry_data)
class TargetRegisteredV1(Message, frozen=True):
    """An enterprise entered the shared target directory (检查对象名录库)."""

    credit_code: str
    name: str
    county: str
    supervision_class: str
    risk_class: str
    address: str = ""
    industry: str = ""
    tags: list[str] = []
    status: str = "active"
    town: str = ""



@contract(Target.Reclassified)
class TargetReclassifiedV1(Message, frozen=True):
    supervision_class: str
    previous: str


@contract(Target.RiskClassChanged)
class TargetRiskClassChangedV1(Message, frozen=True):
    risk_class: str
    previous: str


@contract(Target.Tagged)
class TargetTaggedV1(Message, frozen=True):
    tag: str


@contract(Target.Untagged)
class TargetUntaggedV1(Message, frozen=True):
    tag: str


@contract(Target.Closed)
class TargetClosedV1(Message, frozen=True):
    """已关闭停业: leaves the pool of future draws."""


@contract(Target.Deregistered)
class TargetDeregisteredV1(Message, frozen=True):
    """注销/吊销: leaves the pool of future draws."""


@contract(Target.Reactivated)
class TargetReactivatedV1(Message, frozen=True):
    pass


# -- Inspector -----------------------------------------------------------------------------------------
@contract(Inspector.Registered, convert=_entry_data)
class InspectorRegisteredV1(Message, frozen=True):
    """Certified staff of one department (执法检查人员名录库)."""

    department: str
    staff_id: str
    name: str
    certificate_no: str
    certificate_expiry: dt.date
    specialties: list[str] = []
    region: str = ""
    active: bool = True
    conflicts: list[str] = []



@contract(Inspector.Deactivated)
class InspectorDeactivatedV1(Message, frozen=True):
    pass


@contract(Inspector.Activated)
class InspectorActivatedV1(Message, frozen=True):
    pass




# -- Expert --------------------------------------------------------------------------------------------
@contract(Expert.Registered, convert=_entry_data)
class ExpertRegisteredV1(Message, frozen=True):
    """A third-party expert (专家库)."""

    department: str
    code: str
    name: str
    field: str
    organisation: str = ""
    conflicts: list[str] = []



