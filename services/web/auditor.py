"""Auditors' pages of the staff console: the log browser (paging the global log, one aggregate's history and its
state as of a version or a time), a task's draw verification, and the checkpoints and witnesses. They read what
``/api/v1/audit`` and ``/api/v1/tasks/{id}/draw/verification`` read, auditors and admins only (as the API)."""

import datetime as dt
import itertools
import json
import uuid
from typing import Any

from litestar import Request, get
from litestar.params import FromPath
from litestar.response import Template

from domain.audit.leaf import record_item
from domain.values import Role
from services.audit import checkpoints as cps
from services.audit import proofs
from services.audit.history import aggregate_at
from services.audit.log import events_table, iter_records
from services.audit.replay import parse_time
from services.audit.witness import coverage_of, witnesses_of
from services.web.forms import attempt
from services.web.pages import _departments, _rt
from services.web.staff import render, requires

AnyRequest = Request[Any, Any, Any]
AUDITORS = (Role.AUDITOR, Role.ADMIN)
LOG_PAGE = 50
CHECKPOINTS_PAGE = 20
MAX_POSITION = 2**63 - 1
SYSTEM_NAMES = {"system": "系统"}  # the actor and department of what the server itself records
KINDS = {"department": "部门", "item": "抽查事项", "target": "检查对象", "inspector": "执法检查人员",
         "expert": "专家", "plan": "年度计划", "task": "抽查任务", "assignment": "检查安排", "inspection": "检查结果",
         "referral": "移送", "account": "账户", "clue": "线索", "followup": "回访", "evidence": "证据"}


def _position(raw: str | None, name: str, problems: list[tuple[str, str]], low: int = 0) -> int | None:
    if not raw:
        return None
    if raw.isascii() and raw.isdigit() and low <= int(raw) <= MAX_POSITION:
        return int(raw)
    problems.append((name, f"须为 {low} 以上的整数"))
    return None


