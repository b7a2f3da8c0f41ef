"""Staff pages for inspectors on a phone (``/staff/visits``: their visits, the pre-visit notice, the findings form
with photos) and for reviewers (``/staff/review``: the queue, return or approve, publish, push state).

Every page reads and writes through the use cases the API uses (Teams, Notices, Inspections, Evidence, Lookups):
the same rules refuse the same people (谁检查、谁录入; no review of one's own findings); a page only chooses what to
show and says a refusal in Chinese, naming the field. The pages live in the staff frame (``services.web.staff``:
login, role guards, ``staff/base.html``); htmx sends their forms with the session's ``X-CSRF-Token``."""

import datetime as dt
import itertools
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, BinaryIO, cast

from litestar import Request, Response, Router, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Stream, Template

from domain.access import Actor, is_among
from domain.errors import DomainError, FieldProblem, InvalidInputError, PermissionDeniedError
from domain.execution.inspection import (
    CONFIDENTIAL_FIELDS,
    EDITABLE,
    MAX_MEASURES,
    Inspection,
    ReviewState,
    inspection_id,
)
from domain.execution.vocabulary import DEFAULT_RESULT_CODES, INSPECTION_METHOD_LABELS, MEASURE_LABELS
from domain.tasks.assignment import Assignment
from domain.tasks.task import Task, TaskStateError
from domain.text import control_character, normalise_newlines
from domain.values import Role
from services.api.common import ctx
from services.application import ConflictError, NotFoundError
from services.runtime import Runtime
from services.web.pages import _rt
from services.web.staff import is_htmx, render, requires, staff_router

AnyRequest = Request[Actor, Any, Any]
MultiPart = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]

RESULTS = {c.code: c.wording for c in DEFAULT_RESULT_CODES}
PROBLEM_FOUND = {c.code for c in DEFAULT_RESULT_CODES if c.problem_found}
STATE_LABELS = {
    ReviewState.NOT_ENTERED.value: "未录入", ReviewState.ENTERED.value: "已录入",
    ReviewState.AWAITING_REVIEW.value: "待审核",
    ReviewState.RETURNED.value: "已退回", ReviewState.APPROVED.value: "已批准，待公示",
    ReviewState.PUBLISHED.value: "已公示",
}
VISIT_STATE_LABELS = {"awaiting_teams": "待组队", "dispatched": "已派发", "in_progress": "检查中",
                      "published": "已公示", "merged": "已合并", "cancelled": "已取消"}
PUSH_LABELS = {"pending": "待推送", "pushed": "已推送", "failed": "推送失败", "confirmed": "已确认"}
CHANNEL_LABELS = {"data_push": "数据归集（接口推送）", "manual_entry": "信息填报（手工录入）"}
QUEUES = {"awaiting_review": "待审核", "approved": "待公示", "published": "已公示"}
MAX_MEASURES_SHOWN = MAX_MEASURES  # measure rows of an item: those recorded and one empty, at most this many
QUEUE_PAGE = 20
OTHER_VISITS = 20  # visits shown besides this week's (the nearest first)
IMAGE_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


# -- plumbing ---------------------------------------------------------------------------------------------------

def _page(request: AnyRequest, name: str, title: str, status: int = 200, **context: Any) -> Template:
    """A page in the staff frame (staff/base.html: the person, the navigation, the CSRF token htmx sends)."""
    return render(request, name, title, status_code=status, **context)


def _refused(request: AnyRequest, why: str, status: int = 403, title: str = "无权访问") -> Template:
    return _page(request, "staff/field_refused.html", title, status, why=why)


INSPECTORS = [requires(Role.INSPECTOR)]
REVIEWERS = [requires(Role.REVIEWER, Role.ADMIN)]


def _uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def _texts(data: Mapping[str, Any], key: str) -> list[str]:
    """Every text value a form sent under ``key`` (a repeated field comes as a list)."""
    value = data.get(key)
    values = value if isinstance(value, list) else [] if value is None else [value]
    return [v for v in values if isinstance(v, str)]


def _text(data: Mapping[str, Any], key: str) -> str:
    found = _texts(data, key)
    return normalise_newlines(found[0]).strip() if found else ""


def _files(data: Mapping[str, Any], key: str) -> list[UploadFile]:
    """The files a form sent under ``key``; an empty file input sends a part without a name: skipped."""
    value = data.get(key)
    values = value if isinstance(value, list) else [] if value is None else [value]
    return [f for f in values if isinstance(f, UploadFile) and f.filename]


def _wait(rt: Runtime, raw: str | None) -> None:
    """Read your writes after a redirect: briefly wait for the execution read model to reach ``min_position``."""
    if raw and raw.isascii() and raw.isdigit() and len(raw) < 19:
        position = int(raw)
        # a position never written is not waited for (it would hold a worker thread for nothing)
        if position <= rt.runner.head():
            rt.runner.wait_for(position, timeout=3.0, names=["execution"])


