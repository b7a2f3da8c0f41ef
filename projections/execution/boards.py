"""Execution-side parts of a department's inbox and KPIs, read from the execution read model."""

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from domain.execution.vocabulary import OFF_SITE_METHODS
from domain.planning.rules import Period, PeriodKind
from projections.execution.projection import TABLES
from projections.execution.queries import _inspection_row, list_referrals

NEAR_DEADLINE_DAYS = 7  # calendar days: "close to" the publication deadline
FOLLOW_UP_GOAL = 0.10


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _window(year: int, quarter: int | None) -> tuple[str, str]:
    p = Period(year, PeriodKind.QUARTER, quarter) if quarter else Period(year, PeriodKind.YEAR, 1)
    return p.start.isoformat(), p.end.isoformat()


def inbox(engine: Engine, department: str, today: dt.date) -> dict[str, Any]:
    """Findings awaiting review, referrals received and sent, results close to or past their deadline."""
    t = TABLES["inspection"]
    soon = (today + dt.timedelta(days=NEAR_DEADLINE_DAYS)).isoformat()
    with engine.connect() as conn:
        awaiting = conn.execute(
            sa.select(t)
            .where(t.c.department == department, t.c.state == "awaiting_review")
            .order_by(t.c.first_position)
        ).all()
        due = conn.execute(
            sa.select(t)
            .where(t.c.department == department, t.c.state == "approved", t.c.deadline <= soon)
            .order_by(t.c.deadline)
        ).all()
    return {
        "awaiting_review": [_inspection_row(r, today) for r in awaiting],
        "referrals_received": list_referrals(
            engine, department=department, direction="incoming", today=today, limit=500
        )["items"],
        "referrals_sent": list_referrals(
            engine, department=department, direction="outgoing", today=today, limit=500
        )["items"],
        "publication_deadlines": [_inspection_row(r, today) for r in due],
    }


def kpis(engine: Engine, department: str, year: int, quarter: int | None, today: dt.date) -> dict[str, Any]:
    """Publication rate and timeliness, violation discovery, off-site share, follow-up coverage, referral closure."""
    start, end = _window(year, quarter)
    t, ref, fu = TABLES["inspection"], TABLES["referral"], TABLES["follow_up"]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                t.c.state,
                t.c.approved_on,
                t.c.published_on,
                t.c.deadline,
                t.c.inspected_on,
                t.c.target_id,
                t.c.state_json,
            ).where(t.c.department == department)
        ).all()
        referrals = conn.execute(
            sa.select(ref.c.state, ref.c.transferred_on).where(ref.c.from_department == department)
        ).all()
        follow = conn.execute(sa.select(fu.c.period, fu.c.visited).where(fu.c.department == department)).all()
    approved = [r for r in rows if r.approved_on and start <= r.approved_on <= end]
    published = [r for r in approved if r.published_on]
    timely = [r for r in published if r.deadline and r.published_on <= r.deadline]
    inspected = [r for r in rows if r.inspected_on and start <= r.inspected_on <= end]
    findings = off_site = with_problem = 0
    for r in inspected:
        state = json.loads(r.state_json)
        if set(state.get("methods") or []) & OFF_SITE_METHODS:
            off_site += 1
        for f in (state.get("findings") or {}).values():
            findings += 1
            with_problem += bool(f.get("problem_found"))
    targets = {r.target_id for r in inspected}
    visits = sum(
        int(r.visited)
        for r in follow
        if str(r.period).startswith(str(year))
        and (quarter is None or _quarter_of(r.period) in (None, quarter))
    )
    in_period = [r for r in referrals if start <= r.transferred_on <= end]
    closed = [r for r in in_period if r.state in ("concluded", "rejected")]
    overdue = [r for r in rows if r.state == "approved" and r.deadline and r.deadline < today.isoformat()]
    return {
        "publication": {
            "rate": _ratio(len(published), len(approved)),
            "goal": 1.0,
            "approved": len(approved),
            "published": len(published),
            "overdue_now": len(overdue),
            "formula": "published / approved, over results approved in the period (goal 100%)",
        },
        "timeliness": {
            "rate": _ratio(len(timely), len(published)),
            "published": len(published),
            "on_time": len(timely),
            "formula": "published on or before the deadline (approval + 20 working days on the official "
            "calendar) / published",
        },
        "violation_discovery": {
            "rate": _ratio(with_problem, findings),
            "findings": findings,
            "with_problem": with_problem,
            "formula": "findings whose result code means a problem was found / findings, over inspections made in "
            "the period",
        },
        "off_site_share": {
            "rate": _ratio(off_site, len(inspected)),
            "inspections": len(inspected),
            "off_site": off_site,
            "formula": "inspections using at least one off-site method (online monitoring, video, drone, remote "
            "sensing, power-use monitoring, big data) / inspections (off-site inspection share)",
        },
        "follow_up_coverage": {
            "rate": _ratio(visits, len(targets)),
            "goal": FOLLOW_UP_GOAL,
            "visits": visits,
            "targets_inspected": len(targets),
            "formula": "follow-up visits recorded / distinct targets inspected in the period (follow-up coverage, goal >= 10%)",
        },
        "referral_closure": {
            "rate": _ratio(len(closed), len(in_period)),
            "referrals": len(in_period),
            "closed": len(closed),
            "formula": "referrals made in the period that are concluded or rejected / referrals made",
        },
    }


def _quarter_of(period: str) -> int | None:
    if "Q" in period:
        return int(period.split("Q")[1])
    if "-" in period:
        return (int(period.split("-")[1]) - 1) // 3 + 1
    return None
