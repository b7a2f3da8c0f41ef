"""What the API and the use cases read of the tasks read model: a department's tasks and visits, the task-side
KPIs; task numbers, the year's draws, overlapping draws, assignments and their members."""

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain.planning.rules import NOTICE_MIN_JOINT_SHARE, parse_period, percent_text
from projections.aggregate_rows import split_bars
from projections.bulk import plain_batches
from projections.directory.projection import TABLES as DIR
from projections.directory.queries import reading
from projections.execution.projection import TABLES as EXECUTION
from projections.tasks.projection import TABLES

BASELINE_MINIMUM = {"key": Fraction(1, 4), "general": Fraction(1, 20), "special": Fraction(0)}
"""The 2024 notice's minimum ratios per quarter (key_ratio, general_ratio): key >= 25%, general >= 5% (or 6 per
inspector), special set locally."""


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


def task_kpis(
    engine: Engine, department: str, year: int, quarter: int | None = None, *,
    joint_share_goal: Fraction = NOTICE_MIN_JOINT_SHARE, baseline_minimum: Mapping[str, Fraction] | None = None,
) -> dict[str, Any]:
    """Task-side KPIs of a department for a year (or one quarter), each with its formula. ``joint_share_goal`` and
    ``baseline_minimum`` (per supervision class, the per-quarter minimum ratio) come from the deployment's
    configuration (``domain.configuration``; defaults: the 2024 notice's)."""
    minimums = BASELINE_MINIMUM if baseline_minimum is None else baseline_minimum
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
        f = EXECUTION["follow_up"]
        rounds = conn.execute(sa.select(f.c.period, f.c.state_json).where(f.c.department == department)).all()
    tasks = [r for r in rows if _in(r.period, year, quarter)]
    random_tasks = [r for r in tasks if r.origin != "case"]
    overlapping: dict[str, dict[str, int]] = {}  # period -> {"tasks": n, "follow_ups": n}
    for kind, period, state_json in [("tasks", r.period, r.state_json) for r in random_tasks] + [
            ("follow_ups", r.period, r.state_json) for r in rounds if _in(r.period, year, quarter)]:
        if json.loads(state_json).get("overlaps"):
            line = overlapping.setdefault(period, {"tasks": 0, "follow_ups": 0})
            line[kind] += 1
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
        minimum = math.ceil(minimums.get(cls, Fraction(0)) * size) * quarters
        c.update(
            {
                "directory_size": size,
                "baseline_minimum": minimum,
                "against_quota": _ratio(c["drawn"], c["quota"]),
                "against_baseline_minimum": _ratio(c["drawn"], minimum),
                "meets_baseline_minimum": c["drawn"] >= minimum,
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
            "goal": float(joint_share_goal),
            "meets_goal": share is not None and Fraction(joint, own + joint) >= joint_share_goal,
            "formula": f"joint / (own + joint) (rule joint_share, goal >= {percent_text(joint_share_goal)})",
        },
        "coverage": {
            "by_class": coverage,
            "formula": "per supervision class: targets drawn in the random tasks the department leads in "
            "the period; against_quota = drawn / the frozen quotas; against_baseline_minimum = drawn "
            "/ (ceil(minimum ratio x targets of the class in the directory) x quarters), the configured "
            "baseline's minimum ratios per quarter (rules key_ratio, general_ratio: "
            + ", ".join(f"{c} {percent_text(r)}" for c, r in sorted(minimums.items()) if r) + ")",
        },
        "declared_overlaps": {
            "tasks": sum(v["tasks"] for v in overlapping.values()),
            "follow_ups": sum(v["follow_ups"] for v in overlapping.values()),
            "by_period": dict(sorted(overlapping.items())),
            "formula": "random tasks of the department (lead or participant) and its follow-up rounds (回访) in the "
            "period that were drawn over ground another current draw covers, declared with a reason "
            "(`overlaps` / `overlap_reason`); by_period: per task or round period",
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


# -- tasks -------------------------------------------------------------------------------------------------
def _task_summary(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "number": r.number,
        "name": r.name,
        "lead": r.lead,
        "departments": split_bars(r.departments),
        "year": r.year,
        "period": r.period,
        "category": r.category,
        "origin": r.origin,
        "is_joint": bool(r.is_joint),
        "state": r.state,
        "round": r.round,
        "teams_drawn": split_bars(r.teams_done),
        "overlaps": _declared(r.state_json),
    }


def _declared(state_json: str) -> list[dict[str, str]]:
    """The overlapping tasks a task declared when it was opened (id, number, name, period)."""
    return list(json.loads(state_json).get("overlaps") or [])


def task_summaries(engine: Engine, department: str, year: int) -> list[dict[str, Any]]:
    """The tasks of a year the department leads or joins, oldest first."""
    t = TABLES["task"]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t)
            .where(t.c.year == year, t.c.departments.like(f"%|{department}|%"))
            .order_by(t.c.first_position)
        ).all()
    return [_task_summary(r) for r in rows]


