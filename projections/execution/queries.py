"""What the API reads from the execution read model: inspections (overdue computed at query time), public
results (published, redacted, searchable by enterprise name or credit code), referrals, follow-up rounds, and
the publication context (plan, task, authority, enterprise and item names) of a result."""

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain.execution.inspection import Inspection, ReviewState
from domain.execution.publicity import PublicationContext, export_identifiers, public_result
from domain.planning.plan import plan_id
from projections.aggregate_rows import rehydrate, split_bars
from projections.directory.projection import TABLES as DIRECTORY
from projections.directory.queries import COUNT_CAP, prefix_range
from projections.execution.projection import TABLES
from projections.tasks.projection import TABLES as TASK_TABLES

INSPECTION, PUBLIC, REFERRAL, FOLLOW_UP, NAME = (
    TABLES["inspection"], TABLES["public"], TABLES["referral"], TABLES["follow_up"], TABLES["name"])
TARGETS = DIRECTORY["target"]  # enterprises' names and credit codes: the directory read model's



def names(conn: Connection, kind: str, ids: Iterable[str], by: str = "id") -> dict[str, dict[str, Any]]:
    """``{key: {id, name, code, extra}}`` of one kind, looked up by ``id`` or ``code``; a target's from the
    directory read model (its name and credit code as they are now), the others' from ``rm_exec_name``."""
    wanted = sorted({str(i) for i in ids if i})
    if kind == "target":
        t = TARGETS
        query = sa.select(t.c.id, sa.func.coalesce(t.c.name, "").label("name"),
                          sa.func.coalesce(t.c.credit_code, "").label("code"), sa.literal("{}").label("extra"))
        col = t.c.id if by == "id" else t.c.credit_code
    else:
        query = sa.select(NAME.c.id, NAME.c.name, NAME.c.code, NAME.c.extra).where(NAME.c.kind == kind)
        col = NAME.c.id if by == "id" else NAME.c.code
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), 500):
        for r in conn.execute(query.where(col.in_(wanted[start:start + 500]))):
            out[r.id if by == "id" else r.code] = {"id": r.id, "name": r.name, "code": r.code,
                                                   "extra": json.loads(r.extra)}
    return out


def contexts(conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[str, PublicationContext]:
    """The publication context of each ``{id, task_id, department, target_id, items}``, by id."""
    tasks = names(conn, "task", [r["task_id"] for r in rows])
    depts = names(conn, "department", [r["department"] for r in rows], by="code")
    targets = names(conn, "target", [r["target_id"] for r in rows])
    items = names(conn, "item", [i for r in rows for i in r["items"]])
    entries: dict[str, str] = {}
    keys = {}
    for t in tasks.values():
        number = t["extra"].get("plan_entry") or ""
        if number[:4].isdigit():
            keys[t["id"]] = f"{plan_id(t['extra']['lead'], int(number[:4]))}/{number}"
    for k, v in names(conn, "plan_entry", keys.values()).items():
        entries[k] = v["name"]
    # A partner department's result carries its own annual plan (by plan id: department and year).
    own_plans = {(r["department"], int(tasks.get(r["task_id"], {"extra": {}})["extra"].get("year") or 0)) for r in rows}
    plans = names(conn, "plan", [str(plan_id(d, y)) for d, y in own_plans if y])
    out = {}
    for r in rows:
        task = tasks.get(r["task_id"], {"name": "", "code": "", "extra": {}})
        target = targets.get(r["target_id"], {"name": "", "code": ""})
        authority = depts.get(r["department"], {"name": r["department"]})["name"]
        year = int(task["extra"].get("year") or 0)
        own_plan = plans.get(str(plan_id(r["department"], year)), {}) if year else {}
        plan_number, plan_name, task_number = export_identifiers(
            department=r["department"], department_name=authority, lead=task["extra"].get("lead") or r["department"],
            task_number=task["code"], year=year, plan_entry=task["extra"].get("plan_entry") or "",
            entry_name=entries.get(keys.get(r["task_id"], ""), ""), own_plan_name=own_plan.get("name", ""))
        out[r["id"]] = PublicationContext(
            plan_number=plan_number, plan_name=plan_name,
            task_number=task_number, task_name=task["name"], directed=bool(task["extra"].get("directed")),
            authority=authority,
            item_names={i: items[i]["name"] for i in r["items"] if i in items},
            target_credit_code=target["code"], target_name=target["name"],
            random=task["extra"].get("origin") != "case",
        )
    return out


# -- inspections --------------------------------------------------------------------------------------------
def _inspection_row(r: Any, today: dt.date) -> dict[str, Any]:
    overdue = r.state == ReviewState.APPROVED.value and r.deadline is not None and r.deadline < today.isoformat()
    return {
        "id": r.id, "assignment_id": r.assignment_id, "task_id": r.task_id, "department": r.department,
        "target_id": r.target_id, "state": r.state, "inspected_on": r.inspected_on, "approved_on": r.approved_on,
        "deadline": r.deadline, "provisional": bool(r.provisional), "uncovered_years": [int(y) for y in
                                                                                         split_bars(r.uncovered_years)],
        "overdue": overdue, "published_on": r.published_on,
        "published_late": bool(r.published_on and r.deadline and r.published_on > r.deadline),
        "push_state": r.push_state, "version": r.version, "position": r.position,
    }


def list_inspections(
    engine: Engine, *, departments: Sequence[str] | None, today: dt.date, state: str | None = None,
    assignment_id: str | None = None, target_id: str | None = None, overdue: bool | None = None,
    provisional: bool | None = None, push_state: str | None = None, limit: int = 50, offset: int = 0,
) -> dict[str, Any]:
    t = INSPECTION
    conds: list[Any] = []
    if departments is not None:
        conds.append(t.c.department.in_(list(departments)))
    for col, value in ((t.c.state, state), (t.c.assignment_id, assignment_id), (t.c.target_id, target_id),
                       (t.c.push_state, push_state)):
        if value is not None:
            conds.append(col == value)
    if provisional is not None:
        conds.append(t.c.provisional.is_(provisional))
    late = sa.and_(t.c.state == ReviewState.APPROVED.value, t.c.deadline < today.isoformat())
    if overdue is True:
        conds.append(late)
    elif overdue is False:
        conds.append(sa.not_(late) | t.c.deadline.is_(None))
    where = sa.and_(sa.true(), *conds)
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(t).where(where)).scalar_one()
        rows = conn.execute(sa.select(t).where(where).order_by(t.c.first_position).limit(limit).offset(offset)).all()
    return {"total": total, "limit": limit, "offset": offset, "items": [_inspection_row(r, today) for r in rows]}