def _done(request: AnyRequest, to: str, position: int | None) -> Response[Any]:
    """After a write: to the page showing it (htmx loads ``HX-Redirect`` as a whole page; others get a 303),
    with the write's position so a listing waits for its read model."""
    _rt(request).after_write()
    sep = "&" if "?" in to else "?"
    target = f"{to}{sep}min_position={position}" if position is not None else to
    if is_htmx(request):
        return Response("", status_code=200, headers={"HX-Redirect": target})
    return Redirect(target, status_code=303)


# -- problems in Chinese ----------------------------------------------------------------------------------------
RULES = {
    "required": "必须填写", "not_future": "不得晚于今天", "after_inspection": "不得早于检查日期",
    "after_approval": "不得早于批准日期", "format": "格式不正确（日期请写作 2024-09-18）",
    "choice": "请从列表中选择", "max_length": "内容过长", "max_items": "数量过多", "type": "格式不正确",
    "unknown_evidence": "文件未找到，请重新选择", "min_size": "文件为空", "max_size": "文件过大",
    "media_type": "文件类型不允许或内容与类型不符（可上传照片 JPEG/PNG、PDF、视频、Word、Excel 等）",
    "control_character": "不得含控制字符", "transition": "当前状态下不能执行此操作",
    "unknown_item": "不是本次检查的事项", "range": "超出允许范围",
}
FIELD_LABELS = {"inspected_on": "检查日期", "methods": "检查方式", "findings": "检查结果", "reason": "退回理由",
                "approved_on": "批准日期", "published_on": "公示日期", "state": "状态", "on": "日期",
                "channel": "推送方式", "reference": "回执编号", "action": "操作"}
PART_LABELS = {"result": "检查结果", "description": "问题描述", "measures": "处理措施", "evidence": "照片和附件",
               "confidential": "保密", "kind": "措施", "deadline": "整改期限", "note": "说明",
               "photos": "现场照片", "files": "其他附件", "size": "大小", "media_type": "类型",
               "name": "文件名", "sha256": "文件"}
_PATH = re.compile(r"^findings\.([^.\[]+)(?:\.(\w+))?(?:\[(\d+)\])?(?:\.(\w+))?$")


def field_label(path: str, item_names: Mapping[str, str]) -> str:
    """A problem's field in Chinese: ``findings.<item>.measures[0].deadline`` -> 「事项名」处理措施 1 · 整改期限."""
    m = _PATH.match(path)
    if not m:
        return FIELD_LABELS.get(path, path)
    item, part, index, sub = m.groups()
    out = f"「{item_names.get(item, item)}」"
    if part:
        out += PART_LABELS.get(part, part)
    if index is not None:
        out += f" {int(index) + 1}"
    if sub:
        out += " · " + PART_LABELS.get(sub, sub)
    return out


def rule_text(p: FieldProblem) -> str:
    """A problem's rule in Chinese (a few say more than the rule's name)."""
    if p.rule == "before_task":
        day = re.search(r"\d{4}-\d{2}-\d{2}", p.message)
        return f"不得早于 {day.group(0)}（任务开始日期或线索收到日期）" if day else "不得早于任务开始日期"
    if p.rule == "required" and p.field.endswith(".description"):
        return "发现问题时必须填写问题描述"
    if p.rule == "required" and p.field.endswith(".deadline"):
        return "责令改正必须填写整改期限"
    if p.rule == "required" and p.field == "methods":
        return "至少选择一种检查方式"
    if p.rule == "required" and p.field == "findings":
        return "至少填写一个事项的检查结果"
    if p.rule == "incomplete":
        return "尚有事项未填写检查结果，不能提交审核"
    return RULES.get(p.rule, f"不符合规则（{p.rule}）")


def anchor_of(path: str, blocks: Mapping[str, int], ids: Mapping[str, str]) -> str:
    """The id of the form control a problem is about (the problem links to it), "" when there is none:
    ``findings.<item>.measures[0].deadline`` -> ``f1-m0-deadline`` (``blocks``: item id -> its block's number)."""
    m = _PATH.match(path)
    if not m:
        return ids.get(path, "")
    item, part, index, sub = m.groups()
    if item not in blocks:
        return ""
    n = blocks[item]
    if part == "measures" and index is not None and sub in ("kind", "deadline", "note"):
        return f"f{n}-m{index}-{sub}"
    if part == "evidence":
        return f"f{n}-photos"
    return f"f{n}-{part}" if part in ("result", "description", "photos", "files", "confidential") else ""


