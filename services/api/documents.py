"""Printable documents (A4, Chinese) under the resources they print, as HTML or PDF: the annual plan, the drawn
list and dispatch sheet, the inspection record, referral letters and the follow-up record (the visit's notices
are in ``visits``, with the same ``format``). Each answers to whoever may read the data it prints."""

import uuid
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Response, Router, get
from litestar.openapi.spec import Operation
from litestar.params import FromPath, Parameter
from litestar.response import Stream

from domain.documents import Document, render_html
from domain.errors import FieldProblem, InvalidInputError
from projections.directory.queries import iter_entries
from services.api import boards
from services.api.common import READ, SECURED, AnyRequest, Department, MinPosition, answers, runtime, wait
from services.api.directory import directory_filters
from services.documents.builders import DocumentBuilder
from services.documents.pdf import render_pdf
from services.documents.sheets import (
    CSV,
    KIND_FILES,
    XLSX,
    board_xlsx,
    chunks,
    directory_xlsx,
    document_xlsx,
    template,
)

PDF = "application/pdf"
HTML = "text/html"

Format = Annotated[
    str | None,
    Parameter(description="html (the default), pdf, or xlsx (the document's tables as a sheet); without it, "
              "`Accept: application/pdf` asks for PDF", schema_extra={"enum": ["html", "pdf", "xlsx"]}),
]


@dataclass
class PrintableOperation(Operation):
    """A printable document's success is documented under both media types it is answered with."""

    def to_schema(self) -> dict[str, Any]:
        schema = super().to_schema()
        binary = {"schema": {"type": "string", "format": "binary"}}
        schema["responses"]["200"]["content"] = {HTML: {"schema": {"type": "string"}}, PDF: binary, XLSX: binary}
        return schema


def printable(summary: str, description: str) -> dict[str, Any]:
    """The route options of a printable document (``@get(path, **printable(...))``)."""
    return {
        "responses": answers(200, None, READ, media_type="application/octet-stream", also=(503,)),
        "sync_to_thread": True,
        "summary": summary,
        "media_type": "application/octet-stream",
        "operation_class": PrintableOperation,
        "description": description + " `format=pdf` (or `Accept: application/pdf`) for the PDF (A4, the same "
        "text; Chinese in the built-in font STSong-Light), `format=xlsx` for its tables as an Excel sheet, else "
        "printable HTML.",
    }


