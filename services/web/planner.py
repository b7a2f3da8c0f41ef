"""Planners' pages of the staff console: the tasks, a task's draw screen (摇号: commitment, seed shares, freeze,
draw and teams, each shown as it is recorded, large enough to project) and the drawn list with names. Each page
reads and writes through the same use cases as ``/api/v1/tasks`` (``TaskOpening``, ``TargetDraws``, ``Teams``)
with the same authorisation; refusals are shown in place, in Chinese, and change nothing."""

import datetime as dt
import uuid
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Template

from domain.tasks.access import can_see_drawn_list
from domain.values import Role
from services.api.common import ctx
from services.web.forms import Outcome, attempt, hex64, text
from services.web.pages import _departments, _rt
from services.web.staff import render, requires

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
AnyRequest = Request[Any, Any, Any]
PLANNERS = (Role.PLANNER, Role.ADMIN)
TASK_READERS = (Role.PLANNER, Role.ADMIN, Role.AUDITOR)
TASKS_PAGE = 50
SUPERVISION = {"key": "重点监管", "general": "一般监管", "special": "特殊监管"}
STATE_NAMES = {"open": "待承诺", "committed": "已承诺", "frozen": "候选池已冻结", "drawn": "已摇号"}
ORIGINS = {"planned": "计划内", "plan": "计划内", "ad_hoc": "专项", "case": "个案检查"}


def stratum_name(key: str) -> str:
    """``key/A`` -> 重点监管 · 风险等级 A."""
    klass, _, risk = key.partition("/")
    name = SUPERVISION.get(klass, klass)
    return f"{name} · 风险等级 {risk}" if risk else name


def _int(raw: str | None, low: int, high: int) -> int | None:
    if raw is None or raw == "":
        return None
    if raw.isascii() and raw.isdigit() and low <= int(raw) <= high:
        return int(raw)
    return -1


