"""Exports for 国家企业信用信息公示系统."""

import datetime as dt
from typing import Annotated

from litestar import Response, Router, get
from litestar.params import Parameter

from services.api.common import (
    READ,
    SECURED,
    AnyRequest,
    Department,
    MinPosition,
    answers,
    runtime,
    wait,
)
from services.api.schemas import EXPORT_FORMATS


@get(
    "/export",
    responses=answers(200, None, READ, media_type="application/octet-stream", also=(503,)),
    sync_to_thread=True,
    summary="Export for 国家企业信用信息公示系统（河南）",
    media_type="application/octet-stream",
    description="`format=json`: the data-push file (raninsPlanId, raninsPlaneName, raninsTaskId, raninsTaskName, "
    "raninsTypeName 定向/不定向, insAuth, insDate, uniscid, entName, details[raninsItemName, raninsCheckResName]); "
    "`xlsx` / `csv` (UTF-8 with BOM): the manual-entry sheet, one row per item. Approved results of `department` "
    "(default yours; `published_only`, approval date `since`/`until`); confidential fields never. The department's "
    "reviewers and planners, admins, auditors.",
)
def export(
    request: AnyRequest,
    format: Annotated[
        str, Parameter(description="json: data-push file; xlsx/csv: manual-entry sheet", schema_extra={"enum": EXPORT_FORMATS})
    ] = "json",
    department: Department = None,
    published_only: Annotated[bool, Parameter(description="only published results")] = False,
    since: Annotated[dt.date | None, Parameter(description="approved on or after (YYYY-MM-DD)")] = None,
    until: Annotated[dt.date | None, Parameter(description="approved on or before (YYYY-MM-DD)")] = None,
    min_position: MinPosition = None,
) -> Response:
    rt = runtime(request)
    wait(request, min_position)
    content, media, name = rt.publicity.export(request.user, format, department, published_only, since, until)
    return Response(
        content, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def router() -> Router:
    return Router(
        "/publicity",
        route_handlers=[export],
        tags=["publicity"], security=SECURED,
    )
