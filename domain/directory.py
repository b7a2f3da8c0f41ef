"""The directories (一单两库 + 专家库) as event-sourced aggregates.

Department, InspectionItem (随机抽查事项清单), Target (检查对象名录库), Inspector (执法检查人员名录库)
and Expert (专家库). Each keeps its current fields in ``data``; ``change()`` validates a set of new
values and records only what actually differs, with a dedicated event where the change has a meaning
of its own (reclassification, risk change, tagging, deregistration, conflicts of interest).
"""

import re
import uuid
from collections.abc import Collection
from hashlib import sha1 as _sha1
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate, event

from domain.credit_code import credit_code_error
from domain.errors import FieldProblem, InvalidInputError, problem
from domain.fields import LIST_SPLIT as _LIST_SPLIT
from domain.fields import Field, Spec
from domain.values import (
    DepartmentKind,
    InspectionMethod,
    ItemCategory,
    RiskClass,
    SupervisionClass,
    TargetStatus,
)

NAMESPACE = uuid.UUID("6f1c2d1e-3b0a-5c8e-9d7f-2a4b6c8d0e1f")
_NAMESPACE_BYTES = NAMESPACE.bytes
SHARED = "shared"  # the "department" of the shared target directory in subjects and scopes

_CODE = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
_PHONE = re.compile(r"^[0-9+() -]{3,30}$")
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


def _matches(pattern: re.Pattern[str], what: str):  # type: ignore[no-untyped-def]
    def check(value: str) -> tuple[str, str] | None:
        if not pattern.match(value):
            return ("format", f"must be {what}")
        return None

    return check


def _credit_code(value: str) -> tuple[str, str] | None:
    return credit_code_error(value)


def _choices(enum: Any) -> tuple[str, ...]:
    return tuple(m.value for m in enum)


def entry_id(kind: str, key: str) -> uuid.UUID:
    """Deterministic aggregate id: registering the same key twice is a conflict, not a duplicate.

    ``uuid.uuid5(NAMESPACE, f"{kind}:{key}")``, computed as uuid5 computes it (SHA-1 of the namespace's bytes
    and the name's UTF-8, version 5) without its per-call import and argument checks: imports make 100,000."""
    return uuid.UUID(bytes=_sha1(_NAMESPACE_BYTES + f"{kind}:{key}".encode()).digest()[:16], version=5)


class DirectoryEntry(Aggregate):
    """Common behaviour of the directory aggregates."""

    SPEC: ClassVar[Spec]
    KIND: ClassVar[str]
    data: dict[str, Any]

    class DetailsUpdated(Aggregate.Event):
        """Plain fields changed (those without an event of their own)."""

        changes: dict[str, Any]

    @classmethod
    def key_of(cls, data: dict[str, Any]) -> str:
        raise NotImplementedError

    @classmethod
    def id_for(cls, data: dict[str, Any]) -> uuid.UUID:
        return entry_id(cls.KIND, cls.key_of(data))

    @classmethod
    def validate_new(cls, data: dict[str, Any], row: int | None = None) -> dict[str, Any]:
        """Validated, complete field values for a new entry."""
        values = cls.SPEC.validate(data, partial=False, row=row)
        return {**cls.SPEC.defaults(), **values}

    @property
    def department(self) -> str:
        """The department that owns this entry (``shared`` for the target directory)."""
        return str(self.data["department"])

    def diff(self, data: dict[str, Any], row: int | None = None) -> dict[str, Any]:
        """Validated values of ``data`` that differ from the current ones."""
        values = self.SPEC.validate(data, partial=True, row=row)
        problems = [
            FieldProblem(name, "immutable", "identifies the record and cannot change", row)
            for name, value in values.items()
            if self.SPEC.fields[name].identity and value != self.data.get(name)
        ]
        if problems:
            raise InvalidInputError(problems)
        return {k: v for k, v in values.items() if self.data.get(k) != v}

    def change(self, data: dict[str, Any], row: int | None = None) -> dict[str, Any]:
        """Apply new values; returns what changed (empty: nothing recorded)."""
        changes = self.diff(data, row)
        plain = {k: v for k, v in changes.items() if not self._special_change(k, v)}
        if plain:
            self._update_details(plain)
        return changes

    def _special_change(self, name: str, value: Any) -> bool:
        """Record a field change that has an event of its own; False when it has none."""
        return False

    @event(DetailsUpdated)
    def _update_details(self, changes: dict[str, Any]) -> None:
        self.data.update(changes)


