"""What the API reads of the tasks read model: a department's tasks and visits, and the task-side KPIs."""

import json
import math
from collections.abc import Iterable
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from domain.planning.rules import SEED_MIN_JOINT_SHARE, parse_period
from projections.aggregate_rows import split_bars
from projections.directory.projection import TABLES as DIR
from projections.tasks.projection import TABLES

SEED_MINIMUM = {"key": Fraction(1, 4), "general": Fraction(1, 20), "special": Fraction(0)}
"""S3 per quarter: key >= 25%, general >= 5% (or 6 per inspector), special set locally."""


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def department_tasks(engine: Engine, department: str, year: int | None = None) -> list[dict[str, Any]]:
    """Tasks the department leads or joins, newest last."""
    t = TABLES["task"]
    query = sa.select(t).where(t.c.departments.like(f"%|{department}|%"))
    if year is not None:
        query = query.where(t.c.year == year)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(t.c.first_position)).all()
    return [
        {
            "id": r.id,
            "number": r.number,
            "name": r.name,
            "lead": r.lead,
            "role": "lead" if r.lead == department else "participant",
            "departments": split_bars(r.departments),
            "period": r.period,
            "origin": r.origin,
            "is_joint": bool(r.is_joint),
            "state": r.state,
            "teams_drawn": department in split_bars(r.teams_done),
        }
        for r in rows
    ]


def inspector_visits(engine: Engine, department: str) -> list[dict[str, Any]]:
    """Per inspector of the department, the live visits they are on, with status and visit (due) date."""
    m, a = TABLES["member"], TABLES["assignment"]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                m.c.person_id,
                m.c.role,
                a.c.id,
                a.c.target_id,
                a.c.task_id,
                a.c.state,
                a.c.visit_date,
                a.c.period,
            )
            .join(a, a.c.id == m.c.assignment_id)
            .where(m.c.department == department, m.c.role != "expert")
            .order_by(m.c.person_id, a.c.visit_date, a.c.id)
        ).all()
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r.person_id, []).append(
            {
                "assignment_id": r.id,
                "target_id": r.target_id,
                "task_id": r.task_id,
                "role": r.role,
                "state": r.state,
                "visit_date": r.visit_date,
                "period": r.period,
            }
        )
    return [{"inspector_id": k, "visits": v} for k, v in out.items()]


def _in(period: str, year: int, quarter: int | None) -> bool:
    p = parse_period(period)
    if p.year != year:
        return False
    return quarter is None or any(q.index == quarter for q in p.quarters())


def task_kpis(engine: Engine, department: str, year: int, quarter: int | None = None) -> dict[str, Any]:
    """Task-side KPIs of a department for a year (or one quarter), each with its formula."""
    t = TABLES["task"]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                t.c.id, t.c.period, t.c.origin, t.c.is_joint, t.c.lead, t.c.state, t.c.state_json
            ).where(t.c.year == year, t.c.departments.like(f"%|{department}|%"))
        ).all()
        inspectors = int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(DIR["inspector"])
                .where(DIR["inspector"].c.owner == department, DIR["inspector"].c.active.is_(True))
            ).scalar_one()
        )
        directory = _directory_sizes(conn)
        visits = _member_visits(conn, department, year, quarter)
    tasks = [r for r in rows if _in(r.period, year, quarter)]
    random_tasks = [r for r in tasks if r.origin != "case"]
    own = sum(1 for r in random_tasks if not r.is_joint)
    joint = sum(1 for r in random_tasks if r.is_joint)
    share = _ratio(joint, own + joint)
    coverage: dict[str, dict[str, Any]] = {}
    for r in random_tasks:
        if r.lead != department:
            continue  # the lead draws the targets: coverage counts where the department drew
        state = json.loads(r.state_json)
        record = (state.get("draw") or {}).get("record") or {}
        frozen = state.get("frozen") or {}
        for stratum, line in (frozen.get("strata") or {}).items():
            cls = stratum.split("/")[0]
            c = coverage.setdefault(cls, {"drawn": 0, "quota": 0})
            c["quota"] += int(line.get("quota", 0))
            drawn = (record.get("strata") or {}).get(stratum, {}).get("selected", [])
            c["drawn"] += len(drawn)
    quarters = 1 if quarter is not None else 4
    for cls, size in directory.items():
        c = coverage.setdefault(cls, {"drawn": 0, "quota": 0})
        minimum = math.ceil(SEED_MINIMUM.get(cls, Fraction(0)) * size) * quarters
        c.update(
            {
                "directory_size": size,
                "seed_minimum": minimum,
                "against_quota": _ratio(c["drawn"], c["quota"]),
                "against_seed_minimum": _ratio(c["drawn"], minimum),
                "meets_seed_minimum": c["drawn"] >= minimum,
            }
        )
    return {
        "department": department,
        "year": year,
        "quarter": quarter,
        "tasks": {
            "own": own,
            "joint": joint,
            "case_triggered": len(tasks) - len(random_tasks),
            "formula": "own: random tasks of the department alone; joint: random tasks with more than one "
            "department that it leads or joins; case-triggered (个案检查) tasks never count",
        },
        "joint_share": {
            "value": share,
            "goal": float(SEED_MIN_JOINT_SHARE),
            "meets_goal": share is not None and share >= float(SEED_MIN_JOINT_SHARE),
            "formula": "joint / (own + joint) (S7, goal >= 60%)",
        },
        "coverage": {
            "by_class": coverage,
            "formula": "per supervision class: targets drawn in the random tasks the department leads in "
            "the period; against_quota = drawn / the frozen quotas; against_seed_minimum = drawn "
            "/ (ceil(S3 ratio x targets of the class in the directory) x quarters), S3: key 25%, "
            "general 5% per quarter",
        },
        "visits_per_inspector": {
            "value": _ratio(visits, inspectors),
            "visits": visits,
            "inspectors": inspectors,
            "formula": "人均家次: team places of the department's inspectors on live visits in the "
            "period / the department's active inspectors (seed: general >= 6)",
        },
    }


def _directory_sizes(conn: Any) -> dict[str, int]:
    t = DIR["target"]
    rows = conn.execute(
        sa.select(t.c.supervision_class, sa.func.count())
        .where(t.c.status == "active")
        .group_by(t.c.supervision_class)
    ).all()
    return {r[0]: int(r[1]) for r in rows}


def _member_visits(conn: Any, department: str, year: int, quarter: int | None) -> int:
    m, a = TABLES["member"], TABLES["assignment"]
    rows: Iterable[Any] = conn.execute(
        sa.select(a.c.period)
        .join(a, a.c.id == m.c.assignment_id)
        .where(
            m.c.department == department,
            m.c.role != "expert",
            a.c.state.in_(["awaiting_teams", "dispatched"]),
        )
    ).all()
    return sum(1 for r in rows if _in(r.period, year, quarter))
