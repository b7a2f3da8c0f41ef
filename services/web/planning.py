"""Planners' writing pages of the staff console: drawing up the annual plan (年度抽查计划) and its entries (add,
change, re-rule with a reason, withdraw), and opening a task (开启抽查任务) from a plan entry or ad hoc, alone or
joint with other departments. Every form posts with htmx (the CSRF header) to a handler that calls the same use
case as ``/api/v1/plans`` and ``/api/v1/tasks`` (``Plans``, ``TaskOpening``) with the same authorisation; a
refusal answers the form again with every value kept and each problem as ``field（中文名）：rule：message``."""

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from domain.planning.plan import plan_id
from domain.tasks import access
from domain.tasks.overlap import OverlapError
from domain.values import Role
from projections.directory.queries import list_entries
from services.api.common import ctx
from services.web.forms import Outcome, attempt
from services.web.pages import _departments, _rt
from services.web.planner import stratum_name
from services.web.staff import is_htmx, render, requires

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
AnyRequest = Request[Any, Any, Any]
PLANNERS = (Role.PLANNER,)  # only a department's planners plan and open tasks (domain/tasks/access.py)
RULE_ROWS = 4  # sampling-rule rows of the entry form (one per supervision class and risk class needed)
PARTNER_ROWS = 3  # other departments a joint task's form offers
ITEMS_SHOWN = 500  # a department's items listed as check boxes (a county department has dozens)
CLASSES = {"key": "重点监管", "general": "一般监管", "special": "特殊监管"}
RISKS = ("A", "B", "C", "D")
CATEGORIES = {"general": "一般检查事项", "key": "重点检查事项"}
COMBINE = {"either": "任一满足即可（按比例或按人均家次）", "larger": "取两者较大值"}
FIELD_NAMES = {
    "year": "年度", "name": "名称", "items": "抽查事项", "category": "事项类别", "period": "期间", "rules": "抽查比例",
    "scope": "抽查对象范围", "reason": "理由", "number": "条目编号", "plan_entry": "计划条目", "lead": "牵头部门",
    "participants": "参与部门", "options": "选项", "overlaps": "重叠任务", "overlap_reason": "重叠理由",
    "department": "部门", "origin": "任务来源", "supervision_class": "监管类别", "risk_class": "风险等级",
    "min_ratio": "最低比例", "min_per_inspector": "人均最低家次", "combine": "两项要求的关系", "full": "全部抽查",
    "once_a_year": "每年至少一次", "county": "县区", "industries": "行业", "supervision_classes": "监管类别",
    "risk_classes": "风险等级", "tags": "标签", "description": "范围说明", "team_size": "每组人数",
    "plan": "计划", "request": "请求", "actor": "账户", "id": "记录",
}


def label(field: str) -> str:
    """``rules[0].min_ratio`` -> 抽查比例第 1 条 · 最低比例; ``scope.county`` -> 抽查对象范围 · 县区."""
    parts = []
    for part in field.split("."):
        m = re.match(r"^([a-z_]+)(?:\[(\d+)\])?$", part)
        if m is None:
            parts.append(FIELD_NAMES.get(part, part))  # a department code of ``participants.<code>``
            continue
        name = FIELD_NAMES.get(m.group(1), m.group(1))
        parts.append(f"{name}第 {int(m.group(2)) + 1} 条" if m.group(2) is not None else name)
    return " · ".join(parts)