def _summary(value: Any) -> str:
    """A value of an event's data or a state, short enough for a table cell."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _rows(events: list[dict[str, Any]], departments: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for e in events:
        meta = e.get("meta") or {}
        data = (e.get("data") or {}).get("data") if isinstance(e.get("data"), dict) else None
        payload = data if isinstance(data, dict) else (e.get("data") or {})
        out.append({**e, "kind_name": KINDS.get(str(e.get("aggregate_kind")), e.get("aggregate_kind")),
                    "actor_name": SYSTEM_NAMES.get(str(meta.get("actor_name") or e.get("actor")),
                                                   meta.get("actor_name") or e.get("actor")),
                    "department_name": SYSTEM_NAMES.get(str(e.get("department")), departments.get(
                        str(e.get("department")), e.get("department"))),
                    "fields": [(k, _summary(v)) for k, v in sorted(payload.items()) if k != "originator_topic"][:12]})
    return out


@get("/audit/log", guards=[requires(*AUDITORS)], sync_to_thread=True)
def log_page(request: AnyRequest) -> Template:
    """日志: the global log in order, 50 events a page after a position, who acted by name."""
    problems: list[tuple[str, str]] = []
    after = _position(request.query_params.get("after"), "after", problems) or 0
    if problems:
        return render(request, "staff/problem.html", "请求有误", status_code=400, problems=problems)
    rt = _rt(request)
    records = itertools.islice(iter_records(rt.engine, events_table(rt.app), after, page=LOG_PAGE), LOG_PAGE)
    events = rt.accounts.with_actor_names([record_item(*r) for r in records])
    head = int(rt.app.recorder.max_notification_id() or 0)
    return render(request, "staff/audit_log.html", "日志", events=_rows(events, _departments(request)), after=after,
                  next_after=events[-1]["position"] if len(events) == LOG_PAGE else None, head=head,
                  previous=max(0, after - LOG_PAGE) if after else None)


@get("/audit/aggregates/{aggregate_id:uuid}", guards=[requires(*AUDITORS)], sync_to_thread=True)
def aggregate_page(request: AnyRequest, aggregate_id: FromPath[uuid.UUID]) -> Template:
    """One aggregate: every event, and its state as of a version or a time (the current state without either)."""
    problems: list[tuple[str, str]] = []
    version = _position(request.query_params.get("version"), "version", problems, low=1)
    at_text = (request.query_params.get("at") or "").strip()
    when: dt.datetime | None = None
    if at_text:
        try:
            when = parse_time(at_text)
        except ValueError:
            problems.append(("at", "须为带时区的 ISO 8601 时间，例如 2025-03-01T10:00:00+08:00"))
    if version is not None and when is not None:
        problems.append(("at", "版本与时间只能给出其一"))
    if problems:
        return render(request, "staff/problem.html", "请求有误", status_code=400, problems=problems)
    rt = _rt(request)
    found = aggregate_at(rt.app, rt.engine, events_table(rt.app), aggregate_id, version, when)
    events = rt.accounts.with_actor_names(found.get("events") or [])
    state = found.get("state") or {}
    return render(request, "staff/audit_aggregate.html", f"{KINDS.get(found.get('kind', ''), '记录')}的历史",
                  agg=found, kind_name=KINDS.get(str(found.get("kind")), found.get("kind")),
                  events=_rows(events, _departments(request)), state=[(k, _summary(v)) for k, v in state.items()],
                  version=version or "", at=at_text)


@get("/audit/tasks/{task_id:uuid}/verification", guards=[requires(*AUDITORS, Role.PLANNER)], sync_to_thread=True)
def verification_page(request: AnyRequest, task_id: FromPath[uuid.UUID]) -> Template:
    """抽取验证: every round of the task's target draw, and the current round re-run from the log at its freeze
    position (``TargetDraws.verify_draw``): 一致, or the first difference. Same access as the drawn list: the
    task's departments' planners, admins and auditors."""
    rt = _rt(request)
    task = rt.task_opening.task_view(request.user, task_id)
    rounds = rt.target_draws.rounds(request.user, task_id)
    outcome = attempt(lambda: rt.target_draws.verify_draw(request.user, task_id))
    return render(request, "staff/audit_verify.html", f"抽取验证 {task['number']}", task=task,
                  rounds=rounds.get("rounds", []), outcome=outcome, result=outcome.value if outcome.ok else None,
                  dept_names=[_departments(request).get(d, d) for d in task["departments"]])


@get("/audit/checkpoints", guards=[requires(*AUDITORS)], sync_to_thread=True)
def checkpoints_page(request: AnyRequest) -> Template:
    """检查点与见证: the log head, the tree, the newest signed and the newest witnessed checkpoint with how far the
    log grew since each, the witnesses' keys, the signer's alarm, and the checkpoints by tree size."""
    problems: list[tuple[str, str]] = []
    after_size = _position(request.query_params.get("after_size"), "after_size", problems) or 0
    if problems:
        return render(request, "staff/problem.html", "请求有误", status_code=400, problems=problems)
    rt = _rt(request)
    with proofs.read_connection(rt.engine) as conn:
        cover = coverage_of(conn, rt)
        found = cps.listing(conn, after_size, CHECKPOINTS_PAGE)
        cosigned = witnesses_of(conn, [cp.tree_size for cp in found])
    listed = [cp.view() | {"witnesses": cosigned[cp.tree_size],
                           "when": dt.datetime.fromtimestamp(int(cp.time), dt.UTC).astimezone(
                               dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")
                           if str(cp.time).isdigit() else str(cp.time)} for cp in found]
    return render(request, "staff/audit_checkpoints.html", "检查点与见证", cover=cover, checkpoints=listed,
                  after_size=after_size, departments=_departments(request),
                  next_after_size=found[-1].tree_size if len(found) == CHECKPOINTS_PAGE else None)


PAGES = [log_page, aggregate_page, verification_page, checkpoints_page]
