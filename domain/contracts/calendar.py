"""Messages for the working-day calendar (the schedules an administrator loaded).

Started from ``python -m services.cli.contracts scaffold``: the fields of each event, typed as in the domain.
"""

from typing import Any

from domain.calendar import CalendarSchedules
from domain.contracts.base import Message, contract


@contract(CalendarSchedules.Created)
class CalendarSchedulesCreatedV1(Message, frozen=True):
    pass


@contract(CalendarSchedules.ScheduleLoaded)
class CalendarSchedulesScheduleLoadedV1(Message, frozen=True):
    year: int
    holidays: list[str]
    workdays: list[str]
    source: str
    previous: dict[str, Any] | None
