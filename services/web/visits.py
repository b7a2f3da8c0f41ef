"""A visit (检查组与回避) and merged visits (合并检查) in the staff console: one drawn visit with its teams by name,
the recusals declared on it and the recusal form (回避: the inspector concerned or a planner of their department;
a deterministic redraw names the replacement); a task's targets drawn again by another task in the same quarter
and the form merging the two visits into one (一次检查, 多项合一). The pages call the use cases of
``/api/v1/assignments`` and ``/api/v1/tasks/{id}/overlaps`` (``Teams``, ``Merges``) with the same authorisation."""

import uuid
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Template

from domain.access import is_among
from domain.values import Role
from services.api.common import ctx
from services.web.forms import Outcome, attempt, text
from services.web.pages import _departments, _rt
from services.web.planning import _done, named
from services.web.staff import render, requires

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
AnyRequest = Request[Any, Any, Any]
VISIT_READERS = (Role.PLANNER, Role.ADMIN, Role.AUDITOR, Role.INSPECTOR)
RECUSERS = (Role.PLANNER, Role.INSPECTOR)
TASK_READERS = (Role.PLANNER, Role.ADMIN, Role.AUDITOR)
OVERLAPS_SHOWN = 200  # rows of the merge page (Merges.overlaps gives them all, as the API does)
STATES = {"awaiting_teams": "待匹配检查人员", "dispatched": "已派出", "in_progress": "检查中", "published": "已公示",
          "merged": "已并入另一次检查", "cancelled": "已取消"}


def _person(people: Mapping[str, Mapping[str, str]], pid: str) -> str:
    p = people.get(pid) or {}
    name = p.get("name") or "（名录中无此人）"
    return f"{name}（执法证号 {p['certificate_no']}）" if p.get("certificate_no") else name


def _visit_context(request: AnyRequest, aid: uuid.UUID) -> dict[str, Any]:
    """The visit as ``Teams.assignment_view`` shows it to this actor, with names, and whom they may recuse."""
    rt = _rt(request)
    visit = rt.teams.assignment_view(request.user, aid)
    people: dict[str, dict[str, str]] = visit.get("people") or {}
    departments = {**_departments(request), **(visit.get("department_names") or {})}
    items = visit.get("item_names") or {}
    actor = request.user
    me = rt.lookups.as_inspector(actor) if actor.has(Role.INSPECTOR) else None
    teams = []
    may_recuse: list[tuple[str, str]] = []  # (inspector id, name) this actor may declare a recusal for
    for dept, team in sorted((visit.get("teams") or {}).items()):
        members = list(team.get("members") or [])
        teams.append({"department": departments.get(dept, dept), "leader": _person(people, team.get("leader", "")),
                      "members": [_person(people, m) for m in members],
                      "experts": [_person(people, e) for e in team.get("experts") or []],
                      "items": [str(items.get(i, {}).get("name") or "（名录中无此事项）")
                                for i in (visit.get("items") or {}).get(dept, [])]})
        if visit["state"] in ("merged", "cancelled"):
            continue
        if actor.has(Role.PLANNER) and actor.department == dept:
            may_recuse += [(m, _person(people, m)) for m in members]
        elif me is not None and actor.department == dept:
            may_recuse += [(m, _person(people, m)) for m in members if is_among(me, [m])]
    recusals = [{"department": departments.get(r["department"], r["department"]),
                 "inspector": _person(people, r.get("inspector_id", "")), "reason": r.get("reason", "")}
                for r in visit.get("recusals") or []]
    task_rows = [{"id": t.get("task_id"), "number": t.get("number") or t.get("task_number", ""),
                  "name": t.get("name", "")} for t in visit.get("tasks") or []]
    target = visit.get("target") or {}
    return {"visit": visit, "teams": teams, "recusals": recusals, "may_recuse": may_recuse, "tasks": task_rows,
            "target": target, "state_name": STATES.get(visit["state"], visit["state"]),
            "department_names": [departments.get(d, d) for d in visit.get("departments") or []],
            "lead_name": departments.get(visit.get("lead", ""), visit.get("lead", ""))}


@get("/assignments/{assignment_id:uuid}", guards=[requires(*VISIT_READERS)], sync_to_thread=True)
def visit_page(request: AnyRequest, assignment_id: FromPath[uuid.UUID]) -> Template:
    """检查组与回避: the visit's enterprise, tasks, items and teams by name, its recusals and the recusal form.
    Who sees it is ``Teams.assignment_view``'s rule (the drawn list's: the task's planners, auditors, admins, and
    the inspectors on the visit)."""
    context = _visit_context(request, assignment_id)
    return render(request, "staff/visit_teams.html", f"检查组 · {context['target'].get('target_name') or ''}",
                  problems=[], reason="", chosen="", **context)


