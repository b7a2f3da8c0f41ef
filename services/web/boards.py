"""The annual plan (quotas and breaches), the department's inbox and its KPIs as charts, in the staff console. They
read what ``/api/v1/plans`` and ``/api/v1/inbox``, ``/api/v1/kpis`` read (``Plans.plan_view``, the tasks and
execution read models' queries) with the same department rule (``services.api.boards._department``)."""

import datetime as dt
from typing import Any

from litestar import Request, get
from litestar.response import Template

from domain.errors import PermissionDeniedError
from domain.planning.plan import plan_id
from domain.values import Role
from projections.directory.queries import staff as directory_staff
from projections.directory.queries import target_data
from projections.execution import boards as execution_boards
from projections.tasks.queries import department_tasks, inspector_visits, task_kpis
from services.api.boards import _department as board_department
from services.application import NotFoundError
from services.web.charts import Bar, bars, percent
from services.web.pages import _departments, _rt
from services.web.planner import ORIGINS, STATE_NAMES, stratum_name
from services.web.staff import render, requires

AnyRequest = Request[Any, Any, Any]
READERS = (Role.PLANNER, Role.ADMIN, Role.AUDITOR)
BREACHES = {
    "tasks_per_quarter": "每季度抽查任务不少于 1 次", "key_ratio": "重点监管对象抽查比例不低于 25%",
    "general_ratio": "一般监管对象抽查比例不低于 5%（或人均 6 家次）", "rule_minimum": "计划自定的最低要求",
    "joint_share": "部门联合抽查占比不低于 60%", "key_coverage": "重点监管对象抽查覆盖不足",
    "general_coverage": "一般监管对象抽查覆盖不足",
}
CLASSES = {"key": "重点监管", "general": "一般监管", "special": "特殊监管"}
INBOX_VISITS_MAX = 200  # visits shown per inspector on the inbox (the API gives them all)


def _query(request: AnyRequest) -> tuple[str, int, int | None, list[tuple[str, str]]]:
    """department (checked as the API checks it), year and quarter of a board page, and the problems."""
    params = request.query_params
    problems: list[tuple[str, str]] = []
    year = dt.date.today().year
    raw = params.get("year", "")
    if raw:
        if raw.isascii() and raw.isdigit() and len(raw) == 4 and 2000 <= int(raw) <= 2100:
            year = int(raw)
        else:
            problems.append(("year", "须为 2000 至 2100 之间的四位年份"))
    quarter = None
    raw = params.get("quarter", "")
    if raw:
        if raw in {"1", "2", "3", "4"}:
            quarter = int(raw)
        else:
            problems.append(("quarter", "须为 1 至 4"))
    department = request.user.department
    wanted = params.get("department") or None
    if wanted is not None and wanted not in _departments(request):
        problems.append(("department", "须为列表中的部门"))
    elif not problems:
        try:
            department = board_department(request.user, wanted)
        except PermissionDeniedError:
            problems.append(("department", "只能查看本部门（系统管理员和审计人员可查看各部门）"))
    return department, year, quarter, problems


def _common(request: AnyRequest, department: str, year: int, quarter: int | None) -> dict[str, Any]:
    departments = _departments(request)
    return {"department": department, "department_name": departments.get(department, department), "year": year,
            "quarter": quarter or "", "departments": departments,
            "may_choose": request.user.has(Role.ADMIN) or request.user.has(Role.AUDITOR),
            "years": list(range(dt.date.today().year + 1, 2014, -1))}


@get("/plans", guards=[requires(*READERS)], sync_to_thread=True)
def plan_page(request: AnyRequest) -> Template:
    """年度抽查计划: the entries with their items by name and their quotas per stratum (with the arithmetic),
    the department's tasks of the year and every breach by rule."""
    department, year, _, problems = _query(request)
    if problems:
        return render(request, "staff/problem.html", "请求有误", status_code=400, problems=problems)
    rt = _rt(request)
    context = _common(request, department, year, None)
    # the forms are shown to whom the use case lets change the plan: the department's planners
    may_write = request.user.has(Role.PLANNER) and request.user.department == department
    try:
        plan = rt.plans.plan_view(request.user, plan_id(department, year), None)
    except NotFoundError:
        return render(request, "staff/plan.html", "年度抽查计划", plan=None, may_write=may_write, **context)
    items = rt.lookups.items({i for e in plan["entries"] for i in e.get("items", [])})
    entries = [{**e, "item_names": [str(items.get(i, {}).get("name") or "（名录中无此事项）") for i in e.get("items", [])],
                "strata": [{"name": stratum_name(k), **q} for k, q in sorted((e.get("quotas") or {}).items())]}
               for e in plan["entries"]]
    breaches = [{**b, "rule_name": BREACHES.get(b["rule"], b["rule"])} for b in plan.get("breaches", [])]
    return render(request, "staff/plan.html", "年度抽查计划", plan=plan, entries=entries, breaches=breaches,
                  states=STATE_NAMES, origins=ORIGINS, may_write=may_write,
                  removed=sorted((plan.get("removed") or {}).items()), **context)


