"""The working-day calendar: holidays and make-up workdays, provisional deadlines, loaded schedules."""

import datetime as dt
import json
import uuid

import pytest
from eventsourcing.application import Application
from hypothesis import given
from hypothesis import strategies as st

from domain.calendar import (
    CALENDAR_ID,
    CalendarSchedules,
    Deadline,
    WorkCalendar,
    YearSchedule,
    schedule_from_csv,
    schedule_from_json,
)
from domain.errors import InvalidInputError

OFFICIAL = WorkCalendar.official()
LAST = OFFICIAL.covered_years[-1]
D = dt.date


def test_approval_on_2024_09_20_gives_2024_10_23_across_national_day_and_make_up_workdays() -> None:
    deadline = OFFICIAL.add_working_days(D(2024, 9, 20), 20)
    assert deadline == Deadline(D(2024, 10, 23), False, D(2024, 9, 20), 20, ())
    # what makes it so: 09-29 (Sunday) and 10-12 (Saturday) are worked, 10-01..10-07 are not
    assert OFFICIAL.is_working_day(D(2024, 9, 29)) and OFFICIAL.is_working_day(D(2024, 10, 12))
    assert not any(OFFICIAL.is_working_day(D(2024, 10, d)) for d in range(1, 8))
    # plain weekdays would have given 2024-10-18
    assert WorkCalendar().add_working_days(D(2024, 9, 20), 20).date == D(2024, 10, 18)


def test_the_day_after_approval_is_working_day_one() -> None:
    assert OFFICIAL.add_working_days(D(2024, 9, 20), 1).date == D(2024, 9, 23)  # Friday -> Monday
    assert OFFICIAL.add_working_days(D(2024, 9, 20), 0).date == D(2024, 9, 20)
    assert OFFICIAL.working_days_between(D(2024, 9, 20), D(2024, 10, 23)) == 20


def test_the_package_covers_2004_to_its_last_year() -> None:
    assert OFFICIAL.covered_years[0] == 2004 and LAST >= 2026
    assert OFFICIAL.covers(2024) and not OFFICIAL.covers(LAST + 1)


def test_a_deadline_past_the_last_covered_year_is_provisional_and_recomputed_when_a_schedule_is_loaded() -> (
    None
):
    start = D(LAST, 12, 20)
    provisional = OFFICIAL.add_working_days(start, 20)
    assert provisional.provisional and provisional.uncovered_years == (LAST + 1,)
    assert provisional.date.year == LAST + 1
    # the next year's schedule: its first week off (at least five weekdays)
    week = [D(LAST + 1, 1, d).isoformat() for d in range(1, 8)]
    schedule = schedule_from_json({"year": LAST + 1, "holidays": week, "workdays": []})
    loaded = OFFICIAL.with_schedule(schedule)
    final = provisional.recompute(loaded)
    assert not final.provisional and final.uncovered_years == ()
    assert final.date > provisional.date and final.date.isoformat() > week[-1]
    assert loaded.working_days_between(start, final.date) == 20


def test_deadline_round_trips_as_json_and_knows_when_it_is_overdue() -> None:
    d = OFFICIAL.add_working_days(D(2024, 9, 20), 20)
    assert Deadline.from_dict(json.loads(json.dumps(d.as_dict()))) == d
    assert not d.is_overdue(D(2024, 10, 23)) and d.is_overdue(D(2024, 10, 24))


def test_bad_working_day_counts_are_refused() -> None:
    for n in (-1, True, 1.5, 10**6):
        with pytest.raises(InvalidInputError) as err:
            OFFICIAL.add_working_days(D(2024, 1, 1), n)  # type: ignore[arg-type]
        assert err.value.problems[0].field == "working_days"


def test_a_schedule_loads_from_json_and_from_csv() -> None:
    text = "\ufeffdate,kind\n2027-01-01,holiday\n2027-02-07,班\n2027-02-08,休\n"
    s = schedule_from_csv(text, source="国办通知")
    assert s == YearSchedule(
        2027, frozenset({D(2027, 1, 1), D(2027, 2, 8)}), frozenset({D(2027, 2, 7)}), "国办通知"
    )
    assert schedule_from_json(json.dumps(s.as_dict())) == s


