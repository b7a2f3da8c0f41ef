"""Dates a request gives for the execution steps: parsed with a default, never in the future where recorded as
done, and the pre-visit notice's visit window."""

import datetime as dt
from collections.abc import Mapping
from typing import Any

from domain.errors import FieldProblem, InvalidInputError


def parse_day(value: Any, field: str, default: dt.date) -> dt.date:
    """``value`` as a date (a date or ``YYYY-MM-DD``); ``default`` when missing or empty."""
    if value in (None, ""):
        return default
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InvalidInputError([FieldProblem(field, "format", "must be a date YYYY-MM-DD")]) from None


def past_day(value: Any, field: str, today: dt.date) -> dt.date:
    """The day something was done (default today): refused when after today."""
    day = parse_day(value, field, today)
    if day > today:
        raise InvalidInputError([FieldProblem(field, "not_future", "must not be after today")])
    return day


def pre_visit_dates(
    params: Mapping[str, Any], issued: Mapping[str, Any], visit_date: str | None, today: dt.date
) -> tuple[dt.date | None, dt.date | None, dt.date]:
    """``(visit_from, visit_to, issued_on)`` of the pre-visit notice: each as given, else as issued, else
    ``visit_from`` the visit's date (None while the visit has none: the notice says 另行通知, never a made-up
    day), ``visit_to`` ``visit_from``, ``issued_on`` today. ``visit_to`` before ``visit_from`` is refused."""
    visit = dt.date.fromisoformat(visit_date) if visit_date else None
    raw_from = params.get("visit_from") or issued.get("visit_from")
    vf = parse_day(raw_from, "visit_from", today) if raw_from else visit
    raw_to = params.get("visit_to") or issued.get("visit_to")
    vt = parse_day(raw_to, "visit_to", today) if raw_to else vf
    if vt is not None and vf is None:
        raise InvalidInputError([FieldProblem("visit_from", "required", "give visit_from with visit_to")])
    if vf is not None and vt is not None and vt < vf:
        raise InvalidInputError([FieldProblem("visit_to", "before_visit_from",
                                              f"the window ends ({vt}) before it starts ({vf})")])
    on = parse_day(params.get("issued_on") or issued.get("issued_on"), "issued_on", today)
    return vf, vt, on