def inspection_row(engine: Engine, iid: str, today: dt.date) -> dict[str, Any] | None:
    with engine.connect() as conn:
        r = conn.execute(sa.select(INSPECTION).where(INSPECTION.c.id == iid)).first()
    return None if r is None else _inspection_row(r, today)


def provisional_inspections(engine: Engine, years: Iterable[int] | None = None) -> list[str]:
    """Ids of inspections whose deadline is provisional (counting a year in ``years``, when given)."""
    t = INSPECTION
    query = sa.select(t.c.id).where(t.c.provisional.is_(True))
    if years is not None:
        query = query.where(sa.or_(sa.false(), *[t.c.uncovered_years.like(f"%|{y}|%") for y in years]))
    with engine.connect() as conn:
        return list(conn.execute(query.order_by(t.c.first_position)).scalars())


def inspected_targets(conn: Connection, department: str, start: dt.date, end: dt.date) -> list[str]:
    """Targets the department inspected (findings recorded) between ``start`` and ``end`` inclusive, in ``conn``'s
    transaction (a follow-up round's pool: docs/verifying-a-draw.md section 17)."""
    t = INSPECTION
    rows = conn.execute(sa.select(t.c.target_id).where(
        t.c.department == department, t.c.inspected_on >= start.isoformat(),
        t.c.inspected_on <= end.isoformat()).distinct()).scalars()
    return sorted(set(rows))


def inspectors_of(engine: Engine, department: str, targets: Sequence[str], start: dt.date,
                  end: dt.date) -> dict[str, set[str]]:
    """Per target, the inspector ids of the department's teams that inspected it between ``start`` and ``end``."""
    t = INSPECTION
    out: dict[str, set[str]] = {}
    wanted = sorted(set(targets))
    with engine.connect() as conn:
        for at in range(0, len(wanted), 500):
            rows = conn.execute(sa.select(t.c.id, t.c.version, t.c.created_on, t.c.modified_on, t.c.state_json).where(
                t.c.department == department, t.c.target_id.in_(wanted[at:at + 500]),
                t.c.inspected_on >= start.isoformat(), t.c.inspected_on <= end.isoformat())).all()
            for r in rows:
                i = rehydrate(Inspection, uuid.UUID(r.id), r.version, r.created_on, r.modified_on, r.state_json)
                out.setdefault(i.target_id, set()).update(i.team)
    return out


