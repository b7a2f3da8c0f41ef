"""The official Chinese working-day calendar (法定节假日 + 调休) and working-day deadlines; pure, no I/O.

A year is *covered* when its schedule is known: the years the ``chinese-calendar`` package ships (a
pure-data library, imported here as data), plus schedules an administrator loads (``ScheduleLoaded``
events of :class:`CalendarSchedules`, parsed from JSON or CSV text by :func:`schedule_from_json` /
:func:`schedule_from_csv`). In a covered year a day is a working day when it is a make-up workday (调休上班),
or a Monday..Friday that is not a holiday. In a year no schedule covers, Monday..Friday count and the
deadline is marked provisional; :meth:`Deadline.recompute` gives the final one once the year is loaded.

Counting rule ("within N working days of approval"): the day of approval is day 0, the next working
day after it is working day 1, and the deadline is working day N (inclusive: publishing on it is in time).
Approval on 2024-09-20 (Friday) with N = 20 gives 2024-10-23 (across National Day 10-01..10-07 and the
make-up workdays 09-29 and 10-12).
"""

import csv
import datetime as dt
import functools
import io
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate, event

from domain.errors import FieldProblem, InvalidInputError

__all__ = [
    "PUBLICATION_WORKING_DAYS",
    "CalendarSchedules",
    "Deadline",
    "WorkCalendar",
    "YearSchedule",
    "official_schedules",
    "schedule_from_csv",
    "schedule_from_json",
]

PUBLICATION_WORKING_DAYS = 20
"""Results are public within 20 working days of approval (configurable by passing another ``n``)."""

MIN_YEAR, MAX_YEAR = 2000, 2100
MAX_WORKING_DAYS = 3650  # a deadline further than ~14 years away is a mistake, not a rule

_HOLIDAY_WORDS = {"holiday", "休", "假", "休息", "节假日", "off"}
_WORKDAY_WORDS = {"workday", "班", "上班", "调休上班", "work", "make-up"}


@dataclass(frozen=True)
class YearSchedule:
    """One year's official schedule.

    ``holidays``: days off (they may include weekend days of a holiday period; harmless).
    ``workdays``: make-up workdays (调休上班), always Saturdays or Sundays.
    ``source``: where it comes from (e.g. 国办发明电〔2026〕x号, or ``chinese-calendar 1.11.0``).
    """

    year: int
    holidays: frozenset[dt.date]
    workdays: frozenset[dt.date]
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (also the loading format, see :func:`schedule_from_json`)."""
        return {
            "year": self.year,
            "holidays": sorted(d.isoformat() for d in self.holidays),
            "workdays": sorted(d.isoformat() for d in self.workdays),
            "source": self.source,
        }


@dataclass(frozen=True)
class Deadline:
    """A working-day deadline: ``start`` + ``working_days`` working days = ``date``.

    ``provisional``: some day counted lies in a year no schedule covers (weekdays were counted there);
    ``uncovered_years`` names those years. Recompute with :meth:`recompute` when a schedule is loaded.
    """

    date: dt.date
    provisional: bool
    start: dt.date
    working_days: int
    uncovered_years: tuple[int, ...] = ()

    def recompute(self, calendar: "WorkCalendar") -> "Deadline":
        return calendar.add_working_days(self.start, self.working_days)

    def is_overdue(self, today: dt.date) -> bool:
        """True from the day after the deadline on."""
        return today > self.date

    def as_dict(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat(),
            "provisional": self.provisional,
            "start": self.start.isoformat(),
            "working_days": self.working_days,
            "uncovered_years": list(self.uncovered_years),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Deadline":
        return cls(
            date=dt.date.fromisoformat(data["date"]),
            provisional=bool(data["provisional"]),
            start=dt.date.fromisoformat(data["start"]),
            working_days=int(data["working_days"]),
            uncovered_years=tuple(int(y) for y in data.get("uncovered_years", ())),
        )


@dataclass(frozen=True)
class WorkCalendar:
    """Working days from per-year schedules; immutable (``with_schedule`` returns a new calendar)."""

    schedules: Mapping[int, YearSchedule] = field(default_factory=dict)

    @classmethod
    def official(cls, loaded: Iterable[YearSchedule] = ()) -> "WorkCalendar":
        """The ``chinese-calendar`` package's years, then ``loaded`` schedules on top (later wins)."""
        cal = cls(official_schedules())
        for s in loaded:
            cal = cal.with_schedule(s)
        return cal

    @property
    def covered_years(self) -> tuple[int, ...]:
        return tuple(sorted(self.schedules))

    def covers(self, year: int) -> bool:
        return year in self.schedules

    def with_schedule(self, schedule: YearSchedule) -> "WorkCalendar":
        return WorkCalendar({**self.schedules, schedule.year: schedule})

    def is_working_day(self, day: dt.date) -> bool:
        """Official working day; in an uncovered year, Monday..Friday."""
        s = self.schedules.get(day.year)
        if s is not None:
            if day in s.workdays:
                return True
            if day in s.holidays:
                return False
        return day.weekday() < 5

    def add_working_days(self, start: dt.date, n: int) -> Deadline:
        """The ``n``-th working day after ``start`` (``start`` is day 0; ``n == 0`` gives ``start``)."""
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_WORKING_DAYS:
            raise InvalidInputError(
                [FieldProblem("working_days", "range", f"must be a whole number 0..{MAX_WORKING_DAYS}")]
            )
        if not isinstance(start, dt.date) or isinstance(start, dt.datetime):
            raise InvalidInputError([FieldProblem("start", "type", "must be a date")])
        day, left = start, n
        uncovered: set[int] = set()
        if left and start > dt.date.max - dt.timedelta(days=3 * left + 30):  # far more than n working days
            raise InvalidInputError(
                [FieldProblem("start", "range", f"{n} working days after {start} fall after {dt.date.max}")]
            )
        while left:
            day += dt.timedelta(days=1)
            if not self.covers(day.year):
                uncovered.add(day.year)
            if self.is_working_day(day):
                left -= 1
        return Deadline(day, bool(uncovered), start, n, tuple(sorted(uncovered)))

    def working_days_between(self, start: dt.date, end: dt.date) -> int:
        """Working days in ``(start, end]`` (negative when ``end`` is before ``start``)."""
        if end < start:
            return -self.working_days_between(end, start)
        count, day = 0, start
        while day < end:
            day += dt.timedelta(days=1)
            count += self.is_working_day(day)
        return count


