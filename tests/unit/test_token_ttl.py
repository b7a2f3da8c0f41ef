"""Token and session lifetimes: ``30m``, ``8h``, ``90d``, ... at most 366 days, whatever the unit."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.api.auth import MAX_TTL_DAYS, parse_duration

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@given(st.integers(min_value=1, max_value=10**12), st.sampled_from(sorted(UNITS)))
def test_a_lifetime_is_accepted_exactly_when_it_is_at_most_366_days(n: int, unit: str) -> None:
    seconds = n * UNITS[unit]
    if seconds <= MAX_TTL_DAYS * 86400:
        assert parse_duration(f"{n}{unit}") == seconds
    else:
        with pytest.raises(ValueError, match="at most 366d"):
            parse_duration(f"{n}{unit}")


def test_the_bounds() -> None:
    assert parse_duration("366d") == parse_duration("8784h") == 366 * 86400
    for text in ("367d", "8785h", "31622401s", "99999999d"):
        with pytest.raises(ValueError):
            parse_duration(text)
