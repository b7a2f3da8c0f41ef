"""A small county for task and draw tests: two departments, their items, targets and inspectors."""

import uuid
from dataclasses import dataclass, field
from typing import Any

from domain.access import Actor
from services.application import CommandContext
from tests.support.builders import a_department, a_target, an_inspector, an_item

ADMIN = Actor("admin-1", "hj-admin", ("admin",))
EEB_PLANNER = Actor("eeb-planner", "hj-eeb", ("planner",))
AMR_PLANNER = Actor("amr-planner", "hj-amr", ("planner",))
AUDITOR = Actor("auditor-1", "hj-audit", ("auditor",))


def ctx(actor: Actor) -> CommandContext:
    return CommandContext(actor=actor)


@dataclass
class County:
    items: dict[str, list[str]] = field(default_factory=dict)  # department -> item ids
    targets: list[str] = field(default_factory=list)
    inspectors: dict[str, list[str]] = field(default_factory=dict)
    staff: dict[str, str] = field(default_factory=dict)  # inspector id -> staff id


def build_county(rt: Any, *, targets: int = 40, inspectors: int = 6, risk: str = "BCDA") -> County:
    """Departments hj-eeb (ecology) and hj-amr (market), two items each, ``targets`` targets across the
    three supervision classes, ``inspectors`` inspectors per department."""
    app = rt.app
    c = ctx(ADMIN)
    county = County()
    app.register("department", a_department(), c)
    app.register("department", a_department(code="hj-amr", name="获嘉县市场监督管理局", kind="market"), c)
    for dept in ("hj-eeb", "hj-amr"):
        county.items[dept] = [
            app.register("item", an_item(department=dept, name=f"{dept}事项{i}"), c).id for i in range(2)
        ]
        county.inspectors[dept] = []
        for _ in range(inspectors):
            data = an_inspector(department=dept, specialties=[])
            w = app.register("inspector", data, c)
            county.inspectors[dept].append(w.id)
            county.staff[w.id] = data["staff_id"]
    classes = ["key", "general", "general", "special"]
    for i in range(targets):
        data = a_target(supervision_class=classes[i % 4], risk_class=risk[i % len(risk)],
                        name=f"获嘉县企业{i:03d}")
        county.targets.append(app.register("target", data, c).id)
    rt.runner.catch_up()
    return county


def new_id() -> str:
    return str(uuid.uuid4())
