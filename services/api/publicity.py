"""Exports for 国家企业信用信息公示系统."""

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Response, Router, get
from litestar.openapi.spec import Operation
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
from services.usecases.publicity import EXPORT_FORMATS as EXPORT_MEDIA


@dataclass
class ExportOperation(Operation):
    """The export's success is documented once per format: the JSON array of push records, the XLSX and the CSV
    sheet, each under the media type it is answered with (not application/octet-stream)."""

    def to_schema(self) -> dict[str, Any]:
        schema = super().to_schema()
        binary = {"schema": {"type": "string", "format": "binary"}}
        push = {"schema": {"type": "array", "items": {"type": "object"},
                           "description": "the data-push file: one record per approved inspection"}}
        schema["responses"]["200"]["content"] = {
            media.split(";")[0]: push if fmt == "json" else binary for fmt, (media, _) in EXPORT_MEDIA.items()
        }
        return schema


@get(
    "/export",
    responses=answers(200, None, READ, media_type="application/octet-stream", also=(503,)),
    sync_to_thread=True,
    summary="Export for 国家企业信用信息公示系统（河南）",
    media_type="application/octet-stream",
    operation_class=ExportOperation,
    description="`format=json`: the data-push file (raninsPlanId, raninsPlaneName, raninsTaskId, raninsTaskName, "
    "raninsTypeName 定向/不定向 (非随机（案件线索核查） for a case-triggered task, plan fields empty), insAuth, insDate, uniscid, entName, details[raninsItemName, raninsCheckResName]); "
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