def wants_pdf(request: AnyRequest, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "pdf"
    accept = request.headers.get("accept", "")
    return PDF in accept and HTML not in accept


def printed(request: AnyRequest, doc: Document, fmt: str | None, name: str, html: str | None = None,
            headers: dict[str, str] | None = None) -> Response[Any]:
    """The document as PDF or HTML (``html``: already rendered), ``name`` the file name without extension."""
    if fmt not in (None, "html", "pdf", "xlsx"):  # the enum is documented; litestar does not enforce it on str
        raise InvalidInputError([FieldProblem("format", "choice", "must be one of: html, pdf, xlsx")])
    pdf = wants_pdf(request, fmt)
    ext = "xlsx" if fmt == "xlsx" else "pdf" if pdf else "html"
    out = {**(headers or {}), "Content-Disposition": f"inline; filename*=UTF-8''{quote(name + '.' + ext)}",
           "Vary": "Accept"}
    if fmt == "xlsx":
        return Response(document_xlsx(doc), media_type=XLSX, headers=out)
    if pdf:
        return Response(render_pdf(doc), media_type=PDF, headers=out)
    return Response(html if html is not None else render_html(doc), media_type=HTML, headers=out)


def _builder(request: AnyRequest) -> DocumentBuilder:
    rt = runtime(request)
    return DocumentBuilder(rt, rt.engine, rt.lookups)


@get("/plans/{plan_id:uuid}/documents/annual-plan", **printable(
    "The annual plan (年度抽查工作计划), printable",
    "The plan as the 2024 notice's 附件 table (A4 landscape): per entry its number, name, items (多项合一), "
    "category, object scope, ratios in words with the quotas on the current directory, and period. Whoever may "
    "read the plan (its department's staff, admins, auditors)."))
def annual_plan(request: AnyRequest, plan_id: FromPath[uuid.UUID], format: Format = None,
                min_position: MinPosition = None) -> Response[Any]:
    wait(request, min_position)
    doc = _builder(request).annual_plan(request.user, plan_id)
    return printed(request, doc, format, f"annual-plan-{plan_id}")


@get("/tasks/{task_id:uuid}/documents/dispatch-sheet", **printable(
    "The drawn list and dispatch sheet (抽取结果及派发单), printable",
    "The task's head (number, name, departments, period, entropy source, commitment), then every drawn "
    "enterprise (name, credit code, address) with each department's team (leader, members and experts, with "
    "certificate numbers) and visit date, and lines for signature (A4 landscape). Confidential until the visit: "
    "the task's planners, admins and auditors read it whole; an inspector reads only the visits they are on; "
    "anyone else 403."))
def dispatch_sheet(request: AnyRequest, task_id: FromPath[uuid.UUID], format: Format = None,
                   min_position: MinPosition = None) -> Response[Any]:
    wait(request, min_position)
    doc = _builder(request).dispatch_sheet(request.user, task_id)
    return printed(request, doc, format, f"dispatch-sheet-{task_id}")


@get("/inspections/{inspection_id:uuid}/documents/record", **printable(
    "The inspection record (检查记录), printable",
    "One department's record of a visit: the enterprise (name, credit code, address), task, type (a "
    "case-triggered task says 案件线索核查（非随机）), date, methods, inspectors with certificate numbers, review "
    "state, and per item the result, problem and measures, with lines for signature. Whoever may read the "
    "inspection; the visit's other departments get confidential fields withheld."))
def inspection_record(request: AnyRequest, inspection_id: FromPath[uuid.UUID], format: Format = None,
                      min_position: MinPosition = None) -> Response[Any]:
    wait(request, min_position)
    doc = _builder(request).inspection_record(request.user, inspection_id)
    return printed(request, doc, format, f"inspection-record-{inspection_id}")


@get("/referrals/{referral_id:uuid}/documents/letter", **printable(
    "The referral letter (移送函 / 涉嫌犯罪案件移送书), printable",
    "A department referral prints as 案件移送函, a judicial one as 涉嫌犯罪案件移送书 (with 抄送 the procuratorate), "
    "a discipline one as 问题线索移送函: the enterprise, the item, the finding as recorded (confidential fields "
    "too: it passes between authorities), the reason, the deadlines, and a receipt (回执) to sign. The sending "
    "and the receiving department, admins and auditors; anyone else 403."))
def referral_letter(request: AnyRequest, referral_id: FromPath[uuid.UUID], format: Format = None,
                    min_position: MinPosition = None) -> Response[Any]:
    wait(request, min_position)
    doc = _builder(request).referral_letter(request.user, referral_id)
    return printed(request, doc, format, f"referral-{referral_id}")


@get("/follow-ups/{round_id:uuid}/documents/record", **printable(
    "The follow-up record (执法回访记录), printable",
    "The round (department, period, ratio, entropy source) and per drawn enterprise its visits: method, date, "
    "who visited, opinions (the department's reviewers, auditors and whoever recorded the visit; others read "
    "（保密）), problems and discipline escalations (never shown to an inspector). The department's staff, admins, "
    "auditors."))
def follow_up_record(request: AnyRequest, round_id: FromPath[uuid.UUID], format: Format = None,
                     min_position: MinPosition = None) -> Response[Any]:
    wait(request, min_position)
    doc = _builder(request).follow_up_record(request.user, round_id)
    return printed(request, doc, format, f"follow-up-{round_id}")


# -- Excel: directories, boards, import templates --------------------------------------------------------------
def _sheet(summary: str, description: str) -> dict[str, Any]:
    return {"responses": answers(200, None, READ, media_type=XLSX, also=(503,)), "sync_to_thread": True,
            "summary": summary, "media_type": XLSX, "description": description}


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}


