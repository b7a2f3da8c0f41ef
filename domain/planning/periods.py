"""Period arithmetic beyond ``rules.Period``: the period before, the quarter of a day, shared quarters."""

import datetime as dt

from domain.errors import InvalidInputError
from domain.planning.rules import Period, parse_period


def previous_period(text: str) -> str:
    """The period before ``text`` of the same kind (2024Q1 -> 2023Q4, 2024-01 -> 2023-12, 2024 -> 2023)."""
    p = parse_period(text)
    if p.index > 1:
        return Period(p.year, p.kind, p.index - 1).text
    return Period(p.year - 1, p.kind, p.periods_in_year).text


def is_period(value: object) -> bool:
    """Whether ``value`` is a period text (``2024Q1``, ``2024-03``, ``2024H1``, ``2024``)."""
    try:
        parse_period(value)  # type: ignore[arg-type]
        return True
    except (InvalidInputError, AttributeError):
        return False


def quarter_of(day: dt.date) -> str:
    """The quarter ``day`` lies in, as a period text (2024-08-15 -> ``2024Q3``)."""
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def quarters(period: str) -> list[str]:
    """The quarters a period overlaps, as period texts (``2024H1`` -> ``2024Q1``, ``2024Q2``)."""
    return [q.text for q in parse_period(period).quarters()]


def share_a_quarter(a: str, b: str) -> bool:
    """Whether two periods overlap at least one quarter (a month and the quarter it lies in do)."""
    return bool(set(quarters(a)) & set(quarters(b)))