def official_schedules() -> dict[int, YearSchedule]:
    """The years the ``chinese-calendar`` package ships, as schedules."""
    return dict(_official_schedules())


@functools.cache
def _official_schedules() -> dict[int, YearSchedule]:
    import chinese_calendar  # pure data; imported lazily so importing this module stays cheap

    by_year: dict[int, tuple[set[dt.date], set[dt.date]]] = {}
    for d in chinese_calendar.holidays:
        by_year.setdefault(d.year, (set(), set()))[0].add(d)
    for d in chinese_calendar.workdays:
        by_year.setdefault(d.year, (set(), set()))[1].add(d)
    source = f"chinese-calendar {chinese_calendar.__version__}"
    return {y: YearSchedule(y, frozenset(h), frozenset(w), source) for y, (h, w) in sorted(by_year.items())}


# -- loading a schedule ---------------------------------------------------------------------------------
def _date(problems: list[FieldProblem], fld: str, value: Any) -> dt.date | None:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        problems.append(FieldProblem(fld, "format", f"{value!r} is not a date YYYY-MM-DD"))
        return None


def validate_schedule(
    year: Any, holidays: Iterable[Any], workdays: Iterable[Any], source: Any = ""
) -> YearSchedule:
    """A checked schedule: every date in ``year``, none both a holiday and a workday, workdays on weekends."""
    problems: list[FieldProblem] = []
    if isinstance(year, bool) or not isinstance(year, int) or not MIN_YEAR <= year <= MAX_YEAR:
        raise InvalidInputError([FieldProblem("year", "range", f"must be a year {MIN_YEAR}..{MAX_YEAR}")])
    if not isinstance(source, str) or len(source) > 300:
        problems.append(FieldProblem("source", "max_length", "must be text of at most 300 characters"))
    out: dict[str, set[dt.date]] = {"holidays": set(), "workdays": set()}
    for name, values in (("holidays", holidays), ("workdays", workdays)):
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            problems.append(FieldProblem(name, "type", "must be a list of dates"))
            continue
        for i, raw in enumerate(values):
            d = _date(problems, f"{name}[{i}]", raw)
            if d is None:
                continue
            if d.year != year:
                problems.append(FieldProblem(f"{name}[{i}]", "year", f"{d} is not in {year}"))
            elif name == "workdays" and d.weekday() < 5:
                problems.append(
                    FieldProblem(
                        f"{name}[{i}]", "weekend", f"{d} is a weekday: make-up workdays are weekends"
                    )
                )
            out[name].add(d)
    both = sorted(out["holidays"] & out["workdays"])
    if both:
        problems.append(
            FieldProblem("workdays", "overlap", "both holiday and workday: " + ", ".join(map(str, both)))
        )
    if problems:
        raise InvalidInputError(problems)
    return YearSchedule(year, frozenset(out["holidays"]), frozenset(out["workdays"]), str(source).strip())


