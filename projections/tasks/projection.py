"""Tasks read model: tasks, the targets each current draw selected, assignments and their members.

Rows are rebuilt from the aggregates' own mutators (``projections.aggregate_rows``), so the read model cannot
drift from the domain's rules. Plans are few and read from their aggregates.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from eventsourcing.utils import get_topic
from sqlalchemy.engine import Connection

from domain.planning.rules import parse_period
from domain.tasks.assignment import Assignment
from domain.tasks.task import Task
from projections.aggregate_rows import bars, common_row, fold, replay_columns, upsert

metadata = sa.MetaData()

_AGGREGATES: dict[str, type] = {"task": Task, "assignment": Assignment}


def _tables(md: sa.MetaData, suffix: str) -> dict[str, sa.Table]:
    return {
        "task": sa.Table(
            f"rm_task{suffix}",
            md,
            sa.Column("id", sa.String(36), primary_key=True),
            sa.Column("number", sa.String(16), index=True, nullable=False),
            sa.Column("name", sa.String(300), nullable=False),
            sa.Column("lead", sa.String(32), index=True, nullable=False),
            sa.Column("departments", sa.String(400), nullable=False),  # "|a|b|"
            sa.Column("year", sa.Integer, index=True, nullable=False),
            sa.Column("period", sa.String(8), nullable=False),
            sa.Column("quarters", sa.String(60), nullable=False),  # "|2024Q1|"
            sa.Column("category", sa.String(10), nullable=False),
            sa.Column("origin", sa.String(10), nullable=False),
            sa.Column("is_joint", sa.Boolean, nullable=False),
            sa.Column("state", sa.String(12), nullable=False),
            sa.Column("round", sa.Integer, nullable=False),
            sa.Column("teams_done", sa.String(400), nullable=False),  # "|a|": departments with teams
            *replay_columns(),
        ),
        "task_target": sa.Table(
            f"rm_task_target{suffix}",
            md,
            sa.Column("task_id", sa.String(36), primary_key=True),
            sa.Column("target_id", sa.String(36), primary_key=True),
            sa.Column("round", sa.Integer, nullable=False),
            sa.Column("year", sa.Integer, index=True, nullable=False),
            sa.Column("quarters", sa.String(60), nullable=False),
            sa.Column("items", sa.Text, nullable=False),  # "|item|item|"
            sa.Column("off_site_first", sa.Boolean, nullable=False),
            sa.Index(f"ix_rm_task_target_target{suffix}", "target_id", "year"),
        ),
        "assignment": sa.Table(
            f"rm_assignment{suffix}",
            md,
            sa.Column("id", sa.String(36), primary_key=True),
            sa.Column("task_id", sa.String(36), index=True, nullable=False),
            sa.Column("task_ids", sa.String(400), nullable=False),  # "|id|id|": merged visits
            sa.Column("target_id", sa.String(36), index=True, nullable=False),
            sa.Column("lead", sa.String(32), nullable=False),
            sa.Column("departments", sa.String(400), nullable=False),
            sa.Column("period", sa.String(8), index=True, nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("visit_date", sa.String(10)),
            *replay_columns(),
        ),
        "member": sa.Table(
            f"rm_assignment_member{suffix}",
            md,
            sa.Column("assignment_id", sa.String(36), primary_key=True),
            sa.Column("department", sa.String(32), primary_key=True),
            sa.Column("person_id", sa.String(36), primary_key=True),
            sa.Column("role", sa.String(8), nullable=False),  # leader / member / expert
            sa.Column("target_id", sa.String(36), nullable=False),
            sa.Column("period", sa.String(8), nullable=False),
            sa.Column("task_id", sa.String(36), index=True, nullable=False),
            sa.Index(f"ix_rm_assignment_member_person{suffix}", "person_id"),
            sa.Index(f"ix_rm_assignment_member_target{suffix}", "target_id", "period"),
        ),
    }


TABLES = _tables(metadata, "")


def quarters_of(period: str) -> list[str]:
    return [q.text for q in parse_period(period).quarters()]


class TaskBoardProjection:
    """Keeps ``rm_task``, ``rm_task_target``, ``rm_assignment`` and ``rm_assignment_member`` in step."""

    name = "tasks"
    topics = tuple(sorted({get_topic(cls).partition(":")[0] + ":" for cls in _AGGREGATES.values()}))

    def __init__(self, suffix: str = "") -> None:
        self.suffix = suffix
        if suffix:
            self.metadata = sa.MetaData()
            self.tables = _tables(self.metadata, suffix)
        else:
            self.metadata, self.tables = metadata, TABLES

    def apply_batch(self, conn: Connection, events: Sequence[tuple[int, Any]]) -> None:
        states = fold(conn, events, _AGGREGATES, lambda kind: self.tables[kind])
        for kind, agg, position, first in states.values():
            if kind == "task":
                self._write_task(conn, agg, position, first)
            else:
                self._write_assignment(conn, agg, position, first)

    def _write_task(self, conn: Connection, task: Task, position: int, first: int | None) -> None:
        quarters = quarters_of(task.period)
        row = {
            **common_row(task, position),
            "number": task.number,
            "name": task.name,
            "lead": task.lead,
            "departments": bars(task.departments),
            "year": task.year,
            "period": task.period,
            "quarters": bars(quarters),
            "category": task.category,
            "origin": task.origin,
            "is_joint": task.is_joint,
            "state": task.state,
            "round": task.round,
            "teams_done": bars(sorted(task.teams)),
        }
        upsert(conn, self.tables["task"], row, first)
        tt = self.tables["task_target"]
        # The current draw's selection, replaced wholesale: a withdrawn round leaves nothing behind.
        conn.execute(tt.delete().where(tt.c.task_id == str(task.id)))
        if task.draw:
            items = bars(task.items)
            off_site = set(task.draw["off_site_first"])
            rows = [
                {
                    "task_id": str(task.id),
                    "target_id": t,
                    "round": task.round,
                    "year": task.year,
                    "quarters": bars(quarters),
                    "items": items,
                    "off_site_first": t in off_site,
                }
                for t in task.selected
            ]
            if rows:
                conn.execute(tt.insert(), rows)

    def _write_assignment(self, conn: Connection, a: Assignment, position: int, first: int | None) -> None:
        row = {
            **common_row(a, position),
            "task_id": a.task_id,
            "task_ids": bars([str(t["task_id"]) for t in a.tasks]),
            "target_id": a.target_id,
            "lead": a.lead,
            "departments": bars(a.departments),
            "period": a.period,
            "state": a.state,
            "visit_date": a.visit_date,
        }
        upsert(conn, self.tables["assignment"], row, first)
        m = self.tables["member"]
        conn.execute(m.delete().where(m.c.assignment_id == str(a.id)))
        if a.state in ("merged", "cancelled"):
            return
        rows = []
        for dept, team in sorted(a.teams.items()):
            for person in team["members"]:
                rows.append(
                    {
                        "person_id": person,
                        "role": "leader" if person == team["leader"] else "member",
                        "department": dept,
                    }
                )
            for person in team.get("experts", []):
                rows.append({"person_id": person, "role": "expert", "department": dept})
        if rows:
            conn.execute(
                m.insert(),
                [
                    {
                        **r,
                        "assignment_id": str(a.id),
                        "target_id": a.target_id,
                        "period": a.period,
                        "task_id": a.task_id,
                    }
                    for r in rows
                ],
            )