@get("/inbox", guards=[requires(*READERS)], sync_to_thread=True)
def inbox_page(request: AnyRequest) -> Template:
    """待办: the department's tasks, its inspectors' visits, findings awaiting review, referrals and results close
    to or past their publication deadline."""
    department, year, _, problems = _query(request)
    if problems:
        return render(request, "staff/problem.html", "请求有误", status_code=400, problems=problems)
    rt = _rt(request)
    today = rt.clock.today()
    boards = execution_boards.inbox(rt.engine, department, today)
    visits = inspector_visits(rt.engine, department)
    staff_names = {i: str(data.get("name", "")) for i, data in directory_staff(rt.engine, department)[0]}
    shown = [(v, v["visits"][:INBOX_VISITS_MAX]) for v in visits]
    rows = [r for key in ("awaiting_review", "publication_deadlines", "referrals_received", "referrals_sent")
            for r in boards.get(key, [])]
    wanted = {x["target_id"] for _, vs in shown for x in vs} | {str(r["target_id"]) for r in rows if r.get("target_id")}
    targets = target_data(rt.engine, sorted(wanted))
    for r in rows:  # names, never bare ids
        r["target_name"] = targets.get(str(r.get("target_id")), {}).get("name", "（名录中无此对象）")
    people = [{"name": staff_names.get(v["inspector_id"]) or "（名录中无此人）", "count": len(v["visits"]),
               "visits": [{**x, "target_name": targets.get(x["target_id"], {}).get("name", "（名录中无此对象）")}
                          for x in vs]} for v, vs in shown]
    return render(request, "staff/inbox.html", "待办", tasks=department_tasks(rt.engine, department, year),
                  people=people, boards=boards, states=STATE_NAMES, origins=ORIGINS, today=today,
                  **_common(request, department, year, None))


@get("/kpis", guards=[requires(*READERS)], sync_to_thread=True)
def kpis_page(request: AnyRequest) -> Template:
    """指标: coverage per supervision class and quarter, the joint share and publication timeliness, as charts
    (server-side SVG) with the same figures in tables and each KPI's formula."""
    department, year, _, problems = _query(request)
    if problems:
        return render(request, "staff/problem.html", "请求有误", status_code=400, problems=problems)
    rt = _rt(request)
    today = rt.clock.today()
    quarters = {q: {**task_kpis(rt.engine, department, year, q),
                    **execution_boards.kpis(rt.engine, department, year, q, today)} for q in (1, 2, 3, 4)}
    whole = {**task_kpis(rt.engine, department, year, None),
             **execution_boards.kpis(rt.engine, department, year, None, today)}
    labels = [f"第{q}季度" for q in quarters] + ["全年"]
    rows = [*quarters.values(), whole]
    classes = list(CLASSES)

    def coverage(k: dict[str, Any], klass: str) -> Bar:
        c = k["coverage"]["by_class"].get(klass) or {}
        value = c.get("against_baseline_minimum")
        return Bar(value, f"{c.get('drawn', 0)}/{c.get('baseline_minimum', 0)}" if value is not None else "")

    coverage_svg = bars(f"{year} 年各类监管对象抽查覆盖（已抽 / 基线最低数）",
                        [(label, [coverage(k, c) for c in classes]) for label, k in zip(labels, rows, strict=True)],
                        [CLASSES[c] for c in classes], goal=1.0, goal_label="达到基线")
    joint_svg = bars(f"{year} 年部门联合抽查占比", [(label, [Bar(k["joint_share"]["value"])])
                                            for label, k in zip(labels, rows, strict=True)],
                     ["联合抽查占比"], goal=float(whole["joint_share"]["goal"]), goal_label="目标 60%")
    timely_svg = bars(f"{year} 年结果公示及时率（20 个工作日内公示 / 已公示）",
                      [(label, [Bar(k["timeliness"]["rate"], f"{k['timeliness']['on_time']}/"
                                f"{k['timeliness']['published']}" if k["timeliness"]["rate"] is not None else "")])
                       for label, k in zip(labels, rows, strict=True)], ["及时公示"], goal=1.0, goal_label="目标 100%")
    table = [{"label": label, "k": k} for label, k in zip(labels, rows, strict=True)]
    return render(request, "staff/kpis.html", "指标", coverage_svg=coverage_svg, joint_svg=joint_svg,
                  timely_svg=timely_svg, table=table, classes=CLASSES, percent=percent, whole=whole,
                  **_common(request, department, year, None))


PAGES = [plan_page, inbox_page, kpis_page]
