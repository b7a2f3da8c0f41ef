"""The working-day calendar and official schedules."""

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Response, Router, get, post
from litestar.params import JSONBody, Parameter

from services.api.common import (
    READ,
    SECURED,
    WRITE,
    AnyRequest,
    answers,
    command,
    ctx,
    done,
    multipart_file,
    runtime,
    upload,
)
from services.api.schemas import CalendarView, Deadline, Json, Schedule


@get(
    "/",
    responses=answers(200, CalendarView, READ),
    sync_to_thread=True,
    summary="The working-day calendar",
    description="Years covered (the chinese-calendar package's and those loaded), the schedules loaded by admins, "
    "and the publication deadline in working days.",
)
def calendar(request: AnyRequest) -> dict[str, Any]:
    rt = runtime(request)
    return rt.calendar.calendar_view()


@get(
    "/deadline",
    responses=answers(200, Deadline, READ),
    sync_to_thread=True,
    summary="Compute a working-day deadline",
    description="`start` + `working_days` (default: the publication deadline) working days: the date, and "
    "`provisional` with the uncovered years when a year counted has no schedule.",
)
def deadline(
    request: AnyRequest,
    start: Annotated[dt.date, Parameter(description="first day (YYYY-MM-DD)")],
    working_days: Annotated[
        int | None, Parameter(ge=0, le=3650, description="default: the publication deadline")
    ] = None,
) -> dict[str, Any]:
    rt = runtime(request)
    return rt.calendar.deadline(start, working_days)


@post(
    "/schedules",
    **command(),
    summary="Load a year's official schedule (JSON)",
    description="Admins only. `{year, holidays: [dates], workdays: [make-up workdays, weekends], source}`; all dates "
    "in `year`. Replaces an earlier schedule of that year (the event keeps it). Provisional deadlines that counted "
    "the year are recomputed in the same transaction (`recomputed`)." + WRITE,
)
def load_schedule(request: AnyRequest, data: JSONBody[Schedule]) -> Response[Json]:
    rt = runtime(request)
    result = rt.calendar.load_schedule(ctx(request), msgspec.json.encode(data), "json")
    return done(request, result)


@post(
    "/schedules/import",
    **command(),
    summary="Load a year's schedule from a file (JSON or CSV)",
    description="Admins only. Multipart field `file`: `.json` as POST /calendar/schedules, or `.csv` with the header "
    "`date,kind` and one row per day (kind holiday/休 or workday/班), all in one year; optional field `source`."
    + WRITE,
)
def import_schedule(
    request: AnyRequest,
    data: Annotated[dict[str, Any], multipart_file(source={"type": "string", "description": "where the schedule comes from (e.g. the State Council notice)"})],
) -> Response[Json]:
    rt = runtime(request)
    file = upload(data)
    name = (file.filename or "").lower()
    fmt = "csv" if name.endswith(".csv") or "csv" in (file.content_type or "") else "json"
    given_source = data.get("source")
    source = given_source if isinstance(given_source, str) else ""
    result = rt.calendar.load_schedule(ctx(request), file.file.read(), fmt, source)
    return done(request, result)


def router() -> Router:
    return Router(
        "/calendar",
        route_handlers=[calendar, deadline, load_schedule, import_schedule],
        tags=["calendar"], security=SECURED,
    )