@get("/tasks", guards=[requires(*TASK_READERS)], sync_to_thread=True)
def tasks_page(request: AnyRequest) -> Template:
    """抽查任务: the tasks of the person's department (all of them for an auditor), newest first."""
    params = request.query_params
    problems: list[tuple[str, str]] = []
    year = _int(params.get("year"), 2000, 2100)
    page = _int(params.get("page"), 1, 100000) or 1
    if year == -1:
        problems.append(("year", "须为 2000 至 2100 之间的四位年份"))
    if page == -1:
        problems.append(("page", "须为 1 至 100000 之间的整数"))
    if problems:
        return render(request, "staff/problem.html", "请求有误", status_code=400, problems=problems)
    found = _rt(request).task_opening.list_tasks(request.user, year, None, TASKS_PAGE, (page - 1) * TASKS_PAGE)
    total = int(found["total"])
    return render(request, "staff/tasks.html", "抽查任务", tasks=found["items"], total=total, page=page,
                  pages=max(1, (total + TASKS_PAGE - 1) // TASKS_PAGE), year=year or "",
                  departments=_departments(request), states=STATE_NAMES, origins=ORIGINS,
                  may_open=request.user.has(Role.PLANNER), years=list(range(dt.date.today().year + 1, 2014, -1)))


def _screen(request: AnyRequest, task_id: uuid.UUID, outcome: Outcome | None = None,
            recorded: str = "", watch: bool = False) -> dict[str, Any]:
    """The draw screen's context: the task as the use case shows it, its strata, the drawn counts."""
    rt = _rt(request)
    task = rt.task_opening.task_view(request.user, task_id)
    departments = _departments(request)
    frozen = task.get("frozen") or {}
    record: dict[str, Any] = {}
    if task["state"] == "drawn" and can_see_drawn_list(request.user, task["departments"]):
        record = rt.target_draws.read_round(request.user, task_id, task["round"]).get("record") or {}
    drawn_strata = record.get("strata") or {}
    strata = [{"name": stratum_name(k), "pool_size": s.get("pool_size"), "quota": s.get("quota"),
               "basis": s.get("basis", ""), "selected": len(drawn_strata.get(k, {}).get("selected", []))
               if k in drawn_strata else None}
              for k, s in sorted((frozen.get("strata") or {}).items())]
    mine = request.user.department
    return {
        "task": task, "strata": strata, "record": record, "departments": departments, "states": STATE_NAMES,
        "dept_names": [departments.get(d, d) for d in task["departments"]],
        "can_act": (request.user.has(Role.PLANNER) and mine in task["departments"]) or request.user.has(Role.ADMIN),
        # commitment, freeze and draw are the lead department's (as the use cases rule); teams and shares each's own
        "leads": request.user.has(Role.ADMIN) or (request.user.has(Role.PLANNER) and mine == task["lead"]),
        "my_department": mine, "outcome": outcome, "recorded": recorded, "watch": watch,
        "teams_drawn": set(task.get("teams_drawn") or []),
    }


@get("/tasks/{task_id:uuid}", guards=[requires(*TASK_READERS)], sync_to_thread=True)
def draw_screen(request: AnyRequest, task_id: FromPath[uuid.UUID]) -> Template:
    """摇号: the task's draw, step by step; ``?watch=1`` (for the projector) follows the steps as others record
    them."""
    watch = request.query_params.get("watch") == "1"
    context = _screen(request, task_id, watch=watch)
    return render(request, "staff/draw.html", f"摇号 {context['task']['number']}", **context)


@get("/tasks/{task_id:uuid}/steps", guards=[requires(*TASK_READERS)], sync_to_thread=True)
def draw_steps(request: AnyRequest, task_id: FromPath[uuid.UUID]) -> Template:
    """The steps alone (htmx swaps them in; the projector's screen asks again every few seconds)."""
    context = _screen(request, task_id, watch=request.query_params.get("watch") == "1")
    return render(request, "staff/_draw_steps.html", "", **context)


def _step(request: AnyRequest, task_id: uuid.UUID, outcome: Outcome, what: str) -> Template:
    position = getattr(outcome.value, "position", None)
    recorded = f"{what}已记录（日志位置 {position}）" if outcome.ok and position is not None else ""
    status = outcome.status if not outcome.ok else 200
    headers = {"Retry-After": str(outcome.retry_after)} if outcome.retry_after is not None else None
    return render(request, "staff/_draw_steps.html", "", status_code=status, headers=headers,
                  **_screen(request, task_id, outcome, recorded))


@post("/tasks/{task_id:uuid}/commitment", guards=[requires(*PLANNERS)], sync_to_thread=True, status_code=200)
def commit_step(request: AnyRequest, task_id: FromPath[uuid.UUID], data: Form) -> Template:
    """Step 1: the server commits to a secret seed and records the declared external entropy source."""
    problems: list[tuple[str, str]] = []
    source = text(data, "entropy_source", max_len=200, required=True, problems=problems)
    rt = _rt(request)
    outcome = Outcome(problems=problems, status=422) if problems else attempt(
        lambda: rt.target_draws.commit(ctx(request), task_id, source))
    return _step(request, task_id, outcome, "承诺值")


@post("/tasks/{task_id:uuid}/shares", guards=[requires(*PLANNERS)], sync_to_thread=True, status_code=200)
def share_step(request: AnyRequest, task_id: FromPath[uuid.UUID], data: Form) -> Template:
    """A joint task: the planner's department commits its seed share (SHA-256), later reveals it."""
    problems: list[tuple[str, str]] = []
    rt = _rt(request)
    department = request.user.department
    if "share" in data:
        share = hex64(data, "share", problems)
        outcome = Outcome(problems=problems, status=422) if problems else attempt(
            lambda: rt.target_draws.reveal_share(ctx(request), task_id, department, share))
        return _step(request, task_id, outcome, "本部门种子份额")
    commitment = hex64(data, "commitment", problems)
    outcome = Outcome(problems=problems, status=422) if problems else attempt(
        lambda: rt.target_draws.commit_share(ctx(request), task_id, department, commitment))
    return _step(request, task_id, outcome, "本部门份额承诺")


@post("/tasks/{task_id:uuid}/freeze", guards=[requires(*PLANNERS)], sync_to_thread=True, status_code=200)
def freeze_step(request: AnyRequest, task_id: FromPath[uuid.UUID]) -> Template:
    """Step 2: the candidate pool as of now, per stratum with its quota."""
    rt = _rt(request)
    return _step(request, task_id, attempt(lambda: rt.target_draws.freeze(ctx(request), task_id, {})), "候选池")


@post("/tasks/{task_id:uuid}/draw", guards=[requires(*PLANNERS)], sync_to_thread=True, status_code=200)
def draw_step(request: AnyRequest, task_id: FromPath[uuid.UUID], data: Form) -> Template:
    """Step 3: the seed revealed, the published entropy mixed in, the targets drawn. Until a signed checkpoint
    covers the freeze the answer is 409 and the screen asks again by itself after Retry-After."""
    problems: list[tuple[str, str]] = []
    entropy = text(data, "external_entropy", max_len=200, required=True, problems=problems)
    source = text(data, "entropy_source", max_len=200, problems=problems)
    rt = _rt(request)
    outcome = Outcome(problems=problems, status=422) if problems else attempt(
        lambda: rt.target_draws.draw_targets(ctx(request), task_id, entropy, source))
    template = _step(request, task_id, outcome, "摇号结果")
    if outcome.retry_after is not None:
        template.context["retry"] = {"external_entropy": entropy, "entropy_source": source,
                                     "seconds": max(1, min(outcome.retry_after, 10))}
    return template


@post("/tasks/{task_id:uuid}/teams", guards=[requires(*PLANNERS)], sync_to_thread=True, status_code=200)
def teams_step(request: AnyRequest, task_id: FromPath[uuid.UUID]) -> Template:
    """Step 4: the planner's department draws its inspectors for every drawn target (随机匹配执法检查人员)."""
    rt = _rt(request)
    department = request.user.department
    outcome = attempt(lambda: rt.teams.draw_inspectors(ctx(request), task_id, department, None))
    return _step(request, task_id, outcome, "检查组")


@get("/tasks/{task_id:uuid}/drawn", guards=[requires(*TASK_READERS)], sync_to_thread=True)
def drawn_page(request: AnyRequest, task_id: FromPath[uuid.UUID]) -> Template:
    """抽取名单 (confidential until the visit): the drawn enterprises with their teams by name, a page at a time
    in the order drawn (the drawn list's cursor)."""
    rt = _rt(request)
    cursor = request.query_params.get("cursor") or None
    if cursor is not None and len(cursor) > 40:
        return render(request, "staff/problem.html", "请求有误", status_code=400, problems=[("cursor", "不是本页给出的翻页标记")])
    outcome = attempt(lambda: rt.teams.drawn_list(request.user, task_id, cursor, 100))
    if not outcome.ok:
        return render(request, "staff/problem.html", "无法显示", status_code=outcome.status, problems=outcome.problems)
    listing = outcome.value
    task = rt.task_opening.task_view(request.user, task_id)
    departments = _departments(request)
    # the teams and the inspectors' names come with the first page only
    first = listing if cursor is None else rt.teams.drawn_list(request.user, task_id, None, 1)
    teams: dict[str, Any] = first.get("teams") or {}
    people: dict[str, dict[str, str]] = first.get("inspectors") or {}
    rows = []
    for visit in listing["visits"]:
        crews = []
        for dept, drawn in sorted(teams.items()):
            team = (drawn.get("teams") or {}).get(visit["target_id"])
            if team:
                names = [people.get(m, {}).get("name") or "（名录中无此人）" for m in team.get("members", [])]
                leader = people.get(team.get("leader", ""), {}).get("name", "")
                crews.append({"department": departments.get(dept, dept), "members": names, "leader": leader})
        rows.append({**visit, "crews": crews})
    return render(request, "staff/drawn.html", f"抽取名单 {task['number']}", task=task, rows=rows,
                  next_cursor=listing.get("next_cursor"), first=cursor is None,
                  dept_names=[departments.get(d, d) for d in task["departments"]])


PAGES = [tasks_page, draw_screen, draw_steps, commit_step, share_step, freeze_step, draw_step, teams_step, drawn_page]