def _directory_export(kind: str, plural: str, label: str) -> Any:
    @get(f"/{plural}/export.xlsx", **_sheet(
        f"Export the {label} directory (XLSX)",
        f"Every {label} matching the listing's filters (the same query parameters as `GET /api/v1/{plural}`, the "
        "same readers), one row an entry, headers the import's Chinese labels (so the file imports again: "
        "nothing changes). Streams: rows are read 1,000 at a time by the registration index and written to a "
        "write-only workbook; memory stays flat for a million rows."), name=f"export_{plural}")
    def export(request: AnyRequest, min_position: MinPosition = None) -> Stream:
        wait(request, min_position)
        filters = directory_filters(kind, request.query_params, request.user)
        file = directory_xlsx(kind, iter_entries(runtime(request).engine, kind, filters))
        return Stream(chunks(file), media_type=XLSX, headers=_attachment(f"{plural}.xlsx"))

    return export


@get("/inbox/export.xlsx", **_sheet("Export the inbox (XLSX)",
                                    "The inbox (`GET /api/v1/inbox`, same parameters and readers), one sheet per "
                                    "section: tasks, inspectors' visits, reviews, referrals, deadlines."))
def inbox_export(request: AnyRequest, department: Department = None,
                 year: Annotated[int | None, Parameter(ge=1, le=9999, description="only tasks of this year")] = None,
                 min_position: MinPosition = None) -> Response[bytes]:
    wait(request, min_position, boards.READ_MODELS)
    view = boards.inbox_view(request, department, year)
    return Response(board_xlsx(f"收件箱 {view['department']}", view), media_type=XLSX,
                    headers=_attachment(f"inbox-{view['department']}.xlsx"))


@get("/kpis/export.xlsx", **_sheet("Export the KPIs (XLSX)",
                                   "The KPIs (`GET /api/v1/kpis`, same parameters and readers), each with its "
                                   "formula, one sheet per group."))
def kpis_export(request: AnyRequest, year: Annotated[int, Parameter(ge=1, le=9999, description="the year")],
                department: Department = None,
                quarter: Annotated[int | None, Parameter(ge=1, le=4, description="1-4; default: the whole year")] = None,
                min_position: MinPosition = None) -> Response[bytes]:
    wait(request, min_position, boards.READ_MODELS)
    view = boards.kpis_view(request, department, year, quarter)
    dept = view.get("department", department or request.user.department)
    return Response(board_xlsx(f"考核指标 {dept} {year}", view), media_type=XLSX,
                    headers=_attachment(f"kpis-{dept}-{year}{'Q' + str(quarter) if quarter else ''}.xlsx"))


@get("/imports/templates/{name:str}", responses=answers(200, None, READ, media_type="application/octet-stream"),
     sync_to_thread=True, media_type="application/octet-stream", summary="An import template (XLSX or CSV)",
     description="`targets.xlsx`, `targets.csv`, `inspectors.xlsx|csv`, `items.xlsx|csv`, `experts.xlsx|csv`: the "
     "header row of Chinese labels the import reads (XLSX: `*` marks required columns, drop-downs for the "
     "enumerations, a sheet 说明 describing each column; CSV: UTF-8 with BOM, the header row only). The same "
     "files as `dualrandom directory template KIND` and docs/templates/. Anyone with a token.")
def import_template(request: AnyRequest, name: FromPath[str]) -> Response[bytes]:
    plural, _, ext = name.rpartition(".")
    kinds = {v: k for k, v in KIND_FILES.items()}
    if plural not in kinds or ext not in ("xlsx", "csv"):
        raise InvalidInputError([FieldProblem("name", "choice", "must be one of: " + ", ".join(
            f"{p}.{e}" for p in kinds for e in ("xlsx", "csv")))])
    return Response(template(kinds[plural], ext), media_type=XLSX if ext == "xlsx" else CSV,
                    headers=_attachment(name))


def router() -> Router:
    exports = [_directory_export(kind, plural, kind) for kind, plural in KIND_FILES.items()]
    return Router("/", route_handlers=[annual_plan, dispatch_sheet, inspection_record, referral_letter,
                                       follow_up_record, *exports, inbox_export, kpis_export, import_template],
                  tags=["documents"], security=SECURED)