class Department(DirectoryEntry):
    """A regulator taking part in random inspections (部门)."""

    KIND = "department"
    SPEC = Spec(
        [
            Field("code", required=True, identity=True, case="lower",
                  check=_matches(_CODE, "letters, digits and -, 2-32 long (stored in lower case)")),
            Field("name", required=True),
            Field("city", required=True, max_len=50),
            Field("county", required=True, max_len=50),
            Field("kind", required=True, choices=_choices(DepartmentKind)),
            Field("contact", max_len=50),  # 联系人 printed on the notices the department sends
            Field("phone", max_len=30, check=_matches(_PHONE, "a phone number: digits, spaces, +, - and ()")),
        ]
    )

    class Registered(Aggregate.Created):
        data: dict[str, Any]

    @classmethod
    def key_of(cls, data: dict[str, Any]) -> str:
        return str(data["code"])

    @staticmethod
    def create_id(data: dict[str, Any]) -> uuid.UUID:
        return Department.id_for(data)

    @event(Registered)
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = dict(data)

    @property
    def department(self) -> str:
        return str(self.data["code"])


class InspectionItem(DirectoryEntry):
    """抽查事项: one item of a department's random-inspection list."""

    KIND = "item"
    SPEC = Spec(
        [
            Field("department", required=True, identity=True, case="lower", check=_matches(_CODE, "a department code")),
            Field("code", required=True, identity=True, check=_matches(_KEY, "letters, digits, _ . -, at most 40")),
            Field("name", required=True),
            Field("category", required=True, choices=_choices(ItemCategory)),
            Field("legal_basis", max_len=1000, default=""),
            Field("methods", kind="list", choices=_choices(InspectionMethod), default=[]),
            Field("documents", kind="list", default=[]),
            Field("needs_expert", kind="bool", default=False),
            # What the inspector draw matches: an inspector with this specialty on every team (empty: any),
            # and, with needs_expert, an expert of this field (empty: the specialty, else the item's name).
            Field("specialty", max_len=50, default=""),
            Field("expert_field", max_len=100, default=""),
            # To which targets the item applies (domain.planning.applicability): each given list must hold;
            # none given: every target. A visit merges only the items that apply to its target.
            Field("applies_to_industries", kind="list", max_len=100, default=[]),
            Field("applies_to_tags", kind="list", max_len=50, default=[]),
            Field("applies_to_classes", kind="list", choices=_choices(SupervisionClass), default=[]),
        ]
    )

    class Registered(Aggregate.Created):
        """Version 2: ``data`` holds the applicability lists (version 1, before them: the item applies to
        every target, so the upcaster adds them empty)."""

        class_version = 2

        data: dict[str, Any]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            data = state["data"]
            for name in ("applies_to_industries", "applies_to_tags", "applies_to_classes"):
                data.setdefault(name, [])

    @classmethod
    def key_of(cls, data: dict[str, Any]) -> str:
        return f"{data['department']}/{data['code']}"

    @staticmethod
    def create_id(data: dict[str, Any]) -> uuid.UUID:
        return InspectionItem.id_for(data)

    @event(Registered)
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = dict(data)


