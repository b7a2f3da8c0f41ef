"""A department's inbox and KPIs over HTTP: read models only, never aggregates."""

import datetime as dt
from typing import Annotated, Any

from litestar import Router, get
from litestar.params import Parameter

from domain.access import Actor
from domain.errors import PermissionDeniedError
from domain.values import Role
from projections.execution import boards as execution_boards
from projections.tasks.queries import department_tasks, inspector_visits, task_kpis
from services.api.common import READ, SECURED, AnyRequest, Department, MinPosition, answers, runtime, wait
from services.api.schemas import Inbox, View

READ_MODELS = ["directory", "tasks", "execution"]

def _department(actor: Actor, department: str | None) -> str:
    dept = department or actor.department
    if actor.has(Role.ADMIN) or actor.has(Role.AUDITOR):
        return dept
    if dept != actor.department or actor.roles == (Role.PARTNER.value,):
        raise PermissionDeniedError(f"the board of {dept} is for its own staff, admins and auditors")
    return dept


def _today(request: AnyRequest) -> dt.date:
    return runtime(request).clock.today()


@get(
    "/inbox",
    sync_to_thread=True,
    opt={"read_models": READ_MODELS},
    responses=answers(200, Inbox, READ, also=(503,)),
    summary="A department's inbox",
    description="For the department (default: yours; admins and auditors may name one): the tasks it leads or "
    "joins with their state and whether it has drawn its teams; per inspector the visits they are on with status "
    "and visit date (an inspector's own list is `GET /assignments/mine`); and, from the execution read models, "
    "findings awaiting review, referrals received and sent with status, and results close to or past their "
    "publication deadline.",
)
def inbox(
    request: AnyRequest,
    department: Department = None,
    year: Annotated[int | None, Parameter(ge=1, le=9999, description="only tasks of this year")] = None,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    wait(request, min_position, READ_MODELS)
    return inbox_view(request, department, year)


def inbox_view(request: AnyRequest, department: str | None, year: int | None) -> dict[str, Any]:
    """The inbox's body (also exported as XLSX: services/api/documents.py)."""
    dept = _department(request.user, department)
    rt = runtime(request)
    boards = execution_boards.inbox(rt.engine, dept, _today(request))
    named = rt.lookups.with_names  # names next to ids: one batched look-up per kind and list
    return {
        "department": dept,
        "tasks": department_tasks(rt.engine, dept, year),
        "inspectors": _named_inspectors(rt.lookups, inspector_visits(rt.engine, dept)),
        **{key: named(rows) for key, rows in boards.items()},
    }


def _named_inspectors(lookups: Any, inspectors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each inspector with their name and certificate number, each visit with its target's name, credit code
    and address (two batched look-ups for the whole board)."""
    people = lookups.people(i["inspector_id"] for i in inspectors)
    visits = lookups.with_target_names([v for i in inspectors for v in i["visits"]])
    out, at = [], 0
    for i in inspectors:
        person = people.get(i["inspector_id"], {})
        n = len(i["visits"])
        out.append({"inspector_id": i["inspector_id"], "name": person.get("name", ""),
                    "certificate_no": person.get("certificate_no", ""), "visits": visits[at : at + n]})
        at += n
    return out


@get(
    "/kpis",
    sync_to_thread=True,
    opt={"read_models": READ_MODELS},
    responses=answers(200, View, READ, also=(503,)),
    summary="A department's KPIs",
    description="Per department (default: yours), `year` and optional `quarter` (1-4). Each KPI carries its "
    "formula: own and joint tasks; joint share = joint / (own + joint) against 60% (rule joint_share); coverage per "
    "supervision class = targets drawn / frozen quotas and / the baseline minimums of the 2024 notice (rules "
    "key_ratio 25%, general_ratio 5% per quarter); visits per inspector (人均家次) = team places on live visits / active inspectors; and, from the "
    "execution read models: publication rate = published / approved (goal 100%); timeliness = published within "
    "the deadline (20 working days) / published; violation-discovery rate = findings with a problem / findings; "
    "off-site share = inspections with an off-site method / inspections; follow-up coverage = follow-up visits / "
    "targets inspected (goal 10%); referral closure = concluded / referrals.",
)
def kpis(
    request: AnyRequest,
    year: Annotated[int, Parameter(ge=1, le=9999, description="the year")],
    department: Department = None,
    quarter: Annotated[int | None, Parameter(ge=1, le=4, description="1-4; default: the whole year")] = None,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    wait(request, min_position, READ_MODELS)
    return kpis_view(request, department, year, quarter)


def kpis_view(request: AnyRequest, department: str | None, year: int, quarter: int | None) -> dict[str, Any]:
    """The KPIs' body (also exported as XLSX: services/api/documents.py)."""
    dept = _department(request.user, department)
    rt = runtime(request)
    return {
        **task_kpis(rt.engine, dept, year, quarter),
        **execution_boards.kpis(rt.engine, dept, year, quarter, _today(request)),
    }


def router() -> Router:
    return Router("/", route_handlers=[inbox, kpis], tags=["boards"], security=SECURED)
