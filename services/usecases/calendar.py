"""The official working-day calendar: the package's years with the schedules an administrator loads on top;
publication deadlines count its working days."""

import datetime as dt
import uuid
from dataclasses import replace
from typing import Any

from sqlalchemy.engine import Engine

from domain.calendar import (
    CALENDAR_ID,
    CalendarSchedules,
    WorkCalendar,
    schedule_from_csv,
    schedule_from_json,
)
from domain.errors import FieldProblem, InvalidInputError
from domain.execution.inspection import Inspection
from domain.execution.readers import require_calendar_admin
from projections.execution import queries as execution
from projections.runner import ProjectionRunner
from services.application import CommandContext, DualRandom
from services.usecases.common import EXECUTION_READ_MODELS, Done, UseCase


class Calendar(UseCase):
    """The calendar and the publication deadline (``working_days`` working days after approval)."""

    read_models = EXECUTION_READ_MODELS

    def __init__(self, app: DualRandom, engine: Engine, runner: ProjectionRunner, working_days: int) -> None:
        super().__init__(app, engine, runner)
        self.working_days = working_days

    def calendar(self) -> WorkCalendar:
        """The official calendar: the package's years with the administrator's loaded schedules on top."""
        schedules = self.find(CalendarSchedules, CALENDAR_ID)
        return schedules.calendar() if schedules is not None else WorkCalendar.official()

    def calendar_view(self) -> dict[str, Any]:
        schedules = self.find(CalendarSchedules, CALENDAR_ID)
        cal = schedules.calendar() if schedules is not None else WorkCalendar.official()
        return {
            "covered_years": list(cal.covered_years), "working_days": self.working_days,
            "loaded": [s.as_dict() for s in schedules.schedules()] if schedules is not None else [],
            "version": schedules.version if schedules is not None else 0,
        }

    def deadline(self, start: dt.date, working_days: int | None = None) -> dict[str, Any]:
        return self.calendar().add_working_days(start, self.working_days if working_days is None
                                                else working_days).as_dict()

    def load_schedule(self, ctx: CommandContext, content: str | bytes, fmt: str, source: str = "") -> Done:
        """An administrator loads a year's official schedule (JSON or CSV); the provisional deadlines that
        counted that year are recomputed in the same transaction."""
        require_calendar_admin(ctx.actor)
        text = content.decode("utf-8-sig") if isinstance(content, bytes) else content
        if fmt == "json":
            schedule = schedule_from_json(text)
            if source and not schedule.source:
                schedule = replace(schedule, source=source)
        elif fmt == "csv":
            schedule = schedule_from_csv(text, source)
        else:
            raise InvalidInputError([FieldProblem("format", "choice", "must be json or csv")])
        schedules = self.find(CalendarSchedules, CALENDAR_ID) or CalendarSchedules()
        loaded = schedules.load(schedule)
        cal = schedules.calendar()
        self.fresh()
        ids = execution.provisional_inspections(self.engine, [schedule.year])
        found = self.load_many(Inspection, [uuid.UUID(i) for i in ids]) if ids else {}
        changed = [insp for insp in found.values() if insp.recompute_deadline(cal)]
        position = self.app.record(ctx, "load_calendar_schedule", schedules, *changed)
        return self.done(schedules, position, year=schedule.year, loaded=loaded,
                         recomputed=[{"id": str(i.id), "deadline": i.deadline} for i in changed])