class Target(DirectoryEntry):
    """检查对象: an enterprise in the shared target directory, keyed by its credit code."""

    KIND = "target"
    SPEC = Spec(
        [
            Field("credit_code", required=True, identity=True, case="upper", check=_credit_code),
            Field("name", required=True),
            Field("address", max_len=300, default=""),
            Field("county", required=True, max_len=50),
            # 乡镇（街道）: kept for the people who read the directory; not a draw input (a stored target without
            # it, registered before the field, reads as "")
            Field("town", max_len=50, default=""),
            Field("industry", max_len=100, default=""),
            Field("supervision_class", required=True, choices=_choices(SupervisionClass)),
            Field("risk_class", required=True, choices=_choices(RiskClass)),
            Field("tags", kind="list", max_len=50, default=[]),
            Field("status", choices=_choices(TargetStatus), default=TargetStatus.ACTIVE.value),
        ]
    )

    class Registered(Aggregate.Created):
        data: dict[str, Any]

    class Reclassified(Aggregate.Event):
        """重新分类: supervision class changed."""

        supervision_class: str
        previous: str

    class RiskClassChanged(Aggregate.Event):
        """信用风险分类 changed."""

        risk_class: str
        previous: str

    class Tagged(Aggregate.Event):
        tag: str

    class Untagged(Aggregate.Event):
        tag: str

    class Closed(Aggregate.Event):
        """已关闭停业: leaves the pool of future draws."""

    class Deregistered(Aggregate.Event):
        """注销/吊销: leaves the pool of future draws."""

    class Reactivated(Aggregate.Event):
        pass

    @classmethod
    def key_of(cls, data: dict[str, Any]) -> str:
        return str(data["credit_code"])

    @staticmethod
    def create_id(data: dict[str, Any]) -> uuid.UUID:
        return Target.id_for(data)

    @event(Registered)
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = dict(data)

    @property
    def department(self) -> str:
        return SHARED

    def _special_change(self, name: str, value: Any) -> bool:
        if name == "supervision_class":
            self._reclassify(value, self.data[name])
        elif name == "risk_class":
            self._change_risk(value, self.data[name])
        elif name == "tags":
            current = list(self.data["tags"])
            for tag in current:
                if tag not in value:
                    self._untag(tag)
            for tag in value:
                if tag not in current:
                    self._tag(tag)
        elif name == "status":
            {
                TargetStatus.CLOSED.value: self._close,
                TargetStatus.DEREGISTERED.value: self._deregister,
                TargetStatus.ACTIVE.value: self._reactivate,
            }[value]()
        else:
            return False
        return True

    def tag(self, tag: str) -> None:
        if tag in self.data["tags"]:
            return
        self.change({"tags": [*self.data["tags"], tag]})

    def deregister(self) -> None:
        if self.data["status"] == TargetStatus.DEREGISTERED.value:
            raise problem("status", "already_deregistered", "the target is already deregistered")
        self._deregister()

    @event(Reclassified)
    def _reclassify(self, supervision_class: str, previous: str) -> None:
        self.data["supervision_class"] = supervision_class

    @event(RiskClassChanged)
    def _change_risk(self, risk_class: str, previous: str) -> None:
        self.data["risk_class"] = risk_class

    @event(Tagged)
    def _tag(self, tag: str) -> None:
        self.data["tags"] = [*self.data["tags"], tag]

    @event(Untagged)
    def _untag(self, tag: str) -> None:
        self.data["tags"] = [t for t in self.data["tags"] if t != tag]

    @event(Closed)
    def _close(self) -> None:
        self.data["status"] = TargetStatus.CLOSED.value

    @event(Deregistered)
    def _deregister(self) -> None:
        self.data["status"] = TargetStatus.DEREGISTERED.value

    @event(Reactivated)
    def _reactivate(self) -> None:
        self.data["status"] = TargetStatus.ACTIVE.value


class _WithConflicts(DirectoryEntry):
    """Entries that declare conflicts of interest (回避) with targets."""

    class ConflictDeclared(Aggregate.Event):
        target_id: str

    class ConflictWithdrawn(Aggregate.Event):
        target_id: str

    def _special_change(self, name: str, value: Any) -> bool:
        if name != "conflicts":
            return False
        current = list(self.data["conflicts"])
        for target_id in current:
            if target_id not in value:
                self._withdraw_conflict(target_id)
        for target_id in value:
            if target_id not in current:
                self._declare_conflict(target_id)
        return True

    @event(ConflictDeclared)
    def _declare_conflict(self, target_id: str) -> None:
        self.data["conflicts"] = [*self.data["conflicts"], target_id]

    @event(ConflictWithdrawn)
    def _withdraw_conflict(self, target_id: str) -> None:
        self.data["conflicts"] = [t for t in self.data["conflicts"] if t != target_id]


def _uuids(values: list[str]) -> tuple[str, str] | None:
    for v in values:
        try:
            uuid.UUID(v)
        except ValueError:
            if credit_code_error(v) is None:  # a credit code: the service resolves it to its target first
                return ("unknown_target", f"no target with credit code {v} in the directory")
            return ("format", f"{v!r} is neither a target id (UUID) nor a credit code (统一社会信用代码)")
    return None


