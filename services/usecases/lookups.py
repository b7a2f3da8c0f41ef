"""The read-model lookups commands share, in one place: departments, items, targets, a department's staff and
who a token's subject is among them, and the inspectors of earlier visits."""

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.engine import Engine

from domain.access import Actor, person_of
from domain.draw.matching import ExpertInfo, InspectorInfo
from domain.errors import FieldProblem, InvalidInputError
from domain.planning.items import item_problems
from domain.tasks.teams import expert_info, inspector_info
from domain.values import Role
from projections.directory import queries as directory
from projections.tasks import queries as tasks


class Lookups:
    """Directory and tasks read-model lookups (the caller brings the read models up to date first)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- departments and items -----------------------------------------------------------------------------
    def department(self, code: str, field: str = "department") -> dict[str, Any]:
        """The department's entry data; InvalidInputError on ``field`` when the directory has none."""
        data = directory.department_data(self.engine, code)
        if data is None:
            raise InvalidInputError(
                [FieldProblem(field, "unknown_department", f"no department {code!r} in the directory")]
            )
        return data

    def department_known(self, code: str) -> bool:
        return directory.department_data(self.engine, code) is not None

    def department_names(self, codes: Iterable[str]) -> dict[str, str]:
        """Code -> name (the code itself when the directory has no such department)."""
        codes = list(codes)
        found = directory.department_names(self.engine, codes)
        return {c: found.get(c, c) for c in codes}

    def items(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Item id -> ``{department, **data}``."""
        return directory.items(self.engine, ids)

    def check_items(self, department: str, items: Sequence[Any], field: str) -> None:
        """Every item is in the directory and the department's own; else InvalidInputError naming each."""
        problems = item_problems(department, items, self.items(items), field)
        if problems:
            raise InvalidInputError(problems)

    # -- targets -------------------------------------------------------------------------------------------
    def target_data(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Target id -> entry data of the targets found."""
        return directory.target_data(self.engine, ids)

    def target_names(self, ids: Iterable[str]) -> dict[str, dict[str, str]]:
        """Target id -> ``{target_name, credit_code, address}`` of the targets found (batched by id)."""
        found = directory.target_data(self.engine, sorted(set(ids)))
        return {t: {"target_name": str(d.get("name", "")), "credit_code": str(d.get("credit_code", "")),
                    "address": str(d.get("address", ""))} for t, d in found.items()}

    def with_target_names(self, rows: Sequence[dict[str, Any]], key: str = "target_id") -> list[dict[str, Any]]:
        """``rows`` with the name, credit code and address of the target each names by ``key`` next to it (one
        batched look-up for all of them; a target not in the directory gets empty texts)."""
        names = self.target_names(r[key] for r in rows if r.get(key))
        blank = {"target_name": "", "credit_code": "", "address": ""}
        return [{**r, **names.get(r.get(key) or "", blank)} for r in rows]

    def with_names(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """``rows`` with names next to the ids they hold, each kind looked up once for all rows: ``target_id`` ->
        ``target_name``, ``credit_code``, ``address``; ``item`` -> ``item_name``; ``from_department`` / ``to`` (a
        department code) -> ``from_department_name`` / ``to_name``."""
        named = self.with_target_names(rows)
        items = self.item_names(r["item"] for r in named if r.get("item"))
        codes = {r[k] for r in named for k in ("from_department", "to") if isinstance(r.get(k), str)}
        departments = self.department_names(sorted(codes)) if codes else {}
        for r in named:
            if "item" in r:
                r["item_name"] = items.get(r["item"], {}).get("name", "")
            for key in ("from_department", "to"):
                if isinstance(r.get(key), str):
                    r[f"{key}_name"] = departments.get(r[key], r[key])
        return named

    def people(self, ids: Iterable[str]) -> dict[str, dict[str, str]]:
        """Inspector or expert entry id -> ``{kind, name, certificate_no, department}`` (experts: ``field`` and
        ``organisation`` instead of a certificate), for the ids found (batched)."""
        wanted = set(ids)
        inspectors = directory.entries_by_id(self.engine, "inspector", wanted)
        experts = directory.entries_by_id(self.engine, "expert", wanted - set(inspectors))
        out = {i: {"kind": "inspector", "name": str(d.get("name", "")),
                   "certificate_no": str(d.get("certificate_no", "")), "department": str(d["department"])}
               for i, d in inspectors.items()}
        out.update({i: {"kind": "expert", "name": str(d.get("name", "")), "field": str(d.get("field", "")),
                        "organisation": str(d.get("organisation", "")), "department": str(d["department"])}
                    for i, d in experts.items()})
        return out

    def item_names(self, ids: Iterable[str]) -> dict[str, dict[str, str]]:
        """Item id -> ``{code, name, department}`` of the items found."""
        return {i: {"code": str(d.get("code", "")), "name": str(d.get("name", "")), "department": str(d["department"])}
                for i, d in self.items(set(ids)).items()}

    def target(self, target_id: str) -> dict[str, Any]:
        """The target's entry data ({} when not found)."""
        return self.target_data([target_id]).get(target_id, {})

    # -- staff ---------------------------------------------------------------------------------------------
    def staff(self, department: str) -> tuple[list[InspectorInfo], list[ExpertInfo]]:
        """The department's inspectors and experts as a team draw reads them."""
        inspectors, experts = directory.staff(self.engine, department)
        return (
            [inspector_info(i, department, data) for i, data in inspectors],
            [expert_info(i, department, data) for i, data in experts],
        )

    def inspector_aliases(self, inspector_id: str) -> set[str]:
        """The inspector's entry id and staff id: a token's subject may be either."""
        return directory.inspector_aliases(self.engine, inspector_id)

    def active_inspectors(self, department: str, on: dt.date) -> int:
        """How many of the department's inspectors are active and certified on ``on``."""
        with self.engine.connect() as conn:
            return directory.active_inspector_count(conn, department, on)

    def as_inspector(self, actor: Actor) -> Actor:
        """An inspector acts as the directory entry its account is linked to (the id the teams hold): the
        ``by`` of what they record. (``_meta.actor`` stays the account id: it comes from the command context.)"""
        if not actor.has(Role.INSPECTOR):
            return actor
        person = person_of(actor)
        with self.engine.connect() as conn:
            ids = directory.inspector_entries(conn, actor.department, person)
        entry = ids[0] if ids else person
        return dataclasses.replace(actor, subject=entry, inspector=entry)

    def previous_inspectors(
        self, department: str, targets: Sequence[str], period: str
    ) -> dict[str, set[str]]:
        """Per target: the department's inspectors on its visit of ``period`` (for the draw: the previous one)."""
        return tasks.previous_inspectors(self.engine, department, period, targets)

    def visited_targets(self, actor: Actor, task_id: str) -> set[str]:
        """Targets of the task's visits the actor (an inspector of its department) is on."""
        with self.engine.connect() as conn:
            ids = set(directory.inspector_entries(conn, actor.department, person_of(actor)))
            if not ids:
                return set()
            return tasks.visited_targets(conn, task_id, ids)

    def assignments_of(self, actor: Actor) -> list[dict[str, Any]]:
        """The visits the actor (an inspector, by entry or staff id) is on, by visit date."""
        with self.engine.connect() as conn:
            ids = set(directory.inspector_entries(conn, actor.department, person_of(actor)))
            if not ids:
                return []
            visits = tasks.assignments_of(conn, ids)
        return self.with_target_names(visits)