@pytest.mark.parametrize(
    ("data", "field", "rule"),
    [
        ({"year": 2027, "holidays": ["2026-12-31"], "workdays": []}, "holidays[0]", "year"),
        ({"year": 2027, "holidays": [], "workdays": ["2027-02-08"]}, "workdays[0]", "weekend"),
        ({"year": 2027, "holidays": ["2027-02-07"], "workdays": ["2027-02-07"]}, "workdays", "overlap"),
        ({"year": 2027, "holidays": ["27-1-1"], "workdays": []}, "holidays[0]", "format"),
        ({"year": 1800, "holidays": [], "workdays": []}, "year", "range"),
        ({"year": 2027, "holidays": []}, "workdays", "required"),
        ({"year": 2027, "holidays": [], "workdays": [], "extra": 1}, "extra", "unknown_field"),
    ],
)
def test_a_bad_schedule_is_refused_naming_the_field(data: dict, field: str, rule: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        schedule_from_json(data)
    assert (field, rule) in {(p.field, p.rule) for p in err.value.problems}


def test_a_bad_csv_schedule_is_refused() -> None:
    with pytest.raises(InvalidInputError) as err:
        schedule_from_csv("day,type\n")
    assert err.value.problems[0].rule == "header"
    with pytest.raises(InvalidInputError) as err:
        schedule_from_csv("date,kind\n2027-01-01,maybe\n2028-01-01,holiday\n")
    assert {p.rule for p in err.value.problems} == {"choice"}
    with pytest.raises(InvalidInputError) as err:
        schedule_from_csv("date,kind\n2027-01-01,holiday\n2028-01-01,holiday\n")
    assert {p.rule for p in err.value.problems} == {"one_year"}


def test_loading_a_schedule_is_an_event_and_the_calendar_replays() -> None:
    agg = CalendarSchedules()
    assert agg.id == CALENDAR_ID
    s = schedule_from_json({"year": LAST + 1, "holidays": [f"{LAST + 1}-01-01"], "workdays": []})
    assert agg.load(s) is True and agg.load(s) is False
    corrected = schedule_from_json(
        {"year": LAST + 1, "holidays": [f"{LAST + 1}-01-01", f"{LAST + 1}-01-02"], "workdays": []}
    )
    assert agg.load(corrected) is True
    app: Application[uuid.UUID] = Application()
    app.save(agg)
    events = list(app.events.get(CALENDAR_ID))
    assert [type(e).__name__ for e in events] == ["Created", "ScheduleLoaded", "ScheduleLoaded"]
    assert isinstance(events[2], CalendarSchedules.ScheduleLoaded) and events[2].previous == s.as_dict()
    again: CalendarSchedules = app.repository.get(CALENDAR_ID)
    cal = again.calendar()
    assert cal.covers(LAST + 1) and not cal.is_working_day(D(LAST + 1, 1, 2))
    assert again.schedules() == [corrected]


dates = st.dates(min_value=D(2004, 1, 1), max_value=D(2035, 12, 31))


@given(dates, st.integers(min_value=1, max_value=300))
def test_add_working_days_lands_on_a_working_day_after_the_start(start: dt.date, n: int) -> None:
    d = OFFICIAL.add_working_days(start, n)
    assert d.date > start and OFFICIAL.is_working_day(d.date)
    assert OFFICIAL.working_days_between(start, d.date) == n
    first = start + dt.timedelta(days=1)
    assert d.provisional == any(not OFFICIAL.covers(y) for y in range(first.year, d.date.year + 1))


@given(dates, st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=200))
def test_add_working_days_is_monotone(start: dt.date, a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert OFFICIAL.add_working_days(start, lo).date <= OFFICIAL.add_working_days(start, hi).date
    later = start + dt.timedelta(days=3)
    assert OFFICIAL.add_working_days(start, a).date <= OFFICIAL.add_working_days(later, a).date