def target_id_of(credit_code: str) -> uuid.UUID:
    """The id of the target keyed by ``credit_code`` (whether or not it is registered)."""
    return entry_id(Target.KIND, credit_code)


def conflict_credit_codes(data: dict[str, Any]) -> list[str]:
    """The credit codes among the raw ``conflicts`` of an inspector's or expert's input (回避对象 given as the
    codes staff know), upper-cased; UUIDs and anything else are left to validation."""
    raw = data.get("conflicts")
    values = _LIST_SPLIT.split(raw) if isinstance(raw, str) else raw if isinstance(raw, (list, tuple)) else []
    codes = (v.strip().upper() for v in values if isinstance(v, str))
    return [c for c in dict.fromkeys(codes) if c and credit_code_error(c) is None]


def with_conflicts_resolved(data: dict[str, Any], known: Collection[str]) -> dict[str, Any]:
    """``data`` with each credit code in ``conflicts`` replaced by its target's id when that target is in
    ``known`` (credit codes registered); an unknown code stays, and validation names it (``unknown_target``)."""
    codes = set(conflict_credit_codes(data))
    if not codes:
        return data
    raw = data["conflicts"]
    values = _LIST_SPLIT.split(raw) if isinstance(raw, str) else list(raw)
    out = []
    for v in values:
        text = v.strip() if isinstance(v, str) else v
        if isinstance(text, str) and text.upper() in codes and text.upper() in known:
            out.append(str(target_id_of(text.upper())))
        elif isinstance(text, str) and text.upper() in codes:
            out.append(text.upper())
        else:
            out.append(v)
    return {**data, "conflicts": out}


class Inspector(_WithConflicts):
    """执法检查人员: certified staff of one department."""

    KIND = "inspector"
    SPEC = Spec(
        [
            Field("department", required=True, identity=True, case="lower", check=_matches(_CODE, "a department code")),
            Field("staff_id", required=True, identity=True, check=_matches(_KEY, "letters, digits, _ . -, at most 40")),
            Field("name", required=True, max_len=50),
            Field("certificate_no", required=True, max_len=50),
            Field("certificate_expiry", kind="date", required=True),
            Field("specialties", kind="list", max_len=50, default=[]),
            Field("region", max_len=50, default=""),
            Field("active", kind="bool", default=True),
            Field("conflicts", kind="list", check=_uuids, default=[]),
        ]
    )

    class Registered(Aggregate.Created):
        data: dict[str, Any]

    class Deactivated(Aggregate.Event):
        pass

    class Activated(Aggregate.Event):
        pass

    @classmethod
    def key_of(cls, data: dict[str, Any]) -> str:
        return f"{data['department']}/{data['staff_id']}"

    @staticmethod
    def create_id(data: dict[str, Any]) -> uuid.UUID:
        return Inspector.id_for(data)

    @event(Registered)
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = dict(data)

    def _special_change(self, name: str, value: Any) -> bool:
        if name == "active":
            (self._activate if value else self._deactivate)()
            return True
        return super()._special_change(name, value)

    @event(Deactivated)
    def _deactivate(self) -> None:
        self.data["active"] = False

    @event(Activated)
    def _activate(self) -> None:
        self.data["active"] = True


class Expert(_WithConflicts):
    """专家库 entry: a third-party expert a department may draw when an item needs one."""

    KIND = "expert"
    SPEC = Spec(
        [
            Field("department", required=True, identity=True, case="lower", check=_matches(_CODE, "a department code")),
            Field("code", required=True, identity=True, check=_matches(_KEY, "letters, digits, _ . -, at most 40")),
            Field("name", required=True, max_len=50),
            Field("field", required=True, max_len=100),
            Field("organisation", max_len=200, default=""),
            Field("conflicts", kind="list", check=_uuids, default=[]),
        ]
    )

    class Registered(Aggregate.Created):
        data: dict[str, Any]

    @classmethod
    def key_of(cls, data: dict[str, Any]) -> str:
        return f"{data['department']}/{data['code']}"

    @staticmethod
    def create_id(data: dict[str, Any]) -> uuid.UUID:
        return Expert.id_for(data)

    @event(Registered)
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = dict(data)


KINDS: dict[str, type[DirectoryEntry]] = {
    cls.KIND: cls for cls in (Department, InspectionItem, Target, Inspector, Expert)
}