def schedule_from_json(data: str | bytes | Mapping[str, Any]) -> YearSchedule:
    """Parse ``{"year": 2027, "holidays": ["2027-01-01", ...], "workdays": ["2027-02-06", ...],
    "source": "国务院办公厅关于2027年部分节假日安排的通知"}`` (``source`` optional)."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise InvalidInputError([FieldProblem("schedule", "json", f"is not JSON: {exc}")]) from None
    if not isinstance(data, Mapping):
        raise InvalidInputError([FieldProblem("schedule", "type", "must be a JSON object")])
    unknown = [k for k in data if k not in ("year", "holidays", "workdays", "source")]
    if unknown:
        raise InvalidInputError(
            [FieldProblem(k, "unknown_field", "is not a field of a schedule") for k in unknown]
        )
    missing = [k for k in ("year", "holidays", "workdays") if k not in data]
    if missing:
        raise InvalidInputError([FieldProblem(k, "required", "is required") for k in missing])
    return validate_schedule(data["year"], data["holidays"], data["workdays"], data.get("source", ""))


def schedule_from_csv(text: str, source: str = "") -> YearSchedule:
    """Parse CSV text with a header ``date,kind``: one row per day, kind ``holiday`` (休) or ``workday`` (班).

    All dates must be in one year. A UTF-8 BOM is accepted.
    """
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    rows = [r for r in reader if any(c.strip() for c in r)]
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["date", "kind"]:
        raise InvalidInputError([FieldProblem("schedule", "header", "the first row must be: date,kind")])
    problems: list[FieldProblem] = []
    holidays: list[str] = []
    workdays: list[str] = []
    for n, row in enumerate(rows[1:], start=2):
        day, kind = [*row, "", ""][:2]
        word = kind.strip().lower()
        if word in _HOLIDAY_WORDS:
            holidays.append(day.strip())
        elif word in _WORKDAY_WORDS:
            workdays.append(day.strip())
        else:
            problems.append(
                FieldProblem("kind", "choice", f"{kind!r} is not holiday (休) or workday (班)", n)
            )
    years: set[int] = set()
    for raw in holidays + workdays:
        try:
            years.add(dt.date.fromisoformat(raw).year)
        except ValueError:
            problems.append(FieldProblem("date", "format", f"{raw!r} is not a date YYYY-MM-DD"))
    if not problems and len(years) != 1:
        problems.append(FieldProblem("date", "one_year", "the rows must hold the dates of exactly one year"))
    if problems:
        raise InvalidInputError(problems)
    return validate_schedule(years.pop(), holidays, workdays, source)


# -- the administrator's schedules, as events ---------------------------------------------------------
CALENDAR_ID = uuid.uuid5(uuid.UUID("6f1c2d1e-3b0a-5c8e-9d7f-2a4b6c8d0e1f"), "calendar:official")


class CalendarSchedules(Aggregate):
    """The schedules an administrator loaded (one aggregate per deployment, id ``CALENDAR_ID``).

    ``loaded`` maps a year to its schedule's JSON form; loading a year again replaces it (the event keeps
    the previous one). :meth:`calendar` is the package's years with the loaded ones on top.
    """

    KIND: ClassVar[str] = "calendar_schedules"

    loaded: dict[int, dict[str, Any]]

    @property
    def department(self) -> str:
        """Events' ``owner``: the schedules are the whole deployment's."""
        return "shared"

    class Created(Aggregate.Created):
        pass

    class ScheduleLoaded(Aggregate.Event):
        year: int
        holidays: list[str]
        workdays: list[str]
        source: str
        previous: dict[str, Any] | None

    @staticmethod
    def create_id() -> uuid.UUID:
        return CALENDAR_ID

    @event(Created)
    def __init__(self) -> None:
        self.loaded = {}

    def load(self, schedule: YearSchedule) -> bool:
        """Record a year's schedule; False (no event) when it equals the one already loaded."""
        if not isinstance(schedule, YearSchedule):
            raise InvalidInputError([FieldProblem("schedule", "type", "must be a YearSchedule")])
        data = schedule.as_dict()
        if self.loaded.get(schedule.year) == data:
            return False
        self._load(
            year=schedule.year,
            holidays=data["holidays"],
            workdays=data["workdays"],
            source=data["source"],
            previous=self.loaded.get(schedule.year),
        )
        return True

    def schedules(self) -> list[YearSchedule]:
        return [
            validate_schedule(y, d["holidays"], d["workdays"], d["source"])
            for y, d in sorted(self.loaded.items())
        ]

    def calendar(self) -> WorkCalendar:
        return WorkCalendar.official(self.schedules())

    @event(ScheduleLoaded)
    def _load(
        self,
        year: int,
        holidays: list[str],
        workdays: list[str],
        source: str,
        previous: dict[str, Any] | None,
    ) -> None:
        self.loaded[year] = {
            "year": year,
            "holidays": list(holidays),
            "workdays": list(workdays),
            "source": source,
        }