def named(problems: Sequence[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(field, its Chinese name, the rule and message) for the problem list of a form."""
    return [(f, label(f), message) for f, message in problems]


def _values(data: Mapping[str, Any], key: str) -> list[str]:
    value = data.get(key)
    values = value if isinstance(value, list) else [] if value is None else [value]
    return [str(v).strip() for v in values if isinstance(v, str) and str(v).strip()]


def _one(data: Mapping[str, Any], key: str) -> str:
    found = _values(data, key)
    return found[0] if found else ""


def _split(text: str) -> list[str]:
    """A list typed in one field: separated by commas, 、 or spaces."""
    return [p for p in re.split(r"[,，、;；\s]+", text) if p]


def _year(raw: str, problems: list[tuple[str, str]]) -> int:
    if raw.isascii() and raw.isdigit() and len(raw) == 4 and 2000 <= int(raw) <= 2100:
        return int(raw)
    problems.append(("year", "须为 2000 至 2100 之间的四位年份"))
    return 0


def periods(year: int) -> list[tuple[str, str]]:
    """The periods a year offers (value, Chinese label), as the API accepts them."""
    out = [(str(year), f"{year} 年全年"), (f"{year}H1", f"{year} 年上半年"), (f"{year}H2", f"{year} 年下半年")]
    out += [(f"{year}Q{q}", f"{year} 年第 {q} 季度") for q in range(1, 5)]
    out += [(f"{year}-{m:02d}", f"{year} 年 {m} 月") for m in range(1, 13)]
    return out


def _items_of(request: AnyRequest, department: str) -> list[dict[str, Any]]:
    """A department's inspection items (名录库: the directory read model), for check boxes."""
    page = list_entries(_rt(request).engine, "item", {"department": department}, limit=ITEMS_SHOWN)
    return [{"id": str(i["id"]), "name": str(i.get("name") or ""), "code": str(i.get("code") or "")}
            for i in page.items]


def _done(request: AnyRequest, to: str) -> Response[Any]:
    """After a write: htmx loads ``HX-Redirect`` as a whole page; a client without htmx gets a 303."""
    _rt(request).after_write()
    if is_htmx(request):
        return Response("", status_code=200, headers={"HX-Redirect": to})
    return Redirect(to, status_code=303)


# -- the plan ---------------------------------------------------------------------------------------------------

def _rules(data: Mapping[str, Any], problems: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The rule rows of a form as the API's ``rules`` (a row without a supervision class is left out)."""
    rules: list[dict[str, Any]] = []
    for n in range(RULE_ROWS):
        klass = _one(data, f"rule{n}_class")
        if not klass:
            continue
        rule: dict[str, Any] = {"supervision_class": klass, "risk_class": _one(data, f"rule{n}_risk") or None,
                                "combine": _one(data, f"rule{n}_combine") or None,
                                "full": _one(data, f"rule{n}_full") == "on",
                                "once_a_year": _one(data, f"rule{n}_once") == "on"}
        ratio = _one(data, f"rule{n}_ratio")
        if ratio:
            rule["min_ratio"] = ratio
        per = _one(data, f"rule{n}_per_inspector")
        if per:
            if per.isascii() and per.isdigit() and len(per) <= 6:
                rule["min_per_inspector"] = int(per)
            else:
                problems.append((f"rules[{len(rules)}].min_per_inspector", "须为非负整数"))
        rules.append(rule)
    return rules


def _scope(data: Mapping[str, Any]) -> dict[str, Any]:
    return {"county": _one(data, "county"), "description": _one(data, "description"),
            "industries": _split(_one(data, "industries")), "tags": _split(_one(data, "tags")),
            "supervision_classes": _values(data, "supervision_classes"), "risk_classes": _values(data, "risk_classes")}


def _entry_values(data: Mapping[str, Any], problems: list[tuple[str, str]]) -> dict[str, Any]:
    return {"name": _one(data, "name"), "items": _values(data, "items"), "category": _one(data, "category"),
            "period": _one(data, "period"), "scope": _scope(data), "rules": _rules(data, problems)}


def _rule_rows(rules: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = [dict(r) for r in rules][:RULE_ROWS]
    return rows + [{} for _ in range(RULE_ROWS - len(rows))]


def _plan_or_none(request: AnyRequest, pid: uuid.UUID) -> dict[str, Any]:
    return _rt(request).plans.plan_view(request.user, pid, None)


def _entry_form(request: AnyRequest, plan: Mapping[str, Any], values: Mapping[str, Any], *, number: str = "",
                problems: Sequence[tuple[str, str]] = (), status: int = 200, removal: str = "",
                reason: str = "") -> Template:
    """The form of a new entry (``number`` empty) or of an existing one (its change, its rules, its removal)."""
    title = f"修改计划条目 {number}" if number else "新增计划条目"
    return render(request, "staff/plan_entry.html", title, status_code=status, plan=plan, number=number,
                  values=values, rule_list=_rule_rows(values.get("rules") or []), problems=named(problems),
                  items=_items_of(request, plan["department"]), periods=periods(plan["year"]), classes=CLASSES,
                  risks=RISKS, categories=CATEGORIES, combine=COMBINE, removal=removal, reason=reason,
                  department_name=_departments(request).get(plan["department"], plan["department"]))


@post("/plans", guards=[requires(*PLANNERS)], sync_to_thread=True, status_code=200)
def create_plan(request: AnyRequest, data: Form) -> Response[Any] | Template:
    """制定年度计划: one plan per department and year (``Plans.draw_up_plan``; 409 when it exists)."""
    problems: list[tuple[str, str]] = []
    year = _year(_one(data, "year"), problems)
    name = _one(data, "name")
    if len(name) > 200:
        problems.append(("name", "不超过 200 个字"))
    if problems:
        return render(request, "staff/problem.html", "无法制定计划", status_code=422, problems=problems)
    rt = _rt(request)
    outcome = attempt(lambda: rt.plans.draw_up_plan(ctx(request), request.user.department, year, name or None))
    if not outcome.ok:
        return render(request, "staff/problem.html", "无法制定计划", status_code=outcome.status,
                      problems=[(f, f"{label(f)}：{m}") for f, m in outcome.problems])
    return _done(request, f"/staff/plans?year={year}")


@get("/plans/{plan_id:uuid}/entries/new", guards=[requires(*PLANNERS)], sync_to_thread=True)
def new_entry(request: AnyRequest, plan_id: FromPath[uuid.UUID]) -> Template:
    """新增计划条目: the form."""
    plan = _plan_or_none(request, plan_id)
    access.require_plan(request.user, plan["department"])  # the use case's rule, before a form is shown
    today = _rt(request).clock.today()
    return _entry_form(request, plan, {"period": f"{plan['year']}Q{(today.month - 1) // 3 + 1}"
                                       if plan["year"] == today.year else f"{plan['year']}Q1",
                                       "category": "general", "rules": [{"supervision_class": "key", "min_ratio": "25%"}]})


@post("/plans/{plan_id:uuid}/entries", guards=[requires(*PLANNERS)], sync_to_thread=True, status_code=200)
def add_entry(request: AnyRequest, plan_id: FromPath[uuid.UUID], data: Form) -> Response[Any] | Template:
    """Adds the entry (``Plans.add_plan_entry``), then to the plan with its quotas and breaches."""
    problems: list[tuple[str, str]] = []
    values = _entry_values(data, problems)
    rt = _rt(request)
    plan = _plan_or_none(request, plan_id)
    outcome = Outcome(problems=problems, status=422) if problems else attempt(
        lambda: rt.plans.add_plan_entry(ctx(request), plan_id, values))
    if not outcome.ok:
        return _entry_form(request, plan, values, problems=outcome.problems, status=outcome.status)
    return _done(request, f"/staff/plans?year={plan['year']}#entry-{outcome.value.body['number']}")


def _entry_of(plan: Mapping[str, Any], number: str) -> dict[str, Any] | None:
    return next((e for e in plan["entries"] if e["number"] == number), None)


@get("/plans/{plan_id:uuid}/entries/{number:str}", guards=[requires(*PLANNERS)], sync_to_thread=True)
def edit_entry(request: AnyRequest, plan_id: FromPath[uuid.UUID], number: FromPath[str]) -> Template:
    """修改计划条目: its fields, its ratios (with a reason) and its withdrawal (with a reason)."""
    plan = _plan_or_none(request, plan_id)
    access.require_plan(request.user, plan["department"])
    entry = _entry_of(plan, number)
    if entry is None:
        return render(request, "staff/problem.html", "未找到", status_code=404,
                      problems=[("number", f"计划中没有现行条目 {number}（可能已移除）")])
    return _entry_form(request, plan, entry, number=number)


@post("/plans/{plan_id:uuid}/entries/{number:str}", guards=[requires(*PLANNERS)], sync_to_thread=True,
      status_code=200)
def change_entry(request: AnyRequest, plan_id: FromPath[uuid.UUID], number: FromPath[str],
                 data: Form) -> Response[Any] | Template:
    """Changes name, items, category, period and scope (``Plans.change_plan_entry``); ratios change apart."""
    problems: list[tuple[str, str]] = []
    values = _entry_values(data, problems)
    changes = {k: values[k] for k in ("name", "items", "category", "period", "scope")}
    rt = _rt(request)
    plan = _plan_or_none(request, plan_id)
    outcome = attempt(lambda: rt.plans.change_plan_entry(ctx(request), plan_id, number, changes))
    if not outcome.ok:
        return _entry_form(request, plan, values, number=number, problems=outcome.problems, status=outcome.status)
    return _done(request, f"/staff/plans?year={plan['year']}#entry-{number}")


@post("/plans/{plan_id:uuid}/entries/{number:str}/rules", guards=[requires(*PLANNERS)], sync_to_thread=True,
      status_code=200)
def adjust_rules(request: AnyRequest, plan_id: FromPath[uuid.UUID], number: FromPath[str],
                 data: Form) -> Response[Any] | Template:
    """适时调整比例: the entry's rules replaced, with the reason (``Plans.adjust_plan_rules``)."""
    problems: list[tuple[str, str]] = []
    rules = _rules(data, problems)
    reason = _one(data, "reason")
    rt = _rt(request)
    plan = _plan_or_none(request, plan_id)
    outcome = Outcome(problems=problems, status=422) if problems else attempt(
        lambda: rt.plans.adjust_plan_rules(ctx(request), plan_id, number, rules, reason))
    if not outcome.ok:
        entry = _entry_of(plan, number) or {}
        return _entry_form(request, plan, {**entry, "rules": rules}, number=number, problems=outcome.problems,
                           status=outcome.status, reason=reason)
    return _done(request, f"/staff/plans?year={plan['year']}#entry-{number}")


@post("/plans/{plan_id:uuid}/entries/{number:str}/removal", guards=[requires(*PLANNERS)], sync_to_thread=True,
      status_code=200)
def remove_entry(request: AnyRequest, plan_id: FromPath[uuid.UUID], number: FromPath[str],
                 data: Form) -> Response[Any] | Template:
    """移除计划条目 with a reason (``Plans.remove_plan_entry``): 409 once a task of it has published results."""
    reason = _one(data, "removal_reason")
    rt = _rt(request)
    plan = _plan_or_none(request, plan_id)
    outcome = attempt(lambda: rt.plans.remove_plan_entry(ctx(request), plan_id, number, reason))
    if not outcome.ok:
        problems = [("removal_reason" if f == "reason" else f, m) for f, m in outcome.problems]
        if outcome.status == 409:
            problems = [("number", f"已有依此条目开展并公示结果的任务，条目须保留在计划中（可修改）：{m}")
                        for _, m in outcome.problems]
        entry = _entry_of(plan, number)
        if entry is None:
            return render(request, "staff/problem.html", "无法移除", status_code=outcome.status,
                          problems=[(f, f"{label(f)}：{m}") for f, m in problems])
        return _entry_form(request, plan, entry, number=number, problems=problems, status=outcome.status,
                           removal=reason)
    return _done(request, f"/staff/plans?year={plan['year']}")


# -- opening a task ---------------------------------------------------------------------------------------------

def _task_form(request: AnyRequest, values: Mapping[str, Any], *, problems: Sequence[tuple[str, str]] = (),
               status: int = 200, overlapping: Sequence[Mapping[str, str]] = ()) -> Template:
    """开启抽查任务: from a plan entry (its terms shown) or ad hoc (the terms to give)."""
    rt = _rt(request)
    mine = request.user.department
    departments = _departments(request)
    entry: dict[str, Any] | None = None
    number = str(values.get("plan_entry") or "")
    if number:
        year = int(number[:4]) if number[:4].isdigit() else 0
        try:
            plan = rt.plans.plan_view(request.user, plan_id(mine, year), None)
            entry = _entry_of(plan, number)
        except Exception:  # noqa: BLE001 - an unknown plan or entry: the form says so, the use case refuses it
            entry = None
    year = int(number[:4]) if entry else rt.clock.today().year
    partners = [(values.get("partners") or [])[n] if n < len(values.get("partners") or []) else {}
                for n in range(PARTNER_ROWS)]
    for p in partners:
        p["choices"] = _items_of(request, p["department"]) if p.get("department") else []
    return render(request, "staff/task_open.html", "开启抽查任务", status_code=status, values=values, entry=entry,
                  number=number, problems=named(problems), items=_items_of(request, mine), partners=partners,
                  departments={c: n for c, n in departments.items() if c != mine}, periods=periods(year)
                  + (periods(year + 1) if not entry else []), classes=CLASSES, risks=RISKS, categories=CATEGORIES,
                  combine=COMBINE, rule_list=_rule_rows(values.get("rules") or []), overlapping=overlapping,
                  my_department=departments.get(mine, mine), stratum_name=stratum_name)


@get("/tasks/new", guards=[requires(*PLANNERS)], sync_to_thread=True)
def new_task(request: AnyRequest) -> Template:
    """The form: ``?plan_entry=2024001`` opens from that entry, without it ad hoc (专项, with a reason)."""
    number = request.query_params.get("plan_entry", "")
    if number and not re.match(r"^\d{7}$", number):
        return render(request, "staff/problem.html", "请求有误", status_code=400,
                      problems=[("plan_entry", "须为计划条目编号（如 2024001）")])
    return _task_form(request, {"plan_entry": number, "team_size": "2", "exclude_previous_inspectors": True})


@get("/tasks/new/items", guards=[requires(*PLANNERS)], sync_to_thread=True)
def partner_items(request: AnyRequest) -> Template:
    """A partner department's items as check boxes (htmx swaps them into the joint task's row)."""
    row = request.query_params.get("row", "0")
    if not (row.isascii() and row.isdigit() and int(row) < PARTNER_ROWS):
        return render(request, "staff/problem.html", "请求有误", status_code=400, problems=[("row", "须为 0 至 2")])
    department = request.query_params.get(f"partner{row}", "")
    if department and department not in _departments(request):
        return render(request, "staff/problem.html", "请求有误", status_code=400,
                      problems=[("department", "须为列表中的部门")])
    choices = _items_of(request, department) if department else []
    return render(request, "staff/_partner_items.html", "", row=int(row), choices=choices, chosen=[])


def _task_values(data: Mapping[str, Any], problems: list[tuple[str, str]]) -> dict[str, Any]:
    """The form's fields, kept for the form again, and the API's request body."""
    values: dict[str, Any] = {
        "plan_entry": _one(data, "plan_entry"), "reason": _one(data, "reason"), "period": _one(data, "period"),
        "category": _one(data, "category"), "items": _values(data, "items"), "scope": _scope(data),
        "rules": _rules(data, problems), "team_size": _one(data, "team_size") or "2",
        "exclude_previous_inspectors": _one(data, "exclude_previous_inspectors") == "on",
        "match_region": _one(data, "match_region") == "on", "overlaps": _values(data, "overlaps"),
        "overlap_reason": _one(data, "overlap_reason"),
        "partners": [{"department": _one(data, f"partner{n}"), "items": _values(data, f"partner{n}_items")}
                     for n in range(PARTNER_ROWS)],
    }
    return values


def _task_body(request: AnyRequest, values: Mapping[str, Any], problems: list[tuple[str, str]]) -> dict[str, Any]:
    team_size = str(values["team_size"])
    options: dict[str, Any] = {"exclude_previous_inspectors": values["exclude_previous_inspectors"],
                               "match_region": values["match_region"]}
    if team_size.isascii() and team_size.isdigit() and len(team_size) <= 2:
        options["team_size"] = int(team_size)
    else:
        problems.append(("options.team_size", "须为整数"))
    participants: dict[str, list[str]] = {}
    for n, p in enumerate(values["partners"]):
        if p["department"]:
            if p["department"] == request.user.department:
                problems.append((f"partner{n}", "参与部门不能是本部门（本部门总是参与）"))
            participants[p["department"]] = list(p["items"])
    body: dict[str, Any] = {"options": options}
    if values["plan_entry"]:
        body["plan_entry"] = values["plan_entry"]
        if values["period"]:
            body["period"] = values["period"]
        if values["items"]:
            participants[request.user.department] = list(values["items"])
    else:
        participants[request.user.department] = list(values["items"])
        body.update({"reason": values["reason"], "period": values["period"], "category": values["category"] or None,
                     "scope": values["scope"], "rules": values["rules"] or None})
        if not values["reason"]:
            problems.append(("reason", "专项（计划外）任务必须写明理由"))
    if participants:
        body["participants"] = participants
    if values["overlaps"]:
        body["overlaps"] = values["overlaps"]
        body["overlap_reason"] = values["overlap_reason"]
    return {k: v for k, v in body.items() if v is not None}


@post("/tasks", guards=[requires(*PLANNERS)], sync_to_thread=True, status_code=200)
def open_task(request: AnyRequest, data: Form) -> Response[Any] | Template:
    """Opens the task (``TaskOpening.open_task``), then to its draw screen. An overlap with current random tasks
    not declared is refused (409): the form lists them to declare, with a reason."""
    problems: list[tuple[str, str]] = []
    values = _task_values(data, problems)
    body = _task_body(request, values, problems)
    if problems:
        return _task_form(request, values, problems=problems, status=422)
    rt = _rt(request)
    overlapping: list[dict[str, str]] = []

    def run() -> Any:
        try:
            return rt.task_opening.open_task(ctx(request), body)
        except OverlapError as exc:
            overlapping.extend({"id": str(f.id), "number": f.number, "name": f.name, "period": str(f.period)}
                               for f in exc.undeclared)
            raise

    outcome = attempt(run)
    if overlapping:
        return _task_form(request, values, status=409, overlapping=overlapping, problems=[(
            "overlaps", "与现行的随机抽查任务在期间、部门、事项和范围上重叠：勾选下列每项并写明理由后再开启，"
                        "或撤回并重抽原任务")])
    if not outcome.ok:
        return _task_form(request, values, problems=outcome.problems, status=outcome.status)
    return _done(request, f"/staff/tasks/{outcome.value.id}")


PAGES = [create_plan, new_entry, add_entry, edit_entry, change_entry, adjust_rules, remove_entry, new_task,
         partner_items, open_task]