def list_tasks(
    engine: Engine, *, department: str | None, year: int | None, limit: int, offset: int
) -> dict[str, Any]:
    """A page of tasks (of a department, of a year, when given), oldest first, with the total."""
    t = TABLES["task"]
    query = sa.select(t)
    if department is not None:
        query = query.where(t.c.departments.like(f"%|{department}|%"))
    if year is not None:
        query = query.where(t.c.year == year)
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
        rows = conn.execute(query.order_by(t.c.first_position).limit(limit).offset(offset)).all()
    return {"total": total, "limit": limit, "offset": offset, "items": [_task_summary(r) for r in rows]}


def entry_tasks(engine: Engine, lead: str, year: int, entry: str) -> dict[str, str]:
    """The tasks the department opened from one plan entry: id -> task number."""
    t = TABLES["task"]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.id, t.c.number, t.c.state_json).where(t.c.lead == lead, t.c.year == year)).all()
    return {r.id: r.number for r in rows if json.loads(r.state_json).get("plan_entry") == entry}


def task_numbers(engine: Engine, lead: str, year: int) -> list[str]:
    """Numbers of the tasks the department led in the year."""
    t = TABLES["task"]
    with engine.connect() as conn:
        return list(conn.execute(sa.select(t.c.number).where(t.c.lead == lead, t.c.year == year)).scalars())


def current_draws(conn: Connection, year: int) -> list[tuple[str, int, list[str], list[str]]]:
    """``(task id, year, items, selected target ids)`` of every task's current draw in the year."""
    tt = TABLES["task_target"]
    draws: dict[str, tuple[str, int, list[str], list[str]]] = {}
    query = sa.select(tt.c.task_id, tt.c.year, tt.c["items"], tt.c.target_id).where(tt.c.year == year)
    for r in conn.execute(query):
        entry = draws.setdefault(r.task_id, (r.task_id, r.year, split_bars(r.items), []))
        entry[3].append(r.target_id)
    return list(draws.values())


def current_draws_until(
    conn: Connection, year: int, position: int, items: Sequence[str] | None = None
) -> list[tuple[str, int, list[str], list[str]]]:
    """:func:`current_draws` of the tasks whose last event is at or before ``position`` (each such task's row is
    its state at ``position``; a task changed after it is folded from the log by the caller); with ``items``,
    only the draws for one of them (a pool's yearly exclusion looks at no other: a province's year holds
    hundreds of thousands of drawn targets)."""
    tt, t = TABLES["task_target"], TABLES["task"]
    draws: dict[str, tuple[str, int, list[str], list[str]]] = {}
    query = (sa.select(tt.c.task_id, tt.c.year, tt.c["items"], tt.c.target_id)
             .join(t, t.c.id == tt.c.task_id)
             .where(tt.c.year == year, t.c.position <= position))
    if items is not None:
        # Every row of a task's draw lists the same items: the year's tasks (a few thousand rows) are matched by
        # their first row (one probe of the primary key each), and only their rows are read, where a filter on
        # every row would read all of the year's drawn targets (a province's: millions after a few quarters).
        first = sa.select(tt.c["items"]).where(tt.c.task_id == t.c.id).limit(1).correlate(t).scalar_subquery()
        tasks_of_items = sa.select(t.c.id).where(
            t.c.year == year, t.c.position <= position,
            sa.or_(sa.false(), *(first.contains(f"|{i}|", autoescape=True) for i in items)),
        )
        query = query.where(tt.c.task_id.in_(tasks_of_items))
    for rows in plain_batches(conn, query, 10_000):  # a year's draws of a province: 100,000s of rows
        for task_id, year, listed, target_id in rows:
            entry = draws.get(task_id)
            if entry is None:
                entry = draws[task_id] = (task_id, year, split_bars(listed), [])
            entry[3].append(target_id)
    return list(draws.values())