@post("/assignments/{assignment_id:uuid}/recusals", guards=[requires(*RECUSERS)], sync_to_thread=True,
      status_code=200)
def recuse(request: AnyRequest, assignment_id: FromPath[uuid.UUID], data: Form) -> Template:
    """回避: ``Teams.recuse`` (the inspector concerned or their department's planner; a reason); the redraw's
    replacement is shown by name."""
    problems: list[tuple[str, str]] = []
    inspector_id = text(data, "inspector_id", max_len=64, required=True, problems=problems)
    reason = text(data, "reason", max_len=1000, required=True, problems=problems)
    rt = _rt(request)
    outcome = Outcome(problems=problems, status=422) if problems else attempt(
        lambda: rt.teams.recuse(ctx(request), assignment_id, inspector_id, reason, None))
    if not outcome.ok:
        context = _visit_context(request, assignment_id)
        return render(request, "staff/visit_teams.html", "无法回避", status_code=outcome.status,
                      problems=named(outcome.problems), reason=reason, chosen=inspector_id, **context)
    rt.after_write()
    body = outcome.value.body
    people = rt.lookups.people([body["removed"], body["new"]])
    departments = _departments(request)
    result = {"removed": _person(people, body["removed"]), "new": _person(people, body["new"]), "reason": reason,
              "department": departments.get(body["department"], body["department"]), "position": body["position"]}
    # the inspector who stepped aside no longer sees the visit; their department's planner still does
    back = f"/staff/assignments/{assignment_id}" if request.user.has(Role.PLANNER) else "/staff/visits"
    return render(request, "staff/recused.html", "回避已记录", result=result, back=back)


@get("/tasks/{task_id:uuid}/overlaps", guards=[requires(*TASK_READERS)], sync_to_thread=True)
def overlaps_page(request: AnyRequest, task_id: FromPath[uuid.UUID]) -> Template:
    """合并检查: the task's targets that another task drew in the same quarter (``Merges.overlaps``), by name,
    each with the form merging this task's visit into the other's (the lead department's planners)."""
    rt = _rt(request)
    task = rt.task_opening.task_view(request.user, task_id)
    rows = rt.merges.overlaps(request.user, task_id)
    return _overlaps(request, task, rows)


def _overlaps(request: AnyRequest, task: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], *,
              problems: Sequence[tuple[str, str]] = (), status: int = 200, chosen: str = "",
              reason: str = "") -> Template:
    rt = _rt(request)
    departments = _departments(request)
    total, rows = len(rows), list(rows)[:OVERLAPS_SHOWN]
    names = rt.lookups.target_names(r["target_id"] for r in rows)
    shown = [{**r, "target_name": names.get(r["target_id"], {}).get("target_name") or "（名录中无此对象）",
              "credit_code": names.get(r["target_id"], {}).get("credit_code", ""),
              "lead_name": departments.get(r["lead"], r["lead"])} for r in rows]
    may_merge = request.user.has(Role.PLANNER) and request.user.department == task["lead"]
    return render(request, "staff/overlaps.html", f"合并检查 · {task['number']}", status_code=status, task=task,
                  rows=shown, total=total, may_merge=may_merge, problems=named(problems), chosen=chosen, reason=reason,
                  dept_names=[departments.get(d, d) for d in task["departments"]])


@post("/assignments/{assignment_id:uuid}/merge", guards=[requires(Role.PLANNER)], sync_to_thread=True,
      status_code=200)
def merge(request: AnyRequest, assignment_id: FromPath[uuid.UUID], data: Form) -> Response[Any] | Template:
    """One visit for two tasks (``Merges.merge``): this visit joins ``into``; then to the merged visit."""
    problems: list[tuple[str, str]] = []
    raw_into = text(data, "into", max_len=36, required=True, problems=problems)
    reason = text(data, "reason", max_len=1000, required=True, problems=problems)
    into: uuid.UUID | None = None
    if not problems:
        try:
            into = uuid.UUID(raw_into)
        except ValueError:
            problems.append(("into", "须为本页列出的另一次检查"))
    rt = _rt(request)
    target = into
    outcome = Outcome(problems=problems, status=422) if problems or target is None else attempt(
        lambda: rt.merges.merge(ctx(request), assignment_id, target, reason))
    if outcome.ok:
        return _done(request, f"/staff/assignments/{into}")
    # the form again, on the page of the task this visit belongs to (when the actor may read it)
    visit = rt.teams.assignment_view(request.user, assignment_id)
    tid = uuid.UUID(str((visit.get("tasks") or [{}])[0].get("task_id")))
    task = rt.task_opening.task_view(request.user, tid)
    return _overlaps(request, task, rt.merges.overlaps(request.user, tid), problems=outcome.problems,
                     status=outcome.status, chosen=raw_into, reason=reason)


PAGES = [visit_page, recuse, overlaps_page, merge]
