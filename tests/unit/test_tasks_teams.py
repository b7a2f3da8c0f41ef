"""The inputs of a team draw: the visit date, the visits' needs, the staff as the draw reads them, the digest the
event records, and the load cap of a recusal's redraw."""

import datetime as dt
import math
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.draw.matching import ExpertInfo, InspectorInfo
from domain.errors import InvalidInputError
from domain.planning.rules import parse_period
from domain.tasks.teams import (
    expert_fields,
    expert_info,
    inspector_info,
    max_load,
    redraw_day,
    specialties,
    staff_digest,
    team_visit_date,
    visit_needs,
)

PERIODS = st.sampled_from(["2024Q1", "2024Q3", "2024-02", "2024H2", "2024", "2023Q4"])


@given(PERIODS, st.dates(dt.date(2023, 1, 1), dt.date(2025, 12, 31)))
def test_the_default_visit_date_lies_in_the_period(period: str, today: dt.date) -> None:
    p = parse_period(period)
    day = team_visit_date(period, today)
    assert p.start <= day <= p.end
    assert day == (today if p.start <= today <= p.end else p.start)


@given(PERIODS, st.dates(dt.date(2023, 1, 1), dt.date(2025, 12, 31)))
def test_a_given_visit_date_outside_the_period_is_refused(period: str, given_day: dt.date) -> None:
    p = parse_period(period)
    if p.start <= given_day <= p.end:
        assert team_visit_date(period, dt.date(2000, 1, 1), given_day) == given_day
    else:
        with pytest.raises(InvalidInputError) as err:
            team_visit_date(period, dt.date(2000, 1, 1), given_day)
        assert [(x.field, x.rule) for x in err.value.problems] == [("visit_date", "period")]


def test_a_redraw_certifies_on_the_visit_date_else_today() -> None:
    assert redraw_day("2024-05-06", dt.date(2024, 1, 1)) == dt.date(2024, 5, 6)
    assert redraw_day(None, dt.date(2024, 1, 1)) == dt.date(2024, 1, 1)


ITEMS: dict[str, dict[str, Any]] = {
    "i1": {"name": "废气", "specialty": "air"},
    "i2": {"name": "辐射", "specialty": "radiation", "needs_expert": True},
    "i3": {"name": "危废", "needs_expert": True, "expert_field": "hazardous_waste"},
    "i4": {"name": "噪声"},
}


def test_the_visits_need_the_items_specialties_and_expert_fields() -> None:
    assert specialties(ITEMS) == {"air", "radiation"}
    assert expert_fields(ITEMS) == {"radiation", "hazardous_waste"}
    needs = visit_needs(["t1", "t2"], {"t1": {"county": "获嘉县"}}, ITEMS)
    assert [(n.target_id, n.region) for n in needs] == [("t1", "获嘉县"), ("t2", "")]
    assert all(n.specialties == {"air", "radiation"} for n in needs)


def test_the_staff_as_the_draw_reads_it() -> None:
    info = inspector_info("e1", "hj-eeb", {"certificate_expiry": "2026-01-31", "specialties": ["air"],
                                           "conflicts": ["t9"]})
    assert info == InspectorInfo("e1", "hj-eeb", dt.date(2026, 1, 31), frozenset({"air"}), "", True,
                                 frozenset({"t9"}))
    assert inspector_info("e2", "hj-eeb", {"active": False}).certificate_expiry is None
    assert expert_info("x1", "hj-eeb", {"field": "radiation"}) == ExpertInfo("x1", "hj-eeb", "radiation")


STAFF = st.lists(st.builds(InspectorInfo, id=st.text("abc123", min_size=1, max_size=4), department=st.just("d"),
                           certificate_expiry=st.none() | st.dates(), specialties=st.frozensets(st.text("xy"))),
                 unique_by=lambda i: i.id, max_size=6)


@given(STAFF, st.randoms())
def test_the_staff_digest_does_not_depend_on_the_order_read(
    staff: list[InspectorInfo], rnd: random.Random
) -> None:
    shuffled = list(staff)
    rnd.shuffle(shuffled)
    expert = [ExpertInfo("z", "d", "f")]
    assert staff_digest(staff, expert) == staff_digest(shuffled, expert)
    assert len(staff_digest(staff, [])) == 64


def test_the_staff_digest_changes_with_the_staff() -> None:
    a = InspectorInfo("e1", "d", dt.date(2026, 1, 1))
    assert staff_digest([a], []) != staff_digest([InspectorInfo("e1", "d", dt.date(2026, 1, 2))], [])


@given(st.integers(1, 5), st.integers(-1, 200), st.integers(-1, 40))
def test_the_load_cap_is_the_even_share_rounded_up_plus_one(team: int, visits: int, eligible: int) -> None:
    cap = max_load(team, visits, eligible)
    assert cap == math.ceil(team * max(visits, 1) / max(eligible, 1)) + 1
    assert cap >= 2