def overlapping_draws(
    engine: Engine, task_id: str, year: int, quarters: Sequence[str], targets: Sequence[str]
) -> list[dict[str, Any]]:
    """``{target_id, task_id, number, lead, round}`` of another task's current draw of the year, in one of the
    quarters, that selected one of ``targets``."""
    tt, t = TABLES["task_target"], TABLES["task"]
    base = (
        sa.select(tt.c.task_id, tt.c.target_id, t.c.number, t.c.lead, t.c.round)
        .join(t, t.c.id == tt.c.task_id)
        .where(
            tt.c.year == year,
            tt.c.task_id != task_id,
            sa.or_(*[tt.c.quarters.like(f"%|{q}|%") for q in quarters]),
        )
    )
    rows: list[Any] = []
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":  # one query: the index on (target_id, year) per selected id
            mine = sa.cast(sa.bindparam("mine", list(targets)), sa.ARRAY(sa.String))
            query = base.where(tt.c.target_id == sa.func.any(mine))
            rows = list(conn.execute(query).all())
        else:
            for start in range(0, len(targets), 500):
                rows += conn.execute(base.where(tt.c.target_id.in_(targets[start : start + 500]))).all()
    return [
        {"target_id": r.target_id, "task_id": r.task_id, "number": r.number, "lead": r.lead, "round": r.round}
        for r in rows
    ]


# -- assignments and their members -------------------------------------------------------------------------
def has_merged_assignment(engine: Engine, task_id: str) -> bool:
    """Whether one of the task's visits was merged into another task's."""
    t = TABLES["assignment"]
    with engine.connect() as conn:
        return (
            conn.execute(
                sa.select(sa.func.count()).select_from(t).where(t.c.task_id == task_id, t.c.state == "merged")
            ).scalar_one()
            > 0
        )


def assignments_with_task(engine: Engine, task_id: str) -> list[str]:
    """Ids of the assignments (visits) that carry the task, merged ones included."""
    t = TABLES["assignment"]
    with engine.connect() as conn:
        return list(conn.execute(sa.select(t.c.id).where(t.c.task_ids.like(f"%|{task_id}|%"))).scalars())


def previous_inspectors(
    engine: Engine | Connection, department: str, period: str, targets: Iterable[str]
) -> dict[str, set[str]]:
    """Per target of ``targets``: the department's inspectors (not experts) on its visit of ``period``."""
    m = TABLES["member"]
    out: dict[str, set[str]] = {}
    wanted = set(targets)
    with reading(engine) as conn:
        rows = conn.execute(
            sa.select(m.c.target_id, m.c.person_id).where(
                m.c.period == period, m.c.department == department, m.c.role != "expert"
            )
        ).all()
    for r in rows:
        if r.target_id in wanted:
            out.setdefault(r.target_id, set()).add(r.person_id)
    return out


def member_loads(engine: Engine | Connection, task_id: str, department: str) -> dict[str, int]:
    """Per inspector of the department (not experts): the task's visits they are on."""
    m = TABLES["member"]
    with reading(engine) as conn:
        rows = conn.execute(
            sa.select(m.c.person_id, sa.func.count())
            .where(m.c.task_id == task_id, m.c.department == department, m.c.role != "expert")
            .group_by(m.c.person_id)
        ).all()
    return {r[0]: int(r[1]) for r in rows}


def visited_targets(conn: Connection, task_id: str, people: Iterable[str]) -> set[str]:
    """Targets of the task's visits whose teams have one of ``people``."""
    m = TABLES["member"]
    query = sa.select(m.c.target_id).where(m.c.task_id == task_id, m.c.person_id.in_(list(people)))
    return set(conn.execute(query).scalars())


def assignments_of(conn: Connection, people: Iterable[str]) -> list[dict[str, Any]]:
    """The visits whose teams have one of ``people``, by visit date, with their role on each."""
    m, ta = TABLES["member"], TABLES["assignment"]
    rows = conn.execute(
        sa.select(ta.c.id, ta.c.task_id, ta.c.target_id, ta.c.period, ta.c.state, ta.c.visit_date, m.c.role)
        .join(m, m.c.assignment_id == ta.c.id)
        .where(m.c.person_id.in_(list(people)))
        .order_by(ta.c.visit_date)
    ).all()
    return [
        {
            "id": r.id,
            "task_id": r.task_id,
            "target_id": r.target_id,
            "period": r.period,
            "state": r.state,
            "visit_date": r.visit_date,
            "role": r.role,
        }
        for r in rows
    ]
