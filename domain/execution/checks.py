"""Input checks the execution aggregates share: each appends a named problem instead of raising, so that a
command reports every broken rule at once."""

import datetime as dt
from typing import Any

from domain.errors import FieldProblem


def text(problems: list[FieldProblem], fld: str, value: Any, max_len: int, required: bool) -> str:
    """Stripped text; ``required`` refuses an empty one, ``max_len`` a long one."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        problems.append(FieldProblem(fld, "type", "must be text"))
        return ""
    out = value.strip()
    if required and not out:
        problems.append(FieldProblem(fld, "required", "must not be empty"))
    elif len(out) > max_len:
        problems.append(FieldProblem(fld, "max_length", f"must be at most {max_len} characters"))
    return out


def iso_date(problems: list[FieldProblem], fld: str, value: Any, required: bool = True) -> str | None:
    """A date (``date`` or ``YYYY-MM-DD``) as ISO text; None when absent and not required."""
    if value in (None, "") and not required:
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    problems.append(FieldProblem(fld, "format", "must be a date YYYY-MM-DD"))
    return None