def published_by_task(engine: Engine, task_ids: Sequence[str]) -> dict[str, int]:
    """Per task id, how many of its inspections were published."""
    t = INSPECTION
    if not task_ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.task_id, sa.func.count()).where(
            t.c.task_id.in_(list(task_ids)), t.c.state == ReviewState.PUBLISHED.value).group_by(t.c.task_id)).all()
    return {r[0]: int(r[1]) for r in rows}


def approved_inspections(engine: Engine, department: str | None, published_only: bool = False,
                         since: dt.date | None = None, until: dt.date | None = None) -> list[Inspection]:
    """Approved (and published) inspections, rehydrated from the read model, oldest approval first."""
    t = INSPECTION
    states = [ReviewState.PUBLISHED.value] if published_only else [ReviewState.APPROVED.value,
                                                                     ReviewState.PUBLISHED.value]
    query = sa.select(t.c.id, t.c.version, t.c.created_on, t.c.modified_on, t.c.state_json).where(
        t.c.state.in_(states))
    if department is not None:
        query = query.where(t.c.department == department)
    if since is not None:
        query = query.where(t.c.approved_on >= since.isoformat())
    if until is not None:
        query = query.where(t.c.approved_on <= until.isoformat())
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(t.c.approved_on, t.c.first_position)).all()
    return [rehydrate(Inspection, uuid.UUID(r.id), r.version, r.created_on, r.modified_on, r.state_json)
            for r in rows]


# -- public results -----------------------------------------------------------------------------------------
def public_results(engine: Engine, q: str | None, limit: int = 20, offset: int = 0, *,
                   department: str | None = None, year: int | None = None,
                   result_code: str | None = None, exact_total: bool = False) -> dict[str, Any]:
    """Published results, newest first; ``q``: part of the enterprise name, or a credit code (prefix);
    ``department``, ``year`` (of the inspection date) and ``result_code`` (the result of any item) narrow them.
    ``total`` counts the matches up to ``COUNT_CAP`` (``total_exact`` False when there are more: a common name
    never counts every match), or all of them with ``exact_total``; ``next_offset`` is the next page's offset, None
    after the last."""
    p = PUBLIC
    query = sa.select(p)
    if department:
        query = query.where(p.c.department == department)
    if year is not None:
        query = query.where(p.c.inspected_on.startswith(f"{year:04d}-"))
    if result_code:  # the stored findings are json.dumps(..., sort_keys=True): '"result": "<code>"' per item
        query = query.where(p.c.findings.contains(json.dumps({"result": result_code}, ensure_ascii=False)[1:-1],
                                                  autoescape=True))
    with engine.connect() as conn:
        if q and (text := q.strip()):
            # Per published result, its enterprise by primary key (EXISTS: SQLite reads the published results,
            # not the million targets; PostgreSQL picks a semi-join, the name's trigram index or the credit code's
            # byte-wise range when they pay). See docs/scale.md "The public results".
            t = TARGETS
            query = query.where(sa.exists().where(t.c.id == p.c.target_id, sa.or_(
                t.c.name.contains(text, autoescape=True),
                prefix_range(t.c.credit_code, text.upper(), conn.dialect.name))))
        if exact_total:
            total = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
        else:
            capped = query.with_only_columns(sa.literal(1)).select_from(p).limit(COUNT_CAP + 1).subquery()
            total = conn.execute(sa.select(sa.func.count()).select_from(capped)).scalar_one()
        rows = conn.execute(query.order_by(p.c.position.desc()).limit(limit + 1).offset(offset)).all()
        more = len(rows) > limit
        rows = rows[:limit]
        found = [{"id": r.inspection_id, "task_id": r.task_id, "department": r.department, "target_id": r.target_id,
                  "findings": json.loads(r.findings), "inspected_on": r.inspected_on,
                  "published_on": r.published_on} for r in rows]
        ctx = contexts(conn, [{**f, "items": [x["item"] for x in f["findings"]]} for f in found])
    items = []
    for f in found:
        result = SimpleNamespace(
            state=ReviewState.PUBLISHED.value, inspected_on=f["inspected_on"], items=[x["item"] for x in f["findings"]],
            findings={x["item"]: {**x, "confidential": [k for k in ("description", "measures") if k not in x]}
                      for x in f["findings"]},
        )
        items.append({"id": f["id"], "task_id": f["task_id"], **public_result(ctx[f["id"]], result, f["department"]),
                      "published_on": f["published_on"]})
    exact = exact_total or total <= COUNT_CAP
    return {"total": int(total if exact else COUNT_CAP), "total_exact": exact, "limit": limit, "offset": offset,
            "next_offset": offset + limit if more else None, "items": items}