def problems_zh(problems: Iterable[FieldProblem], item_names: Mapping[str, str],
                labels: Mapping[str, str] | None = None, blocks: Mapping[str, int] | None = None,
                ids: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """Each problem as ``{field, label, rule, text, anchor}`` in Chinese (``labels``: a form's own names of
    fields; ``blocks`` and ``ids``: where its controls are, for the link to each)."""
    return [{"field": p.field, "label": (labels or {}).get(p.field) or field_label(p.field, item_names),
             "rule": p.rule, "text": rule_text(p), "anchor": anchor_of(p.field, blocks or {}, ids or {})}
            for p in problems]


def _reason_zh(exc: PermissionDeniedError, doing: str) -> str:
    """A refusal of the use case in Chinese (the domain's message is English and names ids)."""
    text = str(exc)
    if "own findings" in text:
        return f"您是该检查组成员，不能{doing}（不得审核本人参与检查的结果）。"
    if "team" in text or "谁检查" in text:
        return f"您不在本次检查本部门的检查组中，不能{doing}（谁检查、谁录入）。"
    return f"您的角色或部门不能{doing}。"


# -- names ------------------------------------------------------------------------------------------------------
def _people(rt: Runtime, ids: Iterable[str]) -> dict[str, str]:
    """Entry id -> name of each inspector (Lookups.people, batched by id)."""
    wanted = list(dict.fromkeys(ids))
    found = rt.lookups.people(wanted)
    return {i: found.get(i, {}).get("name") or "（人员已不在名录）" for i in wanted}


def _task_label(task: Task | None) -> str:
    return f"{task.number} {task.name}" if task is not None else "（任务）"


def _week(today: dt.date) -> tuple[dt.date, dt.date]:
    monday = today - dt.timedelta(days=today.weekday())
    return monday, monday + dt.timedelta(days=6)


def _visit_rows(rt: Runtime, actor: Actor, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The visits with names: enterprise, address, task, the department's items and team, date and state."""
    if not rows:
        return []
    visits = rt.teams.load_many(Assignment, [uuid.UUID(str(r["id"])) for r in rows])
    tasks = rt.teams.load_many(Task, {uuid.UUID(str(r["task_id"])) for r in rows})
    targets = rt.lookups.target_data([str(r["target_id"]) for r in rows])
    dept = actor.department
    item_ids = [i for a in visits.values() for i in a.items.get(dept, [])]
    items = rt.lookups.items(item_ids)
    members = [m for a in visits.values() for m in (a.teams.get(dept) or {}).get("members", [])]
    names = _people(rt, members)
    out = []
    for r in rows:
        a = visits.get(uuid.UUID(str(r["id"])))
        if a is None:
            continue
        target = targets.get(a.target_id, {})
        team = a.teams.get(dept) or {}
        out.append({
            "id": str(a.id), "date": a.visit_date or "", "target_name": target.get("name") or "（检查对象）",
            "address": target.get("address") or "", "credit_code": target.get("credit_code") or "",
            "task": _task_label(tasks.get(uuid.UUID(str(r["task_id"])))),
            "item_names": [items.get(i, {}).get("name") or i for i in a.items.get(dept, [])],
            "team": [names[m] + ("（组长）" if m == team.get("leader") else "") for m in team.get("members", [])],
            "state": VISIT_STATE_LABELS.get(str(r.get("state")), str(r.get("state"))),
        })
    return out


# -- inspectors: their visits -----------------------------------------------------------------------------------
@get("/visits", guards=INSPECTORS, include_in_schema=False, sync_to_thread=True)
def visits_page(request: AnyRequest) -> Template:
    """今天和本周的检查: the visits the inspector is on (teams.my_assignments, as GET /assignments/mine)."""
    rt = _rt(request)
    today = rt.clock.today()
    monday, sunday = _week(today)
    mine = [r for r in rt.teams.my_assignments(request.user) if r.get("state") not in ("merged", "cancelled")]
    on_day = [r for r in mine if r.get("visit_date") == today.isoformat()]
    in_week = [r for r in mine if r.get("visit_date") and monday.isoformat() <= str(r["visit_date"]) <= sunday.isoformat()
               and r.get("visit_date") != today.isoformat()]
    others = sorted((r for r in mine if r not in on_day and r not in in_week),
                    key=lambda r: abs((dt.date.fromisoformat(str(r.get("visit_date") or today)) - today).days))
    sections = [("today", f"今天（{today.isoformat()}）", _visit_rows(rt, request.user, on_day)),
                ("week", f"本周（{monday.isoformat()} 至 {sunday.isoformat()}）", _visit_rows(rt, request.user, in_week)),
                ("other", "其他日期", _visit_rows(rt, request.user, others[:OTHER_VISITS]))]
    return _page(request, "staff/field_visits.html", "我的检查", sections=sections,
                 more=max(0, len(others) - OTHER_VISITS))


def _visit(rt: Runtime, actor: Actor, aid: uuid.UUID) -> dict[str, Any]:
    """One visit with names (teams.assignment_view decides who may see it)."""
    view = rt.teams.assignment_view(actor, aid)
    row = {"id": str(aid), "task_id": str(view["tasks"][0]["task_id"]), "target_id": view["target_id"],
           "state": view["state"]}
    rows = _visit_rows(rt, actor, [row])
    return {**view, **rows[0]} if rows else view


def _own_inspection(rt: Runtime, actor: Actor, aid: uuid.UUID) -> dict[str, Any] | None:
    """The actor's department's inspection of the visit, read from its aggregate (None before it is opened)."""
    try:
        return rt.inspections.inspection_view(actor, inspection_id(aid, actor.department))
    except NotFoundError:
        return None


@get("/visits/{assignment_id:str}", guards=INSPECTORS, include_in_schema=False, sync_to_thread=True)
def visit_page(request: AnyRequest, assignment_id: FromPath[str]) -> Template:
    """A visit: enterprise, items, team, the pre-visit notice (一次告知) and this department's findings."""
    aid = _uuid(assignment_id)
    if aid is None:
        return _refused(request, "没有这次检查。", 404, "未找到")
    rt = _rt(request)
    try:
        visit = _visit(rt, request.user, aid)
        notice = rt.notices.pre_visit_notice(request.user, aid, {})
        notices = rt.notices.notices_view(request.user, aid)
    except NotFoundError:
        return _refused(request, "没有这次检查。", 404, "未找到")
    except PermissionDeniedError:
        return _refused(request, "您不在这次检查的检查组中，不能查看。")
    insp = _own_inspection(rt, request.user, aid)
    items = rt.lookups.items(visit["items"].get(request.user.department, []))
    findings = _finding_rows(insp, items) if insp else []
    return _page(request, "staff/field_visit.html", visit["target_name"], visit=visit, notice=notice,
                 issued=notices.get("pre_visit"), insp=insp, findings=findings,
                 state_label=STATE_LABELS.get(insp["state"] if insp else "not_entered", ""),
                 editable=(insp is None or insp["state"] in EDITABLE),
                 returned=_last_return(insp))


def _last_return(insp: Mapping[str, Any] | None) -> str:
    for h in reversed((insp or {}).get("history") or []):
        if isinstance(h, Mapping) and h.get("reason"):
            return str(h["reason"])
    return ""


def _finding_rows(insp: Mapping[str, Any], items: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """An inspection's findings for display: item name, result wording, description, measures, files."""
    out = []
    for f in insp.get("findings") or []:
        out.append({**f, "item_name": items.get(f.get("item", ""), {}).get("name") or f.get("item", ""),
                    "result_text": f.get("result_wording") or RESULTS.get(f.get("result", ""), ""),
                    "confidential_text": "、".join(PART_LABELS[c] for c in f.get("confidential") or []
                                                   if c in PART_LABELS)})
    return out


# -- inspectors: the findings form ------------------------------------------------------------------------------
def _form_items(rt: Runtime, actor: Actor, aid: uuid.UUID) -> tuple[dict[str, Any], list[dict[str, Any]],
                                                                    dict[str, Any] | None]:
    """The visit, its items for the actor's department (with what was recorded) and the inspection if opened."""
    visit = _visit(rt, actor, aid)
    ids = visit["items"].get(actor.department, [])
    items = rt.lookups.items(ids)
    insp = _own_inspection(rt, actor, aid)
    recorded = {f["item"]: f for f in (insp or {}).get("findings") or []}
    rows = []
    for n, i in enumerate(ids):
        f = recorded.get(i, {})
        measures = list(f.get("measures") or [])
        rows.append({"n": n, "id": i, "name": items.get(i, {}).get("name") or i, "result": f.get("result", ""),
                     "description": f.get("description", ""), "confidential": bool(f.get("confidential")),
                     "evidence": list(f.get("evidence") or []),
                     "measures": [*measures[:MAX_MEASURES_SHOWN - 1], {}]})
    return visit, rows, insp


def _form_context(request: AnyRequest, visit: Mapping[str, Any], rows: list[dict[str, Any]],
                  insp: Mapping[str, Any] | None, **extra: Any) -> dict[str, Any]:
    today = _rt(request).clock.today().isoformat()
    return {"visit": visit, "rows": rows, "insp": insp, "results": RESULTS, "measures": MEASURE_LABELS,
            "methods": INSPECTION_METHOD_LABELS, "problem_found": sorted(PROBLEM_FOUND),
            "inspected_on": (insp or {}).get("inspected_on") or today,
            "chosen_methods": (insp or {}).get("methods") or ["on_site"], "today": today,
            "max_mb": _rt(request).settings.max_upload_bytes // (1024 * 1024), **extra}


def _team_form(request: AnyRequest, assignment_id: str) -> Template | tuple[
        uuid.UUID, dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]:
    """The visit, its form rows and inspection for a member of the department's team on it; else the refusal
    page (谁检查、谁录入: checked before anything is read further or any file stored; the use cases check it too)."""
    aid = _uuid(assignment_id)
    if aid is None:
        return _refused(request, "没有这次检查。", 404, "未找到")
    rt = _rt(request)
    try:
        visit, rows, insp = _form_items(rt, request.user, aid)
    except NotFoundError:
        return _refused(request, "没有这次检查。", 404, "未找到")
    except PermissionDeniedError:
        return _refused(request, "您不在这次检查的检查组中，不能录入（谁检查、谁录入）。")
    team = (visit.get("teams") or {}).get(request.user.department) or {}
    if not is_among(rt.lookups.as_inspector(request.user), team.get("members", [])):
        return _refused(request, "您不在这次检查本部门的检查组中，不能录入（谁检查、谁录入）。")
    return aid, visit, rows, insp


@get("/visits/{assignment_id:str}/findings", guards=INSPECTORS, include_in_schema=False, sync_to_thread=True)
def findings_form(request: AnyRequest, assignment_id: FromPath[str]) -> Template:
    """The findings form: one block per item of the department (result, description, measures, deadline,
    confidential flag, photos from the camera and files)."""
    found = _team_form(request, assignment_id)
    if isinstance(found, Template):
        return found
    _, visit, rows, insp = found
    if insp is not None and insp["state"] not in EDITABLE:
        return _refused(request, f"检查结果{STATE_LABELS.get(insp['state'], '')}，不能再修改。", 409, "不能修改")
    return _page(request, "staff/field_findings.html", "录入检查结果",
                 **_form_context(request, visit, rows, insp, problems=[]))


def _refs(values: Iterable[str]) -> list[dict[str, Any]]:
    """Evidence kept from before (the form carries each as the JSON of its reference)."""
    out = []
    for v in values:
        try:
            ref = json.loads(v)
        except ValueError:
            continue
        if isinstance(ref, dict):
            out.append({k: ref.get(k) for k in ("sha256", "size", "name", "media_type")})
    return out


def _parse_findings(data: Mapping[str, Any], rows: Sequence[Mapping[str, Any]],
                    problems: list[FieldProblem]) -> dict[str, dict[str, Any]]:
    """The form's blocks as the findings a use case takes (item id -> finding); an item without a result is left
    out (entered later). Free texts pass the one control-character rule of every text that enters."""
    findings: dict[str, dict[str, Any]] = {}
    for row in rows:
        n, item = row["n"], row["id"]
        result = _text(data, f"f{n}.result")
        description = _text(data, f"f{n}.description")
        measures = []
        for j in range(MAX_MEASURES_SHOWN):
            kind = _text(data, f"f{n}.m{j}.kind")
            if not kind:
                continue
            measure: dict[str, Any] = {"kind": kind, "deadline": _text(data, f"f{n}.m{j}.deadline") or None}
            note = _text(data, f"f{n}.m{j}.note")
            if note:
                measure["note"] = note
            measures.append(measure)
        for key, value in [("description", description), *[(f"measures[{j}].note", m.get("note") or "")
                                                          for j, m in enumerate(measures)]]:
            if control_character(value):
                problems.append(FieldProblem(f"findings.{item}.{key}", "control_character", "control character"))
        if not result:
            continue
        finding: dict[str, Any] = {"result": result, "measures": measures,
                                   "evidence": _refs(_texts(data, f"f{n}.keep"))}
        if description:
            finding["description"] = description
        if _text(data, f"f{n}.confidential"):
            finding["confidential"] = list(CONFIDENTIAL_FIELDS)
        findings[item] = finding
    return findings


@post("/visits/{assignment_id:str}/findings", guards=INSPECTORS, include_in_schema=False, sync_to_thread=True, status_code=303)
def save_findings(request: AnyRequest, assignment_id: FromPath[str], data: MultiPart) -> Template | Response[Any]:
    """Save the form (Inspections.record_findings, photos first through Evidence.upload_evidence); with
    ``action=submit`` also hand it to review (Inspections.submit). Bad input: the form again (400 or the use case's 422), in Chinese."""
    found = _team_form(request, assignment_id)
    if isinstance(found, Template):
        return found
    aid, visit, rows, insp = found
    rt, actor = _rt(request), request.user
    dept = actor.department
    names = {r["id"]: r["name"] for r in rows}
    problems: list[FieldProblem] = []
    action = _text(data, "action") or "save"
    if action not in ("save", "submit"):
        problems.append(FieldProblem("action", "choice", "save or submit"))
    findings = _parse_findings(data, rows, problems)
    if action == "submit":
        missing = [r["id"] for r in rows if r["id"] not in findings and not _recorded(insp, r["id"])]
        if missing:
            problems.append(FieldProblem("findings", "incomplete", ", ".join(missing)))
            problems += [FieldProblem(f"findings.{i}.result", "required", "no result") for i in missing]
    body = {"inspected_on": _text(data, "inspected_on"), "methods": _texts(data, "methods"), "findings": findings}

    def again(found: list[FieldProblem], status: int = 400) -> Template:
        # the form as sent (photos already stored are kept, so nobody takes them twice)
        for row in rows:
            f = findings.get(row["id"])
            if f is not None:
                row.update(result=f["result"], description=f.get("description", ""),
                           confidential=bool(f.get("confidential")), evidence=f["evidence"],
                           measures=[*f["measures"][:MAX_MEASURES_SHOWN - 1], {}])
            else:
                row.update(result="", description=_text(data, f"f{row['n']}.description"))
        return _page(request, "staff/field_findings.html", "录入检查结果", status, **_form_context(
            request, visit, rows, insp, problems=problems_zh(
                found, names, blocks={r["id"]: r["n"] for r in rows}, ids={"inspected_on": "inspected_on"}),
            inspected_on=body["inspected_on"], chosen_methods=body["methods"]))

    if problems:
        return again(problems)
    # photos and files into the evidence store (content-addressed: the same photo is stored once)
    for row in rows:
        n = row["n"]
        for part in ("photos", "files"):
            for upload in _files(data, f"f{n}.{part}"):
                try:
                    ref = rt.evidence.upload_evidence(actor, cast(BinaryIO, upload.file), upload.filename or "",
                                                      upload.content_type or "")
                except InvalidInputError as exc:
                    problems += [FieldProblem(f"findings.{row['id']}.{part}.{p.field.rsplit('.', 1)[-1]}", p.rule,
                                              p.message) for p in exc.problems]
                    continue
                if row["id"] in findings:
                    findings[row["id"]]["evidence"].append(ref)
                else:
                    problems.append(FieldProblem(f"findings.{row['id']}.result", "required", "evidence without result"))
    if problems:
        return again(problems)
    try:
        done = None
        if findings:
            done = rt.inspections.record_findings(ctx(request), aid, dept, body)
        elif action == "save":
            return again([FieldProblem("findings", "required", "nothing entered")])
        if action == "submit":
            done = rt.inspections.submit(ctx(request), inspection_id(aid, dept))
    except PermissionDeniedError as exc:
        return _refused(request, _reason_zh(exc, "录入检查结果"))
    except InvalidInputError as exc:
        return again(exc.problems, 422)
    except (TaskStateError, ConflictError):
        return _refused(request, "检查的状态已变化（可能已提交或已被他人修改），请返回刷新后再试。", 409, "不能保存")
    return _done(request, f"/staff/visits/{aid}", done.position if done else None)


def _recorded(insp: Mapping[str, Any] | None, item: str) -> bool:
    return any(f.get("item") == item for f in (insp or {}).get("findings") or [])


@post("/visits/{assignment_id:str}/submit", guards=INSPECTORS, include_in_schema=False, sync_to_thread=True, status_code=303)
def submit_findings(request: AnyRequest, assignment_id: FromPath[str]) -> Template | Response[Any]:
    """提交审核 from the visit page (Inspections.submit): every item needs a finding."""
    found = _team_form(request, assignment_id)
    if isinstance(found, Template):
        return found
    aid, rt = found[0], _rt(request)
    try:
        done = rt.inspections.submit(ctx(request), inspection_id(aid, request.user.department))
    except NotFoundError:
        return _refused(request, "尚未录入检查结果，不能提交。", 422, "不能提交")
    except PermissionDeniedError as exc:
        return _refused(request, _reason_zh(exc, "提交检查结果"))
    except InvalidInputError as exc:
        return _refused(request, "；".join(p["label"] + "：" + p["text"] for p in problems_zh(exc.problems, {})),
                        422, "不能提交")
    return _done(request, f"/staff/visits/{aid}", done.position)


# -- evidence ---------------------------------------------------------------------------------------------------
@get("/evidence/{sha256:str}", include_in_schema=False, sync_to_thread=True)
def evidence_file(request: AnyRequest, sha256: FromPath[str]) -> Stream | Template:
    """A photo or file of a finding (Evidence.open_evidence: the readers of the record naming it, never partners;
    anyone else the 404 of a missing file): JPEG and PNG shown inline
    (by their bytes, not by what a form declared), anything else downloaded; streamed in the store's chunks."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        return _refused(request, "没有这个文件。", 404, "未找到")
    rt = _rt(request)
    try:
        chunks = iter(rt.evidence.open_evidence(request.user, sha256))
    except NotFoundError:
        return _refused(request, "没有这个文件。", 404, "未找到")
    except PermissionDeniedError:
        return _refused(request, "您的角色不能查看证据文件。")
    first = next(chunks, b"")
    media = next((m for magic, m in IMAGE_MAGIC if first.startswith(magic)), None)
    body = itertools.chain([first], chunks)
    if media is None:
        return Stream(body, media_type="application/octet-stream",
                      headers={"Content-Disposition": f'attachment; filename="{sha256[:12]}"'})
    return Stream(body, media_type=media, headers={"Cache-Control": "private, max-age=86400"})


# -- reviewers --------------------------------------------------------------------------------------------------
@get("/review", guards=REVIEWERS, include_in_schema=False, sync_to_thread=True)
def review_queue(request: AnyRequest) -> Template:
    """审核: the department's inspections awaiting review (or approved, or published with their push state),
    read with Inspections.list_inspections as GET /inspections does, with names."""
    rt = _rt(request)
    params = request.query_params
    queue = params.get("state") or "awaiting_review"
    problems = []
    if queue not in QUEUES:
        problems.append(FieldProblem("state", "choice", "queue"))
    page = 1
    raw = params.get("page") or "1"
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 100000):
        problems.append(FieldProblem("page", "range", "1..100000"))
    else:
        page = int(raw)
    if problems:
        return _page(request, "staff/review_queue.html", "审核", 400, problems=problems_zh(problems, {}),
                     queues=QUEUES, queue="awaiting_review", rows=[], total=0, page=1, pages=1)
    _wait(rt, params.get("min_position"))
    found = rt.inspections.list_inspections(request.user, {"state": queue}, QUEUE_PAGE, (page - 1) * QUEUE_PAGE)
    rows = _queue_rows(rt, request.user, found["items"])
    pages = max(1, (int(found["total"]) + QUEUE_PAGE - 1) // QUEUE_PAGE)
    return _page(request, "staff/review_queue.html", "审核", queues=QUEUES, queue=queue, rows=rows,
                 total=found["total"], page=page, pages=pages, problems=[])


def _queue_rows(rt: Runtime, actor: Actor, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if not rows:
        return []
    inspections = rt.inspections.load_many(Inspection, [uuid.UUID(str(r["id"])) for r in rows])
    tasks = rt.inspections.load_many(Task, {uuid.UUID(str(r["task_id"])) for r in rows})
    targets = rt.lookups.target_data([str(r["target_id"]) for r in rows])
    names = _people(rt, [m for i in inspections.values() for m in i.team])
    me = rt.lookups.as_inspector(actor)
    out = []
    for r in rows:
        insp = inspections.get(uuid.UUID(str(r["id"])))
        target = targets.get(str(r["target_id"]), {})
        team = list(insp.team) if insp is not None else []
        out.append({"id": str(r["id"]), "target_name": target.get("name") or "（检查对象）",
                    "credit_code": target.get("credit_code") or "",
                    "task": _task_label(tasks.get(uuid.UUID(str(r["task_id"])))),
                    "team": [names.get(m, m) for m in team], "inspected_on": r.get("inspected_on") or "",
                    "deadline": r.get("deadline") or "", "overdue": r.get("overdue"),
                    "push": PUSH_LABELS.get(str(r.get("push_state")), ""), "published_on": r.get("published_on"),
                    "own": is_among(me, team)})
    return out


def _review_context(rt: Runtime, actor: Actor, iid: uuid.UUID) -> dict[str, Any]:
    view = rt.inspections.inspection_view(actor, iid)
    task = rt.inspections.find(Task, uuid.UUID(view["task_id"]))
    target = rt.lookups.target(view["target_id"])
    items = rt.lookups.items(view["items"])
    team = _people(rt, view["team"])
    submitted = [h for h in view.get("history") or [] if isinstance(h, Mapping)]
    dept_name = rt.lookups.department_names([view["department"]])[view["department"]]
    return {"insp": view, "task": _task_label(task), "target": target, "department_name": dept_name,
            "team": list(team.values()), "findings": _finding_rows(view, items),
            "state_label": STATE_LABELS.get(view["state"], view["state"]),
            "push_label": PUSH_LABELS.get(str(view.get("push_state")), ""), "push_labels": PUSH_LABELS,
            "channels": CHANNEL_LABELS, "history": submitted, "history_people": {
                i: p["name"] for i, p in rt.lookups.people([str(h.get("by")) for h in submitted if h.get("by")]).items()},
            "own": is_among(rt.lookups.as_inspector(actor), view["team"]),
            "today": rt.clock.today().isoformat(), "methods_text": "、".join(view.get("method_labels") or [])}


@get("/review/{inspection_id:str}", guards=REVIEWERS, include_in_schema=False, sync_to_thread=True)
def review_page(request: AnyRequest, inspection_id: FromPath[str]) -> Template:
    """One department's findings of a visit for its reviewers: return with a reason, approve, publish, push."""
    iid = _uuid(inspection_id)
    if iid is None:
        return _refused(request, "没有这项检查结果。", 404, "未找到")
    rt = _rt(request)
    try:
        context = _review_context(rt, request.user, iid)
    except NotFoundError:
        return _refused(request, "没有这项检查结果。", 404, "未找到")
    except PermissionDeniedError:
        return _refused(request, "这项检查结果不属于您的部门，不能审核。")
    if context["insp"]["department"] != request.user.department and not request.user.has(Role.ADMIN):
        # another department of a joint visit reads it redacted through the API; reviewing is not theirs
        return _refused(request, "这项检查结果不属于您的部门，不能审核。")
    return _page(request, "staff/review_detail.html", "审核检查结果", problems=[], **context)


def _review_action(request: AnyRequest, inspection_id: str, doing: str, data: Mapping[str, Any],
                   act: Any, labels: Mapping[str, str] | None = None,
                   ids: Mapping[str, str] | None = None) -> Template | Response[Any]:
    """Run one reviewer command; a refusal or bad input renders the page again, in Chinese."""
    iid = _uuid(inspection_id)
    if iid is None:
        return _refused(request, "没有这项检查结果。", 404, "未找到")
    rt = _rt(request)
    try:
        # the one rule of every text that enters (the API's refuse_control_characters), before the use case
        bad = [FieldProblem(k, "control_character", "control character") for k, v in data.items()
               if isinstance(v, str) and control_character(normalise_newlines(v))]
        if bad:
            raise InvalidInputError(bad)
        done = act(rt, iid)
    except NotFoundError:
        return _refused(request, "没有这项检查结果。", 404, "未找到")
    except PermissionDeniedError as exc:
        return _refused(request, _reason_zh(exc, doing))
    except (InvalidInputError, TaskStateError) as exc:
        problems = exc.problems if isinstance(exc, DomainError) and exc.problems else [
            FieldProblem("state", "transition", str(exc))]
        try:
            context = _review_context(rt, request.user, iid)
        except (NotFoundError, PermissionDeniedError):
            return _refused(request, "没有这项检查结果。", 404, "未找到")
        return _page(request, "staff/review_detail.html", "审核检查结果", 422,
                     problems=problems_zh(problems, {}, labels, ids=ids), **context)
    except ConflictError:
        return _refused(request, "这项检查结果刚被他人修改，请返回刷新后再试。", 409, "不能保存")
    return _done(request, f"/staff/review/{iid}", done.position)


@post("/review/{inspection_id:str}/return", guards=REVIEWERS, include_in_schema=False, sync_to_thread=True,
      status_code=303)
def return_findings(request: AnyRequest, inspection_id: FromPath[str], data: MultiPart) -> Template | Response[Any]:
    reason = _text(data, "reason")
    return _review_action(request, inspection_id, "退回", data,
                          lambda rt, iid: rt.inspections.return_(ctx(request), iid, reason), ids={"reason": "reason"})


@post("/review/{inspection_id:str}/approve", guards=REVIEWERS, include_in_schema=False, sync_to_thread=True,
      status_code=303)
def approve_findings(request: AnyRequest, inspection_id: FromPath[str], data: MultiPart) -> Template | Response[Any]:
    day = _text(data, "approved_on") or None
    return _review_action(request, inspection_id, "批准", data,
                          lambda rt, iid: rt.inspections.approve(ctx(request), iid, day),
                          ids={"approved_on": "approved_on"})


@post("/review/{inspection_id:str}/publish", guards=REVIEWERS, include_in_schema=False, sync_to_thread=True,
      status_code=303)
def publish_findings(request: AnyRequest, inspection_id: FromPath[str], data: MultiPart) -> Template | Response[Any]:
    day = _text(data, "published_on") or None
    return _review_action(request, inspection_id, "公示", data,
                          lambda rt, iid: rt.inspections.publish(ctx(request), iid, day),
                          ids={"published_on": "published_on"})


@post("/review/{inspection_id:str}/push", guards=REVIEWERS, include_in_schema=False, sync_to_thread=True,
      status_code=303)
def record_push(request: AnyRequest, inspection_id: FromPath[str], data: MultiPart) -> Template | Response[Any]:
    push = {k: _text(data, k) or None for k in ("state", "channel", "reference", "reason", "on")}
    return _review_action(request, inspection_id, "记录推送状态", data,
                          lambda rt, iid: rt.inspections.push(ctx(request), iid, push),
                          {"reason": "失败原因", "state": "推送状态"},
                          {"reason": "push-reason", "state": "push-state-select", "reference": "reference"})


def field_router() -> Router:
    """The inspector and reviewer pages under /staff, in the staff frame: signed in (else to /login), a staff
    role, each page narrowed by its guard; errors as pages in Chinese; not in the OpenAPI document."""
    return staff_router([
        visits_page, visit_page, findings_form, save_findings, submit_findings, evidence_file, review_queue,
        review_page, return_findings, approve_findings, publish_findings, record_push,
    ])