# -- referrals ----------------------------------------------------------------------------------------------
def _referral_row(r: Any, today: dt.date) -> dict[str, Any]:
    iso = today.isoformat()
    open_ = r.state in ("transferred", "received")
    overdue = []
    if open_ and r.respond_by and iso > r.respond_by:
        overdue.append("respond_by")
    if (open_ or r.state == "accepted") and r.outcome_by and iso > r.outcome_by:
        overdue.append("outcome_by")
    return {"id": r.id, "kind": r.kind, "from_department": r.from_department, "to": r.to, "copy_to": r.copy_to,
            "inspection_id": r.inspection_id, "item": r.item, "target_id": r.target_id, "state": r.state,
            "transferred_on": r.transferred_on, "respond_by": r.respond_by, "outcome_by": r.outcome_by,
            "overdue": overdue, "version": r.version, "position": r.position}


def list_referrals(engine: Engine, *, department: str | None, direction: str | None, today: dt.date,
                   state: str | None = None, kind: str | None = None, limit: int = 50,
                   offset: int = 0) -> dict[str, Any]:
    """``direction``: ``outgoing`` (made by ``department``), ``incoming`` (to it), or both when None."""
    t = REFERRAL
    conds: list[Any] = []
    if department is not None:
        out_ = t.c.from_department == department
        in_ = (t.c.kind == "department") & (t.c.to == department)
        conds.append(out_ if direction == "outgoing" else in_ if direction == "incoming" else out_ | in_)
    if state is not None:
        conds.append(t.c.state == state)
    if kind is not None:
        conds.append(t.c.kind == kind)
    where = sa.and_(sa.true(), *conds)
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(t).where(where)).scalar_one()
        rows = conn.execute(sa.select(t).where(where).order_by(t.c.first_position).limit(limit).offset(offset)).all()
    return {"total": total, "limit": limit, "offset": offset, "items": [_referral_row(r, today) for r in rows]}


def list_follow_ups(engine: Engine, department: str | None) -> list[dict[str, Any]]:
    t = FOLLOW_UP
    query = sa.select(t.c.id, t.c.department, t.c.period, t.c.pool_size, t.c.quota, t.c.drawn, t.c.visited)
    if department is not None:
        query = query.where(t.c.department == department)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(t.c.first_position)).all()
    return [{"id": r.id, "department": r.department, "period": r.period, "pool_size": r.pool_size,
             "quota": r.quota, "drawn": bool(r.drawn), "visited": r.visited} for r in rows]


EVIDENCE_USE = TABLES["evidence"]
_USES_READ = 1000  # a file named by more records than this is read as the first 1,000 allow (bounded work)


def evidence_readable(conn: Connection, sha256: str, department: str, people: Iterable[str],
                      reviewer: bool) -> bool:
    """Does a record that names this evidence file let this person read it? One indexed read of the file's uses
    (primary key prefix ``sha256``) and, for findings, one of the visits' team members (primary key prefix
    ``assignment_id``): a finding's file is read by its department's team on that visit and (``reviewer``) the
    department's reviewers; a shared document's and a referral's by the staff of the departments named."""
    u = EVIDENCE_USE
    rows = conn.execute(sa.select(u.c.kind, u.c.department, u.c.assignment_id)
                        .where(u.c.sha256 == sha256).limit(_USES_READ)).all()
    visits: set[tuple[str, str]] = set()
    for r in rows:
        if r.department != department:
            continue
        if r.kind != "finding" or reviewer:
            return True
        visits.add((r.assignment_id, r.department))
    ids = sorted({i for i in people if i})
    if not visits or not ids:
        return False
    m = TASK_TABLES["member"]
    found = conn.execute(sa.select(m.c.assignment_id).where(
        m.c.assignment_id.in_(sorted(a for a, _ in visits)), m.c.department == department,
        m.c.person_id.in_(ids)).limit(1)).first()
    return found is not None


def evidence_named(conn: Connection, sha256: str) -> bool:
    """Does any record name this evidence file?"""
    u = EVIDENCE_USE
    return conn.execute(sa.select(u.c.sha256).where(u.c.sha256 == sha256).limit(1)).first() is not None
